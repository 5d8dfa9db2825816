"""``report RUN_DIR``: render the run's standalone report (``include.reporting.run_view``) and print (or open) it."""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from pathlib import Path
from typing import Any

from include.atomic_io import atomic_write_text
from include.cli import print_json
from include.errors import ArtifactPathError
from include.reporting.html import render_run_page
from include.reporting.run_view import load_run_view
from include.run_folder import RunFolder

REPORT_BASE_URL_ENV = "LEAN_AIRFLOW_REPORT_BASE_URL"
SUMMARY_STATISTICS = ("Total Orders", "Net Profit", "End Equity", "Total Fees", "Drawdown", "Sharpe Ratio")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("report", help="render a run's report.html and print where it is")
    parser.add_argument("run_dir", type=Path, help="the run folder, <artifact root>/<dag_id>/<run key>")
    parser.add_argument("--open", action="store_true", help="open report.html in the default browser")
    parser.add_argument("--summary", action="store_true", help="also print a short table on stderr")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    folder = RunFolder.open(args.run_dir)
    if not folder.config_path.exists() and not folder.intent_path.exists():
        raise ArtifactPathError(
            f"{folder.path} is not a run folder (no config.json or order intent); "
            "pass <artifact root>/<dag_id>/<run key>"
        )
    view = load_run_view(folder)
    html_path = folder.report_html_path
    atomic_write_text(html_path, render_run_page(view))
    base = os.environ.get(REPORT_BASE_URL_ENV, "http://localhost:8080").rstrip("/")
    verdict = (view.report or {}).get("verdict", "not checked")
    summary = {
        "run_dir": str(folder.path),
        "report_html": str(html_path),
        "report_json": str(folder.report_json_path) if folder.report_json_path.exists() else None,
        "ui_url": f"{base}/lean-airflow/runs/{view.dag_id}/{view.run_key}",
        "verdict": verdict,
        "orders": len(view.orders),
        "statistics": {k: view.statistics[k] for k in SUMMARY_STATISTICS if k in view.statistics},
    }
    if args.summary:
        width = max(len(k) for k in ("verdict", "orders", "in Airflow", *summary["statistics"]))
        lines = [f"{'verdict':<{width}}  {verdict}", f"{'orders':<{width}}  {len(view.orders)}"]
        lines += [f"{k:<{width}}  {v}" for k, v in summary["statistics"].items()]
        lines += [f"{'report':<{width}}  {html_path}", f"{'in Airflow':<{width}}  {summary['ui_url']}"]
        sys.stderr.write("\n".join(lines) + "\n")
    print_json(summary)
    if args.open:
        webbrowser.open(html_path.as_uri())
    return 0
