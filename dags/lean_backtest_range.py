"""One Lean backtest over a date range, rebalancing every trading day (trigger with the form)."""

from lean_airflow.dag_factory import build_lean_dag

dag = build_lean_dag(
    dag_id="lean_backtest_range",
    kind="range",
    mode="backtest",
    description="Backtest a date range with one rebalance per trading day",
    doc_md=__doc__,
)
