"""``check RUN_DIR``: ingest the run's events (idempotent), then check it; writes report.json/.html.

The CLI ingests first so one command audits a run folder; the DAG's ``consistency_check`` task
does not (its ``ingest_events`` task already did).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from include.cli import print_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("check", help="consistency check of one run folder")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--policy", choices=("fail", "warn"), default="fail")
    parser.add_argument("--data-folder", type=Path, help="Lean data folder (default: from config.json)")
    parser.add_argument("--url", help="database URL (default $LEAN_AIRFLOW_DB_URL)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from include.audit.consistency import check_run_folder
    from include.audit.db import make_engine
    from include.audit.db_errors import audit_db_errors
    from include.audit.ingest import ingest_and_record_run
    from include.errors import ConsistencyCheckFailed
    from include.run_folder import RunFolder

    folder = RunFolder.open(args.run_dir)
    with audit_db_errors(args.url):
        engine = make_engine(args.url)
        try:
            ingest_and_record_run(engine, folder)
            report = check_run_folder(folder, engine=engine, policy=args.policy, data_folder=args.data_folder)
        except ConsistencyCheckFailed as exc:
            print_json({"verdict": "fail", "report": exc.report_path, "failures": exc.failures})
            raise
        finally:
            engine.dispose()
    print_json(
        {
            "verdict": report.verdict,
            "report": str(folder.report_json_path),
            "failures": report.failures,
            "events": report.events,
            "orders": report.orders,
        }
    )
    return 0
