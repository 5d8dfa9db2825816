"""Consistency check: did Lean's orders do what the intent and the execution params asked?

Inputs are the run's ingested ``order_events`` (read column-wise from the audit DB, never from the
events files: the ``ingest_events`` task stored them), the intent, the execution params, the
starting account and Lean-format daily bars. Checks, each with a per-symbol verdict
(``pass``/``warn``/``fail``):

``intended_side``     every (rebalance date, symbol) with a non-zero expected delta has orders, all on
                      the expected side (the sign of the recomputed delta; the intent side when no
                      recomputation is possible).
``unexpected_symbol`` no order for a symbol outside the intent, unless the recomputation expected a
                      sale of a held symbol the intent leaves out; an order in a symbol of no
                      rebalance that was not held at the start fails whatever its date (Lean's
                      algorithm subscribes only those symbols).
``unexpected_date``   no event with a New York date before the intent's first rebalance date.
``terminal_state``    every order's last event is filled/canceled/invalid. Invalid orders fail and
                      canceled ones warn, each listed with Lean's message.
``order_sequence``    each order's statuses follow Lean's order state machine: it starts new,
                      submitted or invalid (or canceled), fills (partiallyFilled/filled) only once
                      submitted, never returns to new, and nothing follows filled, canceled or
                      invalid (a fill after "filled", "canceled" after "filled" fail); only
                      partiallyFilled/filled events carry a fill quantity.
``overfill``          per order, the sum of |fill quantity| over its events (late fills included)
                      is at most |quantity| (the last event's).
``lot_size``          every order's filled quantity is a multiple of ``lot_size`` and, when non-zero,
                      at least ``min_qty``.
``achieved_weight``   ``|achieved - target| <= tolerance`` where, at reference prices ``p`` (the close of
                      the last session before the rebalance date, in a backtest and live alike: a live
                      run sizes its market-on-close orders before D's close) and portfolio value ``PV``
                      (cash + holdings at ``p`` before the rebalance):
                      achieved = (holding + filled) * p / PV and
                      tolerance = max(lot_size, min_qty) * p / PV             (one lot of rounding)
                                + cash_buffer_ratio * |target|              (cash held back)
                                + |target| * |avg_fill / p - 1|             (price move to the fill)
                                + fee_bps / 10_000 * |target| + 1e-9        (fees paid from cash).
``fees``              per fill, fee == fee_bps / 10_000 * |fill_qty| * fill_price within 0.5 cent + 1e-6
                      relative (Lean's decimal rounding).
``slippage``          backtest: each fill price is within the open (resp. close) slippage bps of the
                      fill session's open (resp. close) bar price; live: a market-on-close order's
                      within ``slippage_close_bps`` of the session's close (it fills in the closing
                      auction), any other within the session's [low, high] widened by the larger
                      slippage bps. A fill's session is the New
                      York date of its time (a fill stamped at exactly midnight: the day before,
                      the end of that daily bar). A fill on a session without a bar fails.
``recomputation``     an independent recomputation with ``algorithms.execution_rules.build_orders``
                      (the very function the algorithm uses) gives the same quantity per (date,
                      symbol) as Lean's orders (sum of order quantities); every mismatch is listed.
                      It runs per symbol: a symbol without a reference price is skipped (and
                      reported) when its target is 0, and the others are still checked. Where it
                      expects no order for a symbol with a target or a holding, the pass says why,
                      with the rules' own functions (rounds to 0 lots, risk overrides, cash
                      buffer, cash left below min_qty): a run without orders is explained.
``live_session``      live: every order of ``done-<D>.json`` was filled (one canceled at the deadline or
                      invalid fails, dated D; ``include.audit.live``).
``live_account``      live: the account recomputed from the start and the fills matches the algorithm's
                      ``results/final-state.json`` and the holdings of Lean's ``LiveResult`` (a real
                      broker's are the truth).
``corporate_actions`` live: the account carried from the previous run took every split and cash
                      dividend between that run's session and this one's (``include.corporate_actions``
                      applies them and records them in ``initial_state.json``; without a record, at
                      least those effective on this run's first session). Each applied one is listed.

Price basis: fills, bars and quantities are compared on the prices each order was filled on, its
``priceAdjustmentMode`` in Lean's ``<id>.json`` (default: Raw live, Adjusted in a backtest, Lean's
``BrokerageTransactionHandler.SetPriceAdjustmentMode``). A fill is judged against the bars of its order's
basis; a symbol's reference prices and the account are on its orders' basis, and on Raw prices the
account takes the splits (and, in a backtest, dividends) between rebalances as Lean does
(``SecurityPortfolioManager.ApplySplit``/``ApplyDividend``). Adjusted bars are what the runtime reads.

Dates: every finding carries the New York session it concerns (``CheckResult.date``: its order's
rebalance date for an order or fill finding; None for the whole run) and counts towards that one
(date, symbol) row only. The DB rows keep it in their details (no column: the report is the record).

Policy ``fail``: an overall ``fail`` raises ``ConsistencyCheckFailed`` after the report is saved.
Policy ``warn``: the same report, no exception.

Layout: ``include.audit.orders`` builds the order frame (one row per Lean order, the aggregation
the report and the parity diff share), ``include.audit.order_checks`` runs the per-order checks,
``include.audit.rebalance_checks`` the per-rebalance ones, ``include.audit.findings`` collects
what they find; :func:`check_consistency` runs them in that order and :func:`check_run_folder`
is the DAG's ``consistency_check`` task: inputs from the run folder, report.json + DB rows, and
report.html rendered from the report (which carries every order), without reading an events file.

Hot path: events are fetched as column tuples and aggregated with pandas/numpy (group-by per
order, vectorised fee and price tests); Python loops run per symbol, never per event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from include.atomic_io import atomic_write_text
from include.audit.db import ConsistencyResultRow, RebalanceRun
from include.audit.findings import CHECKS, TOLERANCES, Findings
from include.audit.live import LiveRun, check_live_session, live_session, live_starting_state
from include.audit.order_checks import SUPPORTED_BASES, BarKey, check_orders, default_price_basis
from include.audit.orders import load_event_columns, load_intent_days, order_frame, order_table
from include.audit.rebalance_checks import (
    BuildOrders,
    check_carried_state,
    check_rebalances_and_account,
    load_build_orders,
    reference_close,
)
from include.contracts.intent import OrderIntent
from include.contracts.manifest import RunManifest
from include.contracts.params import ExecutionParams
from include.contracts.report import ConsistencyReport, Policy, worst
from include.corporate_actions import (
    ACTIONS_BY_BASIS,
    CarryRecord,
    CorporateAction,
    corporate_actions,
    read_carry_record,
)
from include.errors import AuditDatabaseError, ConsistencyCheckFailed
from include.launch.config import LauncherConfig, Mode
from include.reporting.html import write_report_html
from include.run_folder import RunFolder, RunRef, StartingState
from include.trading_calendar import previous_session

__all__ = [
    "CHECKS",
    "AuditRun",
    "BuildOrders",
    "CheckInputs",
    "check_consistency",
    "check_run_folder",
    "find_audit_run",
    "reference_close",
    "save_report",
]


@dataclass(frozen=True)
class CheckInputs:
    """What Lean's orders are checked against."""

    intent: OrderIntent
    params: ExecutionParams
    starting: StartingState
    data_folder: Path | None = None
    mode: Mode = "backtest"
    manifest: RunManifest | None = None
    manifest_sha256: str | None = None
    # Order id -> the prices Lean filled it on (its ``priceAdjustmentMode`` in ``<id>.json``); an order
    # not listed fills on the mode's default (Raw live, Adjusted in a backtest).
    price_modes: Mapping[int, str] = field(default_factory=dict)
    price_modes_problem: str | None = None  # why ``<id>.json`` could not be read
    carry: CarryRecord | None = None  # what the carry-over applied to the starting account
    # Order id -> Lean's order type name (``<id>.json``), e.g. MarketOnClose.
    order_types: Mapping[int, str] = field(default_factory=dict)
    live: LiveRun | None = None  # a live run's done marker, final state and LiveResult

    @classmethod
    def from_folder(
        cls, folder: RunFolder, config: LauncherConfig, data_folder: str | os.PathLike[str] | None = None
    ) -> CheckInputs:
        manifest = manifest_sha = None
        if folder.manifest_path.exists():
            raw = folder.manifest_path.read_bytes()
            manifest = RunManifest.model_validate_json(raw)
            manifest_sha = hashlib.sha256(raw).hexdigest()
        price_modes, order_types, problem = _order_metadata(folder)
        intent = folder.load_intent()
        live = None
        carry_path = folder.local_path(config.parameters.get("initial-state-path"))
        if config.mode == "live":
            starting = live_starting_state(folder, config)
            live = LiveRun.from_folder(folder, config, live_session(intent))
            # Live, the carried account reaches Lean through live-cash-balance/live-holdings, not a parameter.
            carry_path = folder.inside(folder.initial_state_path) if folder.initial_state_path.exists() else None
        else:
            starting = folder.starting_state(config)
        return cls(
            intent=intent,
            params=folder.load_params(),
            starting=starting,
            data_folder=Path(data_folder) if data_folder is not None else folder.data_folder(config),
            mode=config.mode,
            manifest=manifest,
            manifest_sha256=manifest_sha,
            price_modes=price_modes,
            price_modes_problem=problem,
            carry=read_carry_record(carry_path),
            order_types=order_types,
            live=live,
        )


def _order_metadata(folder: RunFolder) -> tuple[dict[int, str], dict[int, str], str | None]:
    """Each order's price adjustment mode and type from Lean's ``<id>.json`` (the order events carry
    neither; a backtest's result and a live ``LiveResult`` both hold ``orders``), through the parity
    diff's reader of that file; ({}, {}, why) when it cannot be read."""
    from include.audit.parity import _order_metadata as read_metadata
    from include.errors import ParityError

    try:
        metadata = read_metadata(folder.inside(folder.results_dir), folder.algorithm_id)
    except ParityError as exc:
        return {}, {}, str(exc)
    modes = {order_id: mode for order_id, (_kind, mode) in metadata.items() if mode is not None}
    kinds = {order_id: kind for order_id, (kind, _mode) in metadata.items() if kind is not None}
    return modes, kinds, None


@dataclass(frozen=True)
class AuditRun:
    """A run's row in the audit DB (``rebalance_runs``)."""

    audit_run_id: int
    dag_id: str
    run_key: str
    algorithm_id: str | None


def find_audit_run(engine: Engine, ref: RunRef) -> AuditRun:
    """The run's audit row; ``AuditDatabaseError`` when the run was never ingested."""
    with engine.connect() as conn:
        found = conn.execute(
            select(RebalanceRun.id, RebalanceRun.algorithm_id).where(
                RebalanceRun.dag_id == ref.dag_id,
                RebalanceRun.run_key == ref.run_key,
                RebalanceRun.superseded_at.is_(None),  # the current attempt; superseded ones are history
            )
        ).one_or_none()
    if found is None:
        raise AuditDatabaseError(f"run {ref} is not in the audit database, not ingested: run ingest_events first")
    return AuditRun(audit_run_id=int(found[0]), dag_id=ref.dag_id, run_key=ref.run_key, algorithm_id=found[1])


def _daily_bars(data_folder: Path | None, keys: set[BarKey]) -> dict[BarKey, pd.DataFrame]:
    """Daily bars by (symbol, price basis), read through the runtime's reader (``include.market_data``):
    Raw unscaled, Adjusted with the factor files as Lean's default mode; other bases are not read."""
    from include.market_data import MarketDataError, read_daily_bars

    bars: dict[BarKey, pd.DataFrame] = {}
    if data_folder is None:
        return bars
    for symbol, basis in sorted(keys):
        if basis not in SUPPORTED_BASES:
            continue
        try:
            bars[(symbol, basis)] = read_daily_bars(data_folder, symbol, adjusted=basis != "Raw")
        except MarketDataError:
            continue
    return bars


@dataclass(frozen=True)
class _Bases:
    """The price basis of each order (a row of the order frame) and of each symbol: its orders' (Lean
    keeps one per symbol), else the run's (its orders' when they agree, else the mode's default)."""

    orders: np.ndarray
    symbols: dict[str, str]
    default: str

    @classmethod
    def of(cls, orders: pd.DataFrame, inputs: CheckInputs, findings: Findings) -> _Bases:
        default = default_price_basis(inputs.mode)
        if inputs.price_modes_problem is not None:
            findings.add(
                "slippage",
                "warn",
                f"the orders' price basis is unknown ({inputs.price_modes_problem}); fills judged on {default} prices",
            )
        if not inputs.price_modes:  # no ``<id>.json`` (or no mode in it): every order on the default
            return cls(orders=np.full(len(orders), default, dtype=object), symbols={}, default=default)
        ids = pd.Series(orders["order_id"].to_numpy(), dtype="int64")
        mapped = ids.map(dict(inputs.price_modes)).astype(object)
        per_order = mapped.where(mapped.notna(), default).to_numpy(dtype=object)
        # Each symbol's most frequent basis (counted in C: a run has 10^5+ orders, a few symbols).
        counts = pd.DataFrame({"symbol": orders["symbol"].to_numpy(dtype=object), "basis": per_order}).value_counts()
        by_symbol: dict[str, str] = {}
        for symbol, basis in counts.index:
            by_symbol.setdefault(str(symbol), str(basis))
        distinct = set(by_symbol.values())
        return cls(orders=per_order, symbols=by_symbol, default=distinct.pop() if len(distinct) == 1 else default)

    def of_symbol(self, symbol: str) -> str:
        return self.symbols.get(symbol, self.default)


def _corporate_actions(
    inputs: CheckInputs, symbols: list[str], after: dt.date | None, through: dt.date, findings: Findings
) -> list[CorporateAction]:
    """The splits and dividends of ``symbols`` effective in (``after``, ``through``] (none without data)."""
    from include.market_data import MarketDataError

    if inputs.data_folder is None or after is None or not symbols:
        return []
    try:
        return corporate_actions(inputs.data_folder, symbols, after=after, through=through)
    except MarketDataError as exc:
        findings.add("corporate_actions", "warn", f"splits and dividends unknown: {exc}")
        return []


def check_consistency(
    *,
    engine: Engine,
    run: AuditRun,
    inputs: CheckInputs,
    policy: Policy = "fail",
    build_orders: BuildOrders | None = None,
) -> ConsistencyReport:
    """Check one ingested run; the report (nothing is saved, nothing ingested, nothing rendered)."""
    findings = Findings()
    events = load_event_columns(engine, run.audit_run_id)
    orders = order_frame(
        events,
        rebalance_dates=[r.date for r in inputs.intent.rebalances],
        intent_days=load_intent_days(engine, run.audit_run_id),
    )
    symbols = sorted(set(inputs.intent.symbols) | set(orders["symbol"]) | set(inputs.starting.holdings))
    # Fills, bars and quantities on the prices each order was filled on (issue #17): a live order on
    # Raw prices against raw bars, a backtest's on Adjusted ones against adjusted bars.
    bases = _Bases.of(orders, inputs, findings)
    bars = _daily_bars(
        inputs.data_folder,
        {(s, bases.of_symbol(s)) for s in symbols} | set(zip(orders["symbol"], bases.orders, strict=True)),
    )
    universe = set(inputs.intent.symbols) | {s.upper() for s, q in inputs.starting.holdings.items() if q}
    days = sorted(r.date for r in inputs.intent.rebalances)
    check_orders(
        orders,
        events,
        inputs.params,
        bars,
        inputs.mode,
        findings,
        first_rebalance=days[0],
        universe=universe,
        bases=bases.orders,
        order_types=inputs.order_types,
    )
    if inputs.mode == "live" and any(inputs.starting.holdings.values()):
        # A live account carried from an earlier run: the splits and dividends since that run's
        # session (at least those effective on this one's) must be in it.
        held = sorted(s for s, q in inputs.starting.holdings.items() if q)
        since = inputs.carry.from_session if inputs.carry is not None else previous_session(days[0])
        check_carried_state(
            inputs.starting,
            carry=inputs.carry,
            expected=_corporate_actions(inputs, held, since, days[0], findings),
            findings=findings,
        )
    unadjusted = [s for s in symbols if ACTIONS_BY_BASIS.get(bases.of_symbol(s))]
    rows, account = check_rebalances_and_account(
        orders,
        intent=inputs.intent,
        params=inputs.params,
        starting=inputs.starting,
        bars={s: frame for s in symbols if (frame := bars.get((s, bases.of_symbol(s)))) is not None},
        mode=inputs.mode,
        build=build_orders or load_build_orders(),
        findings=findings,
        bases={s: bases.of_symbol(s) for s in symbols},
        actions=_corporate_actions(inputs, unadjusted, previous_session(days[0]), days[-1], findings),
    )
    if inputs.mode == "live" and inputs.live is not None:
        check_live_session(inputs.live, account, findings)
    manifest = inputs.manifest
    manifest_files = {role: f.sha256 for role, f in manifest.files.items()} if manifest is not None else {}
    if manifest is not None and manifest.data_sha256:
        manifest_files["data"] = manifest.data_sha256
    return ConsistencyReport(
        dag_id=run.dag_id,
        run_key=run.run_key,
        algorithm_id=run.algorithm_id,
        policy=policy,
        verdict=worst([c.verdict for c in findings.results]),
        generated_at=dt.datetime.now(dt.UTC),
        events=len(events),
        orders=len(orders),
        symbols=tuple(findings.fold(rows)),
        checks=tuple(findings.results),
        manifest_sha256=inputs.manifest_sha256,
        manifest_files=manifest_files,
        tolerances=TOLERANCES,
        order_table=order_table(orders),
    )


def save_report(
    report: ConsistencyReport, *, engine: Engine, audit_run_id: int, path: str | os.PathLike[str] | None
) -> str | None:
    """Write report.json at ``path`` (atomic) and replace the run's consistency rows."""
    if path is not None:
        # Compact, written by pydantic-core: the order table can hold 10^5+ orders (json.dumps
        # takes seconds on those, and indenting doubles the file). ``jq .`` pretty-prints it.
        atomic_write_text(path, report.model_dump_json() + "\n")
    with engine.begin() as conn:
        # Two checks of one run at once (a retry racing a re-run): lock the run's row first, or on
        # PostgreSQL each deletes only the rows it can see and both sets of new rows stay.
        conn.execute(select(RebalanceRun.id).where(RebalanceRun.id == audit_run_id).with_for_update())
        conn.execute(delete(ConsistencyResultRow).where(ConsistencyResultRow.run_id == audit_run_id))
        rows = [
            {
                "run_id": audit_run_id,
                "check_name": c.check,
                "symbol": c.symbol,
                "verdict": c.verdict,
                "message": c.message,
                # The DB row keeps the finding's date in its details (no column: the report has it).
                "details": ({**c.details, "date": c.date.isoformat()} if c.date is not None else c.details) or None,
                "created_at": report.generated_at,
            }
            for c in report.checks
        ]
        if rows:
            conn.execute(insert(ConsistencyResultRow), rows)
        conn.execute(
            update(RebalanceRun)
            .where(RebalanceRun.id == audit_run_id)
            .values(status=f"checked:{report.verdict}", updated_at=dt.datetime.now(dt.UTC))
        )
    return os.fspath(path) if path is not None else None


def check_run_folder(
    folder: RunFolder,
    *,
    engine: Engine,
    policy: Policy = "fail",
    data_folder: str | os.PathLike[str] | None = None,
    build_orders: BuildOrders | None = None,
) -> ConsistencyReport:
    """The ``consistency_check`` task: check an ingested run folder, save report.json, the DB rows
    and report.html; under policy ``fail`` a failing run raises ``ConsistencyCheckFailed`` after."""
    inputs = CheckInputs.from_folder(folder, folder.read_config(), data_folder)
    run = find_audit_run(engine, folder.ref)
    report = check_consistency(engine=engine, run=run, inputs=inputs, policy=policy, build_orders=build_orders)
    report_path = save_report(report, engine=engine, audit_run_id=run.audit_run_id, path=folder.report_json_path)
    # The page shows the whole run (orders, charts, manifest); the orders come from the report.
    write_report_html(folder, report=report, intent=inputs.intent)
    if policy == "fail" and report.verdict == "fail":
        raise ConsistencyCheckFailed(report_path, report.failures)
    return report
