"""The DAGs on the CeleryExecutor with two real workers (tests/celery_stack.py): the machine's Redis
as the broker, its PostgreSQL as the metadata DB, result backend and audit DB, each worker with its
own scratch folder, and the artifact store on a third path (``file://``).

A run succeeds only if staging works: a task reads the folder an earlier task wrote on the other
worker, and the workers' scratch folders are not shared, so the store is the only way across.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.celery_stack import CeleryStack, running_celery_stack, services_unreachable

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

RANGE_CONF = {"start_date": "2021-02-01", "end_date": "2021-02-12", "top_n": 2, "lookback_days": 10}
RANGE_KEY = "20210201_20210212"
RUN_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryStack]:
    reason = services_unreachable()
    if reason is not None:
        pytest.skip(f"the Celery stack needs the machine's Redis and PostgreSQL: {reason}")
    with running_celery_stack(tmp_path_factory.mktemp("celery"), workers=2) as running:
        yield running


def _files(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*") if path.is_file()}


def _xcom_values(stack: CeleryStack, dag_id: str, run_id: str) -> list[str]:
    """Every string the run's tasks returned (their XCom return values; links and the like aside)."""
    rows = stack.query(
        "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND key = 'return_value'", dag_id, run_id
    )

    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)

    # The value column is JSONB: psycopg hands back the decoded value.
    return [text for (value,) in rows for text in strings(value)]


def _xcom(stack: CeleryStack, dag_id: str, run_id: str, task_id: str) -> Any:
    rows = stack.query(
        "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s AND key = 'return_value'",
        dag_id,
        run_id,
        task_id,
    )
    assert len(rows) == 1, (task_id, rows)
    return rows[0][0]


def _assert_run_spread_over_both_workers(stack: CeleryStack, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    instances = stack.task_instances(dag_id, run_id)
    assert instances and {ti["state"] for ti in instances} == {"success"}, instances
    names = {worker.name for worker in stack.workers}
    # Every task ran on one of the two workers, and each of them ran some of this one run's tasks.
    assert {ti["hostname"] for ti in instances} == names, instances
    return instances


def _assert_scratch_folders_apart(stack: CeleryStack) -> None:
    store = stack.store.resolve()
    scratches = [worker.scratch.resolve() for worker in stack.workers]
    folders = [store, *scratches, Path(stack.env["LEAN_AIRFLOW_ARTIFACT_ROOT"]).resolve()]
    for i, first in enumerate(folders):
        for second in folders[i + 1 :]:
            assert not first.is_relative_to(second) and not second.is_relative_to(first), (first, second)
    # Each worker staged into its own scratch folder, not into the store.
    for scratch in scratches:
        assert _files(scratch), f"{scratch} is empty: the worker staged nothing"


def test_a_range_run_spreads_over_two_workers_through_the_store(stack: CeleryStack) -> None:
    stack.wait_for_dag("lean_backtest_range")
    run_id = stack.trigger("lean_backtest_range", RANGE_CONF)
    started = time.monotonic()
    state = stack.wait_for_run("lean_backtest_range", run_id, RUN_TIMEOUT_S)
    assert state == "success", f"{state} after {time.monotonic() - started:.0f}s:\n{stack.logs()}"
    instances = _assert_run_spread_over_both_workers(stack, "lean_backtest_range", run_id)
    assert [ti["task_id"] for ti in instances] == [
        "snapshot",
        "write_intent",
        "write_params",
        "run_lean",
        "ingest_events",
        "consistency_check",
    ]

    # The store holds the whole run: Lean's results, the manifest and the report.
    from include.audit.manifest import check_freshness
    from include.run_folder import RunFolder, RunRef

    in_store = stack.store / "lean_backtest_range" / RANGE_KEY
    folder = RunFolder.locate(RunRef("lean_backtest_range", RANGE_KEY), root=stack.store)
    assert folder.path == in_store
    assert folder.final_state_path.is_file() and folder.order_event_files()
    for path in (folder.manifest_path, folder.report_json_path, folder.report_html_path):
        assert path.is_file(), path
    # The manifest's hashes are those of the bytes in the store; the report was made from it.
    assert check_freshness(folder).state == "current", check_freshness(folder)

    # XCom carries store URIs only: no worker's scratch path crosses to another worker.
    values = _xcom_values(stack, "lean_backtest_range", run_id)
    assert values
    for value in values:
        assert value.startswith(stack.store.resolve().as_uri() + "/"), value
    _assert_scratch_folders_apart(stack)


# A small sweep: two points of one short range, their chains in parallel on the two workers.
SWEEP_CONF = {
    "start_date": "2021-02-01",
    "end_date": "2021-02-12",
    "grid": {"top_n": [1, 2], "lookback_days": [10]},
    "rank_by": "Net Profit",
}


def test_a_sweep_spreads_over_two_workers_through_the_store(stack: CeleryStack) -> None:
    from include.audit.manifest import check_freshness
    from include.run_folder import RunFolder, RunRef
    from include.sweep import COMPARISON_HTML, COMPARISON_JSON, POINT_TASKS, SWEEP_DAG_ID, sweep_dir

    stack.wait_for_dag(SWEEP_DAG_ID)
    run_id = stack.trigger(SWEEP_DAG_ID, SWEEP_CONF)
    state = stack.wait_for_run(SWEEP_DAG_ID, run_id, RUN_TIMEOUT_S)
    assert state == "success", f"{state}:\n{stack.logs()}"
    instances = _assert_run_spread_over_both_workers(stack, SWEEP_DAG_ID, run_id)
    # Every point's whole chain ran, each of its tasks once per point; run_lean on the Lean queue.
    for task_id in POINT_TASKS:
        mapped = sorted(ti["map_index"] for ti in instances if ti["task_id"] == f"point.{task_id}")
        assert mapped == [0, 1], (task_id, instances)
    assert {ti["queue"] for ti in instances if ti["task_id"] == "point.run_lean"} == {"lean"}

    # The points as plan_sweep planned them, and the sweep of the comparison page (/lean-airflow/sweeps/<hash>).
    points = _xcom(stack, SWEEP_DAG_ID, run_id, "plan_sweep")
    assert len(points) == 2
    sweep_hash = _xcom(stack, SWEEP_DAG_ID, run_id, "compare_points")["url"].rsplit("/", 1)[1]
    for point in points:
        folder = RunFolder.locate(RunRef(SWEEP_DAG_ID, point["run_key"]), root=stack.store)
        assert folder.final_state_path.is_file() and folder.report_html_path.is_file(), folder.path
        assert check_freshness(folder).state == "current", check_freshness(folder)
    # The comparison is written to the store too, for the UI to serve from any host.
    comparison = sweep_dir(sweep_hash, root=stack.store)
    assert (comparison / COMPARISON_JSON).is_file() and (comparison / COMPARISON_HTML).is_file()
    for value in _xcom_values(stack, SWEEP_DAG_ID, run_id):
        assert not any(value.startswith(str(worker.scratch)) for worker in stack.workers), value
    _assert_scratch_folders_apart(stack)
