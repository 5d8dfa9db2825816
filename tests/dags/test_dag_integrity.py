"""Every DAG file imports cleanly and wires the identical six-task chain: ``include.pipeline``'s."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from include.contracts.params import EXECUTION_PARAM_FIELDS, ExecutionParams, parse_execution_params
from include.pipeline import TASKS
from tests.conftest import REPO_ROOT

EXPECTED_ORDER = ["snapshot", "write_intent", "write_params", "run_lean", "ingest_events", "consistency_check"]
DAG_IDS = ["lean_backtest_daily", "lean_backtest_range", "lean_live_rebalance"]


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}


def test_the_four_dags(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert sorted(dagbag.dag_ids) == [
        "lean_backtest_daily",
        "lean_backtest_range",
        "lean_backtest_sweep",
        "lean_live_rebalance",
    ]


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_exact_task_chain(dagbag, dag_id: str) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags[dag_id]
    assert tuple(EXPECTED_ORDER) == TASKS  # the chain, as include.pipeline defines it
    assert sorted(dag.task_ids) == sorted(EXPECTED_ORDER)
    for upstream, downstream in itertools.pairwise(EXPECTED_ORDER):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)
    assert dag.get_task("snapshot").upstream_task_ids == set()
    assert dag.get_task("consistency_check").downstream_task_ids == set()
    assert type(dag.get_task("run_lean")).__name__ == "LeanRunOperator"
    assert dag.catchup is False and dag.max_active_runs == 1


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_the_dag_runs_the_pipelines_chain_in_order(dagbag, dag_id: str) -> None:  # type: ignore[no-untyped-def]
    """The chain has one definition: the DAG's only topological order is include.pipeline.TASKS."""
    dag = dagbag.dags[dag_id]
    order: list[str] = []
    while len(order) < len(dag.tasks):
        ready = [t.task_id for t in dag.tasks if t.task_id not in order and t.upstream_task_ids <= set(order)]
        assert len(ready) == 1, f"after {order}: {ready} could run next (the order is not one chain)"
        order.append(ready[0])
    assert tuple(order) == TASKS


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_execution_params_are_generated_from_the_contract(dagbag, dag_id: str) -> None:  # type: ignore[no-untyped-def]
    """Each default is declared once, in ExecutionParams: the form's defaults and bounds are the model's."""
    from airflow.sdk.definitions.param import ParamValidationError

    dag = dagbag.dags[dag_id]
    schema = ExecutionParams.model_json_schema(mode="validation")["properties"]
    bounds = ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    for name in EXECUTION_PARAM_FIELDS:
        param = dag.params.get_param(name)
        assert param.schema.get("section") == "Execution params", name
        if name == "risk_overrides":  # a nested model: an empty JSON object, i.e. the model's default
            assert dag.params[name] == {} and param.schema["type"] == "object"
            assert parse_execution_params({name: dag.params[name]}) == ExecutionParams()
            continue
        assert dag.params[name] == ExecutionParams.model_fields[name].default, name
        assert {k: param.schema.get(k) for k in bounds} == {k: schema[name].get(k) for k in bounds}, name
    assert {name: dag.params[name] for name in EXECUTION_PARAM_FIELDS if name != "risk_overrides"} == {
        "min_qty": 1,
        "lot_size": 1,
        "cash_buffer_ratio": 0.02,
        "fee_bps": 1.0,
        "slippage_open_bps": 2.0,
        "slippage_close_bps": 1.0,
    }
    # The bounds are enforced by the form as by the model.
    for name, bad in (("lot_size", 0), ("min_qty", 0), ("cash_buffer_ratio", 1.0), ("fee_bps", -1.0)):
        with pytest.raises(ParamValidationError):
            dag.params.get_param(name).resolve(bad)
    assert dag.params.get_param("lot_size").resolve(100) == 100


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
    # snapshot checks the previous run itself, to fail naming it instead of waiting silently
    assert not daily.get_task("snapshot").depends_on_past
    assert all(t.depends_on_past for t in daily.tasks if t.task_id != "snapshot")
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
