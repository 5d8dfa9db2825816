"""The ``lean_backtest_sweep`` DAG: its wiring (a mapped task group of the whole chain, the pool and queue
of run_lean, the comparison after every point) and two sweeps end to end through ``dag.test()`` on the
local runtime and the bundled data: eight points that all succeed, and a point the params contract refuses,
which fails alone and is marked in the comparison."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from include.sweep import COMPARISON_HTML, COMPARISON_JSON, POINT_TASKS, SWEEP_DAG_ID, expand_sweep, sweep_dir

GROUP = "point"
# Two walk-forward windows of February 2021 x four grid combinations: eight points.
EIGHT_POINTS = {
    "start_date": "2021-02-01",
    "end_date": "2021-02-26",
    "grid": {"top_n": [1, 2], "lookback_days": [5, 10]},
    "walk_forward": {"window_sessions": 10, "step_sessions": 5},
    "rank_by": "Net Profit",
}


@pytest.fixture
def lean_pool(airflow_db: None) -> Iterator[str]:
    """The pool ``lean`` in Airflow's metadata DB, as compose's airflow-init creates it."""
    from airflow.models.pool import Pool

    Pool.create_or_update_pool("lean", slots=2, description="Lean runs", include_deferred=False)
    yield "lean"


def _states(run: Any) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}


def _xcom(run: Any, task_id: str, key: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key)
        ).scalars()
        values = [XComModel.deserialize_value(row) for row in rows]
    assert len(values) == 1, (task_id, key, values)
    return values[0]


def _base_params(dagbag: Any) -> dict[str, Any]:
    dag = dagbag.dags[SWEEP_DAG_ID]
    return {key: dag.params[key] for key in dag.params}


# ---------------------------------------------------------------------------- wiring


def test_the_sweep_dag_imports_and_maps_the_whole_chain(dagbag: Any) -> None:
    dag = dagbag.dags[SWEEP_DAG_ID]
    chain = [f"{GROUP}.{task_id}" for task_id in POINT_TASKS]
    assert sorted(dag.task_ids) == sorted(["plan_sweep", *chain, "compare_points"])
    for upstream, downstream in itertools.pairwise(chain):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)
    assert dag.get_task(chain[0]).upstream_task_ids == {"plan_sweep"}
    compare = dag.get_task("compare_points")
    assert compare.trigger_rule == "all_done"
    assert compare.upstream_task_ids == {chain[-1]} and compare.downstream_task_ids == set()
    group = dag.task_group_dict[GROUP]
    assert type(group).__name__ == "MappedTaskGroup"
    run_lean = dag.get_task(f"{GROUP}.run_lean")
    assert type(run_lean).__name__ == "LeanRunOperator"
    assert run_lean.pool == "lean" and run_lean.queue == "lean"
    assert dag.max_active_runs == 1 and dag.schedule is None
    # The form: the range, the sweep's fields, the strategy and execution fields of the other DAGs.
    range_params = set(dagbag.dags["lean_backtest_range"].params)
    assert set(dag.params) == range_params | {"grid", "walk_forward", "rank_by"}
    assert dag.params.get_param("rank_by").value == "Sharpe Ratio"


def test_pool_and_queue_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from lean_airflow.sweep_dag import build_sweep_dag

    monkeypatch.setenv("LEAN_AIRFLOW_POOL", "lean_big_hosts")
    monkeypatch.setenv("LEAN_AIRFLOW_LEAN_QUEUE", "lean_docker")
    dag = build_sweep_dag(dag_id="sweep_env_probe", description="probe", doc_md="probe")
    run_lean = dag.get_task(f"{GROUP}.run_lean")
    assert (run_lean.pool, run_lean.queue) == ("lean_big_hosts", "lean_docker")


def test_a_bad_grid_fails_plan_sweep_at_once_naming_key_and_value(
    dagbag: Any, chain_env: Path, lean_pool: str, capfd: pytest.CaptureFixture[str]
) -> None:
    conf = {**EIGHT_POINTS, "grid": {"top_n": [1, 0]}}
    run = dagbag.dags[SWEEP_DAG_ID].test(run_conf=conf)
    states = _states(run)
    assert states[("plan_sweep", -1)] == "failed"
    assert str(run.state) == "failed"
    text = "".join(capfd.readouterr())
    assert "grid['top_n'] value 0: expected a whole number >= 1" in text
    assert not (chain_env / SWEEP_DAG_ID).exists() or not any((chain_env / SWEEP_DAG_ID).iterdir())


# ---------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_eight_point_sweep_end_to_end(dagbag: Any, chain_env: Path, lean_pool: str) -> None:
    dag = dagbag.dags[SWEEP_DAG_ID]
    started = time.monotonic()
    run = dag.test(run_conf=EIGHT_POINTS)
    # Shown with -s: the figure the README quotes (never asserted: no wall-clock asserts).
    print(f"8-point sweep: {time.monotonic() - started:.1f} s")
    states = _states(run)
    for task_id in POINT_TASKS:
        assert [states[(f"{GROUP}.{task_id}", i)] for i in range(8)] == ["success"] * 8, (task_id, states)
    assert states[("compare_points", -1)] == "success"
    assert str(run.state) == "success"

    plan = expand_sweep({**_base_params(dagbag), **EIGHT_POINTS})
    assert len(plan.points) == 8
    folder = sweep_dir(plan.sweep_hash, root=chain_env)
    comparison = json.loads((folder / COMPARISON_JSON).read_text())
    assert comparison["schema_version"] == 1 and comparison["rank_by"] == "Net Profit"
    rows = comparison["rows"]
    assert [r["run_key"] for r in rows] == [p.run_key for p in plan.points]
    assert {r["status"] for r in rows} == {"ok"}
    assert all(r["verdict"] in ("pass", "warn") for r in rows), rows
    assert all("Net Profit" in r["statistics"] and "Sharpe Ratio" in r["statistics"] for r in rows)
    assert min(r["rank"] for r in rows) == 1
    for point in plan.points:
        run_dir = chain_env / SWEEP_DAG_ID / point.run_key
        assert (run_dir / "report.json").is_file() and (run_dir / "manifest.json").is_file()
        params = json.loads((run_dir / f"execution_params_run_{point.run_key}.json").read_text())
        assert params["fee_bps"] == 1.0
    # The point's overrides reach its snapshot: top_n=1 holds one symbol per rebalance.
    first = plan.points[0]
    assert first.overrides == {"lookback_days": 5, "top_n": 1}
    snapshot = (chain_env / SWEEP_DAG_ID / first.run_key / f"snapshots_run_{first.run_key}.jsonl").read_text()
    held = [[i for i in json.loads(line)["items"] if i["weight"] > 0] for line in snapshot.splitlines()]
    assert held and all(len(items) <= 1 for items in held), held
    # compare_points returns the files' store URIs and the page; its link opens the page.
    returned = _xcom(run, "compare_points", "return_value")
    assert returned["comparison_json"] == (folder / COMPARISON_JSON).as_uri()
    assert returned["url"] == f"/lean-airflow/sweeps/{plan.sweep_hash}"
    assert _xcom(run, "compare_points", "_link_SweepComparisonLink") == returned["url"]
    page = (folder / COMPARISON_HTML).read_text()
    assert 'id="comparison"' in page and 'id="ranking"' in page and 'id="sweep-plot"' in page


@pytest.mark.slow
def test_a_point_the_params_contract_refuses_fails_alone_and_is_marked(
    dagbag: Any, chain_env: Path, lean_pool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an artifact store (``file://`` on a third path; the artifact root is the worker's scratch): the
    points' run folders and the comparison are in the store."""
    store = tmp_path / "store"
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_STORE", store.as_uri())
    conf = {
        "start_date": "2021-02-01",
        "end_date": "2021-02-12",
        "grid": {"fee_bps": [1.0, -1.0]},
        "top_n": 2,
        "lookback_days": 5,
    }
    run = dagbag.dags[SWEEP_DAG_ID].test(run_conf=conf)
    states = _states(run)
    assert [states[(f"{GROUP}.{t}", 0)] for t in POINT_TASKS] == ["success"] * 6, states
    assert states[(f"{GROUP}.snapshot", 1)] == "failed"
    assert [states[(f"{GROUP}.{t}", 1)] for t in POINT_TASKS[1:]] == ["upstream_failed"] * 5, states
    # The comparison is written, then its task fails so that the run shows the failed point.
    assert states[("compare_points", -1)] == "failed"
    assert str(run.state) == "failed"

    plan = expand_sweep({**_base_params(dagbag), **conf})
    comparison = json.loads((sweep_dir(plan.sweep_hash, root=store) / COMPARISON_JSON).read_text())
    ok, failed = comparison["rows"]
    assert ok["status"] == "ok" and ok["rank"] == 1 and ok["overrides"] == {"fee_bps": 1.0}
    assert failed["status"] == "failed" and failed["failed_task"] == "snapshot" and failed["rank"] is None
    assert failed["overrides"] == {"fee_bps": -1.0} and failed["statistics"] == {}
    assert "fee_bps=-1.0: Input should be greater than or equal to 0" in failed["problem"]
    # The failed compare_points still links to the page it wrote.
    assert _xcom(run, "compare_points", "_link_SweepComparisonLink") == f"/lean-airflow/sweeps/{plan.sweep_hash}"
    assert (store / SWEEP_DAG_ID / ok["run_key"] / "report.json").is_file()
    assert not (store / SWEEP_DAG_ID / failed["run_key"]).exists()
    page = (sweep_dir(plan.sweep_hash, root=store) / COMPARISON_HTML).read_text()
    assert 'data-status="failed"' in page and failed["run_key"] in page
