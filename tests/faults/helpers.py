"""Shared pieces of the fault tests: a real run folder built by the pipeline steps, the local
engine, and exact comparisons of the audit DB with the events Lean wrote."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from include.launch.local import run_lean_local
from include.pipeline import ChainRequest, lean_job, resolve_run, run_chain, step_check, step_ingest
from include.run_folder import ALGORITHM_PATH, DEFAULT_DATA_FOLDER, RunFolder, RunRef, order_event_files

DAG_ID = "lean_backtest_range"
START, END = "2021-02-01", "2021-02-26"
OPTIONS: dict[str, Any] = {"top_n": 2, "lookback_days": 10, "universe": []}
# Every execution param given: the suite was built on no slippage and no cash buffer (the
# contract's defaults are now 2/1 bp slippage and a 2% buffer).
EXECUTION: dict[str, Any] = {
    "lot_size": 1,
    "min_qty": 1,
    "fee_bps": 1.0,
    "slippage_open_bps": 0.0,
    "slippage_close_bps": 0.0,
    "cash_buffer_ratio": 0.0,
}
STARTING_CASH = 100_000

# An algorithm that trades once and then raises: Lean exits 1 (and writes the partial events).
RAISING_ALGORITHM = """
from AlgorithmImports import *

class RaisesMidRun(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2021, 2, 1)
        self.set_end_date(2021, 2, 26)
        self.set_cash(100000)
        self.sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        self.days = 0

    def on_data(self, data):
        self.days += 1
        if self.days == 1:
            self.set_holdings(self.sym, 0.5)
        if self.days == 3:
            raise ZeroDivisionError("boom: the algorithm divided by zero in on_data")
"""

# The real algorithm, but it stops in on_data: it writes its pid to a marker file (so a test can
# kill the engine mid-run) and a half-written events file, as a streaming writer would leave it.
STALLING_ALGORITHM = """
import os
import time

from algorithms.lean_trend_rotation import LeanTrendRotation


class StallsMidRun(LeanTrendRotation):
    def on_data(self, data):
        super().on_data(data)
        results = os.path.dirname(self.get_parameter("final-state-path"))
        aid = os.path.basename(os.path.dirname(results))
        with open(os.path.join(results, aid + "-order-events.json"), "w") as handle:
            handle.write('[{"id":"' + aid + '-1-1","algorithmId":"' + aid + '","orderId":1,"orde')
        with open(os.path.join(results, "engine.pid.tmp"), "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(os.path.join(results, "engine.pid.tmp"), os.path.join(results, "engine.pid"))
        time.sleep(120)
"""


def intent_orders(folder: RunFolder) -> int:
    return len(folder.load_intent().intent_orders)


def range_request(
    *,
    dag_id: str = DAG_ID,
    start: str = START,
    end: str = END,
    root: Path | None = None,
    run_key: str | None = None,
    provider: str = "trend_rotation",
    options: dict[str, Any] | None = None,
    execution: dict[str, Any] | None = None,
) -> ChainRequest:
    """The chain request of a ``lean_backtest_range`` run on the sample data (the suite's defaults)."""
    ref, dates = resolve_run(
        dag_id=dag_id,
        kind="range",
        run_type="manual",
        interval_session=None,
        params={"start_date": start, "end_date": end},
    )
    if run_key is not None:
        ref = RunRef(dag_id, run_key)
    return ChainRequest(
        ref=ref,
        dates=tuple(dates),
        provider=provider,
        options=OPTIONS if options is None else options,
        execution=EXECUTION if execution is None else execution,
        starting_cash=STARTING_CASH,
        data_folder=DEFAULT_DATA_FOLDER,
        root=root,
    )


def prepare_run(
    *, dag_id: str = DAG_ID, start: str = START, end: str = END, root: Path | None = None, run_key: str | None = None
) -> RunFolder:
    """snapshot -> write_intent -> write_params, exactly as the DAG's first three tasks (the chain)."""
    request = range_request(dag_id=dag_id, start=start, end=end, root=root, run_key=run_key)
    return run_chain(request, until="write_params").folder


def lean_event(algorithm_id: str, **overrides: Any) -> dict[str, Any]:
    """One submitted SPY order event as Lean writes it, with ``overrides`` applied."""
    event: dict[str, Any] = {
        "id": f"{algorithm_id}-1-1",
        "algorithmId": algorithm_id,
        "orderId": 1,
        "orderEventId": 1,
        "symbol": "SPY R735QTJ8XC9X",
        "symbolValue": "SPY",
        "symbolPermtick": "SPY",
        "time": 1614618000.0,
        "status": "submitted",
        "fillPrice": 0.0,
        "fillPriceCurrency": "USD",
        "fillQuantity": 0.0,
        "direction": "buy",
        "isAssignment": False,
        "quantity": 10.0,
    }
    event.update(overrides)
    return event


def run_engine(
    folder: RunFolder,
    *,
    algorithm_path: Path = ALGORITHM_PATH,
    on_line: Callable[[str], None] | None = None,
    timeout_s: float = 300,
) -> dict[str, str]:
    """The local runtime through ``run_lean_local`` (what LeanRunOperator calls); returns the engine
    identity it recorded in the run folder's engine.json."""
    job = lean_job(
        folder,
        mode="backtest",
        parameters={"starting-cash": STARTING_CASH},
        algorithm_path=algorithm_path,
        data_folder=DEFAULT_DATA_FOLDER,
    )
    return run_lean_local(job, timeout_s=timeout_s, on_line=on_line or (lambda _line: None))


def ingest(folder: RunFolder) -> dict[str, Any]:
    """The ingest_events task (the engine identity comes from the folder's engine.json)."""
    return step_ingest(folder)


def check(folder: RunFolder) -> dict[str, Any]:
    """The consistency_check task (it does not ingest: ingest first)."""
    return step_check(folder)


def write_algorithm(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


# ------------------------------------------------------------------ exact DB comparisons

EventKey = tuple[Any, ...]


def _event_key(event: dict[str, Any], source_file: str) -> EventKey:
    return (
        int(event["orderId"]),
        int(event["orderEventId"]),
        event["symbolValue"],
        event["status"],
        event["direction"],
        float(event["time"]),
        float(event["fillPrice"]),
        float(event["fillQuantity"]),
        float(event["quantity"]),
        None if event.get("orderFeeAmount") is None else float(event["orderFeeAmount"]),
        source_file,
    )


def file_events(results_dir: Path, algorithm_id: str) -> list[EventKey]:
    """Every event of every events file, as comparable tuples, sorted."""
    rows: list[EventKey] = []
    for path in order_event_files(results_dir, algorithm_id):
        rows.extend(_event_key(e, path.name) for e in json.loads(path.read_bytes()))
    return sorted(rows)


@contextmanager
def connect(db_url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def db_events(db_url: str, dag_id: str, run_key: str) -> list[EventKey]:
    query = sa.text(
        "SELECT e.order_id, e.order_event_id, e.symbol_value, e.status, e.direction, e.time, e.fill_price, "
        "e.fill_quantity, e.quantity, e.fee_amount, e.source_file FROM order_events e "
        "JOIN rebalance_runs r ON r.id = e.run_id WHERE r.dag_id = :dag AND r.run_key = :key "
        "AND r.superseded_at IS NULL"
    )
    with connect(db_url) as conn:
        rows = conn.execute(query, {"dag": dag_id, "key": run_key}).all()
    return sorted(
        (int(a), int(b), c, d, e, float(f), float(g), float(h), float(i), None if j is None else float(j), k)
        for a, b, c, d, e, f, g, h, i, j, k in rows
    )


TABLES = ("rebalance_runs", "intent_orders", "order_events", "consistency_results")


def table_counts(db_url: str) -> dict[str, int]:
    """Row counts of the audit tables (whole database: every test has its own)."""
    with connect(db_url) as conn:
        return {t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TABLES}


def run_status(db_url: str, dag_id: str, run_key: str) -> str | None:
    with connect(db_url) as conn:
        found = conn.execute(
            sa.text(
                "SELECT status FROM rebalance_runs WHERE dag_id = :dag AND run_key = :key AND superseded_at IS NULL"
            ),
            {"dag": dag_id, "key": run_key},
        ).scalar_one_or_none()
    return None if found is None else str(found)


def assert_db_matches_run(db_url: str, run: RunFolder, *, checked: bool) -> dict[str, int]:
    """The DB holds exactly the run: one run row, its intent orders, every event once, and (after
    the check) one consistency row per check of report.json."""
    expected_events = file_events(run.results_dir, run.algorithm_id)
    assert expected_events, "the run wrote no events: the comparison would prove nothing"
    assert db_events(db_url, run.dag_id, run.run_key) == expected_events
    counts = table_counts(db_url)
    checks = len(json.loads(run.report_json_path.read_text())["checks"]) if checked else 0
    assert counts == {
        "rebalance_runs": 1,
        "intent_orders": intent_orders(run),
        "order_events": len(expected_events),
        "consistency_results": checks,
    }, counts
    return counts


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(TABLES, 0)
