"""Lean's consolidators an algorithm adds with ``subscription_manager.add_consolidator`` (``QuantConnect.Data
.Consolidators``): fed each daily bar of their security after every security's price is updated, before
``on_data``. Only the classic Renko consolidator is implemented."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from include.lean_local.lean_util import _EventHook
from include.lean_local.market_data import TradeBar


class RenkoBar:
    """A classic Renko brick (``Common/Data/Market/RenkoBar.cs``): closes once the value moves ``brick_size``
    from its open; its close is clamped to open +/- brick size."""

    def __init__(self, symbol: Any, time: dt.datetime, brick_size: float, open: float, volume: float) -> None:
        self.symbol = symbol
        self.time = time  # Lean's Start
        self.end_time = time
        self.brick_size = float(brick_size)
        self.open = self.close = self.high = self.low = float(open)
        self.volume = float(volume)
        self.is_closed = False

    @property
    def start(self) -> dt.datetime:
        return self.time

    @property
    def value(self) -> float:
        return self.close

    @property
    def price(self) -> float:
        return self.close

    @property
    def spread(self) -> float:
        return abs(self.close - self.open)

    def update(self, time: dt.datetime, current_value: float, volume_since_last_update: float) -> bool:
        if self.is_closed:
            return True
        self.end_time = time
        low_close, high_close = self.open - self.brick_size, self.open + self.brick_size
        self.close = min(high_close, max(low_close, current_value))
        self.volume += volume_since_last_update
        if current_value <= low_close or current_value >= high_close:
            self.is_closed = True
        self.high = max(self.high, self.close)
        self.low = min(self.low, self.close)
        return self.is_closed

    def __repr__(self) -> str:
        return f"{self.symbol}: O: {self.open} H: {self.high} L: {self.low} C: {self.close} V: {self.volume}"


def _default_volume(data: Any) -> float:
    return float(data.volume) if isinstance(data, TradeBar) else 0.0


class ClassicRenkoConsolidator:
    """Lean's ``ClassicRenkoConsolidator`` (``BaseTimelessConsolidator``): one brick at a time of the selected
    value (the bar's close by default); the first brick opens at the value rounded up to a brick multiple
    (``even_bars``), each next one at the previous brick's close."""

    def __init__(
        self, bar_size: float, selector: Any = None, volume_selector: Any = None, even_bars: bool = True
    ) -> None:
        if isinstance(selector, bool):  # ClassicRenkoConsolidator(bar_size, even_bars)
            selector, even_bars = None, selector
        if float(bar_size) < 1e-28:
            raise ValueError("RenkoConsolidator bar size must be positve and greater than 1e-28")
        self._bar_size = float(bar_size)
        self._even_bars = bool(even_bars)
        self._selector: Callable[[Any], float] = selector or (lambda data: data.value)
        self._volume_selector: Callable[[Any], float] = volume_selector or _default_volume
        self._last_close: float | None = None
        self._current: RenkoBar | None = None
        self.consolidated: RenkoBar | None = None
        self.data_consolidated = _EventHook()

    @property
    def working_data(self) -> RenkoBar | None:
        return self._current

    def update(self, data: Any) -> None:
        value = float(self._selector(data))
        volume = float(self._volume_selector(data))
        if self._current is not None:
            self._current.update(data.time, value, volume)
            if self._current.is_closed:
                bar, self._current = self._current, None
                self._last_close = bar.close
                self.consolidated = bar
                for handler in list(self.data_consolidated.handlers):
                    handler(self, bar)
        if self._current is None:
            start = self._last_close if self._last_close is not None else value
            if self._even_bars and self._last_close is None:
                start = math.ceil(start / self._bar_size) * self._bar_size
            self._current = RenkoBar(data.symbol, data.time, self._bar_size, start, volume)

    def scan(self, current_local_time: dt.datetime) -> None:
        """Timeless: nothing to do."""

    def reset(self) -> None:
        self._current = None
        self._last_close = None
        self.consolidated = None


# Lean's symbol properties database: US equities trade in steps of $0.01 (the runtime's only market)
EQUITY_MINIMUM_PRICE_VARIATION = 0.01


class RangeBar(TradeBar):
    """A range bar (``Common/Data/Market/RangeBar.cs``): closes once its high - low would exceed
    ``range_size``, at low + size (rising) or high - size (falling)."""

    def __init__(
        self,
        symbol: Any = None,
        end_time: dt.datetime | None = None,
        range_size: float = 0.0,
        open: float = 0.0,
        high: float | None = None,
        low: float | None = None,
        close: float | None = None,
        volume: float = 0.0,
    ) -> None:
        super().__init__(
            dt.datetime.min,
            symbol,
            open,
            open if high is None else high,
            open if low is None else low,
            open if close is None else close,
            volume,
            end_time=end_time or dt.datetime.min,
        )
        self.range_size = float(range_size)
        self.is_closed = False

    def update(self, time: dt.datetime, current_value: float, volume_since_last_update: float) -> None:
        self.end_time = time
        if current_value < self.low:
            if self.high - current_value > self.range_size:
                self.is_closed = True
                self.low = self.high - self.range_size
                self.close = self.low
                return
            self.low = current_value
        elif current_value > self.high:
            if current_value - self.low > self.range_size:
                self.is_closed = True
                self.high = self.low + self.range_size
                self.close = self.high
                return
            self.high = current_value
        self.volume += volume_since_last_update


class RangeConsolidator:
    """Lean's ``RangeConsolidator`` (``BaseTimelessConsolidator``): range bars of ``range`` minimum price
    variations of the selected value (the bar's close by default); a move over several ranges emits the
    intermediate bars (with no volume)."""

    def __init__(self, range: int, selector: Any = None, volume_selector: Any = None) -> None:
        self.range = int(range)
        self.range_size = 0.0
        self._minimum_price_variation = 0.0
        self._first_tick = True
        self._selector: Callable[[Any], float] = selector or (lambda data: data.value)
        self._volume_selector: Callable[[Any], float] = volume_selector or _default_volume
        self._current: RangeBar | None = None
        self.consolidated: RangeBar | None = None
        self.data_consolidated = _EventHook()

    @property
    def working_data(self) -> RangeBar | None:
        return self._current

    def update(self, data: Any) -> None:
        value = float(self._selector(data))
        volume = float(self._volume_selector(data))
        if self._current is not None:
            self._update_bar(data.time, value, volume)
        if self._current is None:
            open_ = value
            if self._first_tick:
                self._minimum_price_variation = EQUITY_MINIMUM_PRICE_VARIATION
                self.range_size = self._minimum_price_variation * self.range
                open_ = math.ceil(open_ / self.range_size) * self.range_size
                self._first_tick = False
            self._current = RangeBar(data.symbol, data.time, self.range_size, open_, volume=volume)

    def _update_bar(self, time: dt.datetime, value: float, volume: float) -> None:
        bar = self._current
        assert bar is not None
        rising = value > bar.high  # Lean: rising above the high, else (below the low or within) falling
        bar.update(time, value, volume)
        while bar.is_closed:
            self.consolidated = bar
            for handler in list(self.data_consolidated.handlers):
                handler(self, bar)
            start = bar.high + self._minimum_price_variation if rising else bar.low - self._minimum_price_variation
            bar = RangeBar(bar.symbol, bar.end_time, self.range_size, start)
            bar.update(time, value, 0.0 if abs(bar.low - value) > self.range_size else volume)
        self._current = bar

    def scan(self, current_local_time: dt.datetime) -> None:
        """Timeless: nothing to do."""

    def reset(self) -> None:
        self._current = None
        self._first_tick = True
        self._minimum_price_variation = self.range_size = 0.0
        self.consolidated = None
