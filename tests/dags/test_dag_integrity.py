"""Every DAG file imports cleanly and wires the identical six-task chain."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

EXPECTED_ORDER = ["snapshot", "write_intent", "write_params", "run_lean", "ingest_events", "consistency_check"]


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}


def test_the_three_dags(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert sorted(dagbag.dag_ids) == ["lean_backtest_daily", "lean_backtest_range", "lean_live_rebalance"]


@pytest.mark.parametrize("dag_id", ["lean_backtest_daily", "lean_backtest_range", "lean_live_rebalance"])
def test_exact_task_chain(dagbag, dag_id: str) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags[dag_id]
    assert sorted(dag.task_ids) == sorted(EXPECTED_ORDER)
    for upstream, downstream in itertools.pairwise(EXPECTED_ORDER):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)
    assert dag.get_task("snapshot").upstream_task_ids == set()
    assert dag.get_task("consistency_check").downstream_task_ids == set()
    assert type(dag.get_task("run_lean")).__name__ == "LeanRunOperator"
    assert dag.catchup is False and dag.max_active_runs == 1


def test_schedules_and_modes(dagbag) -> None:  # type: ignore[no-untyped-def]
    live = dagbag.dags["lean_live_rebalance"]
    daily = dagbag.dags["lean_backtest_daily"]
    ranged = dagbag.dags["lean_backtest_range"]
    assert type(live.timetable).__name__ == "NyseTradingDayTimetable"
    assert type(daily.timetable).__name__ == "NyseTradingDayTimetable"
    assert ranged.schedule is None
    assert live.get_task("run_lean").mode == "live"
    assert daily.get_task("run_lean").mode == "backtest" and ranged.get_task("run_lean").mode == "backtest"
    assert daily.is_paused_upon_creation is True
    assert all(t.depends_on_past for t in daily.tasks)
    assert not any(t.depends_on_past for t in live.tasks)
    assert "start_date" in ranged.params and "end_date" in ranged.params
    assert "as_of" in live.params


def test_dag_files_only_wire_tasks() -> None:
    for path in Path(REPO_ROOT / "dags").glob("*.py"):
        text = path.read_text()
        assert "include." not in text, f"{path.name} should only wire tasks"
        assert len(text.splitlines()) < 30, path.name


def test_include_never_imports_airflow() -> None:
    offenders = [
        str(p.relative_to(REPO_ROOT))
        for p in (REPO_ROOT / "include").rglob("*.py")
        if any(line.lstrip().startswith(("import airflow", "from airflow")) for line in p.read_text().splitlines())
    ]
    assert offenders == []
