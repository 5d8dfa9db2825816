"""The three DAGs end to end through ``dag.test()`` on the local runtime and the bundled data,
with the audit DB on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pendulum
import pytest
import sqlalchemy as sa

from include.contracts.params import build_execution_params_payload
from include.pipeline import TASKS

pytestmark = pytest.mark.slow


def _task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def _count(db_url: str, table: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def _return_values(dag_run: Any) -> dict[str, Any]:
    """task id -> the XCom return value of each task of the run."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, key="return_value")
        ).scalars()
        return {row.task_id: XComModel.deserialize_value(row) for row in rows}


def _assert_success(dag_run: Any) -> None:
    states = _task_states(dag_run)
    assert states == dict.fromkeys(TASKS, "success"), states
    assert str(dag_run.state) == "success"


def test_range_backtest_end_to_end_and_rerun_duplicates_nothing(dagbag, lean_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["lean_backtest_range"]
    conf = {"start_date": "2021-02-01", "end_date": "2021-02-26", "top_n": 2, "lookback_days": 10}
    first = dag.test(run_conf=conf)
    _assert_success(first)
    run_dir = Path(lean_env["root"]) / "lean_backtest_range" / "20210201_20210226"
    key = "20210201_20210226"
    for name in (
        "config.json",
        "manifest.json",
        "report.json",
        "report.html",
        f"order_intent_run_{key}.json",
        f"execution_params_run_{key}.json",
        f"snapshots_run_{key}.jsonl",
    ):
        assert (run_dir / name).exists(), name
    report = json.loads((run_dir / "report.json").read_text())
    assert report["verdict"] in ("pass", "warn"), report
    # XCom carries the run folder's store URIs only (file:// of the artifact root in the embedded default):
    # no payloads, no engine identity, no worker's path.
    folder = run_dir.resolve().as_uri()
    assert _return_values(first) == {
        "snapshot": {"run_dir": folder, "snapshots": f"{folder}/snapshots_run_{key}.jsonl"},
        "write_intent": {"run_dir": folder, "intent": f"{folder}/order_intent_run_{key}.json"},
        "write_params": {"run_dir": folder, "params": f"{folder}/execution_params_run_{key}.json"},
        "run_lean": f"{folder}/results",
        "ingest_events": {"run_dir": folder, "manifest": f"{folder}/manifest.json"},
        "consistency_check": {
            "run_dir": folder,
            "report_json": f"{folder}/report.json",
            "report_html": f"{folder}/report.html",
        },
    }
    engine = json.loads((run_dir / "engine.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert engine["runtime"] == manifest["runtime"] == "local"
    assert manifest["engine_identity"] == engine["engine"]
    assert manifest["airflow"]["dag_id"] == "lean_backtest_range" and manifest["airflow"]["task_id"] == "ingest_events"
    assert manifest["airflow"]["run_id"] == first.run_id
    # The form's execution defaults are the contract's: the params file holds exactly them.
    params = json.loads((run_dir / f"execution_params_run_{key}.json").read_text())
    assert params == build_execution_params_payload(None)
    events = _count(lean_env["db_url"], "order_events")
    runs = _count(lean_env["db_url"], "rebalance_runs")
    assert events > 0 and runs == 1
    events_file = next((run_dir / "results").glob("*-order-events.json")).read_bytes()

    second = dag.test(run_conf=conf)
    _assert_success(second)
    assert _count(lean_env["db_url"], "order_events") == events
    assert _count(lean_env["db_url"], "rebalance_runs") == 1
    assert next((run_dir / "results").glob("*-order-events.json")).read_bytes() == events_file


def test_range_backtest_on_an_artifact_store_passes_store_uris_only(  # type: ignore[no-untyped-def]
    dagbag, lean_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``LEAN_AIRFLOW_ARTIFACT_STORE`` set, the artifact root is the worker's scratch: every task stages
    its run folder from the store and back, and XCom holds store URIs, never a path of the worker."""
    store = tmp_path / "store"
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_STORE", store.as_uri())
    dag = dagbag.dags["lean_backtest_range"]
    conf = {"start_date": "2021-02-01", "end_date": "2021-02-12", "top_n": 2, "lookback_days": 10}
    run = dag.test(run_conf=conf)
    _assert_success(run)
    key = "20210201_20210212"
    stored = store / "lean_backtest_range" / key
    for name in ("manifest.json", "report.json", "report.html", "config.json", f"snapshots_run_{key}.jsonl"):
        assert (stored / name).is_file(), name
    assert json.loads((stored / "report.json").read_text())["verdict"] in ("pass", "warn")
    values = _return_values(run)
    assert set(values) == set(TASKS)
    uris = [v for value in values.values() for v in (value.values() if isinstance(value, dict) else [value])]
    prefix = f"{store.resolve().as_uri()}/lean_backtest_range/{key}"
    assert all(uri.startswith(prefix) for uri in uris), values
    assert values["run_lean"] == f"{prefix}/results"
    # No XCom value names the scratch (the local artifact root) or any plain path.
    scratch = str(Path(lean_env["root"]).resolve())
    assert not any(scratch in uri or uri.startswith("/") for uri in uris), values


def test_live_rebalance_two_days_carry_the_account(dagbag, lean_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["lean_live_rebalance"]
    for day in ("2021-03-01", "2021-03-02"):
        run = dag.test(run_conf={"as_of": day, "top_n": 2, "lookback_days": 10})
        _assert_success(run)
    root = Path(lean_env["root"]) / "lean_live_rebalance"
    second = root / "20210302"
    assert (second / "initial_state.json").exists()
    first_final = json.loads((root / "20210301" / "results" / "final-state.json").read_text())
    assert json.loads((second / "initial_state.json").read_text()) == first_final
    assert list((second / "results").glob("*-2021-03-02-order-events.json")) or not first_final


def test_live_rebalance_on_an_artifact_store_carries_the_account_across_scratch_roots(  # type: ignore[no-untyped-def]
    dagbag, lean_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each day on another worker's scratch (the other one deleted): the previous day's final state and the
    live deployment's object store come from the artifact store."""
    import shutil

    store = tmp_path / "store"
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_STORE", store.as_uri())
    dag = dagbag.dags["lean_live_rebalance"]
    scratches = [tmp_path / "scratch-a", tmp_path / "scratch-b"]
    for day, scratch, other in (("2021-03-01", *scratches), ("2021-03-02", *reversed(scratches))):
        shutil.rmtree(other, ignore_errors=True)
        monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(scratch))
        run = dag.test(run_conf={"as_of": day, "top_n": 2, "lookback_days": 10})
        _assert_success(run)
    stored = store / "lean_live_rebalance"
    first_final = json.loads((stored / "20210301" / "results" / "final-state.json").read_text())
    assert json.loads((stored / "20210302" / "initial_state.json").read_text()) == first_final
    assert not (scratches[0] / "lean_live_rebalance" / "20210301").exists()
    deployments = stored / "_deployments"
    scratch_deployments = scratches[1] / "lean_live_rebalance" / "_deployments"
    local = sorted(p.relative_to(scratch_deployments) for p in scratch_deployments.rglob("*") if p.is_file())
    assert sorted(p.relative_to(deployments) for p in deployments.rglob("*") if p.is_file()) == local


def test_daily_backtest_scheduled_run_uses_its_logical_date(dagbag, lean_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["lean_backtest_daily"]
    logical = pendulum.datetime(2021, 3, 3, 21, 30, tz="UTC")
    run = dag.test(logical_date=logical, run_conf={"as_of": "2021-03-03", "top_n": 2, "lookback_days": 10})
    _assert_success(run)
    assert (Path(lean_env["root"]) / "lean_backtest_daily" / "20210303" / "report.json").exists()


def test_manual_daily_run_without_as_of_fails_clearly(dagbag, lean_env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    run = dagbag.dags["lean_live_rebalance"].test(run_conf={"as_of": None})
    states = _task_states(run)
    assert states["snapshot"] == "failed"
    assert str(run.state) == "failed"
    assert not any(Path(lean_env["root"]).glob("lean_live_rebalance/*/config.json"))
