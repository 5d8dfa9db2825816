"""Lean's insights (``QuantConnect.Algorithm.Framework.Alphas``): an alpha model's or ``emit_insights``'s
predictions, which the framework's portfolio construction model turns into targets.

An insight's period is Lean's: a timedelta (``TimeSpanPeriodSpecification``) or a resolution and a bar count
(``ResolutionBarCountPeriodSpecification``); its close time is computed from its generated time by stepping
through the exchange's trading days or minutes (``Insight.ComputeCloseTime``, ``Time.GetEndTimeForTradeBars``).
An insight is active until its close time inclusive (``IsExpired``: close < now). The expiry-function and
close-time forms refuse by name.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import IntEnum
from typing import Any

from include.lean_local.enums import Resolution
from include.lean_local.errors import NotSupportedByLocalRuntime, SupportedSubset
from include.lean_local.sessions import local_to_utc, nyse_sessions, utc_to_local, yyyymmdd


class InsightDirection(IntEnum):
    DOWN = -1
    FLAT = 0
    UP = 1


class InsightType(IntEnum):
    PRICE = 0
    VOLATILITY = 1


ONE_DAY = dt.timedelta(days=1)
ONE_HOUR = dt.timedelta(hours=1)
ONE_MINUTE = dt.timedelta(minutes=1)
ONE_SECOND = dt.timedelta(seconds=1)
REGULAR_MARKET_DURATION = dt.timedelta(hours=6, minutes=30)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=None) if value.tzinfo is not None else value


def _end_time_for_trade_bars(start_local: dt.datetime, bar: Resolution, bar_count: int) -> dt.datetime:
    """Lean's ``Time.GetEndTimeForTradeBars`` on the US-equity regular hours (no extended hours): daily bars
    step calendar days counting the trading dates; minute bars count the minutes the market is open."""
    sessions = nyse_sessions()
    current = start_local
    if bar == Resolution.DAILY:
        i = 0
        while i < bar_count:
            current = current + ONE_DAY
            if yyyymmdd(current.date()) in sessions.positions:
                i += 1
        return current
    if bar != Resolution.MINUTE:
        raise NotSupportedByLocalRuntime(f"an insight period in {bar.name} bars (only daily and minute steps)")
    remaining = bar_count
    index = sessions.index_of(yyyymmdd(current.date()))
    while remaining > 0:
        if index >= len(sessions.days):
            raise NotSupportedByLocalRuntime("an insight closing after the last session of the calendar")
        open_, close = sessions.opens[index], sessions.closes[index]
        if current >= close:
            index += 1
            continue
        # a minute bar (previous, current] counts when it overlaps the session [open, close)
        if current + ONE_MINUTE <= open_:
            steps = (open_ - current) // ONE_MINUTE
            current = current + ONE_MINUTE * steps
            if current + ONE_MINUTE <= open_:
                current = current + ONE_MINUTE
            continue
        # minutes from current whose bar overlaps [open, close)
        available = -(-(close - current) // ONE_MINUTE)
        if remaining <= available:
            return current + ONE_MINUTE * remaining
        remaining -= available
        current = current + ONE_MINUTE * available
        index += 1
    return current


def compute_close_time_bars(generated_time_utc: dt.datetime, resolution: Resolution, bar_count: int) -> dt.datetime:
    """Lean's ``Insight.ComputeCloseTime(exchangeHours, generatedTimeUtc, resolution, barCount)`` (naive UTC)."""
    if bar_count < 1:
        raise ValueError("Insight barCount must be greater than zero.")
    resolution = Resolution(int(resolution))
    if resolution in (Resolution.TICK, Resolution.SECOND):
        raise NotSupportedByLocalRuntime("an insight period in seconds (the runtime steps daily and minute bars)")
    if resolution == Resolution.HOUR:
        bar_count *= 60
        resolution = Resolution.MINUTE
    start_local = utc_to_local(_naive_utc(generated_time_utc).replace(tzinfo=dt.UTC))
    close_local = _end_time_for_trade_bars(start_local, resolution, bar_count)
    return _naive_utc(local_to_utc(close_local))


def _higher_resolution_equivalent(period: dt.timedelta) -> Resolution:
    if period < ONE_SECOND:
        return Resolution.TICK
    if period < ONE_MINUTE:
        return Resolution.SECOND
    if period < ONE_HOUR:
        return Resolution.MINUTE
    if period < ONE_DAY:
        return Resolution.HOUR
    return Resolution.DAILY


_SPANS = {Resolution.SECOND: ONE_SECOND, Resolution.MINUTE: ONE_MINUTE, Resolution.DAILY: ONE_DAY}


def compute_close_time_period(generated_time_utc: dt.datetime, period: dt.timedelta) -> dt.datetime:
    """Lean's ``Insight.ComputeCloseTime(exchangeHours, generatedTimeUtc, period)`` (naive UTC)."""
    if period < ONE_SECOND:
        raise ValueError("Insight period must be greater than or equal to 1 second.")
    bar = _higher_resolution_equivalent(period)
    bar = Resolution.SECOND if bar == Resolution.TICK else bar
    bar = Resolution.MINUTE if bar == Resolution.HOUR else bar
    span = _SPANS[bar]
    bar_count = period // span
    generated = _naive_utc(generated_time_utc)
    close = compute_close_time_bars(generated, bar, bar_count)
    if close == generated:
        raise NotSupportedByLocalRuntime("an insight whose period closes within a second")
    used = span * bar_count
    if used != period:
        delta = period - used
        if bar == Resolution.DAILY:
            ticks = delta // dt.timedelta(microseconds=1)
            delta = REGULAR_MARKET_DURATION * (ticks / (ONE_DAY // dt.timedelta(microseconds=1)))
        if delta:
            minutes = delta // ONE_MINUTE
            if minutes > 0:
                close = compute_close_time_bars(close, Resolution.MINUTE, minutes)
    return close


class Insight(SupportedSubset):
    def __init__(
        self,
        symbol: Any,
        period: Any,
        type: InsightType,
        direction: InsightDirection,
        magnitude: float | None = None,
        confidence: float | None = None,
        source_model: str | None = None,
        weight: float | None = None,
        tag: str = "",
    ) -> None:
        """Lean's ``Insight(symbol, period, type, direction[, magnitude, confidence, source_model, weight,
        tag])``; the other forms (an expiry function, a generated time) refuse by name."""
        if isinstance(period, (dt.datetime, dt.date)) or not isinstance(period, dt.timedelta):
            raise NotSupportedByLocalRuntime("Insight with an expiry function or a generated time (only a period)")
        if isinstance(magnitude, str) and confidence is None:  # Insight(symbol, period, type, direction, tag)
            magnitude, tag = None, magnitude
        self.symbol = symbol
        self.period = period if period != dt.timedelta(0) else ONE_SECOND
        self._bars: tuple[Resolution, int] | None = None
        self.type = InsightType(int(type))
        self.direction = InsightDirection(int(direction))
        self.magnitude = None if magnitude is None else float(magnitude)
        self.confidence = None if confidence is None else float(confidence)
        self.source_model = source_model
        self.weight = None if weight is None else float(weight)
        self.tag = tag
        self.id = uuid.uuid4()
        self.group_id: uuid.UUID | None = None
        self.generated_time_utc: dt.datetime | None = None
        self.close_time_utc: dt.datetime | None = None
        self.reference_value = 0.0
        self.reference_value_final = 0.0
        self.estimated_value = 0.0

    @staticmethod
    def price(
        symbol: Any,
        *args: Any,
        period: dt.timedelta | None = None,
        resolution: Any = None,
        bar_count: int | None = None,
        close_time_local: Any = None,
        expiry_func: Any = None,
        direction: Any = None,
        magnitude: float | None = None,
        confidence: float | None = None,
        source_model: str | None = None,
        weight: float | None = None,
        tag: str = "",
    ) -> Insight:
        """Lean's ``Insight.Price(symbol, period, direction, ...)`` and ``Insight.Price(symbol, resolution,
        bar_count, direction, ...)``; the close-time and expiry-function forms refuse by name."""
        if close_time_local is not None or expiry_func is not None:
            raise NotSupportedByLocalRuntime("Insight.price (only the period and resolution/bar-count forms)")
        rest = list(args)
        if resolution is None and rest and isinstance(rest[0], Resolution):
            resolution = rest.pop(0)
            if bar_count is None and rest:
                bar_count = rest.pop(0)
        if resolution is not None or bar_count is not None:
            if resolution is None or bar_count is None or period is not None:
                raise TypeError("price() takes a period, or a resolution and a bar count")
        elif rest:
            if not isinstance(rest[0], dt.timedelta):
                raise NotSupportedByLocalRuntime("Insight.price (only the period and resolution/bar-count forms)")
            if period is not None:
                raise TypeError("price() got multiple values for argument 'period'")
            period = rest.pop(0)
        names = ("direction", "magnitude", "confidence", "source_model", "weight", "tag")
        given: dict[str, Any] = {
            "direction": direction,
            "magnitude": magnitude,
            "confidence": confidence,
            "source_model": source_model,
            "weight": weight,
            "tag": tag or None,
        }
        if len(rest) > len(names):
            raise TypeError("price() takes too many positional arguments")
        for name, value in zip(names, rest, strict=False):
            if given[name] is not None:
                raise TypeError(f"price() got multiple values for argument '{name}'")
            given[name] = value
        if given["direction"] is None or (period is None and resolution is None):
            raise TypeError("price() needs a period (or a resolution and a bar count) and a direction")
        bars: tuple[Resolution, int] | None = None
        if resolution is not None:
            res, count = Resolution(int(resolution)), int(bar_count or 0)
            if count < 1:
                raise ValueError("Insight barCount must be greater than zero.")
            if res in (Resolution.TICK, Resolution.SECOND):
                raise NotSupportedByLocalRuntime(f"Insight.price in {res.name} bars")
            if res == Resolution.HOUR:
                res, count = Resolution.MINUTE, count * 60
            bars = (res, count)
            period = _SPANS[res] * count
        insight = Insight(
            symbol,
            period,
            InsightType.PRICE,
            given["direction"],
            given["magnitude"],
            given["confidence"],
            given["source_model"],
            given["weight"],
            given["tag"] or "",
        )
        insight._bars = bars
        return insight

    # Lean's period specification: the close time from the generated time --------------------------------
    def set_period_and_close_time(self, exchange_hours: Any = None) -> None:
        if self.generated_time_utc is None:
            raise ValueError(f"The insight's generated time must be set before computing its close time: {self}")
        generated = _naive_utc(self.generated_time_utc)
        if self._bars is not None:
            self.close_time_utc = compute_close_time_bars(generated, *self._bars)
            self.period = self.close_time_utc - generated
        else:
            self.close_time_utc = compute_close_time_period(generated, self.period)

    def is_expired(self, utc_time: dt.datetime) -> bool:
        close = self.close_time_utc
        return close is not None and close < _naive_utc(utc_time)

    def is_active(self, utc_time: dt.datetime) -> bool:
        return not self.is_expired(utc_time)

    def expire(self, utc_time: dt.datetime) -> None:
        """Lean's ``Expire``: an active insight closes one second before ``utc_time``."""
        if self.is_active(utc_time):
            self.close_time_utc = _naive_utc(utc_time) - ONE_SECOND
            if self.generated_time_utc is not None:
                self.period = self.close_time_utc - _naive_utc(self.generated_time_utc)

    def cancel(self, utc_time: dt.datetime) -> None:
        self.expire(utc_time)

    def clone(self) -> Insight:
        copy = Insight(
            self.symbol,
            self.period,
            self.type,
            self.direction,
            self.magnitude,
            self.confidence,
            None,
            self.weight,
            self.tag,
        )
        copy._bars = self._bars
        copy.generated_time_utc = self.generated_time_utc
        copy.close_time_utc = self.close_time_utc
        copy.reference_value = self.reference_value
        copy.source_model = self.source_model
        copy.group_id = self.group_id
        return copy

    def __repr__(self) -> str:
        return f"{self.symbol}: {self.type.name.title()} {self.direction.name.title()} within {self.period}"
