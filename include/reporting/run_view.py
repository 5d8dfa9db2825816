"""Everything a run's report page shows, read from its run folder.

The page is built from files only (intent, params, snapshots, engine.json, report.json,
manifest.json, parity.json, Lean's result JSON), each read by its one reader, so it renders the
same in the Airflow UI plugin, in the standalone ``report.html`` and from the CLI. Lean's orders
come from report.json once the run is checked (the report carries every order); before that,
from the one per-order aggregation over the events files (``include.audit.orders``), the one the
check runs.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from include.audit.manifest import RunFreshness, check_freshness
from include.audit.orders import LeanOrder, lean_orders, orders_from_files
from include.contracts.intent import OrderIntent
from include.contracts.live import is_live_result, live_result_view
from include.contracts.params import ExecutionParams
from include.contracts.report import ConsistencyReport, OrderTable, read_report_head
from include.contracts.snapshot import load_snapshots
from include.errors import ArtifactPathError, ContractValidationError, RunFolderError
from include.run_folder import RunFolder


class OrderRow(NamedTuple):
    """One order as the page lists it, with the target weight of the intent item it answers
    (None when none)."""

    order: LeanOrder
    target_weight: float | None = None

    @property
    def trade_side(self) -> str | None:
        """What the order did: the sign of its quantity. Not the intent's side, which is only the
        sign of the target weight (a target of 0.2 below a holding of 0.5 is a sell)."""
        return trade_side(self.order.quantity)


def trade_side(quantity: float | None) -> str | None:
    if not quantity:
        return None
    return "buy" if quantity > 0 else "sell"


Point = tuple[float, float]  # (unix seconds, value), as Lean's chart series hold them


@dataclass(frozen=True)
class SnapshotSummary:
    """Where the run's target weights came from: the snapshots' sources and dates."""

    sources: tuple[str, ...]  # distinct, in the order first seen
    count: int
    first: dt.date
    last: dt.date


@dataclass
class RunView:
    dag_id: str
    run_key: str
    run_dir: Path
    orders: list[OrderRow] = field(default_factory=list)
    intent_rebalances: int = 0
    report: dict[str, Any] | None = None  # report.json as saved (any version), without its order table
    manifest: dict[str, Any] | None = None
    parity: dict[str, Any] | None = None
    # Lean's charts (unix seconds, value); empty when the results do not hold the chart.
    equity_curve: list[Point] = field(default_factory=list)
    benchmark_curve: list[Point] = field(default_factory=list)
    lean_drawdown: list[Point] = field(default_factory=list)  # "Drawdown" / "Equity Drawdown", as a fraction
    lean_exposure: list[tuple[float, float, float]] = field(default_factory=list)  # (time, long, short)
    statistics: dict[str, str] = field(default_factory=dict)
    # A live run's Lean result is a LiveResult (no summary): its runtime statistics and its account.
    live: bool = False
    runtime_statistics: dict[str, str] = field(default_factory=dict)
    live_holdings: dict[str, float] | None = None
    live_cash: float | None = None
    params: ExecutionParams | None = None
    snapshots: SnapshotSummary | None = None
    engine: dict[str, str] = field(default_factory=dict)  # engine.json
    # An input file that exists but cannot be read, by role ("params", "snapshots", "engine").
    input_problems: dict[str, str] = field(default_factory=dict)
    # Whether the results, manifest and report belong to the inputs now in the folder.
    freshness: RunFreshness = field(default_factory=lambda: RunFreshness("current"))


def _read_json(folder: RunFolder, path: Path) -> Any:
    """A JSON file of the run, confined to its folder: a symlink out of it is refused
    (``ArtifactPathError``), never followed into the page."""
    if not path.exists() and not path.is_symlink():
        return None
    with open(folder.inside(path), encoding="utf-8") as handle:
        return json.load(handle)


def _points(values: Any) -> list[Point]:
    """(time, value) of a Lean chart series: candlesticks ``[time, open, high, low, close]`` give
    their close; ``[time, value]`` and ``{"x", "y"}`` points their value. A point without a number
    (Lean writes null for an empty candle) is left out."""
    points: list[Point] = []
    for value in values or []:
        if isinstance(value, list) and len(value) >= 5:
            pair = (value[0], value[4])
        elif isinstance(value, list) and len(value) == 2:
            pair = (value[0], value[1])
        elif isinstance(value, dict) and "x" in value:
            pair = (value["x"], value.get("y"))
        else:
            continue
        try:
            points.append((float(pair[0]), float(pair[1])))
        except (TypeError, ValueError):
            continue
    return points


def _chart(result: dict[str, Any] | None, chart: str) -> dict[str, Any]:
    """The series of one of Lean's charts, by name ({} when absent)."""
    found = ((result or {}).get("charts") or {}).get(chart) or {}
    series = found.get("series") if isinstance(found, dict) else None
    return series if isinstance(series, dict) else {}


def _series(result: dict[str, Any] | None, chart: str, name: str) -> list[Point]:
    series = _chart(result, chart).get(name)
    return _points(series.get("values")) if isinstance(series, dict) else []


def _exposure(result: dict[str, Any] | None) -> list[tuple[float, float, float]]:
    """Lean's "Exposure" chart: per time, the long and short ratios summed over security types
    (its series are named "<security type> - Long Ratio" / "- Short Ratio")."""
    totals: dict[float, list[float]] = {}
    for name, series in _chart(result, "Exposure").items():
        side = 0 if str(name).endswith("Long Ratio") else 1 if str(name).endswith("Short Ratio") else None
        if side is None or not isinstance(series, dict):
            continue
        for time, value in _points(series.get("values")):
            totals.setdefault(time, [0.0, 0.0])[side] += value
    return [(time, long, short) for time, (long, short) in sorted(totals.items())]


def _saved_order_table(report: dict[str, Any] | None) -> OrderTable | None:
    """The order table of a saved report (version 2 on), taken out of the report's dict."""
    if not isinstance(report, dict) or report.get("schema_version", 1) < 2 or "order_table" not in report:
        return None
    return OrderTable.model_validate(report.pop("order_table"))


def _order_rows(table: OrderTable, intent: OrderIntent | None) -> list[OrderRow]:
    weights: dict[tuple[dt.date | None, str], float] = {}
    if intent is not None:
        weights = {(o.rebalance_date, o.symbol): o.weight for o in intent.intent_orders}
    return [OrderRow(order, weights.get((order.rebalance_date, order.symbol))) for order in lean_orders(table)]


def _lean_results(view: RunView, folder: RunFolder) -> None:
    """Charts and statistics from Lean's ``<id>.json`` (or its ``-summary.json``). Live, Lean writes no
    summary and ``<id>.json`` is a ``LiveResult`` (Lean ``Common/Packets/LiveResultPacket.cs``): its
    ``statistics``, ``runtimeStatistics``, ``holdings`` and ``cash`` (``include.contracts.live``)."""
    result = _read_json(folder, folder.results_dir / f"{folder.algorithm_id}.json")
    summary = _read_json(folder, folder.results_dir / f"{folder.algorithm_id}-summary.json")
    charts = result if isinstance(result, dict) and result.get("charts") else summary
    view.equity_curve = _series(charts, "Strategy Equity", "Equity")
    view.benchmark_curve = _series(charts, "Benchmark", "Benchmark")
    # Lean samples "Equity Drawdown" in percent (-12.8 for 12.8% below the peak).
    view.lean_drawdown = [(t, v / 100.0) for t, v in _series(charts, "Drawdown", "Equity Drawdown")]
    view.lean_exposure = _exposure(charts)
    stats = (summary if isinstance(summary, dict) else None) or result or {}
    if not isinstance(stats, dict):
        stats = {}
    view.statistics = {str(k): str(v) for k, v in (stats.get("statistics") or {}).items()}
    if summary is None and is_live_result(result):
        try:
            live = live_result_view(result)
        except (TypeError, ValueError):
            view.input_problems["results"] = f"{folder.algorithm_id}.json: a LiveResult whose account cannot be read"
            live = None
        view.live = True
        if live is not None:
            view.runtime_statistics = live.runtime_statistics
            view.live_holdings = live.holdings
            view.live_cash = live.cash


def _problem(folder: RunFolder, exc: ContractValidationError) -> str:
    """The error's problems with the run folder's path left out (the page names files, not machines)."""
    return "; ".join(exc.problems).replace(f"{folder.path}{os.sep}", "")


def _inputs(view: RunView, folder: RunFolder) -> None:
    """The header's inputs, each through its contract's reader; an unreadable one is named, not fatal."""
    if folder.params_path.exists():
        try:
            view.params = folder.load_params()
        except ContractValidationError as exc:
            view.input_problems["params"] = _problem(folder, exc)
    if folder.snapshots_path.exists():
        try:
            snapshots = load_snapshots(folder.inside(folder.snapshots_path))
            view.snapshots = SnapshotSummary(
                sources=tuple(dict.fromkeys(s.source for s in snapshots)),
                count=len(snapshots),
                first=min(s.as_of for s in snapshots),
                last=max(s.as_of for s in snapshots),
            )
        except ContractValidationError as exc:
            view.input_problems["snapshots"] = _problem(folder, exc)
    try:
        view.engine = folder.engine_identity()
    except ArtifactPathError:
        raise
    except (ValueError, OSError) as exc:  # not JSON, or not UTF-8
        view.input_problems["engine"] = f"engine.json cannot be read ({type(exc).__name__})"


def load_run_view(
    run_dir: str | os.PathLike[str] | RunFolder,
    *,
    report: ConsistencyReport | None = None,
    intent: OrderIntent | None = None,
) -> RunView:
    """The run's page data. ``report`` and ``intent``: already in hand (the check), not re-read."""
    # The collector is paused while the files are decoded: a long run's report, results and intent
    # are 10^5+ small objects, none of them cyclic garbage, and each full pass would walk them all
    # (it took a third of the time of a three-year run's page).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_run_view(run_dir, report=report, intent=intent)
    finally:
        if enabled:
            gc.enable()


def _load_run_view(
    run_dir: str | os.PathLike[str] | RunFolder, *, report: ConsistencyReport | None, intent: OrderIntent | None
) -> RunView:
    folder = run_dir if isinstance(run_dir, RunFolder) else RunFolder.open(run_dir)
    if intent is None and folder.intent_path.exists():
        intent = folder.load_intent()
    view = RunView(dag_id=folder.dag_id, run_key=folder.run_key, run_dir=folder.path)
    view.intent_rebalances = len(intent.rebalances) if intent is not None else 0
    saved: Any = None
    link: str | None = report.manifest_sha256 if report is not None else None
    if report is None and folder.manifest_path.exists() and folder.report_json_path.exists():
        # report.json is read once: the freshness check takes its link to the manifest from it
        # (streaming its head as well costs as much as reading it whole).
        saved = _read_json(folder, folder.report_json_path)
        link = saved.get("manifest_sha256") if isinstance(saved, dict) else None
    view.freshness = check_freshness(folder, report_manifest_sha256=link)
    table: OrderTable | None = None
    if view.freshness.state != "current":
        view.report = None  # a verdict about other inputs (or none yet): never shown as this run's
    elif report is not None:
        view.report = report.model_dump(mode="json", exclude={"order_table"})
        table = report.order_table
    else:
        view.report = saved if isinstance(saved, dict) else None
        table = _saved_order_table(view.report)
    if table is None:  # not checked yet (or checked before reports carried the orders)
        table = orders_from_files(folder.inside(folder.results_dir), folder.algorithm_id, intent)
    view.orders = _order_rows(table, intent)
    _lean_results(view, folder)
    _inputs(view, folder)
    view.manifest = _read_json(folder, folder.manifest_path)
    view.parity = _read_json(folder, folder.parity_path)
    return view


def list_runs(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every run folder under the artifact root, newest key first, with its overall verdict."""
    runs: list[dict[str, Any]] = []
    base = Path(root)
    if not base.exists():
        return runs
    for dag_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for path in sorted((p for p in dag_dir.iterdir() if p.is_dir()), reverse=True):
            try:
                folder = RunFolder.open(path, root=base)  # a run folder symlinked out of the root is skipped
                if not folder.config_path.exists() and not folder.intent_path.exists():
                    continue
                # report.json is streamed once: its verdict, and its link to the manifest.
                head = (
                    read_report_head(folder.inside(folder.report_json_path)) if folder.report_json_path.exists() else {}
                )
                freshness = check_freshness(folder, report_manifest_sha256=head.get("manifest_sha256"))
            except (ArtifactPathError, RunFolderError):
                continue  # not a run folder name, or a file that leaves it
            verdict: str | None = freshness.state  # never the verdict of other inputs
            if freshness.state == "current":
                verdict = head.get("verdict") or head.get("overall_verdict")  # version 1 named it so
            runs.append({"dag_id": dag_dir.name, "run_key": path.name, "verdict": verdict or "not checked"})
    return runs
