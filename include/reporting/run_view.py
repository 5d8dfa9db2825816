"""Everything a run's report page shows, read from its run folder.

The page is built from files only (intent, report.json, manifest.json, parity.json, Lean's result
JSON), so it renders the same in the Airflow UI plugin, in the standalone ``report.html`` and from
the CLI. Lean's orders come from report.json once the run is checked (the report carries every
order); before that, from the one per-order aggregation over the events files
(``include.audit.orders``), the one the check runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from include.audit.manifest import RunFreshness, check_freshness
from include.audit.orders import LeanOrder, lean_orders, orders_from_files
from include.contracts.intent import OrderIntent
from include.contracts.report import ConsistencyReport, OrderTable, read_report_head
from include.errors import ArtifactPathError, RunFolderError
from include.run_folder import RunFolder


class OrderRow(NamedTuple):
    """One order as the page lists it, with the intent item it answers (None when none)."""

    order: LeanOrder
    intent_side: str | None = None
    target_weight: float | None = None


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
    equity_curve: list[tuple[float, float]] = field(default_factory=list)
    statistics: dict[str, str] = field(default_factory=dict)
    # Whether the results, manifest and report belong to the inputs now in the folder.
    freshness: RunFreshness = field(default_factory=lambda: RunFreshness("current"))


def _read_json(folder: RunFolder, path: Path) -> Any:
    """A JSON file of the run, confined to its folder: a symlink out of it is refused
    (``ArtifactPathError``), never followed into the page."""
    if not path.exists() and not path.is_symlink():
        return None
    with open(folder.inside(path), encoding="utf-8") as handle:
        return json.load(handle)


def _equity_curve(result: dict[str, Any] | None) -> list[tuple[float, float]]:
    """(unix seconds, equity) points of Lean's "Strategy Equity" chart, if present."""
    if not result:
        return []
    chart = (result.get("charts") or {}).get("Strategy Equity") or {}
    series = (chart.get("series") or {}).get("Equity") or {}
    points: list[tuple[float, float]] = []
    for value in series.get("values") or []:
        if isinstance(value, list) and len(value) >= 5:  # candlestick [time, open, high, low, close]
            points.append((float(value[0]), float(value[4])))
        elif isinstance(value, list) and len(value) == 2:
            points.append((float(value[0]), float(value[1])))
        elif isinstance(value, dict) and "x" in value and "y" in value:
            points.append((float(value["x"]), float(value["y"])))
    return points


def _saved_order_table(report: dict[str, Any] | None) -> OrderTable | None:
    """The order table of a saved report (version 2 on), taken out of the report's dict."""
    if not isinstance(report, dict) or report.get("schema_version", 1) < 2 or "order_table" not in report:
        return None
    return OrderTable.model_validate(report.pop("order_table"))


def _order_rows(table: OrderTable, intent: OrderIntent | None) -> list[OrderRow]:
    sides: dict[tuple[dt.date | None, str], tuple[str | None, float | None]] = {}
    if intent is not None:
        sides = {(o.rebalance_date, o.symbol): (o.side, o.weight) for o in intent.intent_orders}
    return [
        OrderRow(order, *sides.get((order.rebalance_date, order.symbol), (None, None))) for order in lean_orders(table)
    ]


def _lean_results(view: RunView, folder: RunFolder) -> None:
    """Equity curve and statistics from Lean's ``<id>.json`` (or its ``-summary.json``)."""
    result = _read_json(folder, folder.results_dir / f"{folder.algorithm_id}.json")
    view.equity_curve = _equity_curve(result)
    summary = _read_json(folder, folder.results_dir / f"{folder.algorithm_id}-summary.json") or result or {}
    view.statistics = {str(k): str(v) for k, v in (summary.get("statistics") or {}).items()}


def load_run_view(
    run_dir: str | os.PathLike[str] | RunFolder,
    *,
    report: ConsistencyReport | None = None,
    intent: OrderIntent | None = None,
) -> RunView:
    """The run's page data. ``report`` and ``intent``: already in hand (the check), not re-read."""
    folder = run_dir if isinstance(run_dir, RunFolder) else RunFolder.open(run_dir)
    if intent is None and folder.intent_path.exists():
        intent = folder.load_intent()
    view = RunView(dag_id=folder.dag_id, run_key=folder.run_key, run_dir=folder.path)
    view.intent_rebalances = len(intent.rebalances) if intent is not None else 0
    view.freshness = check_freshness(
        folder, report_manifest_sha256=report.manifest_sha256 if report is not None else None
    )
    table: OrderTable | None = None
    if view.freshness.state != "current":
        view.report = None  # a verdict about other inputs (or none yet): never shown as this run's
    elif report is not None:
        view.report = report.model_dump(mode="json", exclude={"order_table"})
        table = report.order_table
    else:
        view.report = _read_json(folder, folder.report_json_path)
        table = _saved_order_table(view.report)
    if table is None:  # not checked yet (or checked before reports carried the orders)
        table = orders_from_files(folder.inside(folder.results_dir), folder.algorithm_id, intent)
    view.orders = _order_rows(table, intent)
    _lean_results(view, folder)
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
