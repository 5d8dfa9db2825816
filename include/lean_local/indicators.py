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

    def __init__(self, time: dt.datetime | None = None, value: float = 0.0, symbol: Any = None) -> None:
        self.time = time or dt.datetime.min
        self.end_time = self.time
        self.value = float(value)
        self.symbol = symbol

    @property
    def price(self) -> float:
        return self.value

    def __float__(self) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"{self.time:%Y%m%d %H:%M}: {self.value}" if self.time != dt.datetime.min else str(self.value)


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

    def update(self, time: Any, value: Any = None) -> bool:
        """``update(time, value)``, ``update(IndicatorDataPoint)`` or ``update(TradeBar)`` (uses the close)."""
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
    def __init__(self, name_or_period: Any, period: int | None = None) -> None:
        if period is None:
            period, name = int(name_or_period), f"SMA({name_or_period})"
        else:
            name = str(name_or_period)
        super().__init__(name)
        self.period = int(period)
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
    def __init__(self, name_or_period: Any, period: int | None = None, smoothing_factor: float | None = None) -> None:
        if period is None or isinstance(name_or_period, int):
            if period is not None and smoothing_factor is None:
                smoothing_factor = float(period)
            period, name = int(name_or_period), f"EMA({name_or_period})"
        else:
            name = str(name_or_period)
        super().__init__(name)
        self.period = int(period)
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
    def __init__(self, name: str, period: int) -> None:
        super().__init__(name)
        self.period = int(period)
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
    def __init__(self, period: int) -> None:
        super().__init__(f"MOM({period})", period)

    def _value(self, value: float, base: float) -> float:
        return value - base


class RateOfChange(_WindowIndicator):
    def __init__(self, period: int) -> None:
        super().__init__(f"ROC({period})", period)

    def _value(self, value: float, base: float) -> float:
        return 0.0 if base == 0 else (value - base) / base


class RateOfChangePercent(RateOfChange):
    def __init__(self, period: int) -> None:
        super().__init__(period)
        self.name = f"ROCP({period})"

    def _value(self, value: float, base: float) -> float:
        return 100.0 * super()._value(value, base)


class MomentumPercent(RateOfChangePercent):
    def __init__(self, period: int) -> None:
        super().__init__(period)
        self.name = f"MOMP({period})"


class MovingAverageConvergenceDivergence(IndicatorBase):
    def __init__(self, fast_period: int, slow_period: int, signal_period: int, moving_average_type: int = 1) -> None:
        super().__init__(f"MACD({fast_period},{slow_period},{signal_period})")
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
    def __init__(self, period: int) -> None:
        super().__init__(f"DELAY({period})", period)

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
