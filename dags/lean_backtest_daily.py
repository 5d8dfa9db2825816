"""Backtest of one trading day's rebalance, continuing the previous run's account.

Paused at creation. Replay a period as one continuous account with:
``airflow backfill create --dag-id lean_backtest_daily --from-date A --to-date B``
"""

from lean_airflow.dag_factory import build_lean_dag

dag = build_lean_dag(
    dag_id="lean_backtest_daily",
    kind="daily",
    mode="backtest",
    description="Backtest the day's rebalance from the previous day's holdings (backfillable)",
    doc_md=__doc__,
)
