"""Lean indicators used by daily algorithms (formulas from Lean's Indicators/*.cs)."""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Callable, Iterator
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


class RollingWindow:
    """Lean's ``RollingWindow<T>`` (``Common/Indicators/RollingWindow.cs``): the last ``size`` items, newest
    first; ``RollingWindow[float](size)`` as in Lean's Python."""

    def __init__(self, size: int) -> None:
        if int(size) < 0:
            raise ValueError("RollingWindow size must be greater than or equal to 0")
        self._size = int(size)
        self._items: list[Any] = []  # newest first
        self._samples = 0
        self._most_recently_removed: Any = None

    def __class_getitem__(cls, item: Any) -> type[RollingWindow]:
        return cls

    @property
    def size(self) -> int:
        return self._size

    @size.setter
    def size(self, value: int) -> None:
        """Lean's ``Resize``: a smaller size drops the oldest items."""
        self._size = int(value)
        del self._items[self._size :]

    @property
    def count(self) -> int:
        return len(self._items)

    @property
    def samples(self) -> int:
        return self._samples

    @property
    def is_ready(self) -> bool:
        return self._samples >= self._size

    @property
    def most_recently_removed(self) -> Any:
        if self._samples <= self._size:
            raise RuntimeError("No items have been removed yet!")
        return self._most_recently_removed

    def add(self, item: Any) -> None:
        self._samples += 1
        if len(self._items) == self._size and self._size:
            self._most_recently_removed = self._items.pop()
        elif not self._size:
            self._most_recently_removed = item
            return
        self._items.insert(0, item)

    def reset(self) -> None:
        self._samples = 0
        self._items.clear()

    def __getitem__(self, i: int) -> Any:
        """Lean's indexer: 0 is the newest; past the items, None (and past the size, the window grows)."""
        i = int(i)
        if i < 0:
            if self._size + i < 0:
                raise IndexError("Index must be a non-negative integer or a negative integer within the window size")
            i = len(self._items) + i
            if i < 0:
                return None
        if i > len(self._items) - 1:
            if i > self._size - 1:
                self._size = i + 1
            return None
        return self._items[i]

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"RollingWindow(size={self._size}, count={len(self._items)})"


DEFAULT_WINDOW_SIZE = 2  # WindowBase.DefaultWindowSize


class IndicatorBase:
    """Common surface: ``current.value``, ``is_ready``, ``samples``, ``update``, ``updated`` handlers, and Lean's
    ``window`` of the last outputs (``WindowBase``: ``indicator[0]`` is ``current``, iteration goes newest
    first; the window starts with Lean's placeholder point (time min, value 0))."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.window = RollingWindow(DEFAULT_WINDOW_SIZE)
        self.current = IndicatorDataPoint()
        self.samples = 0
        self._consumers: list[IndicatorBase] = []
        self._handlers: list[Callable[[Any, IndicatorDataPoint], None]] = []
        self.updated = _EventHook(self._handlers)

    @property
    def current(self) -> IndicatorDataPoint:
        point = self.window[0]
        return point if point is not None else IndicatorDataPoint()

    @current.setter
    def current(self, point: IndicatorDataPoint) -> None:
        self.window.add(point)

    @property
    def previous(self) -> IndicatorDataPoint:
        point = self.window[1] if self.window.count > 1 else None
        return point if point is not None else IndicatorDataPoint()

    @property
    def is_ready(self) -> bool:
        raise NotImplementedError

    @property
    def warm_up_period(self) -> int:
        return 1

    def _compute(self, time: dt.datetime, value: float) -> float | None:
        """The next value; None: Lean's ``IndicatorStatus.MathError`` (no new point, no event)."""
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
        result = self._compute(time, float(value))
        if result is None:
            return self.is_ready
        self.current = IndicatorDataPoint(time, result)
        for consumer in self._consumers:
            consumer.update(time, result)
        for handler in list(self._handlers):
            handler(self, self.current)
        return self.is_ready

    def reset(self) -> None:
        self.samples = 0
        self.window.reset()
        self.current = IndicatorDataPoint()

    def __getitem__(self, i: int) -> IndicatorDataPoint:
        point: IndicatorDataPoint = self.window[i]
        return point

    def __iter__(self) -> Iterator[IndicatorDataPoint]:
        return iter(self.window)

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


def _moving_average(kind: int, name: str, period: int) -> IndicatorBase:
    """``MovingAverageType.AsIndicator(name, period)``."""
    if kind == 0:
        return SimpleMovingAverage(name, period)
    if kind == 1:
        return ExponentialMovingAverage(name, period)
    raise NotSupportedByLocalRuntime(f"MovingAverageType {kind}")


class ConstantIndicator(IndicatorBase):
    """Always ``value`` and ready (``Indicators/ConstantIndicator.cs``)."""

    def __init__(self, name: str, value: float) -> None:
        super().__init__(str(name))
        self._value = float(value)
        self.current = IndicatorDataPoint(dt.datetime.min, self._value)

    @property
    def is_ready(self) -> bool:
        return True

    def _compute(self, time: dt.datetime, value: float) -> float:
        return self._value

    def reset(self) -> None:
        super().reset()
        self.current = IndicatorDataPoint(dt.datetime.min, self._value)


Composer = Callable[[IndicatorBase, IndicatorBase], "float | None"]


class CompositeIndicator(IndicatorBase):
    """Lean's ``CompositeIndicator``: updated with ``composer(left, right)`` (None: a math error) each time both
    ``left`` and ``right`` have produced a new point (or the other one is a constant), at the latest of their
    times; ready when both are."""

    def __init__(
        self,
        *args: Any,
        name: str | None = None,
        left: Any = None,
        right: Any = None,
        composer: Any = None,
        handler: Any = None,
    ) -> None:
        """Lean's ``CompositeIndicator([name, ]left, right, composer)`` (``handler`` in its Python overloads)."""
        if handler is not None:
            if composer is not None:
                raise TypeError("CompositeIndicator() takes composer or handler, not both")
            composer = handler
        if args and (isinstance(args[0], str) or args[0] is None) and len(args) == 4:
            name, args = args[0], args[1:]
        given = _positional(
            "CompositeIndicator",
            args,
            ("left", "right", "composer"),
            {"left": left, "right": right, "composer": composer},
        )
        left, right, composer = given["left"], given["right"], given["composer"]
        if not isinstance(left, IndicatorBase) or not isinstance(right, IndicatorBase) or not callable(composer):
            raise TypeError("CompositeIndicator() takes ([name, ]left, right, composer) with two indicators")
        super().__init__(f"COMPOSE({left.name},{right.name})" if name is None else str(name))
        self.left = left
        self.right = right
        self._composer = composer
        left_constant, right_constant = isinstance(left, ConstantIndicator), isinstance(right, ConstantIndicator)
        fresh: dict[str, IndicatorDataPoint | None] = {"left": None, "right": None}

        def on_left(sender: Any, point: IndicatorDataPoint) -> None:
            fresh["left"] = point
            if fresh["right"] is not None or right_constant:
                self._pair(point)
                fresh["left"] = fresh["right"] = None

        def on_right(sender: Any, point: IndicatorDataPoint) -> None:
            fresh["right"] = point
            if fresh["left"] is not None or left_constant:
                self._pair(point)
                fresh["left"] = fresh["right"] = None

        left.updated += on_left
        right.updated += on_right

    def _pair(self, point: IndicatorDataPoint) -> None:
        self.update(max(point.time, self.right.current.time, self.left.current.time), 0.0)

    @property
    def is_ready(self) -> bool:
        return self.left.is_ready and self.right.is_ready

    def _compute(self, time: dt.datetime, value: float) -> float | None:
        result = self._composer(self.left, self.right)
        return None if result is None else float(result)

    def reset(self) -> None:
        self.left.reset()
        self.right.reset()
        super().reset()


def _over(left: IndicatorBase, right: IndicatorBase) -> float | None:
    value = right.current.value
    return None if value == 0 else left.current.value / value


_COMPOSERS: dict[str, Composer] = {
    "plus": lambda left, right: left.current.value + right.current.value,
    "minus": lambda left, right: left.current.value - right.current.value,
    "times": lambda left, right: left.current.value * right.current.value,
    "over": _over,
}


def _compose(kind: str, left: Any, right: Any, name: str | None, constant: Any) -> CompositeIndicator:
    """``IndicatorExtensions.Plus/Minus/Times/Over(left, right[, name])`` or ``(left, constant)``."""
    if constant is not None:
        if right is not None:
            raise TypeError(f"{kind}() takes a right indicator or a constant, not both")
        right = constant
    if right is None:
        raise TypeError(f"{kind}() needs a right indicator or a constant")
    if not isinstance(right, IndicatorBase):
        value = float(right)
        right = ConstantIndicator(normalize_number(value), value)
    return CompositeIndicator(name, left, right, _COMPOSERS[kind])


def normalize_number(value: float) -> str:
    """A decimal's invariant text (``2`` for 2.0, ``0.5``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


class Variance(_PeriodIndicator):
    """Population variance over the last ``period`` values (``Indicators/Variance.cs``: rolling sums)."""

    _prefix = "VAR"

    def __init__(self, *args: Any, name: str | None = None, period: int | None = None) -> None:
        """Lean's ``(period)`` or ``(name, period)``."""
        name, given = _name_and(type(self).__name__, args, name, ("period",), period=period)
        period = int(given["period"])
        if period < 1:
            raise ValueError("RollingWindow must have size of at least 1")
        super().__init__(f"{self._prefix}({period})" if name is None else str(name))
        self.period = period
        self._window: deque[float] = deque(maxlen=period)
        self._sum = 0.0
        self._sum_of_squares = 0.0

    def _variance(self, value: float) -> float:
        self._window.append(value)
        self._sum += value
        self._sum_of_squares += value * value
        if self.samples < 2:
            return 0.0
        n = min(self.period, self.samples)
        mean1 = self._sum / n
        mean2 = self._sum_of_squares / n
        if n == self.period:
            removed = self._window[0]  # window[Period - 1]: the oldest of the last period values
            self._sum -= removed
            self._sum_of_squares -= removed * removed
        return max(0.0, mean2 - mean1 * mean1)

    def _compute(self, time: dt.datetime, value: float) -> float:
        return self._variance(value)

    def reset(self) -> None:
        super().reset()
        self._window.clear()
        self._sum = self._sum_of_squares = 0.0


class StandardDeviation(Variance):
    _prefix = "STD"

    def _compute(self, time: dt.datetime, value: float) -> float:
        return math.sqrt(self._variance(value))


class BollingerBands(IndicatorBase):
    """Lean's ``BollingerBands`` (``Indicators/BollingerBands.cs``): its value is the input price; its bands
    are indicators composed from a standard deviation and a moving average of the same period."""

    def __init__(
        self,
        *args: Any,
        name: str | None = None,
        period: int | None = None,
        k: float | None = None,
        moving_average_type: int | None = None,
    ) -> None:
        """Lean's ``BollingerBands([name, ]period, k[, moving_average_type])``."""
        name, given = _name_and(
            "BollingerBands",
            args,
            name,
            ("period", "k", "moving_average_type"),
            period=period,
            k=k,
            moving_average_type=moving_average_type,
        )
        period, k = int(given["period"]), given["k"]
        if k is None:
            raise TypeError("BollingerBands() missing required argument: 'k'")
        k = float(k)
        kind = MovingAverageType.SIMPLE if given["moving_average_type"] is None else given["moving_average_type"]
        name = f"BB({period},{normalize_number(k)})" if name is None else str(name)
        super().__init__(name)
        self.period = period
        self.moving_average_type = MovingAverageType(int(kind))
        self.standard_deviation = StandardDeviation(name + "_StandardDeviation", period)
        self.middle_band = _moving_average(int(kind), name + "_MiddleBand", period)
        self.lower_band = _compose(
            "minus",
            self.middle_band,
            _compose("times", self.standard_deviation, k, None, None),
            name + "_LowerBand",
            None,
        )
        self.upper_band = _compose(
            "plus",
            self.middle_band,
            _compose("times", self.standard_deviation, k, None, None),
            name + "_UpperBand",
            None,
        )
        upper_minus_lower = _compose("minus", self.upper_band, self.lower_band, None, None)
        self.band_width = _compose(
            "times",
            _compose("over", upper_minus_lower, self.middle_band, None, None),
            100.0,
            name + "_BandWidth",
            None,
        )
        self.price = Identity(name + "_Close")
        self.percent_b = _compose(
            "over", _compose("minus", self.price, self.lower_band, None, None), upper_minus_lower, name + "_%B", None
        )

    @property
    def is_ready(self) -> bool:
        return (
            self.middle_band.is_ready
            and self.upper_band.is_ready
            and self.lower_band.is_ready
            and self.band_width.is_ready
            and self.percent_b.is_ready
        )

    @property
    def warm_up_period(self) -> int:
        return self.period

    def _compute(self, time: dt.datetime, value: float) -> float | None:
        self.standard_deviation.update(time, value)
        self.middle_band.update(time, value)
        self.price.update(time, value)
        # a zero deviation once ready: Lean's MathError (the %B would be stale)
        if self.is_ready and self.standard_deviation.current.value == 0:
            return None
        return value

    def reset(self) -> None:
        for indicator in (
            self.standard_deviation,
            self.middle_band,
            self.upper_band,
            self.lower_band,
            self.band_width,
            self.percent_b,
        ):
            indicator.reset()
        super().reset()


class Delay(_WindowIndicator):
    _prefix = "DELAY"

    def _value(self, value: float, base: float) -> float:
        return base


class IndicatorExtensions:
    @staticmethod
    def plus(left: Any, right: Any = None, name: str | None = None, *, constant: Any = None) -> CompositeIndicator:
        return _compose("plus", left, right, name, constant)

    @staticmethod
    def minus(left: Any, right: Any = None, name: str | None = None, *, constant: Any = None) -> CompositeIndicator:
        return _compose("minus", left, right, name, constant)

    @staticmethod
    def times(left: Any, right: Any = None, name: str | None = None, *, constant: Any = None) -> CompositeIndicator:
        return _compose("times", left, right, name, constant)

    @staticmethod
    def over(left: Any, right: Any = None, name: str | None = None, *, constant: Any = None) -> CompositeIndicator:
        return _compose("over", left, right, name, constant)

    @staticmethod
    def of(second: IndicatorBase, first: IndicatorBase, wait_for_first_to_ready: bool = True) -> IndicatorBase:
        """``second`` receives ``first``'s outputs (only once ``first`` is ready, by default)."""

        def forward(sender: Any, point: IndicatorDataPoint) -> None:
            if not wait_for_first_to_ready or first.is_ready:
                second.update(point.time, point.value)

        first.updated += forward
        return second
