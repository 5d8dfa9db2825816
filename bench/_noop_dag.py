"""The baseline DAG of the DAG benchmarks: the same six-task chain, timetable, task defaults
(``depends_on_past``, one retry) and trigger form as ``lean_backtest_daily``, with tasks that do
nothing, so a ratio against it isolates the work of a rebalance from Airflow's own per-run and
per-task cost.

The form matters: Airflow validates every Param of a DAG against its JSON Schema for each task it
runs (``Param.resolve``: ``jsonschema.validate``, metaschema check included), about 1.5 ms per Param
per task here, so the 18 fields of the Lean form cost each run ~0.17 s that a one-Param DAG does
not pay. ``bare=True`` gives the one-Param variant, reported beside the judged figure.
"""

from __future__ import annotations

NOOP_DAG_TEMPLATE = """
import datetime as dt

import pendulum
from airflow.sdk import DAG, task
from lean_airflow.dag_factory import date_param_fields, execution_param_fields, strategy_param_fields
from lean_airflow.timetables import NyseTradingDayTimetable

PARAMS = {params}

with DAG({dag_id!r}, schedule=NyseTradingDayTimetable(), start_date=pendulum.datetime(2019, 1, 1, tz="UTC"),
         catchup=False, max_active_runs=1, params=PARAMS,
         default_args={{"retries": 1, "retry_delay": dt.timedelta(seconds=30), "depends_on_past": True}}) as dag:
    @task
    def snapshot(): return {{"run_dir": "x"}}
    @task
    def write_intent(x): return x
    @task
    def write_params(x): return x
    @task
    def run_lean(x): return x
    @task
    def ingest_events(x): return x
    @task
    def consistency_check(x): return x
    consistency_check(ingest_events(run_lean(write_params(write_intent(snapshot())))))
"""
# The Lean daily DAG's form, field for field (lean_airflow.dag_factory.build_lean_dag).
LEAN_FORM = '{**date_param_fields("daily"), **strategy_param_fields(), **execution_param_fields()}'
BARE_FORM = '{"as_of": None}'


def noop_dag_source(dag_id: str, *, bare: bool = False) -> str:
    return NOOP_DAG_TEMPLATE.format(dag_id=dag_id, params=BARE_FORM if bare else LEAN_FORM)
