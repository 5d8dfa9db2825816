"""``ingest RESULTS_DIR --run-key KEY``: stream Lean's order events into the audit database."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from include.cli import print_json
from include.errors import RunFolderError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ingest", help="ingest <id>-order-events.json files (idempotent)")
    parser.add_argument("results_dir", type=Path, metavar="RESULTS_DIR")
    parser.add_argument("--run-key", required=True)
    parser.add_argument("--dag-id", help="default: the run folder's parent name, else 'manual'")
    parser.add_argument("--intent", type=Path, help="default: ../order_intent_run_<key>.json when present")
    parser.add_argument("--algorithm-id", help="default: config.json next to RESULTS_DIR, else the file names")
    parser.add_argument("--mode", choices=("backtest", "live"))
    parser.add_argument("--url", help="database URL (default $LEAN_AIRFLOW_DB_URL)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from include.audit.db import make_engine
    from include.audit.ingest import DEFAULT_DAG_ID, detect_algorithm_id, ingest_order_events
    from include.audit.run_folder import StartingState, try_open_run_folder
    from include.intent import load_order_intent

    results: Path = args.results_dir
    run = try_open_run_folder(results.parent)
    intent_path = args.intent
    if intent_path is None:
        candidate = results.parent / f"order_intent_run_{args.run_key}.json"
        intent_path = candidate if candidate.exists() else None
    intent = load_order_intent(intent_path) if intent_path is not None else None
    algorithm_id = args.algorithm_id or (run.algorithm_id if run else None) or detect_algorithm_id(results)
    if not algorithm_id:
        raise RunFolderError([f"{results}: cannot tell the algorithm id; pass --algorithm-id"])
    starting = run.starting_state() if run else StartingState(cash=None)
    mode = args.mode or (run.mode if run else "backtest")
    engine = make_engine(args.url)
    try:
        summary = ingest_order_events(
            engine=engine,
            results_dir=results,
            algorithm_id=algorithm_id,
            intent=intent,
            dag_id=args.dag_id or (run.dag_id if run else DEFAULT_DAG_ID),
            run_key=args.run_key,
            mode="live" if mode == "live" else "backtest",
            holdings=starting.holdings,
        )
    finally:
        engine.dispose()
    print_json(summary.as_dict())
    return 0
