"""Daily live rebalance on NYSE trading days (paper broker on the local runtime)."""

from lean_airflow.dag_factory import build_lean_dag

dag = build_lean_dag(
    dag_id="lean_live_rebalance",
    kind="daily",
    mode="live",
    description="Rebalance the live account to the day's target weights, after the NYSE close",
    doc_md=__doc__,
)
