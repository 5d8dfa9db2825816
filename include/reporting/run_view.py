"""Everything a run's report page shows, read from its run folder.

The page is built from files only (intent, params, events, Lean's result JSON, report.json,
manifest.json, parity.json), so it renders the same in the Airflow UI plugin, in the
standalone ``report.html`` and from the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import ijson

from include.intent import load_order_intent


@dataclass
class OrderRow:
    order_id: int
    date: str
    symbol: str
    intent_side: str | None
    target_weight: float | None
    quantity: float = 0.0
    filled_quantity: float = 0.0
    fill_notional: float = 0.0
    fees: float = 0.0
    status: str = "none"
    message: str = ""
    first_time: float | None = None

    @property
    def average_fill_price(self) -> float | None:
        return self.fill_notional / self.filled_quantity if self.filled_quantity else None


@dataclass
class RunView:
    dag_id: str
    run_key: str
    run_dir: Path
    orders: list[OrderRow] = field(default_factory=list)
    intent_rebalances: int = 0
    report: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    parity: dict[str, Any] | None = None
    equity_curve: list[tuple[float, float]] = field(default_factory=list)
    statistics: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None


def _read_json(path: Path) -> Any:
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _algorithm_id(run_dir: Path) -> str:
    config = _read_json(run_dir / "config.json") or {}
    return str(config.get("algorithm-id") or run_dir.name)


def event_files(results_dir: Path, algorithm_id: str) -> list[Path]:
    """The finished run's events file, or a live run's per-day files, in date order."""
    single = results_dir / f"{algorithm_id}-order-events.json"
    if single.exists():
        return [single]
    return sorted(results_dir.glob(f"{algorithm_id}-????-??-??-order-events.json"))


def _new_york_date(unix_seconds: float) -> dt.date:
    return dt.datetime.fromtimestamp(unix_seconds, ZoneInfo("America/New_York")).date()


def _orders_from_events(
    paths: list[Path], intent_sides: dict[tuple[dt.date, str], tuple[str, float]]
) -> list[OrderRow]:
    """One row per order, matched to the intent of the latest rebalance on or before its date."""
    dates = sorted({d for d, _ in intent_sides})
    rows: dict[int, OrderRow] = {}
    for path in paths:
        with open(path, "rb") as handle:
            for event in ijson.items(handle, "item", use_float=True):
                order_id = int(event.get("orderId", event.get("order-id", 0)))
                symbol = str(event.get("symbolValue", event.get("symbol-value", "")))
                if order_id not in rows:
                    day = _new_york_date(float(event.get("time", 0.0)))
                    rebalance = max((d for d in dates if d <= day), default=None)
                    side, weight = intent_sides.get((rebalance, symbol), (None, None)) if rebalance else (None, None)
                    rows[order_id] = OrderRow(order_id, day.isoformat(), symbol, side, weight)
                row = rows[order_id]
                row.quantity = float(event.get("quantity", row.quantity))
                fill_qty = float(event.get("fillQuantity", event.get("fill-quantity", 0.0)))
                fill_price = float(event.get("fillPrice", event.get("fill-price", 0.0)))
                row.filled_quantity += fill_qty
                row.fill_notional += fill_qty * fill_price
                row.fees += float(event.get("orderFeeAmount", event.get("order-fee-amount", 0.0)) or 0.0)
                row.status = str(event.get("status", row.status))
                if event.get("message"):
                    row.message = str(event["message"])
                if row.first_time is None:
                    row.first_time = float(event.get("time", 0.0))
    return [rows[k] for k in sorted(rows)]


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


def load_run_view(run_dir: str | os.PathLike[str]) -> RunView:
    folder = Path(run_dir)
    view = RunView(dag_id=folder.parent.name, run_key=folder.name, run_dir=folder)
    algorithm_id = _algorithm_id(folder)
    intents = sorted(folder.glob("order_intent_run_*.json"))
    intent_sides: dict[tuple[dt.date, str], tuple[str, float]] = {}
    if intents:
        intent = load_order_intent(intents[0])
        view.intent_rebalances = len(intent.rebalances)
        for order in intent.intent_orders:
            intent_sides[(order.rebalance_date, order.symbol)] = (order.side, order.weight)
    results = folder / "results"
    view.orders = _orders_from_events(event_files(results, algorithm_id), intent_sides)
    result = _read_json(results / f"{algorithm_id}.json")
    view.equity_curve = _equity_curve(result)
    summary = _read_json(results / f"{algorithm_id}-summary.json") or result or {}
    view.statistics = {str(k): str(v) for k, v in (summary.get("statistics") or {}).items()}
    view.report = _read_json(folder / "report.json")
    view.manifest = _read_json(folder / "manifest.json")
    view.parity = _read_json(folder / "parity.json")
    params = sorted(folder.glob("execution_params_run_*.json"))
    view.params = _read_json(params[0]) if params else None
    return view


def list_runs(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every run folder under the artifact root, newest key first, with its overall verdict."""
    runs: list[dict[str, Any]] = []
    base = Path(root)
    if not base.exists():
        return runs
    for dag_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for run in sorted((p for p in dag_dir.iterdir() if p.is_dir()), reverse=True):
            if not (run / "config.json").exists() and not any(run.glob("order_intent_run_*.json")):
                continue
            report = _read_json(run / "report.json") or {}
            runs.append(
                {
                    "dag_id": dag_dir.name,
                    "run_key": run.name,
                    "verdict": report.get("overall_verdict") or report.get("verdict") or "not checked",
                }
            )
    return runs
