"""The "Lean report" link: relative to the UI's host (any host works), on run_lean and consistency_check."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.models.taskinstancekey import TaskInstanceKey
from lean_airflow.operators import REPORT_BASE_URL_ENV, LeanReportLink, report_url

LINKED_TASKS = ("run_lean", "consistency_check")
DAG_IDS = ("lean_backtest_daily", "lean_backtest_range", "lean_live_rebalance")


@pytest.fixture
def no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REPORT_BASE_URL_ENV, raising=False)
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)


@pytest.fixture
def restore_dag_params(dagbag: Any) -> Iterator[None]:
    """In-process ``dag.test(run_conf=...)`` writes the conf into the DAG's own Param objects
    (``process_params`` updates a ParamsDict sharing them); put the form's values back after the test."""
    saved = {
        dag_id: {key: copy.deepcopy(dag.params.get_param(key).value) for key in dag.params}
        for dag_id, dag in dagbag.dags.items()
    }
    yield
    for dag_id, values in saved.items():
        for key, value in values.items():
            dagbag.dags[dag_id].params.get_param(key).value = value


def _key(dag_id: str, task_id: str) -> TaskInstanceKey:
    return TaskInstanceKey(dag_id=dag_id, task_id=task_id, run_id="manual__2021", try_number=1)


def test_the_link_is_relative_by_default(no_override: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        report_url("lean_backtest_range", "20210201_20210226")
        == "/lean-airflow/runs/lean_backtest_range/20210201_20210226"
    )
    monkeypatch.setenv(REPORT_BASE_URL_ENV, "")  # compose's ${VAR:-}: unset
    assert report_url("d", "k") == "/lean-airflow/runs/d/k"


def test_an_explicit_base_url_overrides(no_override: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REPORT_BASE_URL_ENV, "https://reports.example.org/")
    assert report_url("d", "k") == "https://reports.example.org/lean-airflow/runs/d/k"


def test_the_link_follows_airflows_sub_path(no_override: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://example.org/airflow/")
    assert report_url("d", "k") == "/airflow/lean-airflow/runs/d/k"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_both_tasks_carry_the_link_and_the_ui_gets_it(dagbag: Any, dag_id: str) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.dags[dag_id]
    serialized = DagSerialization.to_dict(dag)["dag"]["tasks"]
    links = {t["__var"]["task_id"]: t["__var"].get("_operator_extra_links") for t in serialized}
    for task_id in LINKED_TASKS:
        assert [type(link) for link in dag.get_task(task_id).operator_extra_links] == [LeanReportLink], task_id
        # The api-server shows a button for each name -> XCom key the serialized task lists.
        assert links[task_id] == {"Lean report": "_link_LeanReportLink"}, task_id
    assert {t for t, v in links.items() if v} == set(LINKED_TASKS)


def test_the_link_of_each_task_names_its_run(dagbag: Any, no_override: None) -> None:
    """What finalize stores for each task once its inputs are rendered."""
    dag = dagbag.dags["lean_backtest_range"]
    run_dir = "/artifacts/lean_backtest_range/20210201_20210226"
    expected = "/lean-airflow/runs/lean_backtest_range/20210201_20210226"
    run_lean = dag.get_task("run_lean").prepare_for_execution()
    run_lean.run_dir = run_dir
    check = dag.get_task("consistency_check").prepare_for_execution()
    check.op_args = [{"run_dir": run_dir, "manifest": f"{run_dir}/manifest.json"}]
    for task in (run_lean, check):
        assert LeanReportLink().get_link(task, ti_key=_key(dag.dag_id, task.task_id)) == expected
    # Not rendered yet (a task that never ran): the DAG's runs, never a broken run key.
    unrendered = dag.get_task("consistency_check")
    assert LeanReportLink().get_link(unrendered, ti_key=_key(dag.dag_id, "consistency_check")) == (
        "/lean-airflow/runs/lean_backtest_range"
    )


@pytest.mark.slow
def test_a_real_run_stores_the_relative_link_on_both_tasks(
    dagbag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_override: None, restore_dag_params: None
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from include.audit.db import upgrade_database

    db_url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade_database(db_url)
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", db_url)
    monkeypatch.setenv("LEAN_AIRFLOW_RUNTIME", "local")
    # Every field the run depends on, so values an earlier in-process dag.test left on the Params do not count.
    conf = {
        "start_date": "2021-02-01",
        "end_date": "2021-02-12",
        "top_n": 2,
        "lookback_days": 10,
        "risk_overrides": {},
        "runtime": "local",
    }
    run = dagbag.dags["lean_backtest_range"].test(run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    with create_session() as session:
        rows: Any = session.execute(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, key="_link_LeanReportLink")
        ).scalars()
        stored = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    link = "/lean-airflow/runs/lean_backtest_range/20210201_20210212"
    assert stored == dict.fromkeys(LINKED_TASKS, link)
