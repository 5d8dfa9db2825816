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
from typing import TYPE_CHECKING, Any, cast

import pendulum
from airflow.sdk import DAG, BaseOperator, BaseOperatorLink, Param, task, task_group
from airflow.sdk.exceptions import AirflowFailException

from lean_airflow.dag_factory import (
    Paths,
    consistency_check,
    date_param_fields,
    execution_param_fields,
    form_errors_fail_at_once,
    ingest_events,
    lean_pool,
    lean_queue,
    strategy_param_fields,
    write_intent,
)
from lean_airflow.operators import (
    REPORT_BASE_URL_ENV,
    REPORT_URL_PREFIX,
    LeanRunOperator,
    _api_root_path,
    artifact_store,
    task_execution_timeout,
)

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

POINT_GROUP = "point"
SWEEP_SECTION = "Sweep"
# compare_points pushes its page's URL under this key before it can fail, so the link exists either way.
SWEEP_URL_XCOM = "sweep_url"
log = logging.getLogger(__name__)


def sweep_url(short_hash: str) -> str:
    """The comparison page of a sweep, relative to the UI's host as the report links are
    (``$LEAN_AIRFLOW_REPORT_BASE_URL`` makes it absolute)."""
    base = (os.environ.get(REPORT_BASE_URL_ENV) or "").strip().rstrip("/") or _api_root_path()
    return f"{base}{REPORT_URL_PREFIX}/sweeps/{short_hash}"


class SweepComparisonLink(BaseOperatorLink):
    """Opens the sweep's comparison page (on ``compare_points``), from the URL the task pushed."""

    name = "Sweep comparison"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=SWEEP_URL_XCOM)
        return str(url) if url else ""


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


# ---------------------------------------------------------------------------- the tasks
#
# snapshot and write_params take the point's values over the form's; write_intent, ingest_events and
# consistency_check are dag_factory's own tasks (they read nothing of the form a point overrides).


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
    from include.pipeline import task_snapshot
    from include.run_folder import data_folder
    from include.sweep import check_point
    from lean_airflow.dag_factory import _provider_options

    # The point's values are checked as a range run's form is, before its folder exists: a value the
    # contracts refuse fails this point here, and no other.
    with form_errors_fail_at_once():
        ref, dates, values = check_point(context["params"], _point(point), dag_id=context["dag"].dag_id)
    provider, options = _provider_options(values)
    return task_snapshot(
        ref, dates, provider=provider, options=options, data_folder=data_folder(), store=artifact_store()
    )


@task
def write_params(paths: Paths, point: dict[str, Any], **context: Any) -> Paths:
    from include.pipeline import task_write_params
    from include.sweep import point_execution, point_params

    execution = point_execution(point_params(context["params"], _point(point)))
    with form_errors_fail_at_once():
        return task_write_params(paths["run_dir"], execution, store=artifact_store())


@task(trigger_rule="all_done")
def compare_points(**context: Any) -> dict[str, str]:
    """Write the comparison of every point, failed ones marked; then fail when a point failed, so the run
    shows it (the comparison is written first either way)."""
    from include.sweep import compare_sweep, expand_sweep, failed_point_tasks, refused_points, write_sweep_files

    dag_id = context["dag"].dag_id
    run_id = context["dag_run"].run_id
    # The same form gives the same plan (plan_sweep's): expanding it again costs less than shipping it.
    with form_errors_fail_at_once():
        plan = expand_sweep(context["params"], dag_id=dag_id)
    states = context["ti"].get_task_states(dag_id=dag_id, run_ids=[run_id], task_group_id=POINT_GROUP)
    failed = failed_point_tasks(states.get(run_id, {}), group_id=POINT_GROUP)
    store = artifact_store()
    comparison = compare_sweep(plan, store=store, failed_tasks=failed, problems=refused_points(context["params"], plan))
    out = {name.replace(".", "_"): uri for name, uri in write_sweep_files(plan, comparison, store=store).items()}
    out["url"] = sweep_url(plan.sweep_hash)
    context["ti"].xcom_push(key=SWEEP_URL_XCOM, value=out["url"])
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
        compare = cast(Any, compare_points)()
        chains >> compare
        compare.operator.operator_extra_links = (SweepComparisonLink(),)
    return dag
