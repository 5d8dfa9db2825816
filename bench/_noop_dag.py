"""The baseline DAG of the DAG benchmarks: the same six-task chain, timetable and task defaults
(``depends_on_past``, one retry) as ``lean_backtest_daily``, with tasks that do nothing, so a ratio
against it isolates the work of a rebalance from Airflow's own per-run and per-task cost."""

from __future__ import annotations

NOOP_DAG_TEMPLATE = """
import datetime as dt

import pendulum
from airflow.sdk import DAG, task
from lean_airflow.timetables import NyseTradingDayTimetable

with DAG({dag_id!r}, schedule=NyseTradingDayTimetable(), start_date=pendulum.datetime(2019, 1, 1, tz="UTC"),
         catchup=False, max_active_runs=1, params={{"as_of": None}},
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


def noop_dag_source(dag_id: str) -> str:
    return NOOP_DAG_TEMPLATE.format(dag_id=dag_id)
