"""One factory for the three Lean DAGs: the same six-task chain, differing only in mode and dates.

    snapshot -> write_intent -> write_params -> run_lean -> ingest_events -> consistency_check

The chain is ``include.pipeline``'s: each task reads the Airflow context and calls one of its
staged task bodies (``include.pipeline.task_*``). XCom carries artifact-store URIs only (the run folder
and its files; ``file://`` URIs of the local artifact root in the embedded default), never a worker's path.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, cast

import pendulum
from airflow.sdk import DAG, Param, Variable, task
from airflow.sdk.exceptions import AirflowFailException

from include.live_session import LIVE_DEADLINE_MINUTES_AFTER_CLOSE, live_minutes_before_close
from lean_airflow.operators import LeanReportLink, LeanRunOperator, artifact_store, task_execution_timeout
from lean_airflow.timetables import NyseTradingDayTimetable

RUNTIME_ENV = "LEAN_AIRFLOW_RUNTIME"
PROVIDER_VARIABLE = "lean_snapshot_provider"
BROKER_CONN_ENV = "LEAN_AIRFLOW_BROKER_CONN_ID"
POOL_ENV = "LEAN_AIRFLOW_POOL"
EXECUTION_SECTION = "Execution params"
# A daily backtest of session D runs at 06:00 New York time the next day (03:00 after a 13:00 early
# close): Lean ends a backtest yesterday at the latest (QCAlgorithm.SetEndDate), so it must start
# after midnight to trade D.
DAILY_BACKTEST_MINUTES_AFTER_CLOSE = 14 * 60
# The algorithm's deadline: at close + 10 min it cancels what is still open, writes done-<D>.json and
# quits (Lean then exits 0). The engine's limit covers the run's start to that deadline plus a margin
# for the image, Lean's start-up and its final flush.
LIVE_ENGINE_MARGIN = dt.timedelta(minutes=20)
log = logging.getLogger(__name__)
# Shown with the DAG's docs in the UI, for the DAG whose runs wait for each other.
BLOCKED_RUNS_DOC = """

**Runs go in order.** Each run starts from the previous run's holdings (`depends_on_past`): a run
that did not succeed holds back every later one. Its next run's `snapshot` task fails at once and
names it; fix it by clearing its failed tasks (re-run) or marking it success, then clear the runs
after it (or backfill them with reprocess behaviour "failed").
"""

Paths = dict[str, str]


def live_engine_timeout(minutes_before_close: int) -> dt.timedelta:
    """The live ``run_lean``'s engine limit: from the run's start (close - N) to the algorithm's deadline
    (close + 10 min), plus a margin; the task's ``execution_timeout`` adds the stop grace on top."""
    return dt.timedelta(minutes=minutes_before_close + LIVE_DEADLINE_MINUTES_AFTER_CLOSE) + LIVE_ENGINE_MARGIN


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


@contextmanager
def form_errors_fail_at_once() -> Iterator[None]:
    """A form the contracts refuse fails the task at once, without a retry, and says what to fix.

    The named validation errors of ``include`` (``ContractValidationError``, ``RunDateError`` among
    them) become ``AirflowFailException``: the same Params would fail the same way 30 s later.
    ``include`` never imports Airflow, so the conversion lives here.
    """
    from include.errors import ContractValidationError

    try:
        yield
    except ContractValidationError as exc:
        raise AirflowFailException(
            f"{exc} (the run's Params are refused; no retry: trigger a new run with corrected values)"
        ) from exc


def _run_type(context: dict[str, Any]) -> str:
    run_type = context["dag_run"].run_type
    return str(getattr(run_type, "value", run_type))


# Task states that let the next run of a depends_on_past task start (Airflow's PrevDagrunDep).
_PASSING_STATES = ("success", "skipped")


def check_previous_run(context: dict[str, Any]) -> None:
    """Fail at once, naming the run, when the previous run would block this one's ``depends_on_past`` tasks.

    Airflow leaves such tasks without a state ("blocked" only in their dependency details), and the
    run then holds the single active-run slot: every later run waits behind it, silently. The
    previous run is Airflow's (the latest run with an earlier logical date, any type); the first run
    of a backfill is not held back by earlier runs, as in Airflow.
    """
    ti = context["ti"]
    previous = ti.get_previous_dagrun()
    if previous is None:
        return
    this_type = _run_type(context)
    previous_type = str(getattr(previous.run_type, "value", previous.run_type))
    if this_type == "backfill" and previous_type != "backfill":
        return
    previous_state = str(getattr(previous.state, "value", previous.state))
    if previous_state in ("queued", "running"):
        log.info(
            "previous run %s is still %s: this run's later tasks wait for it (depends_on_past)",
            previous.run_id,
            previous_state,
        )
        return
    states = ti.get_task_states(dag_id=previous.dag_id, run_ids=[previous.run_id]).get(previous.run_id, {})
    dag_tasks = [t.task_id for t in context["dag"].topological_sort()]
    unsuccessful = {task_id: states.get(task_id) for task_id in dag_tasks if states.get(task_id) not in _PASSING_STATES}
    # Only the tasks that depend on the past hold this run back (snapshot itself does not).
    if not any(context["dag"].get_task(task_id).depends_on_past for task_id in unsuccessful):
        return
    shown = ", ".join(f"{task_id}={state or 'no state'}" for task_id, state in unsuccessful.items())
    logical = previous.logical_date.isoformat() if previous.logical_date else "none"
    raise AirflowFailException(
        f"blocked by the previous run {previous.run_id} (logical date {logical}, {previous_state}): {shown}. "
        "Each daily backtest starts from the previous run's holdings (depends_on_past), so this run and "
        f"every later one wait for it. Fix: open run {previous.run_id} and Clear its failed tasks to re-run it, "
        "or Mark it as success to accept it as it is (a run refused for its Params: mark it success or "
        "delete it); then Clear this run (or backfill the range with reprocess behaviour 'failed')."
    )


# ---------------------------------------------------------------------------- the tasks


@task
def snapshot(kind: Literal["daily", "range"], mode: Literal["backtest", "live"], **context: Any) -> Paths:
    from include.pipeline import check_run_form, session_of, task_snapshot
    from include.run_folder import data_folder

    # Every Param is checked before the folder exists: a refused form leaves nothing behind.
    with form_errors_fail_at_once():
        ref, dates = check_run_form(
            dag_id=context["dag"].dag_id,
            kind=kind,
            run_type=_run_type(context),
            # A scheduled or backfill run's interval starts at its session's close (NyseTradingDayTimetable).
            interval_session=session_of(context.get("data_interval_start")),
            params=context["params"],
            mode=mode,
        )
    if any(t.depends_on_past for t in context["dag"].tasks):
        check_previous_run(context)
    provider, options = _provider_options(context["params"])
    return task_snapshot(
        ref, dates, provider=provider, options=options, data_folder=data_folder(), store=artifact_store()
    )


@task
def write_intent(paths: Paths) -> Paths:
    from include.pipeline import task_write_intent

    return task_write_intent(paths["run_dir"], store=artifact_store())


@task
def write_params(paths: Paths, mode: Literal["backtest", "live"], continuous: bool, **context: Any) -> Paths:
    from include.contracts.params import EXECUTION_PARAM_FIELDS
    from include.pipeline import task_write_params

    execution = {key: context["params"].get(key) for key in EXECUTION_PARAM_FIELDS}
    return task_write_params(paths["run_dir"], execution, mode=mode, continuous=continuous, store=artifact_store())


@task
def ingest_events(paths: Paths, results_dir: str, **context: Any) -> Paths:
    from include.pipeline import task_ingest

    uris, summary = task_ingest(
        paths["run_dir"],
        store=artifact_store(),
        airflow_ids={
            "dag_id": context["dag"].dag_id,
            "run_id": context["dag_run"].run_id,
            "task_id": context["ti"].task_id,
            "logical_date": str(context.get("logical_date")),
            "try_number": str(context["ti"].try_number),
        },
    )
    log.info("ingested %s from %s", summary, results_dir)
    return uris


@task
def consistency_check(paths: Paths, **context: Any) -> Paths:
    from include.pipeline import task_check

    uris, checked = task_check(
        paths["run_dir"], policy=context["params"].get("consistency_policy", "fail"), store=artifact_store()
    )
    log.info("consistency verdict %s (%s failures)", checked["verdict"], checked["failures"])
    return uris


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
    ordered = continuous and mode == "backtest"
    engine_limits: dict[str, Any] = {"execution_timeout": task_execution_timeout()}
    schedule: NyseTradingDayTimetable | None = None
    if scheduled and mode == "live":
        lead = live_minutes_before_close()
        schedule = NyseTradingDayTimetable(minutes_before_close=lead)
        engine_limits = {
            "engine_timeout": live_engine_timeout(lead),
            "execution_timeout": task_execution_timeout(live_engine_timeout(lead)),
        }
    elif scheduled:
        schedule = NyseTradingDayTimetable(minutes_after_close=DAILY_BACKTEST_MINUTES_AFTER_CLOSE)
    with DAG(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md + BLOCKED_RUNS_DOC if ordered else doc_md,
        schedule=schedule,
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
            "depends_on_past": ordered,
        },
    ) as dag:
        # A TaskFlow call returns an XComArg that Airflow resolves to the task's return value at
        # run time; typed as what it resolves to, so the wiring below reads as the data flow.
        # snapshot does not depend on the past: it is the task that says, by name, which earlier run
        # blocks the others (check_previous_run) instead of waiting silently with them.
        intent_out = cast(Any, write_intent)(cast(Any, snapshot).override(depends_on_past=False)(kind, mode))
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
            # The engine's own limit stops Lean cleanly first; execution_timeout bounds the whole task.
            # Live: from the run's start to the algorithm's deadline (close + 10 min), plus margins.
            **engine_limits,
        )
        checked = cast(Any, consistency_check)(cast(Any, ingest_events)(params_out, run_lean.output))
        # The report link of run_lean, on the task that writes the report (a TaskFlow task takes
        # its operator's class links; these are this one task's).
        checked.operator.operator_extra_links = (LeanReportLink(),)
    return dag
