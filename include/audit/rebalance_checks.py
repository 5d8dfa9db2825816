"""The per-rebalance checks: ``intended_side``, ``unexpected_symbol``, ``recomputation``, ``achieved_weight``.

For each rebalance date, in order, and each symbol of the intent, of the account or of Lean's
orders that day: compare what Lean did with what was intended (and with an independent
recomputation), then roll the account forward to the next rebalance. Definitions:
``include.audit.consistency``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from include.audit.findings import QTY_EPS, Findings
from include.contracts.intent import OrderIntent
from include.contracts.params import ExecutionParams
from include.contracts.report import SymbolVerdict, worst
from include.corporate_actions import ACTIONS_BY_BASIS, CarryRecord, CorporateAction, apply_corporate_actions
from include.run_folder import StartingState

BuildOrders = Callable[..., Sequence[Any]]


def _load_rules() -> ModuleType | None:
    """``algorithms.execution_rules``, the rules the algorithm sizes its orders with (None: not importable)."""
    try:
        return importlib.import_module("algorithms.execution_rules")
    except ImportError:
        return None


def load_build_orders() -> BuildOrders | None:
    """``algorithms.execution_rules.build_orders``, the function the algorithm sizes orders with."""
    module = _load_rules()
    build: BuildOrders | None = getattr(module, "build_orders", None) if module is not None else None
    return build


def reference_close(bars: pd.DataFrame | None, day: dt.date) -> float | None:
    """Close of the last session strictly before ``day``."""
    last = _last_close(bars, day)
    return last[1] if last is not None else None


def _last_close(bars: pd.DataFrame | None, day: dt.date) -> tuple[dt.date, float] | None:
    """(date, close) of the last session strictly before ``day``."""
    if bars is None:
        return None
    before = bars.loc[bars.index < pd.Timestamp(day), "close"]
    return (before.index[-1].date(), float(before.iloc[-1])) if len(before) else None


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
    order_ids: list[int] = field(default_factory=list)


def _done_by_key(orders: pd.DataFrame) -> dict[tuple[dt.date, str], _Done]:
    done: dict[tuple[dt.date, str], _Done] = {}
    if orders.empty:
        return done
    # Only the columns summed: the group split copies what it is given. Orders before the first
    # rebalance (day None) are dropped by groupby, as they always were.
    columns = ["day", "symbol", "order_id", "quantity", "filled", "fees", "notional", "direction", "value"]
    for (day, symbol), grp in orders[columns].groupby(["day", "symbol"], sort=False):
        done[(day, symbol)] = _Done(
            ordered=float(grp["quantity"].sum()),
            filled=float(grp["filled"].sum()),
            fees=float(grp["fees"].sum()),
            notional=float(grp["notional"].sum()),
            orders=len(grp),
            directions=set(grp["direction"]),
            cash_flow=-float(grp["value"].sum()),
            order_ids=[int(i) for i in grp["order_id"]],
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

    def apply_actions(self, actions: Sequence[CorporateAction]) -> None:
        """Splits and dividends between two rebalances, as Lean applies them to the account
        (the one implementation: ``include.corporate_actions``)."""
        if not actions:
            return
        state = {"cash": self.cash or 0.0, "holdings": {s: {"quantity": q} for s, q in self.holdings.items()}}
        after, _applied = apply_corporate_actions(state, actions)
        self.holdings = {s: float(h["quantity"]) for s, h in after["holdings"].items()}
        if self.cash is not None:
            self.cash = float(after["cash"])

    def apply(self, symbol: str, done: _Done) -> None:
        new_qty = self.holdings.get(symbol, 0.0) + done.filled
        if abs(new_qty) > QTY_EPS:
            self.holdings[symbol] = new_qty
        else:
            self.holdings.pop(symbol, None)
        if self.cash is not None:
            self.cash += done.cash_flow - done.fees


@dataclass
class _Day:
    """One rebalance as the checks see it: targets, reference prices, the account before it
    (cash, holdings, portfolio value), the plan and the symbols it could not recompute."""

    day: dt.date
    weights: Mapping[str, float]
    prices: Mapping[str, float]
    portfolio_value: float | None
    expected: Mapping[str, float] | None
    cash: float | None = None
    holdings: Mapping[str, float] = field(default_factory=dict)
    skipped: frozenset[str] = frozenset()
    universe: frozenset[str] = frozenset()
    _reasons: dict[str, str] | None = None

    def why_no_order(self, symbol: str, params: ExecutionParams) -> str | None:
        """Why the algorithm's rules place no order for ``symbol`` today (computed once a day)."""
        if self._reasons is None:
            rules = _load_rules()
            self._reasons = _no_order_reasons(rules, self, params) if rules is not None else {}
        return self._reasons.get(symbol)


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
    bases: Mapping[str, str] | None = None,
    actions: Sequence[CorporateAction] = (),
) -> list[SymbolVerdict]:
    """The verdict rows of :func:`check_rebalances_and_account`."""
    rows, _account = check_rebalances_and_account(
        orders,
        intent=intent,
        params=params,
        starting=starting,
        bars=bars,
        mode=mode,
        build=build,
        findings=findings,
        bases=bases,
        actions=actions,
    )
    return rows


def check_rebalances_and_account(
    orders: pd.DataFrame,
    *,
    intent: OrderIntent,
    params: ExecutionParams,
    starting: StartingState,
    bars: Mapping[str, pd.DataFrame],
    mode: str,
    build: BuildOrders | None,
    findings: Findings,
    bases: Mapping[str, str] | None = None,
    actions: Sequence[CorporateAction] = (),
) -> tuple[list[SymbolVerdict], dict[str, Any]]:
    """The verdict rows, one per (rebalance date, symbol), in date then symbol order, and the account
    after the last rebalance (``{"cash": float | None, "holdings": {symbol: quantity}}``).

    ``bars`` are each symbol's on its price basis (``bases``, default the mode's: Raw live, Adjusted in
    a backtest). On a Raw or SplitAdjusted basis the account also takes ``actions`` (splits, dividends)
    between rebalances as Lean does within a run, and a backtest's reference price on a split day is the
    last close in post-split terms (Lean scales the security's price when it applies the split)."""
    account = _Account(cash=starting.cash, holdings={s: q for s, q in starting.holdings.items() if q != 0})
    universe = frozenset(intent.symbols) | frozenset(s.upper() for s in account.holdings)
    done = _done_by_key(orders)
    rows: list[SymbolVerdict] = []
    unexplained: list[dt.date] = []
    basis_of = _basis_lookup(bases, mode)
    previous_day: dt.date | None = None
    for day in [r.date for r in intent.rebalances]:
        if previous_day is not None:
            account.apply_actions(_actions_within(actions, basis_of, mode, previous_day, day))
        previous_day = day
        rebalance = next(r for r in intent.rebalances if r.date == day)
        weights = {i.symbol: i.weight for i in rebalance.items}
        symbols = sorted(set(weights) | set(account.holdings) | {s for (d, s) in done if d == day})
        # The algorithm sizes a rebalance on the last close before its day, in a backtest and live
        # alike: a live run places its market-on-close orders before D's close (the snapshot and the
        # sizing use only bars before D), and they fill at D's close.
        as_seen = day
        prices = {
            s: p
            for s in symbols
            if (p := _reference_price(bars.get(s), as_seen, day, s, basis_of(s), actions)) is not None
        }
        pv = account.value(prices)
        expected, skipped = _plan(build, day, weights, prices, account, pv, params, findings)
        if expected is None:
            unexplained.append(day)
        today = _Day(
            day=day,
            weights=weights,
            prices=prices,
            portfolio_value=pv,
            expected=expected,
            cash=account.cash,
            holdings=dict(account.holdings),
            skipped=skipped,
            universe=universe,
        )
        for symbol in symbols:
            got = done.get((day, symbol), _Done())
            rows.append(_check_symbol(symbol, today, account.holdings.get(symbol, 0.0), got, params, findings))
            account.apply(symbol, got)
    if orders.empty and any(i.weight != 0 for r in intent.rebalances for i in r.items):
        _explain_empty_run(unexplained, findings)
    return rows, {"cash": account.cash, "holdings": dict(account.holdings)}


def _basis_lookup(bases: Mapping[str, str] | None, mode: str) -> Callable[[str], str]:
    default = "Raw" if mode == "live" else "Adjusted"
    known = dict(bases or {})
    return lambda symbol: known.get(symbol, default)


def _actions_within(
    actions: Sequence[CorporateAction], basis_of: Callable[[str], str], mode: str, after: dt.date, through: dt.date
) -> list[CorporateAction]:
    """The actions Lean applies to the account between two rebalances: by each symbol's basis
    (``ACTIONS_BY_BASIS``), and no dividend live (Lean leaves that cash to the brokerage's sync,
    ``SecurityPortfolioManager.ApplyDividend``; the carry-over to the next run credits it)."""
    return [
        a
        for a in actions
        if after < a.date <= through
        and a.kind in ACTIONS_BY_BASIS.get(basis_of(a.symbol), frozenset())
        and not (mode == "live" and a.kind == "dividend")
    ]


def _reference_price(
    bars: pd.DataFrame | None,
    as_seen: dt.date,
    day: dt.date,
    symbol: str,
    basis: str,
    actions: Sequence[CorporateAction],
) -> float | None:
    """The last close before ``as_seen``; on Raw prices scaled by the splits effective after that close
    and by the rebalance ``day`` (a backtest sizing on a split day sees the pre-split close in
    post-split terms; a live run sizes on the day's own, post-split, bar)."""
    last = _last_close(bars, as_seen)
    if last is None:
        return None
    bar_day, price = last
    if basis == "Raw":
        for action in actions:
            if action.symbol == symbol and action.kind == "split" and bar_day < action.date <= day:
                price *= action.split_factor
    return price


def check_carried_state(
    starting: StartingState,
    *,
    carry: CarryRecord | None,
    expected: Sequence[CorporateAction],
    findings: Findings,
) -> None:
    """``corporate_actions``: a live account carried from an earlier run must have taken every split
    and cash dividend between that run's session and this one's (``expected``; when the state records
    no carry-over, the ones effective on this run's first session, which certainly came after the
    previous run). Each action the carry-over applied is listed (dated on its effective session);
    each one missing fails: the account would be valued, and sized, on the wrong number of shares."""
    recorded = {
        (str(a["symbol"]).upper(), str(a["kind"]), dt.date.fromisoformat(str(a["date"]))): a
        for a in (carry.applied if carry is not None else ())
    }
    for (symbol, _kind, day), record in sorted(recorded.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
        findings.add(
            "corporate_actions",
            "pass",
            _describe_applied(record),
            symbol=symbol,
            day=day,
            **{k: v for k, v in record.items() if k not in ("symbol", "date")},
        )
    for action in expected:
        if (action.symbol, action.kind, action.date) in recorded:
            continue
        held = starting.holdings.get(action.symbol, 0.0)
        if action.kind == "split":
            why = (
                f"split (factor {action.split_factor:g}) effective {action.date.isoformat()} not applied to the "
                f"carried account: it starts with {held:g} shares, a broker holds "
                f"{int(held / action.split_factor):g} after the split"
            )
        else:
            why = (
                f"cash dividend {action.distribution:g} USD/share (ex {action.date.isoformat()}) not credited to the "
                f"carried account of {held:g} shares"
            )
        findings.add(
            "corporate_actions",
            "fail",
            why,
            symbol=action.symbol,
            day=action.date,
            kind=action.kind,
            split_factor=action.split_factor,
            distribution=action.distribution,
            reference_price=action.reference_price,
            starting_quantity=held,
        )
    if not recorded and not expected:
        findings.add("corporate_actions", "pass", "no split or dividend of a carried holding since the previous run")


def _describe_applied(record: Mapping[str, Any]) -> str:
    symbol, day = record["symbol"], record["date"]
    before, after, cash = float(record["quantity_before"]), float(record["quantity_after"]), float(record["cash"])
    if record["kind"] == "split":
        return (
            f"split of {symbol} (factor {float(record['split_factor']):g}) effective {day} applied to the carried "
            f"account: {before:g} -> {after:g} shares, average price {float(record['average_price_before']):g} -> "
            f"{float(record['average_price_after']):g}, fractional share paid {cash:.2f} USD"
        )
    return (
        f"cash dividend of {symbol} {float(record['distribution']):g} USD/share (ex {day}) credited to the carried "
        f"account: {before:g} shares, {cash:.2f} USD"
    )


def _explain_empty_run(unexplained: Sequence[dt.date], findings: Findings) -> None:
    """A run without orders although the intent has non-zero targets: the run-level finding that
    says whether the recomputation accounts for it (each symbol's reason is its own finding)."""
    if unexplained:
        findings.add(
            "recomputation",
            "warn",
            "Lean placed no order although the intent has non-zero targets, and the recomputation could not "
            f"run on {', '.join(d.isoformat() for d in unexplained)}: why nothing traded there is not explained",
            unexplained=[d.isoformat() for d in unexplained],
        )
    else:
        findings.add(
            "recomputation",
            "pass",
            "Lean placed no order, and the algorithm's rules place none either: each symbol's reason is listed",
        )


def _plan(
    build: BuildOrders | None,
    day: dt.date,
    weights: Mapping[str, float],
    prices: Mapping[str, float],
    account: _Account,
    pv: float | None,
    params: ExecutionParams,
    findings: Findings,
) -> tuple[dict[str, float] | None, frozenset[str]]:
    """The recomputed quantity per symbol (None, with a warning, when the day cannot be
    recomputed) and the symbols skipped for want of a reference price.

    Per symbol: a symbol with a zero target and no holding but no price is skipped (reported);
    its rules give it no order and leave the others' cash alone, so they are still recomputed.
    A non-zero target without a price stops the day: the cash it would take decides the others'.
    """
    if build is None:
        findings.add("recomputation", "warn", "algorithms.execution_rules is not importable; not recomputed", day=day)
        return None, frozenset()
    missing = sorted(s for s in weights if s not in prices)
    blocking = [s for s in missing if weights[s] != 0]
    if pv is None or pv <= 0 or blocking:
        findings.add(
            "recomputation",
            "warn",
            "starting cash or reference prices unknown; not recomputed"
            + (
                f" (no reference price for {', '.join(blocking)}, whose non-zero targets decide the cash left)"
                if blocking
                else ""
            ),
            day=day,
            missing_prices=missing,
            cash=account.cash,
        )
        return None, frozenset()
    for symbol in missing:
        findings.add(
            "recomputation",
            "warn",
            f"no reference price for {symbol} before {day.isoformat()} (target 0, not held): {symbol} not "
            "recomputed, the other symbols are",
            symbol=symbol,
            day=day,
        )
    planned = build(
        weights={s: w for s, w in weights.items() if s in prices},
        prices=dict(prices),
        holdings=dict(account.holdings),
        cash=float(account.cash or 0.0),
        portfolio_value=pv,
        params=params,
    )
    out: dict[str, float] = defaultdict(float)
    for order in planned:
        out[str(order.symbol).upper()] += float(order.quantity)
    return dict(out), frozenset(missing)


def _no_order_reasons(rules: ModuleType, today: _Day, params: ExecutionParams) -> dict[str, str]:
    """Why the algorithm's rules give no order, per symbol with a target or a holding and none.

    The steps of ``build_orders`` with its own functions: ``apply_risk_overrides``, the target in
    whole lots (``build_orders``' formula), ``apply_execution_constraints``, then
    ``trim_buys_to_cash`` (a buy it drops: the cash after the buffer and the orders before it
    cannot pay ``min_qty``, costed with ``FeeRule`` and ``SlippageRule``).
    """
    pv = today.portfolio_value
    if pv is None or pv <= 0:
        return {}
    lot, min_qty, buffer = params.lot_size, params.min_qty, params.cash_buffer_ratio
    cash = float(today.cash or 0.0)
    investable = pv * (1.0 - buffer)
    held_back = f"; cash_buffer_ratio {buffer:g} holds back {buffer * pv:,.2f} of {pv:,.2f} USD" if buffer else ""
    capped = rules.apply_risk_overrides(dict(today.weights), params.risk_overrides)
    reasons: dict[str, str] = {}
    planned = []
    for symbol in sorted(set(capped) | {s for s, q in today.holdings.items() if q}):
        price = float(today.prices.get(symbol) or 0.0)
        weight, capped_weight = today.weights.get(symbol, 0.0), float(capped.get(symbol, 0.0))
        held = float(today.holdings.get(symbol, 0.0))
        if not price > 0 or not math.isfinite(price):
            reasons[symbol] = "no reference price: the rules skip the symbol"
            continue
        capping = f"risk_overrides cap weight {weight:g} to {capped_weight:g}; " if capped_weight != weight else ""
        target = capped_weight * investable / price
        target_lots = math.floor(abs(target) / lot + 1e-9) * lot * (1 if target >= 0 else -1)
        quantity = rules.apply_execution_constraints(raw_qty=target_lots - held, lot_size=lot, min_qty=min_qty)
        sizing = f"weight {capped_weight:g} x {investable:,.2f} USD investable / {price:g} USD"
        if quantity == 0:
            if held == 0:
                why = f"target {target:.4g} shares of {symbol} ({sizing}) rounds to 0 with lot_size {lot}"
            else:
                why = f"target {target_lots:g} shares of {symbol} ({sizing}) equals the holding {held:g}"
            reasons[symbol] = capping + why + held_back
            continue
        planned.append(rules.PlannedOrder(symbol, quantity, price, capped_weight, target))
    sells = [o for o in planned if o.quantity < 0]
    buys = [o for o in planned if o.quantity > 0]
    kept = {
        o.symbol: o.quantity
        for o in rules.trim_buys_to_cash([*sells, *buys], cash=cash, portfolio_value=pv, params=params)
    }
    fee = rules.FeeRule(params.fee_bps)
    slippage = rules.SlippageRule(params.slippage_open_bps, params.slippage_close_bps)
    available = cash - buffer * pv
    for order in sells:
        price = slippage.fill_price(order.reference_price, order.quantity, at_open=False)
        available += -order.quantity * price - fee.fee(order.quantity, price)
    minimum = math.ceil(min_qty / lot) * lot
    for order in buys:
        price = slippage.fill_price(order.reference_price, order.quantity, at_open=False)
        if order.symbol in kept:
            available -= kept[order.symbol] * price + fee.fee(kept[order.symbol], price)
            continue
        cost = minimum * price + fee.fee(minimum, price)
        reasons[order.symbol] = (
            f"a buy of {order.quantity} shares of {order.symbol} is dropped: the cash left after the cash buffer "
            f"({buffer:g} x {pv:,.2f} USD held back) and the orders before it is {available:,.2f} USD, "
            f"below the {cost:,.2f} USD that min_qty {min_qty} (lot_size {lot}) costs at {price:g} USD"
        )
    return reasons


def _check_symbol(
    symbol: str, today: _Day, held: float, got: _Done, params: ExecutionParams, findings: Findings
) -> SymbolVerdict:
    day, weights = today.day, today.weights
    recomputed = today.expected is not None and symbol not in today.skipped
    exp_qty = today.expected.get(symbol, 0.0) if today.expected is not None and recomputed else None
    _check_side(symbol, day, weights, held, got, exp_qty, today.universe, findings)
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
        elif exp_qty == 0 and not got.orders and (weights.get(symbol, 0.0) != 0 or held != 0):
            why = today.why_no_order(symbol, params) or "the recomputation plans none"
            findings.add("recomputation", "pass", f"no order, as the rules give: {why}", symbol=symbol, day=day)
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
    universe: Collection[str],
    findings: Findings,
) -> None:
    """``unexpected_symbol`` (symbols of the universe; the per-order check reports the others) and ``intended_side``."""
    in_intent = symbol in weights
    if exp_qty is not None:
        side_sign = float(np.sign(exp_qty))
    elif in_intent and held == 0:
        side_sign = float(np.sign(weights[symbol]))
    else:
        side_sign = float("nan")
    if not in_intent and got.orders and not (exp_qty or 0.0) and symbol in universe:
        findings.add(
            "unexpected_symbol",
            "fail",
            f"{_orders_named(got)} ({symbol}, rebalance {day.isoformat()}): {symbol} is not a target of this "
            "rebalance and no sale of it was expected",
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
                f"{_orders_named(got)} ({symbol}, rebalance {day.isoformat()}): side {sorted(got.directions)}, "
                f"intended {want}",
                symbol=symbol,
                day=day,
            )
        else:
            findings.add("intended_side", "pass", f"{want} as intended", symbol=symbol, day=day)


def _orders_named(got: _Done) -> str:
    ids = got.order_ids[:5]
    more = f" and {len(got.order_ids) - 5} more" if len(got.order_ids) > 5 else ""
    return ("order " if len(ids) == 1 else "orders ") + ", ".join(str(i) for i in ids) + more


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
