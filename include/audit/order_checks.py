"""The per-order checks: ``terminal_state`` and ``lot_size`` per order, ``fees`` and ``slippage`` per fill.

Vectorised over the order frame and the events frame (``include.audit.orders``); Python loops
run per failing order or per symbol, never per event. Definitions: ``include.audit.consistency``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from include.audit.findings import FEE_ABS_TOLERANCE, PRICE_REL_EPS, QTY_EPS, Findings
from include.audit.ingest import NEW_YORK
from include.contracts.params import ExecutionParams
from include.contracts.report import Verdict

_TERMINAL = ["filled", "canceled", "invalid"]
_NOT_FILLED = ["invalid", "canceled"]


def check_orders(
    orders: pd.DataFrame,
    events: pd.DataFrame,
    params: ExecutionParams,
    bars: Mapping[str, pd.DataFrame],
    mode: str,
    findings: Findings,
) -> None:
    check_terminal_state(orders, findings)
    check_lot_size(orders, params, findings)
    check_fills(events, params, bars, mode, findings)


def _sorted_unique(values: np.ndarray) -> list[str]:
    # pd.unique hashes; np.unique would sort 10^6 Python strings. Sorted, as the report lists them.
    return sorted(str(v) for v in pd.unique(values))


def _flag(findings: Findings, check: str, verdict: Verdict, row: Any, message: str, **details: Any) -> None:
    """A finding about one order (an ``itertuples`` row of the order frame), under its rebalance date."""
    findings.add(check, verdict, message, symbol=row.symbol, day=row.day, order_id=int(row.order_id), **details)


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
    events: pd.DataFrame, params: ExecutionParams, bars: Mapping[str, pd.DataFrame], mode: str, findings: Findings
) -> None:
    """``fees`` and ``slippage``, per fill event."""
    fills = events.loc[
        events["fill_quantity"] != 0, ["order_id", "symbol_value", "time", "fill_price", "fill_quantity", "fee_amount"]
    ]
    if fills.empty:
        findings.add("fees", "pass", "no fills")
        findings.add("slippage", "pass", "no fills")
        return
    symbols = fills["symbol_value"].to_numpy(dtype=object)
    order_ids = fills["order_id"].to_numpy()
    notional = fills["fill_quantity"].abs().to_numpy() * fills["fill_price"].to_numpy()
    expected_fee = params.fee_bps / 10_000.0 * notional
    fee = fills["fee_amount"].fillna(0.0).to_numpy()
    fee_bad = np.abs(fee - expected_fee) > FEE_ABS_TOLERANCE + 1e-6 * expected_fee
    _per_symbol(
        findings,
        "fees",
        symbols,
        fee_bad,
        order_ids,
        lambda i: f"fee {fee[i]:.6f} != fee_bps x notional {expected_fee[i]:.6f}",
    )
    _check_slippage(fills, symbols, order_ids, params, bars, mode, findings)


def _day_bars(
    fills: pd.DataFrame, symbols: np.ndarray, bars: Mapping[str, pd.DataFrame]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Open, close, low and high of each fill's New York day (NaN without a bar)."""
    days = (
        pd.to_datetime(fills["time"].to_numpy(), unit="s", utc=True).tz_convert(NEW_YORK).tz_localize(None).normalize()
    )
    open_ = np.full(len(fills), np.nan)
    close = np.full(len(fills), np.nan)
    low = np.full(len(fills), np.nan)
    high = np.full(len(fills), np.nan)
    for symbol in _sorted_unique(symbols):
        mask = symbols == symbol
        table = bars.get(symbol)
        if table is None:
            continue
        aligned = table.reindex(days[mask])
        open_[mask] = aligned["open"].to_numpy()
        close[mask] = aligned["close"].to_numpy()
        low[mask] = aligned["low"].to_numpy()
        high[mask] = aligned["high"].to_numpy()
    return open_, close, low, high


def _check_slippage(
    fills: pd.DataFrame,
    symbols: np.ndarray,
    order_ids: np.ndarray,
    params: ExecutionParams,
    bars: Mapping[str, pd.DataFrame],
    mode: str,
    findings: Findings,
) -> None:
    price = fills["fill_price"].to_numpy()
    open_, close, low, high = _day_bars(fills, symbols, bars)
    missing = np.isnan(open_)
    open_ok = np.abs(price / open_ - 1.0) <= params.slippage_open_bps / 10_000.0 + PRICE_REL_EPS
    close_ok = np.abs(price / close - 1.0) <= params.slippage_close_bps / 10_000.0 + PRICE_REL_EPS
    if mode == "live":
        widen = max(params.slippage_open_bps, params.slippage_close_bps) / 10_000.0 + PRICE_REL_EPS
        ok = (price >= low * (1 - widen)) & (price <= high * (1 + widen))
    else:
        ok = open_ok | close_ok
    bad = ~ok & ~missing
    _per_symbol(
        findings,
        "slippage",
        symbols,
        bad,
        order_ids,
        lambda i: f"fill price {price[i]} outside the slippage band of open {open_[i]} / close {close[i]}",
    )
    if missing.any():
        for symbol in _sorted_unique(symbols[missing]):
            findings.add(
                "slippage",
                "warn",
                "no daily bar for the fill date; price not checked",
                symbol=symbol,
                fills=int((symbols[missing] == symbol).sum()),
            )


def _per_symbol(
    findings: Findings,
    check: str,
    symbols: np.ndarray,
    bad: np.ndarray,
    order_ids: np.ndarray,
    describe: Callable[[int], str],
) -> None:
    if not bad.any():
        findings.add(check, "pass", f"all {len(bad)} fills pass")
        return
    for symbol in _sorted_unique(symbols[bad]):
        idx = np.flatnonzero(bad & (symbols == symbol))
        findings.add(
            check,
            "fail",
            f"{len(idx)} fills fail; first: order {int(order_ids[idx[0]])}: {describe(idx[0])}",
            symbol=symbol,
            count=len(idx),
            order_ids=[int(order_ids[i]) for i in idx[:20]],
        )
