"""The per-rebalance checks: ``intended_side``, ``unexpected_symbol``, ``recomputation``, ``achieved_weight``.

For each rebalance date, in order, and each symbol of the intent, of the account or of Lean's
orders that day: compare what Lean did with what was intended (and with an independent
recomputation), then roll the account forward to the next rebalance. Definitions:
``include.audit.consistency``.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from include.audit.findings import QTY_EPS, Findings
from include.contracts.intent import OrderIntent
from include.contracts.params import ExecutionParams
from include.contracts.report import SymbolVerdict, worst
from include.run_folder import StartingState

BuildOrders = Callable[..., Sequence[Any]]


def load_build_orders() -> BuildOrders | None:
    """``algorithms.execution_rules.build_orders``, the function the algorithm sizes orders with."""
    try:
        module = importlib.import_module("algorithms.execution_rules")
    except ImportError:
        return None
    build: BuildOrders | None = getattr(module, "build_orders", None)
    return build


def reference_close(bars: pd.DataFrame | None, day: dt.date) -> float | None:
    """Close of the last session strictly before ``day``."""
    if bars is None:
        return None
    before = bars.loc[bars.index < pd.Timestamp(day), "close"]
    return float(before.iloc[-1]) if len(before) else None


@dataclass
class _Done:
    """What Lean's orders did for one (rebalance date, symbol)."""

    ordered: float = 0.0
    filled: float = 0.0
    fees: float = 0.0
    notional: float = 0.0
    orders: int = 0
    directions: set[str] = field(default_factory=set)
    cash_flow: float = 0.0


def _done_by_key(orders: pd.DataFrame) -> dict[tuple[dt.date, str], _Done]:
    done: dict[tuple[dt.date, str], _Done] = {}
    if orders.empty:
        return done
    # Only the columns summed: the group split copies what it is given. Orders before the first
    # rebalance (day None) are dropped by groupby, as they always were.
    columns = ["day", "symbol", "quantity", "filled", "fees", "notional", "direction", "value"]
    for (day, symbol), grp in orders[columns].groupby(["day", "symbol"], sort=False):
        done[(day, symbol)] = _Done(
            ordered=float(grp["quantity"].sum()),
            filled=float(grp["filled"].sum()),
            fees=float(grp["fees"].sum()),
            notional=float(grp["notional"].sum()),
            orders=len(grp),
            directions=set(grp["direction"]),
            cash_flow=-float(grp["value"].sum()),
        )
    return done


@dataclass
class _Account:
    """Cash (None when unknown) and holdings, rolled from one rebalance to the next."""

    cash: float | None
    holdings: dict[str, float]

    def value(self, prices: Mapping[str, float]) -> float | None:
        if self.cash is None or any(s not in prices for s in self.holdings):
            return None
        return self.cash + sum(q * prices[s] for s, q in self.holdings.items())

    def apply(self, symbol: str, done: _Done) -> None:
        new_qty = self.holdings.get(symbol, 0.0) + done.filled
        if abs(new_qty) > QTY_EPS:
            self.holdings[symbol] = new_qty
        else:
            self.holdings.pop(symbol, None)
        if self.cash is not None:
            self.cash += done.cash_flow - done.fees


@dataclass(frozen=True)
class _Day:
    """One rebalance as the checks see it: targets, reference prices, portfolio value, plan."""

    day: dt.date
    weights: Mapping[str, float]
    prices: Mapping[str, float]
    portfolio_value: float | None
    expected: Mapping[str, float] | None


def check_rebalances(
    orders: pd.DataFrame,
    *,
    intent: OrderIntent,
    params: ExecutionParams,
    starting: StartingState,
    bars: Mapping[str, pd.DataFrame],
    mode: str,
    build: BuildOrders | None,
    findings: Findings,
) -> list[SymbolVerdict]:
    """The verdict rows, one per (rebalance date, symbol), in date then symbol order."""
    account = _Account(cash=starting.cash, holdings={s: q for s, q in starting.holdings.items() if q != 0})
    done = _done_by_key(orders)
    rows: list[SymbolVerdict] = []
    for day in [r.date for r in intent.rebalances]:
        rebalance = next(r for r in intent.rebalances if r.date == day)
        weights = {i.symbol: i.weight for i in rebalance.items}
        symbols = sorted(set(weights) | set(account.holdings) | {s for (d, s) in done if d == day})
        # The algorithm sizes a backtest rebalance on the last close before its day; a live one
        # on the day's own bar (it trades after the close, when that bar arrives).
        as_seen = day + dt.timedelta(days=1) if mode == "live" else day
        prices = {s: p for s in symbols if (p := reference_close(bars.get(s), as_seen)) is not None}
        pv = account.value(prices)
        expected = _plan(build, day, weights, prices, account, pv, params, findings)
        today = _Day(day=day, weights=weights, prices=prices, portfolio_value=pv, expected=expected)
        for symbol in symbols:
            got = done.get((day, symbol), _Done())
            rows.append(_check_symbol(symbol, today, account.holdings.get(symbol, 0.0), got, params, findings))
            account.apply(symbol, got)
    return rows


def _plan(
    build: BuildOrders | None,
    day: dt.date,
    weights: Mapping[str, float],
    prices: Mapping[str, float],
    account: _Account,
    pv: float | None,
    params: ExecutionParams,
    findings: Findings,
) -> dict[str, float] | None:
    """The recomputed quantity per symbol, or None (with a warning) when it cannot be recomputed."""
    if build is None:
        findings.add("recomputation", "warn", "algorithms.execution_rules is not importable; not recomputed", day=day)
        return None
    if pv is None or pv <= 0 or any(s not in prices for s in weights):
        findings.add(
            "recomputation",
            "warn",
            "starting cash or reference prices unknown; not recomputed",
            day=day,
            missing_prices=sorted(s for s in weights if s not in prices),
            cash=account.cash,
        )
        return None
    planned = build(
        weights=dict(weights),
        prices=dict(prices),
        holdings=dict(account.holdings),
        cash=float(account.cash or 0.0),
        portfolio_value=pv,
        params=params,
    )
    out: dict[str, float] = defaultdict(float)
    for order in planned:
        out[str(order.symbol).upper()] += float(order.quantity)
    return dict(out)


def _check_symbol(
    symbol: str, today: _Day, held: float, got: _Done, params: ExecutionParams, findings: Findings
) -> SymbolVerdict:
    day, weights = today.day, today.weights
    exp_qty = today.expected.get(symbol, 0.0) if today.expected is not None else None
    _check_side(symbol, day, weights, held, got, exp_qty, findings)
    if exp_qty is not None:
        if abs(exp_qty - got.ordered) > QTY_EPS:
            findings.add(
                "recomputation",
                "fail",
                f"expected quantity {exp_qty:g} (build_orders), Lean ordered {got.ordered:g}",
                symbol=symbol,
                day=day,
                expected=exp_qty,
                lean=got.ordered,
            )
        else:
            findings.add("recomputation", "pass", f"quantity {exp_qty:g} matches", symbol=symbol, day=day)
    ref = today.prices.get(symbol)
    achieved, tol = _check_weight(symbol, today, held, got, params, findings)
    key = (day, symbol)
    return SymbolVerdict(
        symbol=symbol,
        rebalance_date=day,
        verdict=worst(findings.verdicts.get(key, [])),
        in_intent=symbol in weights,
        target_weight=weights.get(symbol),
        achieved_weight=achieved,
        weight_tolerance=tol,
        reference_price=ref,
        expected_quantity=exp_qty,
        ordered_quantity=got.ordered,
        filled_quantity=got.filled,
        orders=got.orders,
        fees=got.fees,
        problems=tuple(findings.problems.get(key, [])),
    )


def _check_side(
    symbol: str,
    day: dt.date,
    weights: Mapping[str, float],
    held: float,
    got: _Done,
    exp_qty: float | None,
    findings: Findings,
) -> None:
    """``unexpected_symbol`` and ``intended_side``."""
    in_intent = symbol in weights
    if exp_qty is not None:
        side_sign = float(np.sign(exp_qty))
    elif in_intent and held == 0:
        side_sign = float(np.sign(weights[symbol]))
    else:
        side_sign = float("nan")
    if not in_intent and got.orders and not (exp_qty or 0.0):
        findings.add(
            "unexpected_symbol",
            "fail",
            f"{got.orders} orders for a symbol outside the intent",
            symbol=symbol,
            day=day,
            ordered=got.ordered,
        )
    if side_sign == side_sign and side_sign != 0:
        want = "buy" if side_sign > 0 else "sell"
        if not got.orders:
            findings.add("intended_side", "fail", f"no order although a {want} was intended", symbol=symbol, day=day)
        elif got.directions - {want}:
            findings.add(
                "intended_side",
                "fail",
                f"orders on side {sorted(got.directions)}, intended {want}",
                symbol=symbol,
                day=day,
            )
        else:
            findings.add("intended_side", "pass", f"{want} as intended", symbol=symbol, day=day)


def _check_weight(
    symbol: str, today: _Day, held: float, got: _Done, params: ExecutionParams, findings: Findings
) -> tuple[float | None, float | None]:
    """``achieved_weight``; (achieved weight, tolerance), None where unknown."""
    day, ref, pv = today.day, today.prices.get(symbol), today.portfolio_value
    target = today.weights.get(symbol, 0.0)
    if ref is None or not pv:
        if symbol in today.weights:
            findings.add("achieved_weight", "warn", "no reference price or portfolio value", symbol=symbol, day=day)
        return None, None
    achieved = (held + got.filled) * ref / pv
    avg_fill = got.notional / abs(got.filled) if got.filled else ref
    tol = (
        max(params.lot_size, params.min_qty) * ref / pv
        + params.cash_buffer_ratio * abs(target)
        + abs(target) * abs(avg_fill / ref - 1.0)
        + params.fee_bps / 10_000.0 * abs(target)
        + 1e-9
    )
    if abs(achieved - target) > tol:
        findings.add(
            "achieved_weight",
            "fail",
            f"achieved weight {achieved:.6f} vs target {target:.6f} (tolerance {tol:.6f})",
            symbol=symbol,
            day=day,
            achieved=achieved,
            target=target,
            tolerance=tol,
        )
    else:
        findings.add(
            "achieved_weight",
            "pass",
            f"achieved {achieved:.6f} within {tol:.6f} of {target:.6f}",
            symbol=symbol,
            day=day,
        )
    return achieved, tol
