"""Live rebalance of NYSE session D, run on D before the close (Lean live, one session per run).

The run starts at close(D) - N minutes (N = `LEAN_AIRFLOW_LIVE_MINUTES_BEFORE_CLOSE`, default 50:
15:10 New York time on a full day, 12:10 on a 13:00 early close); weekends and holidays get no run.
`snapshot` uses only bars before D, `write_intent` targets D, and `run_lean` starts Lean live: the
algorithm places market-on-close orders (filled at D's close), waits until every order is done or
until the deadline close(D) + 10 min (it cancels what is still open), writes `done-<D>.json`
and quits. `ingest_events` stores the order events of every per-UTC-day file; a run without
`done-<D>.json` fails there (Lean crashed or was stopped before it finished the session).
`consistency_check` fails an order that was not filled, and compares the account with the
algorithm's `final-state.json` (and, with a real broker, the broker's holdings).
"""

from lean_airflow.dag_factory import build_lean_dag

dag = build_lean_dag(
    dag_id="lean_live_rebalance",
    kind="daily",
    mode="live",
    description="Rebalance the live account to session D's targets with market-on-close orders, before D's close",
    doc_md=__doc__,
)
