"""Lean's data types (``QuantConnect.Data`` and ``Data.Market``): bars, corporate events and the time slice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from include.lean_local.enums import DelistingType, SplitType
from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.symbols import Symbol


class TradeBar:
    __slots__ = ("close", "end_time", "high", "is_fill_forward", "low", "open", "symbol", "time", "volume")

    def __init__(
        self,
        time: dt.datetime | None = None,
        symbol: Any = None,
        open: float = 0.0,
        high: float = 0.0,
        low: float = 0.0,
        close: float = 0.0,
        volume: float = 0.0,
        period: dt.timedelta | None = None,
        end_time: dt.datetime | None = None,
        is_fill_forward: bool = False,
    ) -> None:
        self.time = time or dt.datetime.min
        self.symbol = symbol
        self.open = float(open)
        self.high = float(high)
        self.low = float(low)
        self.close = float(close)
        self.volume = float(volume)
        self.end_time = end_time or (self.time + (period or dt.timedelta(days=1)))
        self.is_fill_forward = is_fill_forward

    @property
    def price(self) -> float:
        return self.close

    @property
    def value(self) -> float:
        return self.close

    @property
    def period(self) -> dt.timedelta:
        return self.end_time - self.time

    def __repr__(self) -> str:
        return (
            f"{self.symbol}: O: {self.open:.2f} H: {self.high:.2f} L: {self.low:.2f} C: {self.close:.2f} "
            f"V: {self.volume:.0f}"
        )


class Delisting:
    def __init__(self, symbol: Symbol, time: dt.datetime, price: float, type: DelistingType) -> None:
        self.symbol = symbol
        self.time = time
        self.price = price
        self.type = type

    def __repr__(self) -> str:
        kind = "Warning" if self.type == DelistingType.WARNING else "Delisted"
        return f"Delisting {kind}: {self.symbol}"


class Dividend:
    """A cash distribution per share, in the slice at midnight of the ex-date (Lean's ``Dividend``)."""

    def __init__(self, symbol: Symbol, time: dt.datetime, distribution: float, reference_price: float) -> None:
        self.symbol = symbol
        self.time = time
        self.end_time = time
        self.distribution = distribution
        self.reference_price = reference_price

    @property
    def value(self) -> float:
        return self.distribution

    @property
    def price(self) -> float:
        return self.distribution

    def __repr__(self) -> str:
        return f"Dividend: {self.symbol}: {self.distribution} | {self.reference_price}"


class Split:
    """A split: a ``WARNING`` at midnight of the day before, ``SPLIT_OCCURRED`` at midnight of the
    effective day (Lean's ``Split``). ``split_factor`` < 1 for a forward split (0.5 for 2:1)."""

    def __init__(self, symbol: Symbol, time: dt.datetime, price: float, split_factor: float, type: SplitType) -> None:
        self.symbol = symbol
        self.time = time
        self.end_time = time
        self.price = price
        self.split_factor = split_factor
        self.type = type

    @property
    def value(self) -> float:
        return self.price

    @property
    def reference_price(self) -> float:
        return self.price

    def __repr__(self) -> str:
        kind = "Warning" if self.type == SplitType.WARNING else "Occurred"
        return f"Split {kind}: {self.symbol}: {self.split_factor} | {self.price}"


class KeyValuePair:
    __slots__ = ("key", "value")

    def __init__(self, key: Any, value: Any) -> None:
        self.key = key
        self.value = value

    def __iter__(self) -> Iterator[Any]:
        yield self.key
        yield self.value


class DataDictionary(dict):
    """Lean's DataDictionary: iterating yields KeyValuePair (``kvp.key``/``kvp.value``) like pythonnet."""

    def __iter__(self) -> Iterator[Any]:
        return (KeyValuePair(k, v) for k, v in dict.items(self))

    def contains_key(self, key: Any) -> bool:
        return dict.__contains__(self, key)

    def try_get_value(self, key: Any, value: Any = None) -> tuple[bool, Any]:
        """``(found, value)``; ``value`` is .NET's out parameter, which a Python caller passes or omits."""
        value = dict.get(self, key)
        return value is not None, value

    @property
    def count(self) -> int:
        return len(self)


class Dividends(DataDictionary):
    """Lean's ``Dividends``: the slice's dividends keyed by Symbol."""


class Splits(DataDictionary):
    """Lean's ``Splits``: the slice's splits keyed by Symbol."""


class Delistings(DataDictionary):
    """Lean's ``Delistings``: the slice's delistings keyed by Symbol."""


class SymbolChangedEvent:
    """Lean's ``SymbolChangedEvent(symbol, date, old_symbol, new_symbol)``: a ticker change of the map file."""

    def __init__(self, symbol: Symbol, date: dt.datetime, old_symbol: str, new_symbol: str) -> None:
        self.symbol = symbol
        self.time = date
        self.old_symbol = old_symbol
        self.new_symbol = new_symbol

    def __repr__(self) -> str:
        return f"{self.time} {self.symbol}: {self.old_symbol} -> {self.new_symbol}"


class SymbolChangedEvents(DataDictionary):
    """Lean's ``SymbolChangedEvents``: the slice's ticker changes keyed by Symbol."""


class Slice:
    """One time step of data: bars keyed by Symbol (lookups also by ticker string), plus the corporate events
    of the step. As in Lean, a symbol with only an event in the step (a dividend at midnight, say) is in the
    slice, but ``slice[symbol]`` is None for it: only a bar is "the data" of a symbol."""

    def __init__(
        self,
        time: dt.datetime,
        bars: dict[Symbol, TradeBar],
        delistings: dict[Symbol, Delisting] | None = None,
        *,
        dividends: dict[Symbol, Dividend] | None = None,
        splits: dict[Symbol, Split] | None = None,
    ) -> None:
        self.time = time
        self.utc_time = time
        self.bars = DataDictionary(bars)
        self.delistings = Delistings(delistings or {})
        self.splits = Splits(splits or {})
        self.dividends = Dividends(dividends or {})
        self.symbol_changed_events = DataDictionary()
        self.quote_bars = DataDictionary()
        self.ticks = DataDictionary()
        data: Mapping[Symbol, TradeBar | None] = bars  # a plain dict: DataDictionary iterates KeyValuePairs
        if delistings or splits or dividends:
            merged: dict[Symbol, TradeBar | None] = dict(bars)
            for events in (self.delistings, self.splits, self.dividends):
                for symbol in dict.keys(events):
                    merged.setdefault(symbol, None)
            data = merged
        self._data = data

    def __getitem__(self, key: Any) -> TradeBar | None:
        try:
            return self._data[key]
        except KeyError:
            raise KeyError(
                f"'{key}' wasn't found in the Slice object, likely because there was no-data at this moment "
                "in time and it wasn't possible to fillforward historical data."
            ) from None

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[KeyValuePair]:
        return (KeyValuePair(k, v) for k, v in self._data.items())

    def __len__(self) -> int:
        return len(self._data)

    def contains_key(self, symbol: Any = None, *, key: Any = None) -> bool:
        """``contains_key(symbol)``, or ``key=`` (the name of Lean's dictionary base)."""
        return (symbol if key is None else key) in self._data

    def get(self, key: Any, default_value: Any = None) -> Any:
        if isinstance(key, type):
            return self.bars
        return self._data.get(key, default_value)

    def keys(self) -> list[Symbol]:
        return list(self._data)

    def values(self) -> list[TradeBar | None]:
        return list(self._data.values())

    def items(self) -> list[tuple[Symbol, TradeBar | None]]:
        return list(self._data.items())

    @property
    def count(self) -> int:
        return len(self._data)

    @property
    def has_data(self) -> bool:
        return len(self._data) > 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"Slice.{name}")
