"""Backtest vs live parity: the same date and intent should give the same orders.

Orders of both runs (``include.audit.orders``: the aggregation the check and the report use,
over the validated events files) are matched by (New York date of the order's first event,
ticker), in order-id order when a key has several. Symbols, sides and quantities must agree (else the
verdict is ``mismatch``). Price and time differences are listed with their likely cause:

* ``fill_timing``: the order types differ (Lean turns daily-data market orders into
  MarketOnOpen/MarketOnClose in backtests only, lean-contract.md §7) or the fill times differ by
  more than ``time_tolerance_seconds``;
* ``price_adjustment``: the orders' ``priceAdjustmentMode`` differ (backtests fill at adjusted
  prices by default, live is always raw), read from the ``orders`` of ``<id>.json``;
* ``slippage``: a price difference above ``price_tolerance_bps`` that neither explains.

Verdicts: ``identical`` (no difference), ``equivalent`` (same orders, explained price/time
differences), ``mismatch`` (an order differs or exists in one run only).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson

from include.audit.orders import LeanOrder, lean_orders, orders_from_files
from include.contracts.report import Cause, OrderDiff, ParityReport
from include.errors import ParityError
from include.run_folder import detect_algorithm_id

ORDER_TYPES = {
    0: "Market",
    1: "Limit",
    2: "StopMarket",
    3: "StopLimit",
    4: "MarketOnOpen",
    5: "MarketOnClose",
    6: "OptionExercise",
    7: "LimitIfTouched",
    8: "ComboMarket",
    9: "ComboLimit",
    10: "ComboLegLimit",
    11: "TrailingStop",
}
PRICE_ADJUSTMENT = {0: "Raw", 1: "Adjusted", 2: "SplitAdjusted", 3: "TotalReturn", 4: "ForwardPanamaCanal"}


@dataclass(frozen=True)
class _Order:
    """A Lean order (the one per-order aggregation) with its type and price mode from ``<id>.json``."""

    lean: LeanOrder
    order_type: str | None = None
    price_adjustment: str | None = None


def _results_dir(path: str | os.PathLike[str]) -> Path:
    folder = Path(path)
    return folder / "results" if (folder / "results").is_dir() else folder


def _order_metadata(results: Path, algorithm_id: str) -> dict[int, tuple[str | None, str | None]]:
    """order id -> (order type, price adjustment mode) from ``<id>.json``, streamed; {} if absent."""
    path = results / f"{algorithm_id}.json"
    if not path.is_file():
        return {}
    out: dict[int, tuple[str | None, str | None]] = {}
    try:
        with path.open("rb") as handle:
            for key, order in ijson.kvitems(handle, "orders", use_float=True):
                if isinstance(order, dict):
                    kind = order.get("type")
                    mode = order.get("priceAdjustmentMode")
                    out[int(key)] = (
                        ORDER_TYPES.get(kind, str(kind)) if kind is not None else None,
                        PRICE_ADJUSTMENT.get(mode, str(mode)) if mode is not None else None,
                    )
    except (ijson.JSONError, ValueError) as exc:
        raise ParityError(f"{path}: cannot read the orders ({exc})") from None
    return out


def load_orders(results_dir: str | os.PathLike[str], algorithm_id: str | None = None) -> tuple[str, list[_Order]]:
    results = _results_dir(results_dir)
    algo = algorithm_id or detect_algorithm_id(results)
    if not algo:
        raise ParityError(f"{results}: cannot tell the algorithm id (pass it explicitly)")
    metadata = _order_metadata(results, algo)
    orders = lean_orders(orders_from_files(results, algo))
    return algo, [_Order(order, *metadata.get(order.order_id, (None, None))) for order in orders]


def _diff(b: _Order, live: _Order, price_tol_bps: float, time_tol: float) -> OrderDiff:
    causes: list[Cause] = []
    notes: list[str] = []
    bo, lo = b.lean, live.lean
    same = (
        bo.direction == lo.direction
        and abs(bo.quantity - lo.quantity) < 1e-9
        and abs(bo.filled_quantity - lo.filled_quantity) < 1e-9
    )
    if not same:
        notes.append(f"side/quantity differ: {bo.direction} {bo.quantity:g} vs {lo.direction} {lo.quantity:g}")
    price_bps = None
    if bo.average_fill_price and lo.average_fill_price:
        price_bps = (lo.average_fill_price / bo.average_fill_price - 1.0) * 10_000.0
    b_time, l_time = bo.last_fill_time, lo.last_fill_time
    time_diff = l_time - b_time if b_time is not None and l_time is not None else None
    types_differ = b.order_type is not None and live.order_type is not None and b.order_type != live.order_type
    if types_differ or (time_diff is not None and abs(time_diff) > time_tol):
        causes.append("fill_timing")
        if types_differ:
            notes.append(f"order type {b.order_type} in backtest vs {live.order_type} live")
    if price_bps is not None and abs(price_bps) > price_tol_bps:
        if b.price_adjustment and live.price_adjustment and b.price_adjustment != live.price_adjustment:
            causes.append("price_adjustment")
            notes.append(f"prices {b.price_adjustment} in backtest vs {live.price_adjustment} live")
        if not causes:
            causes.append("slippage")
    status = "match" if same and not causes else "differs"
    return OrderDiff(
        date=bo.date,
        symbol=bo.symbol,
        status=status,
        causes=tuple(causes) if causes else ("none",),
        notes=tuple(notes),
        **_side_fields(b, "backtest"),
        **_side_fields(live, "live"),
        price_diff_bps=price_bps,
        time_diff_seconds=time_diff,
    )


def _side_fields(order: _Order, which: str) -> dict[str, Any]:
    """The ``<which>_*`` fields of an OrderDiff for one run's order."""
    lean = order.lean
    return {
        f"{which}_order_id": lean.order_id,
        f"{which}_direction": lean.direction,
        f"{which}_quantity": lean.quantity,
        f"{which}_fill_price": lean.average_fill_price,
        f"{which}_order_type": order.order_type,
        f"{which}_price_adjustment": order.price_adjustment,
    }


def _single(order: _Order, which: str) -> OrderDiff:
    return OrderDiff(
        date=order.lean.date, symbol=order.lean.symbol, status=f"only_{which}", **_side_fields(order, which)
    )


def compare_runs(
    backtest_results_dir: str | os.PathLike[str],
    live_results_dir: str | os.PathLike[str],
    *,
    backtest_algorithm_id: str | None = None,
    live_algorithm_id: str | None = None,
    price_tolerance_bps: float = 1.0,
    time_tolerance_seconds: float = 60.0,
) -> ParityReport:
    """Per-order diff of two runs (results folders, or run folders holding ``results/``)."""
    b_id, b_orders = load_orders(backtest_results_dir, backtest_algorithm_id)
    l_id, l_orders = load_orders(live_results_dir, live_algorithm_id)
    b_keyed: dict[tuple[dt.date, str], list[_Order]] = defaultdict(list)
    l_keyed: dict[tuple[dt.date, str], list[_Order]] = defaultdict(list)
    for order in b_orders:
        b_keyed[(order.lean.date, order.lean.symbol)].append(order)
    for order in l_orders:
        l_keyed[(order.lean.date, order.lean.symbol)].append(order)
    diffs: list[OrderDiff] = []
    for key in sorted(set(b_keyed) | set(l_keyed)):
        left, right = b_keyed.get(key, []), l_keyed.get(key, [])
        for index in range(max(len(left), len(right))):
            if index < len(left) and index < len(right):
                diffs.append(_diff(left[index], right[index], price_tolerance_bps, time_tolerance_seconds))
            elif index < len(left):
                diffs.append(_single(left[index], "backtest"))
            else:
                diffs.append(_single(right[index], "live"))
    summary: dict[str, int] = defaultdict(int)
    for diff in diffs:
        summary[diff.status] += 1
        for cause in diff.causes:
            if cause != "none":
                summary[f"cause:{cause}"] += 1
    hard = any(
        d.status.startswith("only_")
        or d.backtest_direction != d.live_direction
        or d.backtest_quantity != d.live_quantity
        for d in diffs
    )
    verdict = "mismatch" if hard else ("equivalent" if any(d.status == "differs" for d in diffs) else "identical")
    return ParityReport(
        backtest_algorithm_id=b_id,
        live_algorithm_id=l_id,
        verdict=verdict,
        orders=tuple(diffs),
        summary=dict(summary),
    )
