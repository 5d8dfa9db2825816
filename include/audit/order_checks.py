"""The per-order checks: ``unexpected_symbol`` (outside the algorithm's universe), ``unexpected_date``,
``terminal_state``, ``order_sequence``, ``overfill`` and ``lot_size`` per order, ``fees`` and
``slippage`` per fill.

Vectorised over the order frame and the events frame (``include.audit.orders``); Python loops
run per failing order or per symbol, never per event. Definitions: ``include.audit.consistency``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from include.audit.findings import FEE_ABS_TOLERANCE, PRICE_REL_EPS, QTY_EPS, Findings
from include.audit.ingest import NEW_YORK
from include.contracts.params import ExecutionParams
from include.contracts.report import Verdict

# Daily bars by (symbol, price basis); a basis is a Lean DataNormalizationMode name, as an order's
# ``priceAdjustmentMode`` says. The audit reads bars on these bases (``include.market_data``).
BarKey = tuple[str, str]
SUPPORTED_BASES = ("Raw", "Adjusted")
_TERMINAL = ["filled", "canceled", "invalid"]
MARKET_ON_CLOSE = "MarketOnClose"  # Lean's OrderType name, as include.audit.parity names order types
_NOT_FILLED = ["invalid", "canceled"]
# Lean's order-event statuses in classes (compared lower-case; Lean writes them camelCase):
# before submission, working (submitted, an update or a cancel pending), a partial fill, and the
# three terminal ones. _START is the "previous status" of an order's first event.
_PRE, _WORKING, _PARTIAL, _FILLED, _CANCELED, _INVALID, _UNKNOWN, _START = range(8)
_STATUS_CLASS = {
    "new": _PRE,
    "none": _PRE,
    "submitted": _WORKING,
    "updatesubmitted": _WORKING,
    "cancelpending": _WORKING,
    "partiallyfilled": _PARTIAL,
    "filled": _FILLED,
    "canceled": _CANCELED,
    "invalid": _INVALID,
}
# _ALLOWED[previous, current]: the transitions Lean's order state machine makes. An order starts
# new, submitted or invalid (rejected before submission) - or canceled before it was submitted; it
# fills only once submitted (Lean's brokerages, the backtesting one included, report Submitted
# before any fill); nothing follows filled, canceled or invalid; it never goes back to new.
_ALLOWED = np.zeros((8, 8), dtype=bool)
for _previous in (_START, _PRE):
    _ALLOWED[_previous, [_PRE, _WORKING, _CANCELED, _INVALID]] = True
for _previous in (_WORKING, _PARTIAL):
    _ALLOWED[_previous, [_WORKING, _PARTIAL, _FILLED, _CANCELED, _INVALID]] = True


def check_orders(
    orders: pd.DataFrame,
    events: pd.DataFrame,
    params: ExecutionParams,
    bars: Mapping[BarKey, pd.DataFrame],
    mode: str,
    findings: Findings,
    *,
    first_rebalance: dt.date | None = None,
    universe: Collection[str] | None = None,
    bases: Sequence[str] | np.ndarray | None = None,
    order_types: Mapping[int, str] | None = None,
) -> None:
    """The per-order and per-fill checks. ``universe``: the symbols Lean's algorithm subscribes
    (the intent's and the starting holdings'); None skips that test. ``bars``: daily bars by
    (symbol, price basis); ``bases``: each order's price basis; ``order_types``: Lean's order type
    by order id (see :func:`check_fills`)."""
    check_terminal_state(orders, findings)
    if universe is not None:
        check_universe(orders, universe, findings)
    if first_rebalance is not None:
        check_dates(orders, first_rebalance, findings)
    check_sequence(events, orders, findings)
    check_overfill(orders, findings)
    check_lot_size(orders, params, findings)
    check_fills(events, orders, params, bars, mode, findings, bases=bases, order_types=order_types)


def _sorted_unique(values: np.ndarray) -> list[str]:
    # pd.unique hashes; np.unique would sort 10^6 Python strings. Sorted, as the report lists them.
    return sorted(str(v) for v in pd.unique(values))


def _flag(findings: Findings, check: str, verdict: Verdict, row: Any, message: str, **details: Any) -> None:
    """A finding about one order (an ``itertuples`` row of the order frame), under its rebalance date."""
    findings.add(check, verdict, message, symbol=row.symbol, day=row.day, order_id=int(row.order_id), **details)


def _ny_date(unix_time: float) -> dt.date:
    return dt.datetime.fromtimestamp(float(unix_time), NEW_YORK).date()


def _fail_orders(
    findings: Findings,
    check: str,
    orders: pd.DataFrame,
    positions: np.ndarray,
    describe: Callable[[int], str],
    **details: Any,
) -> None:
    """One ``fail`` per (rebalance date, symbol) of the order frame rows at ``positions``; each
    names its first three orders (``describe(position)``: "order N (SYMBOL, date): why")."""
    days = orders["day"].to_numpy(dtype=object)[positions]
    symbols = orders["symbol"].to_numpy(dtype=object)[positions]
    groups: dict[tuple[dt.date | None, str], list[int]] = {}
    for position, day, symbol in zip(positions.tolist(), days.tolist(), symbols.tolist(), strict=True):
        groups.setdefault((day if isinstance(day, dt.date) else None, str(symbol)), []).append(position)
    ids = orders["order_id"].to_numpy()
    for (day, symbol), members in sorted(groups.items(), key=lambda kv: (kv[0][0] or dt.date.min, kv[0][1])):
        shown = "; ".join(describe(p) for p in members[:3])
        more = f" (and {len(members) - 3} more)" if len(members) > 3 else ""
        prefix = f"{len(members)} orders: " if len(members) > 1 else ""
        findings.add(
            check,
            "fail",
            f"{prefix}{shown}{more}",
            symbol=symbol,
            day=day,
            count=len(members),
            order_ids=[int(ids[p]) for p in members[:20]],
            **details,
        )


def _order_label(orders: pd.DataFrame, position: int, when: float) -> str:
    row = orders.iloc[position]
    return f"order {int(row['order_id'])} ({row['symbol']}, {_ny_date(when).isoformat()})"


def check_universe(orders: pd.DataFrame, universe: Collection[str], findings: Findings) -> None:
    """``unexpected_symbol`` for orders in a symbol of no rebalance of the intent and not held at the start:
    Lean's algorithm subscribes only those, so it cannot have placed such an order."""
    known = {str(s).upper() for s in universe}
    outside = ~orders["symbol"].isin(known).to_numpy(dtype=bool)
    if not outside.any():
        return  # the per-rebalance ``unexpected_symbol`` reports the passes
    first = orders["first_time"].to_numpy(np.float64)
    _fail_orders(
        findings,
        "unexpected_symbol",
        orders,
        np.flatnonzero(outside),
        lambda p: (
            f"{_order_label(orders, p, first[p])}: symbol in no rebalance of the intent and not held at the start"
        ),
    )


def check_dates(orders: pd.DataFrame, first_rebalance: dt.date, findings: Findings) -> None:
    """``unexpected_date``: no event (New York date) before the intent's first rebalance date."""
    midnight = dt.datetime.combine(first_rebalance, dt.time(0, 0), tzinfo=NEW_YORK).timestamp()
    first = orders["first_time"].to_numpy(np.float64)
    early = first < midnight
    if not early.any():
        findings.add("unexpected_date", "pass", f"no event before the first rebalance {first_rebalance.isoformat()}")
        return
    _fail_orders(
        findings,
        "unexpected_date",
        orders,
        np.flatnonzero(early),
        lambda p: (
            f"{_order_label(orders, p, first[p])}: event before the first rebalance {first_rebalance.isoformat()}"
        ),
    )


def check_sequence(events: pd.DataFrame, orders: pd.DataFrame, findings: Findings) -> None:
    """``order_sequence``: each order's statuses follow Lean's state machine (:data:`_ALLOWED`), and
    only partiallyFilled/filled events carry a fill quantity. One pass over the events (numpy)."""
    if events.empty:
        findings.add("order_sequence", "pass", "no events")
        return
    codes, statuses = pd.factorize(events["status"].to_numpy(dtype=object))
    classes = np.array([_STATUS_CLASS.get(str(s).lower(), _UNKNOWN) for s in statuses] + [_UNKNOWN], np.int64)
    current = classes[codes]
    ids = events["order_id"].to_numpy()
    starts = np.r_[True, ids[1:] != ids[:-1]]
    previous = np.empty_like(current)
    previous[0] = _START
    previous[1:] = current[:-1]
    previous[starts] = _START
    fill_qty = events["fill_quantity"].to_numpy(np.float64)
    fill_on_other = (fill_qty != 0) & (current != _PARTIAL) & (current != _FILLED)
    bad = ~_ALLOWED[previous, current] | fill_on_other
    if not bad.any():
        findings.add("order_sequence", "pass", f"all {len(orders)} orders follow Lean's status sequence")
        return
    bad_events = np.flatnonzero(bad)
    # The first offending event of each order, and that order's row in the order frame.
    bad_ids, first_of = np.unique(ids[bad_events], return_index=True)
    first_bad = bad_events[first_of]
    rows = np.searchsorted(orders["order_id"].to_numpy(), bad_ids)
    event_of_row = dict(zip(rows.tolist(), first_bad.tolist(), strict=True))
    status = events["status"].to_numpy(dtype=object)
    times = events["time"].to_numpy(np.float64)
    event_ids = events["order_event_id"].to_numpy()

    def describe(row: int) -> str:
        i = event_of_row[row]
        label = _order_label(orders, row, times[i])
        before = None if starts[i] else str(status[i - 1])
        if previous[i] in (_FILLED, _CANCELED, _INVALID):
            why = f"event {int(event_ids[i])} {status[i]} after the order was {before}"
        elif current[i] == _UNKNOWN:
            why = f"event {int(event_ids[i])} has an unknown status {status[i]!r}"
        elif fill_on_other[i]:
            why = f"event {int(event_ids[i])} fills {fill_qty[i]:g} with status {status[i]}"
        elif current[i] in (_PARTIAL, _FILLED):
            why = f"event {int(event_ids[i])} {status[i]} but the order was never submitted"
        else:
            why = f"event {int(event_ids[i])} {status[i]} after {before or 'nothing'}"
        return f"{label}: {why}"

    _fail_orders(findings, "order_sequence", orders, np.array(sorted(event_of_row)), describe)


def check_overfill(orders: pd.DataFrame, findings: Findings) -> None:
    """``overfill``: an order's fills (sum of |fill quantity|, late fills included) stay within
    |quantity|, and an order that ended ``filled`` was filled completely (Lean's Filled status means
    exactly that; fewer shares would be PartiallyFilled)."""
    abs_filled = orders["abs_filled"].to_numpy(np.float64)
    quantity = np.abs(orders["quantity"].to_numpy(np.float64))
    over = abs_filled > quantity + QTY_EPS
    short = (orders["status"].to_numpy() == "filled") & (abs_filled < quantity - QTY_EPS)
    if not (over | short).any():
        findings.add("overfill", "pass", f"every order filled within its quantity ({len(orders)} orders)")
        return
    times = orders["fill_time"].to_numpy(np.float64)
    _fail_orders(
        findings,
        "overfill",
        orders,
        np.flatnonzero(over | short),
        lambda p: (
            f"{_order_label(orders, p, times[p])}: filled {abs_filled[p]:g} shares on a {quantity[p]:g}-share order"
            + (" that Lean reports as filled" if short[p] else "")
        ),
    )


def check_terminal_state(orders: pd.DataFrame, findings: Findings) -> None:
    status = orders["status"]
    terminal = status.isin(_TERMINAL).to_numpy()
    not_filled = status.isin(_NOT_FILLED).to_numpy()
    for row in orders.loc[~terminal].itertuples():
        _flag(findings, "terminal_state", "fail", row, f"order {row.order_id} ended {row.status}, not terminal")
    for row in orders.loc[not_filled].itertuples():
        verdict: Verdict = "fail" if row.status == "invalid" else "warn"
        message = f"order {row.order_id} {row.status}: {row.message}"
        _flag(findings, "terminal_state", verdict, row, message, lean_message=row.message)
    if terminal.all() and not not_filled.any():
        findings.add("terminal_state", "pass", f"all {len(orders)} orders filled")


def check_lot_size(orders: pd.DataFrame, params: ExecutionParams, findings: Findings) -> None:
    abs_filled = np.abs(orders["filled"].to_numpy(dtype=np.float64))
    off_lot = np.abs(abs_filled / params.lot_size - np.round(abs_filled / params.lot_size)) > 1e-6
    below_min = (abs_filled > QTY_EPS) & (abs_filled < params.min_qty - QTY_EPS)
    lot_bad = off_lot | below_min
    for row in orders.loc[lot_bad].itertuples():
        message = f"order {row.order_id} filled {row.filled} (lot_size {params.lot_size}, min_qty {params.min_qty})"
        _flag(findings, "lot_size", "fail", row, message)
    if not lot_bad.any():
        findings.add("lot_size", "pass", f"all fills are multiples of {params.lot_size} and >= {params.min_qty}")


def check_fills(
    events: pd.DataFrame,
    orders: pd.DataFrame,
    params: ExecutionParams,
    bars: Mapping[BarKey, pd.DataFrame],
    mode: str,
    findings: Findings,
    *,
    bases: Sequence[str] | np.ndarray | None = None,
    order_types: Mapping[int, str] | None = None,
) -> None:
    """``fees`` and ``slippage``, per fill event; each failure under its order's rebalance date.

    ``bases``: the price basis (Lean's ``priceAdjustmentMode`` name) of each row of ``orders``, default
    the mode's (:func:`default_price_basis`); a fill is judged against the bars of its order's basis.
    ``order_types``: Lean's order type by order id (``<id>.json``): live, a ``MarketOnClose`` order
    fills in the closing auction, so its fill is judged on the close and ``slippage_close_bps``.
    """
    fills = events.loc[
        events["fill_quantity"] != 0, ["order_id", "symbol_value", "time", "fill_price", "fill_quantity", "fee_amount"]
    ]
    if fills.empty:
        findings.add("fees", "pass", "no fills")
        findings.add("slippage", "pass", "no fills")
        return
    fill = _Fills.of(fills, orders, mode, bases)
    on_close = np.zeros(len(fills), dtype=bool)
    if mode == "live" and order_types:
        moc = {order_id for order_id, kind in order_types.items() if str(kind).lower() == MARKET_ON_CLOSE.lower()}
        on_close = np.isin(fill.order_ids, np.fromiter(moc, dtype=np.int64, count=len(moc)))
    day_bars = _day_bars(fill, bars)
    fee = fills["fee_amount"].fillna(0.0).to_numpy()
    quantity = fills["fill_quantity"].abs().to_numpy()
    fill_price = fills["fill_price"].to_numpy()
    rate = params.fee_bps / 10_000.0
    at_close = fills_at_the_close(fills["time"].to_numpy(np.float64), fill.sessions)
    # At the close the security's price is the session's close: the fee is exact on it.
    fee_price = np.where(at_close & ~np.isnan(day_bars[1]), day_bars[1], fill_price)
    expected_fee = rate * quantity * fee_price
    tolerance = FEE_ABS_TOLERANCE + 1e-6 * expected_fee
    fee_bad = np.abs(fee - expected_fee) > tolerance
    # Intraday, the security's last price is not in a daily bar: any price of the session's range.
    implied = np.divide(fee, rate * quantity, out=np.full(len(fee), np.nan), where=rate * quantity > 0)
    low, high = day_bars[2] * (1 - PRICE_REL_EPS), day_bars[3] * (1 + PRICE_REL_EPS)
    in_range = (implied >= low) & (implied <= high)
    fee_bad &= at_close | np.isnan(day_bars[2]) | ~in_range
    _per_day(
        findings,
        "fees",
        fill,
        fee_bad,
        lambda i: (
            f"fee {fee[i]:.6f} != fee_bps x |quantity| x the security's price when it filled: "
            + (
                f"{fee_price[i]:g}, its session's close, gives {expected_fee[i]:.6f}"
                if at_close[i] and fee_price[i] != fill_price[i]
                else f"{expected_fee[i]:.6f} at the fill price {fill_price[i]:g}, and {implied[i]:g} is outside "
                "the session's range"
            )
        ),
    )
    _check_slippage(fills, fill, params, bars, day_bars, mode, findings, on_close=on_close)


def fills_at_the_close(times: np.ndarray, sessions: pd.DatetimeIndex) -> np.ndarray:
    """True for each fill stamped at or after its session's close (a daily bar's fill, a market-on-close).

    Lean's fee model sees the security and the order, never the fill (``OrderFeeParameters``;
    ``BacktestingBrokerage.Scan`` calls it after the fill model), so ``fee_bps`` applies to the
    security's price, not to the slipped fill price. At the close that price is the session's close:
    a market order or a market-on-open order filled on a daily bar (whose last price is its close),
    a market-on-close order. Earlier in the day it is the last trade, which a daily bar does not hold.
    """
    codes, days = pd.factorize(sessions)
    closes = np.array([_close_timestamp(day.date()) for day in days], dtype=np.float64)
    return np.asarray(times >= closes[codes], dtype=bool)


def _close_timestamp(day: dt.date) -> float:
    from include.trading_calendar import session_close_utc

    try:
        return session_close_utc(day).timestamp()
    except (KeyError, ValueError):  # not a session: no close, never "at the close"
        return float("inf")


def default_price_basis(mode: str) -> str:
    """The prices Lean fills on when an order does not say: Raw live, Adjusted in a backtest (Lean's
    default normalization; ``BrokerageTransactionHandler.SetPriceAdjustmentMode``)."""
    return "Raw" if mode == "live" else "Adjusted"


@dataclass(frozen=True)
class _Fills:
    """Per fill event: its symbol, order id, the date its findings carry (the order's rebalance date,
    else the fill's session), its session and its order's price basis."""

    symbols: np.ndarray
    order_ids: np.ndarray
    days: np.ndarray
    sessions: pd.DatetimeIndex
    bases: np.ndarray

    @classmethod
    def of(
        cls, fills: pd.DataFrame, orders: pd.DataFrame, mode: str, bases: Sequence[str] | np.ndarray | None
    ) -> _Fills:
        order_ids = fills["order_id"].to_numpy()
        rows = np.searchsorted(orders["order_id"].to_numpy(), order_ids)  # the order frame is sorted by id
        sessions = fill_sessions(fills["time"].to_numpy(np.float64))
        days = orders["day"].to_numpy(dtype=object)[rows]
        undated = np.asarray(pd.isna(days), dtype=bool)  # orders before the first rebalance
        if undated.any():
            days[undated] = np.array(sessions[undated].date, dtype=object)
        order_bases = (
            np.asarray(bases, dtype=object)
            if bases is not None
            else np.full(len(orders), default_price_basis(mode), dtype=object)
        )
        return cls(
            symbols=fills["symbol_value"].to_numpy(dtype=object),
            order_ids=order_ids,
            days=days,
            sessions=sessions,
            bases=order_bases[rows],
        )


def fill_sessions(times: np.ndarray) -> pd.DatetimeIndex:
    """The session (naive New York midnight) of each fill time; see :func:`_day_bars`."""
    local = pd.to_datetime(times, unit="s", utc=True).tz_convert(NEW_YORK).tz_localize(None)
    days = local.normalize()
    return days.where(local != days, days - pd.Timedelta(days=1))


def _day_bars(
    fill: _Fills, bars: Mapping[BarKey, pd.DataFrame]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Open, close, low and high of each fill's session on its order's price basis (NaN without a
    bar): its New York date, except that a fill stamped at exactly New York midnight belongs to the
    session that ended before it (a daily bar's end time when Lean runs without daily precise end times)."""
    n = len(fill.symbols)
    open_, close, low, high = (np.full(n, np.nan) for _ in range(4))
    for symbol in _sorted_unique(fill.symbols):
        of_symbol = fill.symbols == symbol
        for basis in _sorted_unique(fill.bases[of_symbol]):
            mask = of_symbol & (fill.bases == basis)
            table = bars.get((symbol, basis))
            if table is None:
                continue
            aligned = table.reindex(fill.sessions[mask])
            open_[mask] = aligned["open"].to_numpy()
            close[mask] = aligned["close"].to_numpy()
            low[mask] = aligned["low"].to_numpy()
            high[mask] = aligned["high"].to_numpy()
    return open_, close, low, high


def _check_slippage(
    fills: pd.DataFrame,
    fill: _Fills,
    params: ExecutionParams,
    bars: Mapping[BarKey, pd.DataFrame],
    day_bars: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    mode: str,
    findings: Findings,
    *,
    on_close: np.ndarray | None = None,
) -> None:
    price = fills["fill_price"].to_numpy()
    open_, close, low, high = day_bars
    missing = np.isnan(open_)
    open_ok = np.abs(price / open_ - 1.0) <= params.slippage_open_bps / 10_000.0 + PRICE_REL_EPS
    close_ok = np.abs(price / close - 1.0) <= params.slippage_close_bps / 10_000.0 + PRICE_REL_EPS
    if mode == "live":
        widen = max(params.slippage_open_bps, params.slippage_close_bps) / 10_000.0 + PRICE_REL_EPS
        ok = (price >= low * (1 - widen)) & (price <= high * (1 + widen))
        if on_close is not None:
            ok = np.where(on_close, close_ok, ok)  # a market-on-close fill: the closing auction's price
    else:
        ok = open_ok | close_ok
    bad = ~ok & ~missing
    if missing.any() and not bad.any():
        if not missing.all():
            findings.add("slippage", "pass", f"all {int((~missing).sum())} fills with a daily bar pass")
    else:
        _per_day(
            findings,
            "slippage",
            fill,
            bad,
            lambda i: (
                f"fill price {price[i]} outside the slippage band of open {open_[i]} / close {close[i]} "
                f"({fill.bases[i]} prices)"
            ),
        )
    if missing.any():
        # A fill on a session without a bar: Lean filled at a price no bar backs (or the audit
        # reads other data than Lean did). Not checkable is not consistent: a failure in both policies.
        def where(i: int) -> str:
            symbol, basis = str(fill.symbols[i]), str(fill.bases[i])
            if basis not in SUPPORTED_BASES:
                return f"no bars on its order's price basis {basis} (the audit reads {', '.join(SUPPORTED_BASES)})"
            return "no daily bars at all" if (symbol, basis) not in bars else "no daily bar for that session"

        for (day, symbol), idx in _groups(fill, missing):
            first = idx[0]
            findings.add(
                "slippage",
                "fail",
                f"{len(idx)} fills on a session without a daily bar; first: order {int(fill.order_ids[first])} "
                f"({symbol}, {fill.sessions[first].date().isoformat()}): {where(first)}, "
                f"fill price {price[first]:g} not checked",
                symbol=symbol,
                day=day,
                fills=len(idx),
                order_ids=[int(fill.order_ids[i]) for i in idx[:20]],
                sessions=sorted({fill.sessions[i].date().isoformat() for i in idx[:20]}),
                price_basis=str(fill.bases[first]),
            )


def _groups(fill: _Fills, bad: np.ndarray) -> list[tuple[tuple[dt.date, str], np.ndarray]]:
    """The positions of the fills at ``bad`` by (date, symbol), in that order (vectorised: a run whose
    every fill fails, e.g. without bars, has 10^6 of them)."""
    positions = np.flatnonzero(bad)
    day_codes, days = pd.factorize(fill.days[positions])
    symbol_codes, symbols = pd.factorize(fill.symbols[positions])
    key = day_codes.astype(np.int64) * len(symbols) + symbol_codes
    order = np.argsort(key, kind="stable")  # stable: each group keeps the fills' order
    members = np.split(positions[order], np.flatnonzero(np.diff(key[order])) + 1)
    firsts = key[order][np.r_[0, np.flatnonzero(np.diff(key[order])) + 1]]
    groups = [
        ((days[k // len(symbols)], str(symbols[k % len(symbols)])), idx)
        for k, idx in zip(firsts.tolist(), members, strict=True)
    ]
    return sorted(groups, key=lambda kv: kv[0])


def _per_day(findings: Findings, check: str, fill: _Fills, bad: np.ndarray, describe: Callable[[int], str]) -> None:
    """One pass for all fills, else one ``fail`` per (date, symbol) with failing fills."""
    if not bad.any():
        findings.add(check, "pass", f"all {len(bad)} fills pass")
        return
    for (day, symbol), idx in _groups(fill, bad):
        findings.add(
            check,
            "fail",
            f"{len(idx)} fills fail; first: order {int(fill.order_ids[idx[0]])}: {describe(idx[0])}",
            symbol=symbol,
            day=day,
            count=len(idx),
            order_ids=[int(i) for i in fill.order_ids[idx[:20]]],
            price_basis=str(fill.bases[idx[0]]),
        )
