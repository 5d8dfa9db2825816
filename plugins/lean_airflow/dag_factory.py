"""One factory for the three Lean DAGs: the same six-task chain, differing only in mode and dates.

    snapshot -> write_intent -> write_params -> run_lean -> ingest_events -> consistency_check

The chain is ``include.pipeline``'s: each task reads the Airflow context and calls one of its
steps. XCom carries the run folder's file paths only.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any, Literal, cast

import pendulum
from airflow.sdk import DAG, Param, Variable, task

from lean_airflow.operators import LeanRunOperator, task_execution_timeout
from lean_airflow.timetables import NyseTradingDayTimetable

RUNTIME_ENV = "LEAN_AIRFLOW_RUNTIME"
PROVIDER_VARIABLE = "lean_snapshot_provider"
BROKER_CONN_ENV = "LEAN_AIRFLOW_BROKER_CONN_ID"
POOL_ENV = "LEAN_AIRFLOW_POOL"
EXECUTION_SECTION = "Execution params"
# A daily backtest of session D runs at 06:00 New York time the next day (03:00 after a 13:00 early
# close): Lean ends a backtest yesterday at the latest (QCAlgorithm.SetEndDate), so it must start
# after midnight to trade D. The live rebalance runs 30 minutes after D's close.
DAILY_BACKTEST_MINUTES_AFTER_CLOSE = 14 * 60
LIVE_MINUTES_AFTER_CLOSE = 30
log = logging.getLogger(__name__)

Paths = dict[str, str]


def execution_param_fields() -> dict[str, Param]:
    """The execution params of the form, generated from the ``ExecutionParams`` contract."""
    from include.contracts.forms import execution_params_form

    return {
        name: Param(schema.pop("default"), section=EXECUTION_SECTION, **schema)
        for name, schema in execution_params_form().items()
    }


def strategy_param_fields() -> dict[str, Param]:
    from include.pipeline import DEFAULT_STARTING_CASH
    from include.snapshots import DEFAULT_LOOKBACK_DAYS, DEFAULT_TOP_N, PROVIDERS

    return {
        "snapshot_provider": Param(
            None,
            type=["null", "string"],
            enum=[None, *PROVIDERS],
            title="Snapshot provider",
            description=f"Empty: the Airflow Variable {PROVIDER_VARIABLE}, else trend_rotation.",
            section="Strategy",
        ),
        "universe": Param(
            [], type="array", items={"type": "string"}, title="Universe (empty: all tickers)", section="Strategy"
        ),
        "top_n": Param(DEFAULT_TOP_N, type="integer", minimum=1, title="Top N by momentum", section="Strategy"),
        "lookback_days": Param(
            DEFAULT_LOOKBACK_DAYS, type="integer", minimum=1, title="Momentum lookback (sessions)", section="Strategy"
        ),
        "weights_file": Param(None, type=["null", "string"], title="Weights file (file provider)", section="Strategy"),
        "weights_conn_id": Param(
            None, type=["null", "string"], title="SQL connection id (sql provider)", section="Strategy"
        ),
        "weights_table": Param(None, type=["null", "string"], title="SQL table (sql provider)", section="Strategy"),
        "starting_cash": Param(
            DEFAULT_STARTING_CASH, type="number", exclusiveMinimum=0, title="Starting cash", section="Strategy"
        ),
        "runtime": Param(
            os.environ.get(RUNTIME_ENV, "local"), type="string", enum=["local", "docker"], title="Lean runtime"
        ),
        "consistency_policy": Param("fail", type="string", enum=["fail", "warn"], title="Consistency policy"),
    }


def date_param_fields(kind: Literal["daily", "range"]) -> dict[str, Param]:
    if kind == "range":
        return {
            "start_date": Param("2021-01-04", type="string", format="date", title="Start date"),
            "end_date": Param("2021-03-31", type="string", format="date", title="End date"),
        }
    return {
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            title="As-of trading day",
            description="Required for manual runs; scheduled and backfill runs use their logical date.",
        )
    }


def _provider_options(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    provider = params.get("snapshot_provider") or Variable.get(PROVIDER_VARIABLE, default="trend_rotation")
    options: dict[str, Any] = {
        "universe": params.get("universe") or [],
        "top_n": params.get("top_n"),
        "lookback_days": params.get("lookback_days"),
        "path": params.get("weights_file"),
        "table": params.get("weights_table"),
    }
    if params.get("weights_conn_id"):
        from airflow.sdk import BaseHook

        options["url"] = BaseHook.get_connection(params["weights_conn_id"]).get_uri()
    return str(provider), {k: v for k, v in options.items() if v is not None}


def _folder(paths: Paths) -> Any:
    from include.run_folder import RunFolder, artifact_root

    return RunFolder.open(paths["run_dir"], root=artifact_root())


# ---------------------------------------------------------------------------- the tasks


@task
def snapshot(kind: Literal["daily", "range"], mode: Literal["backtest", "live"], **context: Any) -> Paths:
    from include.pipeline import resolve_run, session_of, step_snapshot
    from include.run_folder import data_folder

    run_type = context["dag_run"].run_type
    ref, dates = resolve_run(
        dag_id=context["dag"].dag_id,
        kind=kind,
        run_type=str(getattr(run_type, "value", run_type)),
        # A scheduled or backfill run's interval starts at its session's close (NyseTradingDayTimetable).
        interval_session=session_of(context.get("data_interval_start")),
        params=context["params"],
        mode=mode,
    )
    provider, options = _provider_options(context["params"])
    folder = step_snapshot(ref, dates, provider=provider, options=options, data_folder=data_folder())
    return {"run_dir": str(folder.path), "snapshots": str(folder.snapshots_path)}


@task
def write_intent(paths: Paths) -> Paths:
    from include.pipeline import step_write_intent

    return {"run_dir": paths["run_dir"], "intent": str(step_write_intent(_folder(paths)))}


@task
def write_params(paths: Paths, mode: Literal["backtest", "live"], continuous: bool, **context: Any) -> Paths:
    from include.contracts.params import EXECUTION_PARAM_FIELDS
    from include.pipeline import previous_run_folder, step_write_params

    folder = _folder(paths)
    previous = None
    if continuous:
        first_day = folder.load_intent().rebalances[0].date
        previous = previous_run_folder(folder.ref, first_day, mode=mode)
    execution = {key: context["params"].get(key) for key in EXECUTION_PARAM_FIELDS}
    written = step_write_params(folder, execution, previous=previous)
    return {"run_dir": paths["run_dir"], "params": str(written)}


@task
def ingest_events(paths: Paths, results_dir: str, **context: Any) -> Paths:
    from include.pipeline import step_ingest

    folder = _folder(paths)
    summary = step_ingest(
        folder,
        airflow_ids={
            "dag_id": context["dag"].dag_id,
            "run_id": context["dag_run"].run_id,
            "task_id": context["ti"].task_id,
            "logical_date": str(context.get("logical_date")),
            "try_number": str(context["ti"].try_number),
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


def build_lean_dag(
    *,
    dag_id: str,
    kind: Literal["daily", "range"],
    mode: Literal["backtest", "live"],
    description: str,
    doc_md: str,
) -> DAG:
    scheduled = kind == "daily"
    # Daily runs continue an account: the previous run's final state is the next run's start.
    continuous = kind == "daily"
    with DAG(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md,
        schedule=NyseTradingDayTimetable(
            minutes_after_close=DAILY_BACKTEST_MINUTES_AFTER_CLOSE if mode == "backtest" else LIVE_MINUTES_AFTER_CLOSE
        )
        if scheduled
        else None,
        start_date=pendulum.datetime(2019, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=mode == "backtest" and scheduled,
        params={**date_param_fields(kind), **strategy_param_fields(), **execution_param_fields()},
        tags=["lean", mode],
        default_args={
            "owner": "quant",
            "retries": 1,
            "retry_delay": dt.timedelta(seconds=30),
            # Each daily backtest starts from the previous run's holdings, so runs go in order.
            "depends_on_past": continuous and mode == "backtest",
        },
    ) as dag:
        # A TaskFlow call returns an XComArg that Airflow resolves to the task's return value at
        # run time; typed as what it resolves to, so the wiring below reads as the data flow.
        intent_out = cast(Any, write_intent)(snapshot(kind, mode))
        params_out: Paths = cast(Any, write_params)(intent_out, mode, continuous)
        run_lean = LeanRunOperator(
            task_id="run_lean",
            mode=mode,
            runtime="{{ params.runtime }}",
            run_dir=params_out["run_dir"],
            parameters={"starting-cash": "{{ params.starting_cash }}"},
            # Live brokers only: a connection named by env, so no credential ever sits in a DAG file.
            broker_conn_id=os.environ.get(BROKER_CONN_ENV) or None if mode == "live" else None,
            # Lean runs take the host's memory and CPUs: a pool caps how many run at once
            # (compose creates it in airflow-init); unset, the default pool.
            pool=os.environ.get(POOL_ENV) or None,
            # The engine's own limit stops Lean cleanly first; this one bounds the whole task.
            execution_timeout=task_execution_timeout(),
        )
        consistency_check(cast(Any, ingest_events)(params_out, run_lean.output))
    return dag
