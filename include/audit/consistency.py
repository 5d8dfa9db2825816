"""Consistency check: did Lean's orders do what the intent and the execution params asked?

Inputs are the run's ingested ``order_events`` (read column-wise from the database), the
intent, the execution params, the starting account and Lean-format daily bars. Checks, each with
a per-symbol verdict (``pass``/``warn``/``fail``):

``intended_side``     every (rebalance date, symbol) with a non-zero expected delta has orders, all on
                      the expected side (the sign of the recomputed delta; the intent side when no
                      recomputation is possible).
``unexpected_symbol`` no order for a symbol outside the intent, unless the recomputation expected a
                      sale of a held symbol the intent leaves out.
``terminal_state``    every order's last event is filled/canceled/invalid. Invalid orders fail and
                      canceled ones warn, each listed with Lean's message.
``lot_size``          every order's filled quantity is a multiple of ``lot_size`` and, when non-zero,
                      at least ``min_qty``.
``achieved_weight``   ``|achieved - target| <= tolerance`` where, at reference prices ``p`` (backtest: the
                      close of the last session before the rebalance date; live: the rebalance day's
                      close, when a live run trades) and portfolio value ``PV`` (cash +
                      holdings at ``p`` before the rebalance):
                      achieved = (holding + filled) * p / PV and
                      tolerance = max(lot_size, min_qty) * p / PV             (one lot of rounding)
                                + cash_buffer_ratio * |target|              (cash held back)
                                + |target| * |avg_fill / p - 1|             (price move to the fill)
                                + fee_bps / 10_000 * |target| + 1e-9        (fees paid from cash).
``fees``              per fill, fee == fee_bps / 10_000 * |fill_qty| * fill_price within 0.5 cent + 1e-6
                      relative (Lean's decimal rounding).
``slippage``          backtest: each fill price is within the open (resp. close) slippage bps of the
                      fill day's open (resp. close) bar price; live: within the day's [low, high]
                      widened by the larger slippage bps.
``recomputation``     an independent recomputation with ``algorithms.execution_rules.build_orders``
                      (the very function the algorithm uses) gives the same quantity per (date,
                      symbol) as Lean's orders (sum of order quantities); every mismatch is listed.

Policy ``fail``: an overall ``fail`` raises ``ConsistencyCheckFailed`` after the report is saved.
Policy ``warn``: the same report, no exception.

Hot path: events are fetched as column tuples and aggregated with pandas/numpy (group-by per
order, vectorised fee and price tests); Python loops run per symbol, never per event.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from include.atomic_io import atomic_write_json, atomic_write_text
from include.audit.db import ConsistencyResultRow, IntentOrderRow, OrderEventRow, RebalanceRun
from include.audit.ingest import NEW_YORK
from include.audit.run_folder import StartingState
from include.contracts.intent import OrderIntent
from include.contracts.manifest import RunManifest
from include.contracts.params import ExecutionParams
from include.contracts.report import CheckResult, ConsistencyReport, Policy, SymbolVerdict, Verdict, worst
from include.errors import AuditDatabaseError, ConsistencyCheckFailed
from include.reporting.html import render_run_page
from include.reporting.run_view import load_run_view

CHECKS = (
    "intended_side",
    "unexpected_symbol",
    "terminal_state",
    "lot_size",
    "achieved_weight",
    "fees",
    "slippage",
    "recomputation",
)
FEE_ABS_TOLERANCE = 0.005
PRICE_REL_EPS = 1e-6
QTY_EPS = 1e-9
_EVENT_COLUMNS = (
    "order_id",
    "order_event_id",
    "symbol_value",
    "time",
    "status",
    "direction",
    "fill_price",
    "fill_quantity",
    "fee_amount",
    "quantity",
    "intent_order_id",
)

BuildOrders = Callable[..., Sequence[Any]]


@dataclass
class _Findings:
    results: list[CheckResult] = field(default_factory=list)
    problems: dict[tuple[dt.date | None, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    verdicts: dict[tuple[dt.date | None, str], list[Verdict]] = field(default_factory=lambda: defaultdict(list))

    def add(
        self,
        check: str,
        verdict: Verdict,
        message: str,
        *,
        symbol: str | None = None,
        day: dt.date | None = None,
        **details: Any,
    ) -> None:
        if day is not None:
            details["rebalance_date"] = day.isoformat()
        self.results.append(
            CheckResult(check=check, symbol=symbol, verdict=verdict, message=message, details=_jsonable(details))
        )
        if symbol is not None:
            self.verdicts[(day, symbol)].append(verdict)
            if verdict != "pass":
                self.problems[(day, symbol)].append(f"{check}: {message}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# ---------------------------------------------------------------------------- loading


def load_event_columns(engine: Engine, run_id: int) -> pd.DataFrame:
    """The run's events as columns, sorted by (order_id, order_event_id)."""
    table = OrderEventRow.__table__
    stmt = (
        select(*(table.c[name] for name in _EVENT_COLUMNS))
        .where(table.c.run_id == run_id)
        .order_by(table.c.order_id, table.c.order_event_id)
    )
    with engine.connect() as conn:
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        # The driver's own cursor: plain tuples. SQLAlchemy Row objects cost pandas ~10 µs each.
        driver = conn.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        try:
            cursor.execute(str(compiled))
            rows = cursor.fetchall()
        finally:
            cursor.close()
    frame = pd.DataFrame.from_records(rows, columns=list(_EVENT_COLUMNS), coerce_float=True)
    for name in ("time", "fill_price", "fill_quantity", "fee_amount", "quantity"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


def _intent_order_keys(engine: Engine, run_id: int) -> dict[int, tuple[dt.date, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(IntentOrderRow.id, IntentOrderRow.rebalance_date, IntentOrderRow.symbol).where(
                IntentOrderRow.run_id == run_id
            )
        )
        return {int(i): (d, s) for i, d, s in rows}


def _messages(engine: Engine, run_id: int) -> dict[int, str]:
    table = OrderEventRow.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.order_id, table.c.message)
            .where(table.c.run_id == run_id, table.c.status.in_(("invalid", "canceled")))
            .order_by(table.c.order_id, table.c.order_event_id)
        )
        return {int(order_id): message or "" for order_id, message in rows}


def _daily_bars(data_folder: Path | None, symbols: Sequence[str], adjusted: bool) -> dict[str, pd.DataFrame]:
    from include.market_data import MarketDataError, read_daily_bars

    bars: dict[str, pd.DataFrame] = {}
    if data_folder is None:
        return bars
    for symbol in symbols:
        try:
            bars[symbol] = read_daily_bars(data_folder, symbol, adjusted=adjusted)
        except MarketDataError:
            continue
    return bars


def reference_close(bars: pd.DataFrame | None, day: dt.date) -> float | None:
    """Close of the last session strictly before ``day``."""
    if bars is None:
        return None
    before = bars.loc[bars.index < pd.Timestamp(day), "close"]
    return float(before.iloc[-1]) if len(before) else None


def _load_build_orders() -> BuildOrders | None:
    import importlib

    try:
        module = importlib.import_module("algorithms.execution_rules")
    except ImportError:
        return None
    build: BuildOrders | None = getattr(module, "build_orders", None)
    return build


# ---------------------------------------------------------------------------- the check


def _order_table(
    events: pd.DataFrame,
    boundaries: np.ndarray,
    dates: Sequence[dt.date],
    intent_keys: Mapping[int, tuple[dt.date, str]],
) -> pd.DataFrame:
    """One row per Lean order: symbol, direction, quantity, last status, filled, fees, notional, date."""
    if events.empty:
        return pd.DataFrame(
            columns=[
                "order_id",
                "symbol",
                "direction",
                "quantity",
                "status",
                "filled",
                "fees",
                "notional",
                "value",
                "first_time",
                "intent_order_id",
                "day",
            ]
        )
    notional = (events["fill_quantity"].abs() * events["fill_price"]).rename("notional")
    frame = events.assign(
        notional=notional, value=events["fill_quantity"] * events["fill_price"], fee=events["fee_amount"].fillna(0.0)
    )
    grouped = frame.groupby("order_id", sort=True)
    orders = pd.DataFrame(
        {
            "symbol": grouped["symbol_value"].first(),
            "direction": grouped["direction"].first(),
            "quantity": grouped["quantity"].last(),
            "status": grouped["status"].last(),
            "filled": grouped["fill_quantity"].sum(),
            "fees": grouped["fee"].sum(),
            "notional": grouped["notional"].sum(),
            "value": grouped["value"].sum(),
            "first_time": grouped["time"].min(),
            "intent_order_id": grouped["intent_order_id"].first(),
        }
    ).reset_index()
    orders["symbol"] = orders["symbol"].str.upper()
    # Rebalance date of an order: its intent link, else the latest rebalance <= its first event.
    position = np.searchsorted(boundaries, orders["first_time"].to_numpy(dtype=np.float64), side="right") - 1
    by_time = pd.Series(np.array([*dates, None], dtype=object)[np.where(position >= 0, position, len(dates))])
    linked = orders["intent_order_id"].map({i: key[0] for i, key in intent_keys.items()})
    orders["day"] = linked.astype(object).where(linked.notna(), by_time).to_numpy(dtype=object)
    return orders


def _fill_checks(
    events: pd.DataFrame, params: ExecutionParams, bars: Mapping[str, pd.DataFrame], mode: str, findings: _Findings
) -> None:
    fills = events.loc[
        events["fill_quantity"] != 0, ["order_id", "symbol_value", "time", "fill_price", "fill_quantity", "fee_amount"]
    ]
    if fills.empty:
        findings.add("fees", "pass", "no fills")
        findings.add("slippage", "pass", "no fills")
        return
    symbols = fills["symbol_value"].str.upper().to_numpy()
    notional = fills["fill_quantity"].abs().to_numpy() * fills["fill_price"].to_numpy()
    expected_fee = params.fee_bps / 10_000.0 * notional
    fee = fills["fee_amount"].fillna(0.0).to_numpy()
    fee_bad = np.abs(fee - expected_fee) > FEE_ABS_TOLERANCE + 1e-6 * expected_fee
    _per_symbol(
        findings,
        "fees",
        symbols,
        fee_bad,
        fills["order_id"].to_numpy(),
        lambda i: f"fee {fee[i]:.6f} != fee_bps x notional {expected_fee[i]:.6f}",
    )

    days = (
        pd.to_datetime(fills["time"].to_numpy(), unit="s", utc=True).tz_convert(NEW_YORK).tz_localize(None).normalize()
    )
    price = fills["fill_price"].to_numpy()
    open_ = np.full(len(fills), np.nan)
    close = np.full(len(fills), np.nan)
    low = np.full(len(fills), np.nan)
    high = np.full(len(fills), np.nan)
    for symbol in np.unique(symbols):
        mask = symbols == symbol
        table = bars.get(str(symbol))
        if table is None:
            continue
        aligned = table.reindex(days[mask])
        open_[mask] = aligned["open"].to_numpy()
        close[mask] = aligned["close"].to_numpy()
        low[mask] = aligned["low"].to_numpy()
        high[mask] = aligned["high"].to_numpy()
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
        fills["order_id"].to_numpy(),
        lambda i: f"fill price {price[i]} outside the slippage band of open {open_[i]} / close {close[i]}",
    )
    if missing.any():
        for symbol in np.unique(symbols[missing]):
            findings.add(
                "slippage",
                "warn",
                "no daily bar for the fill date; price not checked",
                symbol=str(symbol),
                fills=int((symbols[missing] == symbol).sum()),
            )


def _per_symbol(
    findings: _Findings,
    check: str,
    symbols: np.ndarray,
    bad: np.ndarray,
    order_ids: np.ndarray,
    describe: Callable[[int], str],
) -> None:
    if not bad.any():
        findings.add(check, "pass", f"all {len(bad)} fills pass")
        return
    for symbol in np.unique(symbols[bad]):
        idx = np.flatnonzero(bad & (symbols == symbol))
        findings.add(
            check,
            "fail",
            f"{len(idx)} fills fail; first: order {int(order_ids[idx[0]])}: {describe(idx[0])}",
            symbol=str(symbol),
            count=len(idx),
            order_ids=[int(order_ids[i]) for i in idx[:20]],
        )


def _planned_quantities(
    build_orders: BuildOrders,
    *,
    weights: Mapping[str, float],
    prices: Mapping[str, float],
    holdings: Mapping[str, float],
    cash: float,
    portfolio_value: float,
    params: ExecutionParams,
) -> dict[str, float]:
    planned = build_orders(
        weights=dict(weights),
        prices=dict(prices),
        holdings=dict(holdings),
        cash=cash,
        portfolio_value=portfolio_value,
        params=params,
    )
    out: dict[str, float] = defaultdict(float)
    for order in planned:
        out[str(order.symbol).upper()] += float(order.quantity)
    return dict(out)


def check_consistency(
    *,
    engine: Engine,
    run_id: int,
    intent: OrderIntent,
    params: ExecutionParams,
    starting: StartingState,
    data_folder: str | os.PathLike[str] | None,
    policy: Policy = "fail",
    mode: str = "backtest",
    algorithm_id: str | None = None,
    manifest: RunManifest | None = None,
    manifest_sha256: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    build_orders: BuildOrders | None = None,
) -> ConsistencyReport:
    """Check one ingested run; save report.json/report.html in ``output_dir`` and result rows."""
    with engine.connect() as conn:
        found = conn.execute(
            select(RebalanceRun.dag_id, RebalanceRun.run_key).where(RebalanceRun.id == run_id)
        ).one_or_none()
    if found is None:
        raise AuditDatabaseError(f"rebalance run id {run_id} does not exist")
    dag_id, run_key = found
    findings = _Findings()
    events = load_event_columns(engine, run_id)
    intent_keys = _intent_order_keys(engine, run_id)
    dates = [r.date for r in intent.rebalances]
    boundaries = np.array(
        [dt.datetime.combine(d, dt.time(0, 0), tzinfo=NEW_YORK).timestamp() for d in dates], dtype=np.float64
    )
    orders = _order_table(events, boundaries, dates, intent_keys)
    intent_symbols = set(intent.symbols)
    all_symbols = sorted(intent_symbols | set(orders["symbol"]) | set(starting.holdings))
    bars = _daily_bars(Path(data_folder) if data_folder is not None else None, all_symbols, adjusted=mode != "live")

    # --- per-order, vectorised
    status = orders["status"].to_numpy(dtype=object)
    terminal = np.isin(status, ["filled", "canceled", "invalid"])
    messages = _messages(engine, run_id) if (~terminal | (status != "filled")).any() else {}
    for row in orders.loc[~terminal].itertuples():
        findings.add(
            "terminal_state",
            "fail",
            f"order {row.order_id} ended {row.status}, not terminal",
            symbol=row.symbol,
            day=row.day,
            order_id=int(row.order_id),
        )
    for row in orders.loc[np.isin(status, ["invalid", "canceled"])].itertuples():
        verdict: Verdict = "fail" if row.status == "invalid" else "warn"
        findings.add(
            "terminal_state",
            verdict,
            f"order {row.order_id} {row.status}: {messages.get(int(row.order_id), '')}",
            symbol=row.symbol,
            day=row.day,
            order_id=int(row.order_id),
            lean_message=messages.get(int(row.order_id), ""),
        )
    if terminal.all() and not np.isin(status, ["invalid", "canceled"]).any():
        findings.add("terminal_state", "pass", f"all {len(orders)} orders filled")

    filled = orders["filled"].to_numpy(dtype=np.float64)
    abs_filled = np.abs(filled)
    off_lot = np.abs(abs_filled / params.lot_size - np.round(abs_filled / params.lot_size)) > 1e-6
    below_min = (abs_filled > QTY_EPS) & (abs_filled < params.min_qty - QTY_EPS)
    lot_bad = off_lot | below_min
    for row in orders.loc[lot_bad].itertuples():
        findings.add(
            "lot_size",
            "fail",
            f"order {row.order_id} filled {row.filled} (lot_size {params.lot_size}, min_qty {params.min_qty})",
            symbol=row.symbol,
            day=row.day,
            order_id=int(row.order_id),
        )
    if not lot_bad.any():
        findings.add("lot_size", "pass", f"all fills are multiples of {params.lot_size} and >= {params.min_qty}")

    _fill_checks(events, params, bars, mode, findings)

    # --- per (rebalance date, symbol): side, outside-intent, weight, recomputation
    build = build_orders or _load_build_orders()
    holdings: dict[str, float] = {s: q for s, q in starting.holdings.items() if q != 0}
    cash = starting.cash
    verdict_rows: list[SymbolVerdict] = []
    per_key = orders.groupby(["day", "symbol"], sort=False) if not orders.empty else None
    agg: dict[tuple[dt.date, str], dict[str, Any]] = {}
    if per_key is not None:
        for (day, symbol), grp in per_key:
            agg[(day, symbol)] = {
                "ordered": float(grp["quantity"].sum()),
                "filled": float(grp["filled"].sum()),
                "fees": float(grp["fees"].sum()),
                "notional": float(grp["notional"].sum()),
                "orders": len(grp),
                "directions": set(grp["direction"]),
                "cash_flow": -float(grp["value"].sum()),
            }
    for day in dates:
        rebalance = next(r for r in intent.rebalances if r.date == day)
        weights = {i.symbol: i.weight for i in rebalance.items}
        symbols = sorted(set(weights) | set(holdings) | {s for (d, s) in agg if d == day})
        # The algorithm sizes a backtest rebalance on the last close before its day; a live one
        # on the day's own bar (it trades after the close, when that bar arrives).
        as_seen = day + dt.timedelta(days=1) if mode == "live" else day
        prices = {s: p for s in symbols if (p := reference_close(bars.get(s), as_seen)) is not None}
        pv = None
        if cash is not None and all(s in prices for s in holdings):
            pv = cash + sum(q * prices[s] for s, q in holdings.items())
        expected: dict[str, float] | None = None
        if build is None:
            findings.add(
                "recomputation", "warn", "algorithms.execution_rules is not importable; not recomputed", day=day
            )
        elif pv is None or pv <= 0 or any(s not in prices for s in weights):
            findings.add(
                "recomputation",
                "warn",
                "starting cash or reference prices unknown; not recomputed",
                day=day,
                missing_prices=sorted(s for s in weights if s not in prices),
                cash=cash,
            )
        else:
            expected = _planned_quantities(
                build,
                weights=weights,
                prices=prices,
                holdings=holdings,
                cash=float(cash or 0.0),
                portfolio_value=pv,
                params=params,
            )
        for symbol in symbols:
            got = agg.get(
                (day, symbol),
                {
                    "ordered": 0.0,
                    "filled": 0.0,
                    "fees": 0.0,
                    "notional": 0.0,
                    "orders": 0,
                    "directions": set(),
                    "cash_flow": 0.0,
                },
            )
            in_intent = symbol in weights
            exp_qty = expected.get(symbol, 0.0) if expected is not None else None
            held = holdings.get(symbol, 0.0)
            # intended side
            if exp_qty is not None:
                side_sign = float(np.sign(exp_qty))
            elif in_intent and held == 0:
                side_sign = float(np.sign(weights[symbol]))
            else:
                side_sign = float("nan")
            if not in_intent and got["orders"] and not (exp_qty or 0.0):
                findings.add(
                    "unexpected_symbol",
                    "fail",
                    f"{got['orders']} orders for a symbol outside the intent",
                    symbol=symbol,
                    day=day,
                    ordered=got["ordered"],
                )
            if side_sign == side_sign and side_sign != 0:
                want = "buy" if side_sign > 0 else "sell"
                if not got["orders"]:
                    findings.add(
                        "intended_side", "fail", f"no order although a {want} was intended", symbol=symbol, day=day
                    )
                elif got["directions"] - {want}:
                    findings.add(
                        "intended_side",
                        "fail",
                        f"orders on side {sorted(got['directions'])}, intended {want}",
                        symbol=symbol,
                        day=day,
                    )
                else:
                    findings.add("intended_side", "pass", f"{want} as intended", symbol=symbol, day=day)
            if exp_qty is not None:
                if abs(exp_qty - got["ordered"]) > QTY_EPS:
                    findings.add(
                        "recomputation",
                        "fail",
                        f"expected quantity {exp_qty:g} (build_orders), Lean ordered {got['ordered']:g}",
                        symbol=symbol,
                        day=day,
                        expected=exp_qty,
                        lean=got["ordered"],
                    )
                else:
                    findings.add("recomputation", "pass", f"quantity {exp_qty:g} matches", symbol=symbol, day=day)
            # achieved weight
            ref = prices.get(symbol)
            target = weights.get(symbol, 0.0)
            achieved = tol = None
            if ref is not None and pv:
                achieved = (held + got["filled"]) * ref / pv
                avg_fill = got["notional"] / abs(got["filled"]) if got["filled"] else ref
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
            elif in_intent:
                findings.add("achieved_weight", "warn", "no reference price or portfolio value", symbol=symbol, day=day)
            key = (day, symbol)
            verdict_rows.append(
                SymbolVerdict(
                    symbol=symbol,
                    rebalance_date=day,
                    verdict=worst(findings.verdicts.get(key, [])),
                    in_intent=in_intent,
                    target_weight=weights.get(symbol),
                    achieved_weight=achieved,
                    weight_tolerance=tol,
                    reference_price=ref,
                    expected_quantity=exp_qty,
                    ordered_quantity=got["ordered"],
                    filled_quantity=got["filled"],
                    orders=got["orders"],
                    fees=got["fees"],
                    problems=tuple(findings.problems.get(key, [])),
                )
            )
            # roll the account forward to the next rebalance
            new_qty = held + got["filled"]
            if abs(new_qty) > QTY_EPS:
                holdings[symbol] = new_qty
            else:
                holdings.pop(symbol, None)
            if cash is not None:
                cash += got["cash_flow"] - got["fees"]
    # findings on symbols without a date key (fill-level checks) fold into every row of that symbol
    undated = {s: v for (d, s), v in findings.verdicts.items() if d is None}
    undated_problems = {s: p for (d, s), p in findings.problems.items() if d is None}
    final_rows = []
    for row in verdict_rows:
        extra_v = undated.get(row.symbol, [])
        extra_p = undated_problems.get(row.symbol, [])
        final_rows.append(
            row.model_copy(
                update={"verdict": worst([row.verdict, *extra_v]), "problems": row.problems + tuple(extra_p)}
            )
            if extra_v
            else row
        )
    overall = worst([c.verdict for c in findings.results])
    manifest_files = {role: f.sha256 for role, f in manifest.files.items()} if manifest is not None else {}
    if manifest is not None and manifest.data_sha256:
        manifest_files["data"] = manifest.data_sha256
    report = ConsistencyReport(
        dag_id=dag_id,
        run_key=run_key,
        algorithm_id=algorithm_id,
        policy=policy,
        verdict=overall,
        generated_at=dt.datetime.now(dt.UTC),
        events=len(events),
        orders=len(orders),
        symbols=tuple(final_rows),
        checks=tuple(findings.results),
        manifest_sha256=manifest_sha256,
        manifest_files=manifest_files,
        tolerances={"fee_abs": FEE_ABS_TOLERANCE, "price_rel_eps": PRICE_REL_EPS, "qty_eps": QTY_EPS},
    )
    report_path = save_report(report, engine=engine, run_id=run_id, output_dir=output_dir)
    if policy == "fail" and overall == "fail":
        raise ConsistencyCheckFailed(report_path, report.failures)
    return report


def save_report(
    report: ConsistencyReport, *, engine: Engine, run_id: int, output_dir: str | os.PathLike[str] | None
) -> str | None:
    """Write report.json and report.html (atomic) and replace the run's consistency rows."""
    path: str | None = None
    if output_dir is not None:
        folder = Path(output_dir)
        atomic_write_json(folder / "report.json", report.model_dump(mode="json"))
        # The standalone page shows the whole run (orders, charts, manifest), not only the verdicts.
        atomic_write_text(folder / "report.html", render_run_page(load_run_view(folder)))
        path = str(folder / "report.json")
    with engine.begin() as conn:
        # Two checks of one run at once (a retry racing a re-run): lock the run's row first, or on
        # PostgreSQL each deletes only the rows it can see and both sets of new rows stay.
        conn.execute(select(RebalanceRun.id).where(RebalanceRun.id == run_id).with_for_update())
        conn.execute(delete(ConsistencyResultRow).where(ConsistencyResultRow.run_id == run_id))
        rows = [
            {
                "run_id": run_id,
                "check_name": c.check,
                "symbol": c.symbol,
                "verdict": c.verdict,
                "message": c.message,
                "details": c.details or None,
                "created_at": report.generated_at,
            }
            for c in report.checks
        ]
        if rows:
            conn.execute(insert(ConsistencyResultRow), rows)
        conn.execute(
            update(RebalanceRun)
            .where(RebalanceRun.id == run_id)
            .values(status=f"checked:{report.verdict}", updated_at=dt.datetime.now(dt.UTC))
        )
    return path


def check_run_dir(
    run_dir: str | os.PathLike[str],
    *,
    engine: Engine,
    policy: Policy = "fail",
    data_folder: str | os.PathLike[str] | None = None,
    build_orders: BuildOrders | None = None,
) -> ConsistencyReport:
    """Ingest (idempotent) and check one run folder (layout in ``include.audit.run_folder``)."""
    import hashlib

    from include.audit.ingest import ingest_order_events
    from include.audit.run_folder import open_run_folder

    run = open_run_folder(run_dir)
    intent = run.load_intent()
    params = run.load_params()
    starting = run.starting_state()
    mode = run.mode
    summary = ingest_order_events(
        engine=engine,
        results_dir=run.results_dir,
        algorithm_id=run.algorithm_id,
        intent=intent,
        dag_id=run.dag_id,
        run_key=run.run_key,
        mode="live" if mode == "live" else "backtest",
        holdings=starting.holdings,
    )
    manifest = manifest_sha = None
    if run.manifest_path.exists():
        raw = run.manifest_path.read_bytes()
        manifest = RunManifest.model_validate_json(raw)
        manifest_sha = hashlib.sha256(raw).hexdigest()
    return check_consistency(
        engine=engine,
        run_id=summary.run_id,
        intent=intent,
        params=params,
        starting=starting,
        data_folder=run.data_folder(data_folder),
        policy=policy,
        mode=mode,
        algorithm_id=run.algorithm_id,
        manifest=manifest,
        manifest_sha256=manifest_sha,
        output_dir=run.run_dir,
        build_orders=build_orders,
    )
