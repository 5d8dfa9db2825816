"""Dividends and splits from a factor file, timed the way Lean's corporate event providers time them.

Lean reads a factor file row dated D as "the factors of every bar up to D". When the price factor changes
between a row and the next, the trading day after D is an ex-dividend day; when the split factor changes,
it is a split day. Lean's ``DividendEventProvider``/``SplitEventProvider`` see each new trading day of the
subscription, and:

* on a row's date D they emit a split ``WARNING`` (at midnight of D);
* on the next trading day E they emit the ``Dividend``/``SPLIT_OCCURRED`` (at midnight of E).

Those events are a time slice of their own: ``on_data`` runs at midnight with no bar, before E's bar.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from include.lean_local.data import FactorFile
from include.lean_local.enums import SplitType
from include.lean_local.errors import DataFormatError
from include.lean_local.market_data import Dividend, Split
from include.lean_local.sessions import from_yyyymmdd
from include.lean_local.symbols import Symbol

CorporateEvent = Dividend | Split
CENT = Decimal("0.01")


def _decimal(value: float) -> Decimal:
    # repr gives the shortest text that reads back as the same float: the factor file's own digits
    return Decimal(repr(float(value)))


def dividend_distribution(reference_price: float, price_factor_ratio: Decimal) -> float:
    """Lean's ``Dividend.ComputeDistribution``: round(close - close x ratio, 2), in decimal arithmetic with
    banker's rounding (C# ``Math.Round`` on a decimal)."""
    close = _decimal(reference_price)
    return float((close - close * price_factor_ratio).quantize(CENT, rounding=ROUND_HALF_EVEN))


def corporate_events(
    symbol: Symbol,
    factors: FactorFile,
    session_days: Sequence[int],
    *,
    data_range: tuple[int, int] | None,
    raw_close_before: Callable[[int], float],
) -> dict[int, list[CorporateEvent]]:
    """Events keyed by session index (each at midnight of that session's date).

    ``data_range`` is the map file's first and last date (Lean emits nothing outside it); ``raw_close_before``
    gives the raw close of the last bar before a session index (the price a split warning carries).
    """
    events: dict[int, list[CorporateEvent]] = {}
    n = len(session_days)
    for i in range(len(factors.dates) - 1):
        day = factors.dates[i]
        k = bisect.bisect_left(session_days, day)
        if k >= n or session_days[k] != day or k + 1 >= n:
            continue  # Lean matches the row date against trading days exactly
        effective = session_days[k + 1]
        reference = factors.reference_price[i]
        if reference == 0 and (
            factors.price_factor[i] != factors.price_factor[i + 1]
            or factors.split_factor[i] != factors.split_factor[i + 1]
        ):
            # Lean stops here too ("Zero reference price for ... at ..."): the event's cash cannot be computed
            raise DataFormatError(
                f"factor file of {symbol.value}: row {day} starts a dividend or split but has "
                "no reference price (4th column)"
            )
        if factors.price_factor[i] != factors.price_factor[i + 1] and _has_data(data_range, effective):
            ratio = _decimal(factors.price_factor[i]) / _decimal(factors.price_factor[i + 1])
            events.setdefault(k + 1, []).append(
                Dividend(symbol, _midnight(effective), dividend_distribution(reference, ratio), reference)
            )
        if factors.split_factor[i] != factors.split_factor[i + 1]:
            split_factor = float(_decimal(factors.split_factor[i]) / _decimal(factors.split_factor[i + 1]))
            if _has_data(data_range, day):
                events.setdefault(k, []).append(
                    Split(symbol, _midnight(day), raw_close_before(k), split_factor, SplitType.WARNING)
                )
            if _has_data(data_range, effective):
                events.setdefault(k + 1, []).append(
                    Split(symbol, _midnight(effective), reference, split_factor, SplitType.SPLIT_OCCURRED)
                )
    return events


def _has_data(data_range: tuple[int, int] | None, day: int) -> bool:
    return data_range is None or data_range[0] <= day <= data_range[1]


def _midnight(day: int) -> dt.datetime:
    return dt.datetime.combine(from_yyyymmdd(day), dt.time())
