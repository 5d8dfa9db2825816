"""Lean's Symbol and SecurityIdentifier (equities), encoded as Common/SecurityIdentifier.cs does.

The identifier packs (days since 1899-12-30 of the first date) x DaysOffset + market code x 100 +
security type into an unsigned integer printed in base 36 after the first ticker.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from include.lean_local.errors import NotSupportedByLocalRuntime

_SECURITY_TYPE_EQUITY = 1
_MARKET_USA = 1
_SECURITY_TYPE_WIDTH = 100
_MARKET_WIDTH = 1000
_MARKET_OFFSET = 1 * _SECURITY_TYPE_WIDTH
_STRIKE_SCALE_OFFSET = _MARKET_OFFSET * _MARKET_WIDTH
_STRIKE_OFFSET = _STRIKE_SCALE_OFFSET * 100
_OPTION_STYLE_OFFSET = _STRIKE_OFFSET * 1_000_000
_DAYS_OFFSET = _OPTION_STYLE_OFFSET * 10
OA_EPOCH = dt.date(1899, 12, 30)  # DateTime.FromOADate(0): SecurityIdentifier.DefaultDate
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def encode_base36(value: int) -> str:
    if value == 0:
        return "0"
    chars: list[str] = []
    while value:
        value, rem = divmod(value, 36)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def equity_properties(first_date: dt.date, market_code: int = _MARKET_USA) -> int:
    days = (first_date - OA_EPOCH).days
    return days * _DAYS_OFFSET + market_code * _MARKET_OFFSET + _SECURITY_TYPE_EQUITY


def equity_sid(first_ticker: str, first_date: dt.date | None) -> str:
    """``"SPY R735QTJ8XC9X"`` for SPY first traded 1998-01-02; no map file -> DefaultDate (1899-12-30)."""
    return f"{first_ticker.upper()} {encode_base36(equity_properties(first_date or OA_EPOCH))}"


class SecurityIdentifier:
    __slots__ = ("_str", "date", "market", "symbol")

    def __init__(self, symbol: str, date: dt.date | None, market: str = "usa") -> None:
        self.symbol = symbol.upper()
        self.date = date or OA_EPOCH
        self.market = market
        self._str = equity_sid(self.symbol, self.date)

    @property
    def security_type(self) -> int:
        return _SECURITY_TYPE_EQUITY

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return self._str

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecurityIdentifier):
            return self._str == other._str
        if isinstance(other, str):
            return self._str == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._str)


class Symbol:
    """A ticker plus its SecurityIdentifier. Compares equal to its ticker string, like Lean's Python Symbol."""

    __slots__ = ("_hash", "id", "value")

    def __init__(self, sid: SecurityIdentifier, value: str) -> None:
        self.id = sid
        self.value = value.upper()
        self._hash = hash(self.value)

    @staticmethod
    def create(
        ticker: str, security_type: Any = None, market: Any = None, alias: str | None = None, base_data_type: Any = None
    ) -> Symbol:
        from include.lean_local.data import default_provider

        if base_data_type is not None:
            raise NotSupportedByLocalRuntime("Symbol.create with base_data_type")
        if security_type is not None and int(security_type) not in (0, _SECURITY_TYPE_EQUITY):
            raise NotSupportedByLocalRuntime(f"Symbol.create of SecurityType {int(security_type)} (only equities)")
        if market is not None and str(market).lower() != "usa":
            raise NotSupportedByLocalRuntime(f"Symbol.create in market {market!r} (only Market.USA)")

        return default_provider().symbol_for(ticker if alias is None else alias)

    @property
    def security_type(self) -> int:
        return _SECURITY_TYPE_EQUITY

    @property
    def permtick(self) -> str:
        return self.id.symbol

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return self.value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Symbol):
            return self.id == other.id
        if isinstance(other, str):
            return self.value == other.upper() or str(self.id) == other
        return NotImplemented

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: Symbol) -> bool:
        return self.value < other.value

    def to_json(self) -> dict[str, str]:
        return {"value": self.value, "id": str(self.id), "permtick": self.id.symbol}
