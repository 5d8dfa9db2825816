"""The ``lean_backtest_sweep`` DAG: one complete chain per point of a grid (or walk-forward windows), then
a comparison of the points.

    plan_sweep -> point[i]: snapshot -> write_intent -> write_params -> run_lean -> ingest_events
                  -> consistency_check   (a mapped task group, one map index per point)
               -> compare_points          (trigger rule all_done: failed points are marked, not dropped)

The points, their run keys and the comparison are ``include.sweep``'s. Each task of a point calls the
step of ``include.pipeline`` that the same task of ``dag_factory`` calls, with the form's values
overridden by the point's (``include.sweep.point_params``). ``run_lean`` takes a slot of the pool
``lean`` (``LEAN_AIRFLOW_POOL``) and goes to the queue ``lean`` (``LEAN_AIRFLOW_LEAN_QUEUE``; only the
CeleryExecutor routes by queue, the LocalExecutor ignores it).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any, cast

import pendulum
from airflow.sdk import DAG, Param, task, task_group
from airflow.sdk.exceptions import AirflowFailException

from lean_airflow.dag_factory import (
    POOL_ENV,
    Paths,
    date_param_fields,
    execution_param_fields,
    form_errors_fail_at_once,
    strategy_param_fields,
)
from lean_airflow.operators import LeanRunOperator, task_execution_timeout

LEAN_QUEUE_ENV = "LEAN_AIRFLOW_LEAN_QUEUE"
DEFAULT_LEAN_POOL = "lean"
DEFAULT_LEAN_QUEUE = "lean"
POINT_GROUP = "point"
SWEEP_SECTION = "Sweep"
log = logging.getLogger(__name__)


def lean_pool() -> str:
    """The pool of the sweep's Lean runs: ``$LEAN_AIRFLOW_POOL``, default ``lean`` (compose creates it)."""
    return os.environ.get(POOL_ENV) or DEFAULT_LEAN_POOL


def lean_queue() -> str:
    """The queue of the sweep's Lean runs: ``$LEAN_AIRFLOW_LEAN_QUEUE``, default ``lean``."""
    return os.environ.get(LEAN_QUEUE_ENV) or DEFAULT_LEAN_QUEUE


def sweep_param_fields() -> dict[str, Param]:
    from include.contracts.sweep import DEFAULT_RANK_BY
    from include.sweep import MAX_POINTS, grid_names, rankable_statistics

    return {
        "grid": Param(
            {"top_n": [2, 3], "lookback_days": [10, 20]},
            type="object",
            title="Grid",
            description=(
                f"name -> list of values; every combination is a point (at most {MAX_POINTS}). "
                f"Names: {', '.join(grid_names())}."
            ),
            section=SWEEP_SECTION,
        ),
        "walk_forward": Param(
            None,
            type=["null", "object"],
            title="Walk-forward windows",
            description=(
                'Optional, e.g. {"window_sessions": 20, "step_sessions": 10}: windows of the range, each a '
                "point (times every grid combination)."
            ),
            section=SWEEP_SECTION,
        ),
        "rank_by": Param(
            DEFAULT_RANK_BY,
            type="string",
            enum=list(rankable_statistics()),
            title="Rank by (Lean statistic)",
            section=SWEEP_SECTION,
        ),
    }


def _point(point: dict[str, Any]) -> Any:
    from include.contracts.sweep import SweepPoint

    return SweepPoint.model_validate(point)


def _folder(paths: Paths) -> Any:
    from include.run_folder import RunFolder, artifact_root

    return RunFolder.open(paths["run_dir"], root=artifact_root())


# ---------------------------------------------------------------------------- the tasks


@task
def plan_sweep(**context: Any) -> list[dict[str, Any]]:
    """The points of the form (refused at once, naming what to fix, when the form is bad)."""
    from include.sweep import expand_sweep

    with form_errors_fail_at_once():
        plan = expand_sweep(context["params"], dag_id=context["dag"].dag_id)
    log.info("sweep %s: %d points", plan.sweep_hash, len(plan.points))
    return [point.model_dump(mode="json") for point in plan.points]


@task
def snapshot(point: dict[str, Any], **context: Any) -> Paths:
    from include.pipeline import step_snapshot
    from include.run_folder import data_folder
    from include.sweep import check_point
    from lean_airflow.dag_factory import _provider_options

    # The point's values are checked as a range run's form is, before its folder exists: a value the
    # contracts refuse fails this point here, and no other.
    with form_errors_fail_at_once():
        ref, dates, values = check_point(context["params"], _point(point), dag_id=context["dag"].dag_id)
    provider, options = _provider_options(values)
    folder = step_snapshot(ref, dates, provider=provider, options=options, data_folder=data_folder())
    return {"run_dir": str(folder.path), "snapshots": str(folder.snapshots_path)}


@task
def write_intent(paths: Paths) -> Paths:
    from include.pipeline import step_write_intent

    return {"run_dir": paths["run_dir"], "intent": str(step_write_intent(_folder(paths)))}


@task
def write_params(paths: Paths, point: dict[str, Any], **context: Any) -> Paths:
    from include.pipeline import step_write_params
    from include.sweep import point_execution, point_params

    execution = point_execution(point_params(context["params"], _point(point)))
    with form_errors_fail_at_once():
        written = step_write_params(_folder(paths), execution)
    return {"run_dir": paths["run_dir"], "params": str(written)}


@task
def ingest_events(paths: Paths, results_dir: str, **context: Any) -> Paths:
    from include.pipeline import step_ingest

    folder = _folder(paths)
    ti = context["ti"]
    summary = step_ingest(
        folder,
        airflow_ids={
            "dag_id": context["dag"].dag_id,
            "run_id": context["dag_run"].run_id,
            "task_id": ti.task_id,
            "logical_date": str(context.get("logical_date")),
            "try_number": str(ti.try_number),
        },
    )
    log.info("ingested %s from %s", summary, results_dir)
    return {"run_dir": paths["run_dir"], "manifest": str(folder.manifest_path)}


@task
def consistency_check(paths: Paths, **context: Any) -> Paths:
    from include.pipeline import step_check

    checked = step_check(_folder(paths), policy=context["params"].get("consistency_policy", "fail"))
    log.info("consistency verdict %s (%s failures)", checked["verdict"], checked["failures"])
    return {"run_dir": paths["run_dir"], "report_json": checked["report_json"], "report_html": checked["report_html"]}


@task(trigger_rule="all_done")
def compare_points(**context: Any) -> dict[str, str]:
    """Write the comparison of every point, failed ones marked; then fail when a point failed, so the run
    shows it (the comparison is written first either way)."""
    from include.run_folder import artifact_root
    from include.sweep import compare_local, expand_sweep, failed_point_tasks, refused_points, write_sweep_files

    dag_id = context["dag"].dag_id
    run_id = context["dag_run"].run_id
    # The same form gives the same plan (plan_sweep's): expanding it again costs less than shipping it.
    with form_errors_fail_at_once():
        plan = expand_sweep(context["params"], dag_id=dag_id)
    states = context["ti"].get_task_states(dag_id=dag_id, run_ids=[run_id], task_group_id=POINT_GROUP)
    failed = failed_point_tasks(states.get(run_id, {}), group_id=POINT_GROUP)
    comparison = compare_local(plan, failed_tasks=failed, problems=refused_points(context["params"], plan))
    written = write_sweep_files(plan, comparison, root=artifact_root())
    out = {name.replace(".", "_"): str(path) for name, path in written.items()}
    out["url"] = f"/lean-airflow/sweeps/{plan.sweep_hash}"
    bad = [row for row in comparison.rows if row.status == "failed"]
    if bad:
        shown = "; ".join(f"{row.run_key}: {row.problem}" for row in bad)
        raise AirflowFailException(
            f"comparison written ({out['comparison_json']}); {len(bad)} of {len(comparison.rows)} points failed: "
            f"{shown}"
        )
    return out


@task_group(group_id=POINT_GROUP)
def point_chain(point: dict[str, Any]) -> Any:
    """One point's complete chain; mapped over the plan's points."""
    intent_out = cast(Any, write_intent)(cast(Any, snapshot)(point))
    params_out: Paths = cast(Any, write_params)(intent_out, point)
    run_lean = LeanRunOperator(
        task_id="run_lean",
        mode="backtest",
        runtime="{{ params.runtime }}",
        run_dir=params_out["run_dir"],
        parameters={"starting-cash": "{{ params.starting_cash }}"},
        # A pool caps how many Lean runs take the hosts' memory and CPUs at once; the queue sends them
        # to the workers that have Docker and the Lean data.
        pool=lean_pool(),
        queue=lean_queue(),
        execution_timeout=task_execution_timeout(),
    )
    return cast(Any, consistency_check)(cast(Any, ingest_events)(params_out, run_lean.output))


def build_sweep_dag(*, dag_id: str, description: str, doc_md: str) -> DAG:
    with DAG(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md,
        schedule=None,
        start_date=pendulum.datetime(2019, 1, 1, tz="UTC"),
        catchup=False,
        # Two runs of one sweep would write the same run folders.
        max_active_runs=1,
        params={
            **date_param_fields("range"),
            **sweep_param_fields(),
            **strategy_param_fields(),
            **execution_param_fields(),
        },
        tags=["lean", "backtest", "sweep"],
        default_args={"owner": "quant", "retries": 1, "retry_delay": dt.timedelta(seconds=30)},
    ) as dag:
        points = plan_sweep()
        chains = cast(Any, point_chain).expand(point=points)
        chains >> cast(Any, compare_points)()
    return dag
