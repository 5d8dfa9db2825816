"""Lean indicators used by daily algorithms (formulas from Lean's Indicators/*.cs)."""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from include.lean_local.errors import NotSupportedByLocalRuntime


class MovingAverageType(IntEnum):
    SIMPLE = 0
    EXPONENTIAL = 1


class IndicatorDataPoint:
    __slots__ = ("end_time", "symbol", "time", "value")

    def __init__(
        self, *args: Any, symbol: Any = None, time: dt.datetime | None = None, value: float | None = None
    ) -> None:
        """Lean's ``IndicatorDataPoint()``, ``(time, value)`` or ``(symbol, time, value)``."""
        if args:
            names = ("symbol", "time", "value") if len(args) == 3 else ("time", "value")
            given = _positional("IndicatorDataPoint", args, names, {"symbol": symbol, "time": time, "value": value})
            symbol, time, value = given["symbol"], given["time"], given["value"]
        self.time = time or dt.datetime.min
        self.end_time = self.time
        self.value = 0.0 if value is None else float(value)
        self.symbol = symbol

    @property
    def price(self) -> float:
        return self.value

    def __float__(self) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"{self.time:%Y%m%d %H:%M}: {self.value}" if self.time != dt.datetime.min else str(self.value)


def _positional(owner: str, args: tuple[Any, ...], names: tuple[str, ...], named: dict[str, Any]) -> dict[str, Any]:
    """``named`` with the positional ``args`` assigned to ``names`` in order: one Python signature serves Lean's
    overloads whose positional parameters differ (``SimpleMovingAverage(period)`` and ``(name, period)``)."""
    if len(args) > len(names):
        raise TypeError(f"{owner}() takes at most {len(names)} positional arguments ({len(args)} given)")
    out = dict(named)
    for name, value in zip(names, args, strict=False):
        if out.get(name) is not None:
            raise TypeError(f"{owner}() got multiple values for argument '{name}'")
        out[name] = value
    return out


def _name_and(owner: str, args: tuple[Any, ...], name: str | None, names: tuple[str, ...], **named: Any) -> Any:
    """Lean's indicator constructors ``(name, *rest)`` or ``(*rest)``: a leading str is the name."""
    if args and isinstance(args[0], str):
        if name is not None:
            raise TypeError(f"{owner}() got multiple values for argument 'name'")
        name, args = args[0], args[1:]
    out = _positional(owner, args, names, named)
    missing = [n for n in names[:1] if out.get(n) is None]
    if missing:
        raise TypeError(f"{owner}() missing required argument: '{missing[0]}'")
    return name, out


class IndicatorBase:
    """Common surface: ``current.value``, ``is_ready``, ``samples``, ``update``, ``updated`` handlers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.current = IndicatorDataPoint()
        self.previous = IndicatorDataPoint()
        self.samples = 0
        self._consumers: list[IndicatorBase] = []
        self._handlers: list[Callable[[Any, IndicatorDataPoint], None]] = []
        self.updated = _EventHook(self._handlers)

    @property
    def is_ready(self) -> bool:
        raise NotImplementedError

    @property
    def warm_up_period(self) -> int:
        return 1

    def _compute(self, time: dt.datetime, value: float) -> float:
        raise NotImplementedError

    def update(self, time: Any = None, value: Any = None, *, input: Any = None) -> bool:
        """``update(time, value)``, ``update(input)``: an IndicatorDataPoint or a TradeBar (uses the close)."""
        if input is not None:
            if time is not None:
                raise TypeError("update() takes (time, value) or (input)")
            time = input
        if value is None:
            point = time
            time = getattr(point, "end_time", None) or getattr(point, "time", None)
            value = getattr(point, "close", None)
            if value is None:
                value = point.value
        self.samples += 1
        self.previous = self.current
        result = self._compute(time, float(value))
        self.current = IndicatorDataPoint(time, result)
        for consumer in self._consumers:
            consumer.update(time, result)
        for handler in self._handlers:
            handler(self, self.current)
        return self.is_ready

    def reset(self) -> None:
        self.samples = 0
        self.current = IndicatorDataPoint()
        self.previous = IndicatorDataPoint()

    def __float__(self) -> float:
        return self.current.value

    def __repr__(self) -> str:
        return f"{self.name}: {self.current.value}"

    # comparisons on the current value, as Lean's Python indicators allow
    def __lt__(self, other: Any) -> bool:
        return self.current.value < float(other)

    def __gt__(self, other: Any) -> bool:
        return self.current.value > float(other)

    def __le__(self, other: Any) -> bool:
        return self.current.value <= float(other)

    def __ge__(self, other: Any) -> bool:
        return self.current.value >= float(other)


class _EventHook:
    def __init__(self, handlers: list[Callable[[Any, IndicatorDataPoint], None]]) -> None:
        self._handlers = handlers

    def __iadd__(self, handler: Callable[[Any, IndicatorDataPoint], None]) -> _EventHook:
        self._handlers.append(handler)
        return self

    def __isub__(self, handler: Callable[[Any, IndicatorDataPoint], None]) -> _EventHook:
        self._handlers.remove(handler)
        return self


class Identity(IndicatorBase):
    def __init__(self, name: str = "Identity") -> None:
        super().__init__(name)

    @property
    def is_ready(self) -> bool:
        return self.samples > 0

    def _compute(self, time: dt.datetime, value: float) -> float:
        return value


class _PeriodIndicator(IndicatorBase):
    """Ready once ``period`` samples are in (Lean's ``WindowIndicator`` readiness for averages)."""

    period: int

    @property
    def is_ready(self) -> bool:
        return self.samples >= self.period

    @property
    def warm_up_period(self) -> int:
        return self.period


class SimpleMovingAverage(_PeriodIndicator):
    def __init__(self, *args: Any, name: str | None = None, period: int | None = None) -> None:
        """Lean's ``SimpleMovingAverage(period)`` or ``(name, period)``."""
        name, given = _name_and("SimpleMovingAverage", args, name, ("period",), period=period)
        period = int(given["period"])
        super().__init__(f"SMA({period})" if name is None else str(name))
        self.period = period
        self._window: deque[float] = deque(maxlen=self.period)
        self._sum = 0.0

    def _compute(self, time: dt.datetime, value: float) -> float:
        if len(self._window) == self.period:
            self._sum -= self._window[0]
        self._window.append(value)
        self._sum += value
        return self._sum / len(self._window)

    def reset(self) -> None:
        super().reset()
        self._window.clear()
        self._sum = 0.0


class ExponentialMovingAverage(_PeriodIndicator):
    def __init__(
        self, *args: Any, name: str | None = None, period: int | None = None, smoothing_factor: float | None = None
    ) -> None:
        """Lean's ``ExponentialMovingAverage([name, ]period[, smoothing_factor])``."""
        name, given = _name_and(
            "ExponentialMovingAverage",
            args,
            name,
            ("period", "smoothing_factor"),
            period=period,
            smoothing_factor=smoothing_factor,
        )
        period, smoothing_factor = int(given["period"]), given["smoothing_factor"]
        if smoothing_factor is not None:
            smoothing_factor = float(smoothing_factor)
        super().__init__(f"EMA({period})" if name is None else str(name))
        self.period = period
        self._k = smoothing_factor if smoothing_factor is not None else 2.0 / (1 + self.period)
        self._sma = SimpleMovingAverage(self.period)

    def _compute(self, time: dt.datetime, value: float) -> float:
        if self.samples <= self.period:
            self._sma.update(time, value)
        if not self.is_ready:
            return 0.0
        if self.samples == self.period:
            return self._sma.current.value
        return value * self._k + self.current.value * (1 - self._k)

    def reset(self) -> None:
        super().reset()
        self._sma.reset()


class _WindowIndicator(IndicatorBase):
    _prefix = ""

    def __init__(self, *args: Any, name: str | None = None, period: int | None = None) -> None:
        """Lean's ``(period)`` or ``(name, period)``."""
        name, given = _name_and(type(self).__name__, args, name, ("period",), period=period)
        period = int(given["period"])
        super().__init__(f"{self._prefix}({period})" if name is None else str(name))
        self.period = period
        self._window: deque[float] = deque(maxlen=self.period)

    @property
    def is_ready(self) -> bool:
        return self.samples > self.period

    @property
    def warm_up_period(self) -> int:
        return self.period + 1

    def _compute(self, time: dt.datetime, value: float) -> float:
        removed = self._window[0] if len(self._window) == self.period else None
        self._window.append(value)
        base = self._window[0] if removed is None else removed
        return self._value(value, base)

    def _value(self, value: float, base: float) -> float:
        raise NotImplementedError

    def reset(self) -> None:
        super().reset()
        self._window.clear()


class Momentum(_WindowIndicator):
    _prefix = "MOM"

    def _value(self, value: float, base: float) -> float:
        return value - base


class RateOfChange(_WindowIndicator):
    _prefix = "ROC"

    def _value(self, value: float, base: float) -> float:
        return 0.0 if base == 0 else (value - base) / base


class RateOfChangePercent(RateOfChange):
    _prefix = "ROCP"

    def _value(self, value: float, base: float) -> float:
        return 100.0 * super()._value(value, base)


class MomentumPercent(RateOfChangePercent):
    _prefix = "MOMP"


class MovingAverageConvergenceDivergence(IndicatorBase):
    def __init__(
        self,
        *args: Any,
        name: str | None = None,
        fast_period: int | None = None,
        slow_period: int | None = None,
        signal_period: int | None = None,
        type: int | None = None,
    ) -> None:
        """Lean's ``MovingAverageConvergenceDivergence([name, ]fast_period, slow_period, signal_period[, type])``."""
        name, given = _name_and(
            "MovingAverageConvergenceDivergence",
            args,
            name,
            ("fast_period", "slow_period", "signal_period", "type"),
            fast_period=fast_period,
            slow_period=slow_period,
            signal_period=signal_period,
            type=type,
        )
        fast_period, slow_period, signal_period = given["fast_period"], given["slow_period"], given["signal_period"]
        if slow_period is None or signal_period is None:
            raise TypeError("MovingAverageConvergenceDivergence() needs fast_period, slow_period and signal_period")
        moving_average_type = MovingAverageType.EXPONENTIAL if given["type"] is None else int(given["type"])
        super().__init__(f"MACD({fast_period},{slow_period},{signal_period})" if name is None else str(name))
        if fast_period >= slow_period:
            raise ValueError("MovingAverageConvergenceDivergence: fastPeriod must be less than slowPeriod")
        make = _moving_average_factory(moving_average_type)
        self.fast = make(fast_period)
        self.slow = make(slow_period)
        self.signal = make(signal_period)
        self.histogram = Identity("MACD_Histogram")
        self._warm_up = slow_period + signal_period - 1

    @property
    def is_ready(self) -> bool:
        return self.signal.is_ready

    @property
    def warm_up_period(self) -> int:
        return self._warm_up

    def _compute(self, time: dt.datetime, value: float) -> float:
        fast_ready = self.fast.update(time, value)
        slow_ready = self.slow.update(time, value)
        macd = self.fast.current.value - self.slow.current.value
        if fast_ready and slow_ready and self.signal.update(time, macd):
            self.histogram.update(time, macd - self.signal.current.value)
        return macd


def _moving_average_factory(kind: int) -> Callable[[int], IndicatorBase]:
    if kind == 0:
        return SimpleMovingAverage
    if kind == 1:
        return ExponentialMovingAverage
    raise NotSupportedByLocalRuntime(f"MovingAverageType {kind}")


class Delay(_WindowIndicator):
    _prefix = "DELAY"

    def _value(self, value: float, base: float) -> float:
        return base


class IndicatorExtensions:
    @staticmethod
    def of(second: IndicatorBase, first: IndicatorBase, wait_for_first_to_ready: bool = True) -> IndicatorBase:
        """``second`` receives ``first``'s outputs (only once ``first`` is ready, by default)."""

        def forward(sender: Any, point: IndicatorDataPoint) -> None:
            if not wait_for_first_to_ready or first.is_ready:
                second.update(point.time, point.value)

        first.updated += forward
        return second
