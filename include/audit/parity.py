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

In the chain (:func:`update_session_parity`, called by ``include.pipeline.step_check`` once the
report is saved, whatever its verdict):

* **Which runs.** A run of ``lean_live_rebalance`` is compared with the run of
  ``lean_backtest_daily`` of the same session, i.e. the same run key ``YYYYMMDD``, and a daily
  backtest with the live run of its session. Range backtests (``lean_backtest_range``) never count:
  several may cover a session with no rule to pick one, their orders span other sessions (each an
  ``only_backtest`` mismatch), and their account on the session depends on where the range
  started; the daily backtest is the one run that trades exactly that session, continuing its
  account day by day as the live run does.
* **Who gets ``parity.json``.** Only the live run's folder: the diff says whether live trading did
  what the backtest of its session did, and a daily backtest has at most one live twin. A second copy
  in the backtest folder would be one more file to keep in step when either run is re-run.
* **When.** Only when both folders exist, both are ``current`` (``include.audit.manifest.check_freshness``:
  ingested and checked from the inputs now in them) and each holds the mode its DAG runs. Otherwise
  (the other run absent, still running, stale, not comparable) nothing is written and a
  ``parity.json`` of an earlier attempt is removed, so a diff of other inputs is never shown as
  current; whichever of the two runs is checked last writes it. After writing, both runs are
  checked again and the file is removed if either changed meanwhile. The live run's
  ``report.html`` is re-rendered when its parity section appears or goes. (A backtest re-run that
  stops before its check cannot withdraw the file itself; calling :func:`update_session_parity`
  at the start of every attempt, after ``RunFolder.invalidate_conclusions``, would.)
* **Never a failure.** A ``mismatch`` is shown (report page, the task log), not raised: a live
  run's orders are already placed when it is checked, failing its task cannot undo them, and its
  state would then depend on another DAG's run and on which of the two finished last. Quantities
  may also differ by design: each run sizes on the price it sees when it orders, and a backtest's
  market order becomes MarketOnClose while a live one fills at once. Failing to compare
  (unreadable results) is logged with its traceback and leaves no file.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import ijson

from include.audit.orders import LeanOrder, lean_orders, orders_from_files
from include.contracts.report import Cause, OrderDiff, ParityReport
from include.errors import ArtifactPathError, ParityError
from include.run_folder import RunFolder, RunRef, detect_algorithm_id

log = logging.getLogger(__name__)

# The DAGs whose runs of one session are compared (the dag ids of dags/lean_*.py).
LIVE_DAG_ID: Final = "lean_live_rebalance"
DAILY_BACKTEST_DAG_ID: Final = "lean_backtest_daily"
_SESSION_KEY = re.compile(r"\d{8}")  # a daily run's key, RunRef.for_date

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


# ---------------------------------------------------------------------------- in the chain


@dataclass(frozen=True)
class SessionParity:
    """What :func:`update_session_parity` did: the live run's folder it concerns (None when the run has
    no session twin), the verdict written to its ``parity.json`` (None: no file) and why."""

    live: RunFolder | None
    verdict: str | None
    reason: str


def session_pair(folder: RunFolder) -> tuple[RunFolder, RunFolder] | None:
    """(daily backtest, live) folders of the session of ``folder``, under the same artifact root; None
    when ``folder`` is neither a live nor a daily backtest run of one session. Nothing is created."""
    if not _SESSION_KEY.fullmatch(folder.run_key):
        return None
    root = folder.path.parent.parent
    if folder.dag_id == LIVE_DAG_ID:
        return RunFolder.locate(RunRef(DAILY_BACKTEST_DAG_ID, folder.run_key), root=root), folder
    if folder.dag_id == DAILY_BACKTEST_DAG_ID:
        return folder, RunFolder.locate(RunRef(LIVE_DAG_ID, folder.run_key), root=root)
    return None


def update_session_parity(
    folder: RunFolder, *, price_tolerance_bps: float = 1.0, time_tolerance_seconds: float = 60.0
) -> SessionParity:
    """Write, replace or remove the ``parity.json`` of ``folder``'s session (module docstring). Never raises:
    parity is a view of two runs, so failing to compute it must neither fail nor mask the run's own result."""
    try:
        pair = session_pair(folder)
    except ArtifactPathError as exc:  # the other run's folder would leave the artifact root
        log.warning("parity of %s: cannot locate the other run of its session (%s)", folder.ref, exc)
        return SessionParity(None, None, f"cannot locate the other run: {exc}")
    if pair is None:
        return SessionParity(None, None, f"{folder.ref} is not a live or daily backtest run of one session")
    backtest, live = pair
    report: ParityReport | None = None
    try:
        reason = _not_comparable(backtest, live)
        if reason is None:
            report = compare_runs(
                backtest.inside(backtest.results_dir),
                live.inside(live.results_dir),
                backtest_algorithm_id=backtest.algorithm_id,
                live_algorithm_id=live.algorithm_id,
                price_tolerance_bps=price_tolerance_bps,
                time_tolerance_seconds=time_tolerance_seconds,
            )
            _set_parity(live, report)
            # A re-run of either that started while we compared must not find our diff as current.
            reason = _not_comparable(backtest, live)
        if reason is not None:
            report = None
            _set_parity(live, None)
    except Exception as exc:  # unreadable results, a full disk...: logged with its traceback, never raised
        log.exception("parity of %s: cannot compare %s with %s", folder.ref, backtest.ref, live.ref)
        report, reason = None, f"cannot compare: {exc}"
        try:
            _set_parity(live, None)
        except Exception:
            log.exception("parity of %s: cannot remove %s", folder.ref, live.parity_path)
    if report is None:
        log.info("parity of %s: no parity.json (%s)", live.ref, reason)
        return SessionParity(live, None, reason or "not compared")
    level = logging.WARNING if report.verdict == "mismatch" else logging.INFO
    log.log(level, "parity of %s vs %s: %s (%s)", live.ref, backtest.ref, report.verdict, live.parity_path)
    return SessionParity(live, report.verdict, f"{backtest.ref} vs {live.ref}")


def _not_comparable(backtest: RunFolder, live: RunFolder) -> str | None:
    """Why the two runs cannot be compared now (None: both are current runs of their DAG's mode)."""
    from include.audit.manifest import check_freshness

    for mode, run in (("backtest", backtest), ("live", live)):
        if not run.path.is_dir():
            return f"no {mode} run {run.ref}"
        freshness = check_freshness(run)
        if freshness.state != "current":
            return f"{mode} run {run.ref} is {freshness.state}: {'; '.join(freshness.problems)}"
        found = run.read_config().mode
        if found != mode:
            return f"{run.ref} ran in {found} mode, not {mode}"
    return None


def _set_parity(live: RunFolder, report: ParityReport | None) -> None:
    """Write (atomically) or remove the live run's ``parity.json``; its ``report.html`` is re-rendered when
    the parity section changed and the run is current (the page served by the UI reads the file anyway)."""
    from include.atomic_io import atomic_write_json

    if not live.path.is_dir():  # never create another run's folder
        return
    path = live.inside(live.parity_path)
    if report is None:
        if not path.exists():
            return
        path.unlink(missing_ok=True)
    else:
        atomic_write_json(path, report.model_dump(mode="json"))
    _rerender_report(live)


def _rerender_report(live: RunFolder) -> None:
    from include.audit.manifest import check_freshness
    from include.reporting.html import write_report_html

    # A run being re-run (not current) has no page of its own yet: its own check renders one.
    if live.report_html_path.exists() and check_freshness(live).state == "current":
        write_report_html(live)
