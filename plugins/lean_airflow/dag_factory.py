"""One factory for the three Lean DAGs: the same six-task chain, differing only in mode and dates.

    snapshot -> write_intent -> write_params -> run_lean -> ingest_events -> consistency_check

Tasks only read the Airflow context and call ``include.pipeline``; XCom carries file paths
and small JSON summaries.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Literal

import pendulum
from airflow.sdk import DAG, Param, Variable, task

from lean_airflow.operators import LeanRunOperator
from lean_airflow.timetables import NyseTradingDayTimetable

TASK_ORDER = ("snapshot", "write_intent", "write_params", "run_lean", "ingest_events", "consistency_check")
RUNTIME_ENV = "LEAN_AIRFLOW_RUNTIME"
PROVIDER_VARIABLE = "lean_snapshot_provider"
BROKER_CONN_ENV = "LEAN_AIRFLOW_BROKER_CONN_ID"


def execution_param_fields() -> dict[str, Param]:
    """The ExecutionParams form fields (validated again by the pydantic model in write_params)."""
    return {
        "min_qty": Param(1, type="integer", minimum=1, title="Min quantity", section="Execution params"),
        "lot_size": Param(1, type="integer", minimum=1, title="Lot size", section="Execution params"),
        "cash_buffer_ratio": Param(
            0.02, type="number", minimum=0, exclusiveMaximum=1, title="Cash buffer ratio", section="Execution params"
        ),
        "fee_bps": Param(1.0, type="number", minimum=0, title="Fee (bps of notional)", section="Execution params"),
        "slippage_open_bps": Param(
            2.0, type="number", minimum=0, title="Slippage at the open (bps)", section="Execution params"
        ),
        "slippage_close_bps": Param(
            1.0, type="number", minimum=0, title="Slippage otherwise (bps)", section="Execution params"
        ),
        "risk_overrides": Param(
            {},
            type="object",
            title="Risk overrides",
            description='e.g. {"max_weight": 0.4, "blocked_symbols": ["SYNC"], "max_gross_exposure": 0.95}',
            section="Execution params",
        ),
    }


def strategy_param_fields() -> dict[str, Param]:
    return {
        "snapshot_provider": Param(
            None,
            type=["null", "string"],
            enum=[None, "trend_rotation", "file", "sql"],
            title="Snapshot provider",
            description=f"Empty: the Airflow Variable {PROVIDER_VARIABLE}, else trend_rotation.",
            section="Strategy",
        ),
        "universe": Param(
            [], type="array", items={"type": "string"}, title="Universe (empty: all tickers)", section="Strategy"
        ),
        "top_n": Param(3, type="integer", minimum=1, title="Top N by momentum", section="Strategy"),
        "lookback_days": Param(20, type="integer", minimum=1, title="Momentum lookback (sessions)", section="Strategy"),
        "weights_file": Param(None, type=["null", "string"], title="Weights file (file provider)", section="Strategy"),
        "weights_conn_id": Param(
            None, type=["null", "string"], title="SQL connection id (sql provider)", section="Strategy"
        ),
        "weights_table": Param(None, type=["null", "string"], title="SQL table (sql provider)", section="Strategy"),
        "starting_cash": Param(100000, type="number", exclusiveMinimum=0, title="Starting cash", section="Strategy"),
        "runtime": Param(
            os.environ.get(RUNTIME_ENV, "local"), type="string", enum=["local", "docker"], title="Lean runtime"
        ),
        "consistency_policy": Param("fail", type="string", enum=["fail", "warn"], title="Consistency policy"),
    }


def _provider_options(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    provider = params.get("snapshot_provider") or Variable.get(PROVIDER_VARIABLE, default="trend_rotation")
    options: dict[str, Any] = {
        "universe": params.get("universe") or [],
        "top_n": params.get("top_n", 3),
        "lookback_days": params.get("lookback_days", 20),
        "path": params.get("weights_file"),
        "table": params.get("weights_table"),
    }
    if params.get("weights_conn_id"):
        from airflow.sdk import BaseHook

        options["url"] = BaseHook.get_connection(params["weights_conn_id"]).get_uri()
    return str(provider), options


def build_lean_dag(
    *,
    dag_id: str,
    kind: Literal["daily", "range"],
    mode: Literal["backtest", "live"],
    description: str,
    doc_md: str,
) -> DAG:
    scheduled = kind == "daily"
    params: dict[str, Any] = {}
    if kind == "range":
        params["start_date"] = Param("2021-01-04", type="string", format="date", title="Start date")
        params["end_date"] = Param("2021-03-31", type="string", format="date", title="End date")
    else:
        params["as_of"] = Param(
            None,
            type=["null", "string"],
            format="date",
            title="As-of trading day",
            description="Required for manual runs; scheduled and backfill runs use their logical date.",
        )
    params.update(strategy_param_fields())
    params.update(execution_param_fields())
    # Daily runs continue an account: the previous run's final state is the next run's start.
    continuous = kind == "daily"

    with DAG(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md,
        schedule=NyseTradingDayTimetable(minutes_after_close=30) if scheduled else None,
        start_date=pendulum.datetime(2019, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=mode == "backtest" and scheduled,
        params=params,
        tags=["lean", mode],
        default_args={
            "owner": "quant",
            "retries": 1,
            "retry_delay": dt.timedelta(seconds=30),
            # Each daily backtest starts from the previous run's holdings, so runs go in order.
            "depends_on_past": continuous and mode == "backtest",
        },
    ) as dag:

        @task
        def snapshot(**context: Any) -> dict[str, str]:
            from include.artifacts import data_folder
            from include.pipeline import resolve_run_dates, session_of, step_snapshot

            run_key, dates = resolve_run_dates(
                kind=kind,
                run_type=str(getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type)),
                interval_end_session=session_of(context.get("data_interval_end")),
                params=context["params"],
            )
            provider, options = _provider_options(context["params"])
            out = step_snapshot(
                dag_id=dag_id,
                run_key=run_key,
                dates=dates,
                provider=provider,
                options=options,
                data_folder=data_folder(),
            )
            return {**out, "run_key": run_key, "first_date": dates[0].isoformat(), "last_date": dates[-1].isoformat()}

        @task
        def write_intent(snap: dict[str, str]) -> dict[str, str]:
            from include.pipeline import step_write_intent

            out = step_write_intent(
                run_dir=snap["run_dir"], run_key=snap["run_key"], snapshots_path=snap["snapshots_path"]
            )
            return {**snap, **out}

        @task
        def write_params(intent: dict[str, str], **context: Any) -> dict[str, str]:
            from include.pipeline import previous_run_dir, step_write_params

            params = context["params"]
            execution = {key: params.get(key) for key in execution_param_fields()}
            day = dt.date.fromisoformat(intent["first_date"])
            previous = previous_run_dir(dag_id, day, mode=mode) if continuous else None
            out = step_write_params(
                run_dir=intent["run_dir"], run_key=intent["run_key"], params=execution, previous_run_dir=previous
            )
            return {**intent, **out, "initial_state_path": out.get("initial_state_path", "")}

        @task
        def ingest_events(paths: dict[str, str], results_dir: str, **context: Any) -> dict[str, Any]:
            from include.pipeline import step_ingest

            ti = context["ti"]
            return step_ingest(
                dag_id=dag_id,
                run_key=paths["run_key"],
                run_dir=paths["run_dir"],
                results_dir=results_dir,
                mode=mode,
                engine=ti.xcom_pull(task_ids="run_lean", key="engine") or {},
                airflow_ids={
                    "dag_id": dag_id,
                    "run_id": context["dag_run"].run_id,
                    "logical_date": str(context.get("logical_date")),
                    "try_number": str(ti.try_number),
                },
            )

        @task
        def consistency_check(paths: dict[str, str], ingested: dict[str, Any], **context: Any) -> dict[str, Any]:
            from include.pipeline import step_check

            return step_check(
                dag_id=dag_id,
                run_key=paths["run_key"],
                run_dir=paths["run_dir"],
                policy=context["params"].get("consistency_policy", "fail"),
            )

        snap = snapshot()
        intent = write_intent(snap)
        params_out = write_params(intent)
        run_lean = LeanRunOperator(
            task_id="run_lean",
            mode=mode,
            runtime="{{ params.runtime }}",
            run_dir=params_out["run_dir"],
            intent_path=params_out["intent_path"],
            params_path=params_out["params_path"],
            initial_state_path=params_out["initial_state_path"],
            parameters={"starting-cash": "{{ params.starting_cash }}"},
            # Live brokers only: a connection named by env, so no credential ever sits in a DAG file.
            broker_conn_id=os.environ.get(BROKER_CONN_ENV) or None if mode == "live" else None,
            live_as_of=snap["last_date"] if mode == "live" else None,
        )
        ingested = ingest_events(params_out, run_lean.output)
        consistency_check(params_out, ingested)
    return dag
