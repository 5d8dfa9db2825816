"""A parameter sweep of Lean backtests (trigger with the form).

Give a date range and a grid (a JSON object: name -> list of values; any execution param, `top_n`,
`lookback_days`) and/or walk-forward windows (`{"window_sessions": 20, "step_sessions": 10}`). Every
combination is a point: one complete run (snapshot, intent, params, Lean, ingest, check) with its own run
key `<start>_<end>_<sweep hash>_p<NN>`. `compare_points` writes the comparison (Lean's statistics per
point, the ranking by `rank_by`, a plot), shown at `/lean-airflow/sweeps/<sweep hash>`. The Lean runs
share the pool `lean`; a failed point fails alone and is marked in the comparison.
"""

from lean_airflow.sweep_dag import build_sweep_dag

dag = build_sweep_dag(
    dag_id="lean_backtest_sweep",
    description="Sweep a grid of params (or walk-forward windows) over a date range, one Lean run per point",
    doc_md=__doc__,
)
