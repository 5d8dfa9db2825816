"""``QCAlgorithm.indicator_history`` (Lean's ``QCAlgorithm.Indicators.cs`` IndicatorHistory): an indicator run
over history, each point it makes once ready, with its inner indicators' values (``Common/Data/IndicatorHistory.cs``,
``Common/Indicators/InternalIndicatorValues.cs``)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from include.lean_local.indicators import IndicatorBase, IndicatorDataPoint
from include.lean_local.orders import smart_rounding

if TYPE_CHECKING:
    import pandas as pd

    from include.lean_local.market_data import TradeBar

# QCAlgorithm._ignoredProperties: members of an indicator that are not among its values
_IGNORED = frozenset(
    {"consolidators", "current", "previous", "name", "samples", "is_ready", "window", "item", "warm_up_period"}
    | {"period", "updated"}
)


def snake_case(name: str) -> str:
    """Lean's ``ToSnakeCase`` (``MiddleBand`` -> ``middle_band``), lower case."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _pandas_key(name: str) -> str:
    """The DataFrame column of a property: Lean's C# property name, lower-cased (``middle_band`` ->
    ``middleband``)."""
    return name.replace("_", "").lower()


class IndicatorDataPoints:
    """One time's values of an indicator and of its inner indicators (Lean's ``IndicatorDataPoints``):
    ``points.current``, ``points.upper_band`` or ``points["upper_band"]``."""

    def __init__(self, time: dt.datetime, end_time: dt.datetime) -> None:
        self.time = time
        self.end_time = end_time
        self._values: dict[str, Any] = {}

    def set_property(self, name: str, value: Any) -> None:
        self._values[snake_case(name)] = value

    def get_property(self, name: str) -> Any:
        return self._values.get(snake_case(name))

    @property
    def current(self) -> IndicatorDataPoint:
        point: IndicatorDataPoint = self._values["current"]
        return point

    @property
    def value(self) -> float:
        return self.current.value

    def __getitem__(self, name: str) -> IndicatorDataPoint | None:
        value = self.get_property(name)
        return value if isinstance(value, IndicatorDataPoint) else None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = self.__dict__.get("_values", {})
        if snake_case(name) in values:
            return values[snake_case(name)]
        raise AttributeError(name)

    def __float__(self) -> float:
        return self.value

    def __repr__(self) -> str:
        parts = []
        for key in sorted(self._values, key=lambda k: k.replace("_", "")):
            value = self._values[key]
            parts.append(f"{key}: {smart_rounding(value.value) if isinstance(value, IndicatorDataPoint) else value}")
        return f"{self.end_time:%m/%d/%Y %H:%M:%S} {', '.join(parts)}"


class IndicatorHistory:
    """Lean's ``IndicatorHistory``: the points by time (iterate, ``count``), the values by name
    (``history["upper_band"]``, ``history.current``) and ``data_frame`` (columns sorted, index the end times)."""

    def __init__(
        self, points: list[IndicatorDataPoints], by_name: dict[str, list[IndicatorDataPoint]], extra: dict[str, Any]
    ) -> None:
        self._points = points
        self._by_name = by_name
        self._extra = extra
        self._frame: pd.DataFrame | None = None

    @property
    def count(self) -> int:
        return len(self._points)

    @property
    def current(self) -> list[IndicatorDataPoint]:
        return self._by_name["current"]

    def __getitem__(self, name: str) -> list[IndicatorDataPoint] | None:
        return self._by_name.get(snake_case(name))

    def __iter__(self) -> Iterator[IndicatorDataPoints]:
        return iter(self._points)

    def __len__(self) -> int:
        return len(self._points)

    @property
    def data_frame(self) -> pd.DataFrame:
        """PandasConverter.GetIndicatorDataFrame: one column per value (lower-cased property name), sorted."""
        if self._frame is None:
            import pandas as pd

            columns: dict[str, pd.Series] = {}
            for name, points in self._by_name.items():
                kept = [p for p in points if p.end_time != dt.datetime.min]
                columns[_pandas_key(name)] = pd.Series(
                    [p.value for p in kept], index=[p.end_time for p in kept], dtype=float
                )
            for name, rows in self._extra.items():
                columns[_pandas_key(name)] = pd.Series([v for _, v in rows], index=[t for t, _ in rows], dtype=object)
            self._frame = pd.DataFrame(columns, columns=sorted(columns))
        return self._frame

    def __repr__(self) -> str:
        return "".join(f"{point}\n" for point in self._points)


def _members(indicator: IndicatorBase) -> tuple[list[str], list[str]]:
    """The indicator's inner indicators and its other public values, by attribute name."""
    inner: list[str] = []
    other: list[str] = []
    for name, value in vars(indicator).items():
        if name.startswith("_") or name in _IGNORED or (callable(value) and not isinstance(value, IndicatorBase)):
            continue
        (inner if isinstance(value, IndicatorBase) else other).append(name)
    return inner, other


def run(
    indicator: IndicatorBase, bars: list[TradeBar], selector: Callable[[TradeBar], float] | None = None
) -> IndicatorHistory:
    """Reset ``indicator``, update it with each bar's value (the close, or ``selector(bar)``) and collect its
    points once it is ready (QCAlgorithm.IndicatorHistory)."""
    indicator.reset()
    inner, other = _members(indicator)
    by_name: dict[str, list[IndicatorDataPoint]] = {name: [] for name in inner}
    by_name["current"] = []
    extra: dict[str, list[tuple[dt.datetime, Any]]] = {name: [] for name in other}
    points: list[IndicatorDataPoints] = []
    state: dict[str, Any] = {"consumed": None, "last": None}

    def consume(point: IndicatorDataPoint | None) -> None:
        if point is None or state["consumed"] == point.end_time:
            return
        state["consumed"] = point.end_time
        entry = IndicatorDataPoints(point.time, point.end_time)
        points.append(entry)
        for name in inner:
            value = getattr(indicator, name).current
            values = by_name[name]
            if not values or value.end_time != values[-1].end_time:
                values.append(value)
            else:
                values[-1] = value
            entry.set_property(name, value)
        by_name["current"].append(indicator.current)
        entry.set_property("current", indicator.current)
        for name in other:
            extra[name].append((point.end_time, getattr(indicator, name)))

    def on_updated(sender: Any, point: IndicatorDataPoint) -> None:
        if not indicator.is_ready:
            return
        last = state["last"]
        if last is None or last.time != point.time:
            consume(point)
        state["last"] = point

    indicator.updated += on_updated
    try:
        for bar in bars:
            indicator.update(IndicatorDataPoint(bar.symbol, bar.end_time, selector(bar) if selector else bar.close))
        consume(state["last"])
    finally:
        indicator.updated -= on_updated
    return IndicatorHistory(points, by_name, extra)
