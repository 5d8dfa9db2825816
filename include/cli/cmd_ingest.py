"""``ingest RESULTS_DIR --run-key KEY``: stream Lean's order events into the audit database.

When RESULTS_DIR is the ``results/`` of a run folder, the run folder says everything (DAG, algorithm
id, intent, mode, starting holdings), as the DAG's ``ingest_events`` task reads it; the flags
override it. Elsewhere the flags and the events files' names say it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from include.cli import print_json
from include.errors import ArtifactPathError, RunFolderError
from include.run_folder import RunFolder


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ingest", help="ingest <id>-order-events.json files (idempotent)")
    parser.add_argument("results_dir", type=Path, metavar="RESULTS_DIR")
    parser.add_argument("--run-key", required=True)
    parser.add_argument("--dag-id", help="default: the run folder's parent name, else 'manual'")
    parser.add_argument("--intent", type=Path, help="default: ../order_intent_run_<key>.json when present")
    parser.add_argument("--algorithm-id", help="default: the run folder's run key, else the file names")
    parser.add_argument("--mode", choices=("backtest", "live"), help="default: the run folder's config.json")
    parser.add_argument("--url", help="database URL (default $LEAN_AIRFLOW_DB_URL)")
    parser.set_defaults(handler=_run)


def _folder_of(results: Path) -> RunFolder | None:
    """The run folder whose ``results/`` this is (it has a config.json), else None."""
    parent = results.resolve().parent
    if results.resolve().name != "results" or not (parent / "config.json").is_file():
        return None
    try:
        return RunFolder.open(parent)
    except ArtifactPathError:
        return None  # its folder names are no DAG id / run key: a plain results folder


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    from include.audit.ingest import DEFAULT_DAG_ID, run_folder_ingest_inputs
    from include.contracts.intent import load_order_intent
    from include.run_folder import detect_algorithm_id, intent_filename

    results: Path = args.results_dir
    folder = _folder_of(results)
    if folder is not None and folder.run_key != args.run_key:
        raise RunFolderError([f"--run-key {args.run_key!r}: {results} belongs to run {folder.ref}"])
    inputs: dict[str, Any] = (
        run_folder_ingest_inputs(folder) if folder is not None else {"results_dir": results, "run_key": args.run_key}
    )
    intent_path = args.intent
    if intent_path is None and folder is None:  # an intent file next to a plain results folder
        candidate = results.parent / intent_filename(args.run_key)
        intent_path = candidate if candidate.exists() else None
    if intent_path is not None:
        inputs["intent"] = load_order_intent(intent_path)
    for key in ("dag_id", "algorithm_id", "mode"):
        if getattr(args, key) is not None:
            inputs[key] = getattr(args, key)
    inputs.setdefault("dag_id", DEFAULT_DAG_ID)
    inputs.setdefault("algorithm_id", detect_algorithm_id(results))
    if not inputs["algorithm_id"]:
        raise RunFolderError([f"{results}: cannot tell the algorithm id; pass --algorithm-id"])
    return inputs


def _run(args: argparse.Namespace) -> int:
    from include.audit.db import make_engine
    from include.audit.db_errors import audit_db_errors
    from include.audit.ingest import ingest_order_events

    inputs = _inputs(args)
    with audit_db_errors(args.url):
        engine = make_engine(args.url)
        try:
            summary = ingest_order_events(engine=engine, **inputs)
        finally:
            engine.dispose()
    print_json(summary.as_dict())
    return 0
