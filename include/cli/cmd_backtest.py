"""``backtest``: the whole chain without Airflow, on the local runtime.

snapshot -> intent -> params -> Lean (local) -> ingest -> check, into the same run folder the
``lean_backtest_range`` DAG uses, with a progress bar on stderr and a summary at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from include.artifacts import ALGORITHM_PATH, data_folder, run_dir
from include.cli import print_json
from include.errors import ExecutionParamsError
from include.lean_runtime import RunPaths, run_lean_local
from include.pipeline import (
    resolve_run_dates,
    step_check,
    step_ingest,
    step_snapshot,
    step_write_intent,
    step_write_params,
)

DAG_ID = "lean_backtest_range"
STEPS = ("snapshot", "write_intent", "write_params", "run_lean", "ingest_events", "consistency_check")


class ProgressBar:
    """A one-line bar on a TTY; plain lines otherwise (CI logs)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()

    def update(self, label: str, *, advance: int = 0) -> None:
        self.done += advance
        width = 24
        filled = int(width * self.done / self.total)
        elapsed = time.monotonic() - self.started
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label} ({elapsed:.1f}s)"
        if self.tty:
            self.stream.write("\r\033[K" + line[:120])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("backtest", help="run the whole chain without Airflow (local runtime)")
    parser.add_argument("--start", required=True, type=dt.date.fromisoformat, help="first trading day, YYYY-MM-DD")
    parser.add_argument("--end", required=True, type=dt.date.fromisoformat, help="last trading day, YYYY-MM-DD")
    parser.add_argument("--params", type=Path, help="JSON file of execution params")
    parser.add_argument("--provider", default="trend_rotation", choices=["trend_rotation", "file", "sql"])
    parser.add_argument("--weights-file", help="weights table for --provider file")
    parser.add_argument("--top-n", type=int, default=3)
    parser.add_argument("--lookback-days", type=int, default=20)
    parser.add_argument("--universe", nargs="*", default=[])
    parser.add_argument("--starting-cash", type=float, default=100_000.0)
    parser.add_argument("--policy", choices=["fail", "warn"], default="fail")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds before the engine is killed")
    parser.set_defaults(handler=_run)


def _load_params(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ExecutionParamsError([f"--params {path}: cannot read JSON ({exc})"]) from None
    if not isinstance(loaded, dict):
        raise ExecutionParamsError([f"--params {path}: expected a JSON object"])
    return loaded


def _run(args: argparse.Namespace) -> int:
    params = _load_params(args.params)
    run_key, dates = resolve_run_dates(
        kind="range",
        run_type="manual",
        interval_end_session=None,
        params={"start_date": args.start.isoformat(), "end_date": args.end.isoformat()},
    )
    bar = ProgressBar(len(STEPS))
    bar.update(f"snapshot: {len(dates)} trading days")
    options = {"top_n": args.top_n, "lookback_days": args.lookback_days, "universe": args.universe,
               "path": args.weights_file}
    snap = step_snapshot(dag_id=DAG_ID, run_key=run_key, dates=dates, provider=args.provider, options=options,
                         data_folder=data_folder())
    bar.update("write_intent", advance=1)
    intent = step_write_intent(run_dir=snap["run_dir"], run_key=run_key, snapshots_path=snap["snapshots_path"])
    bar.update("write_params", advance=1)
    written = step_write_params(run_dir=snap["run_dir"], run_key=run_key, params=params)
    bar.update("run_lean (local runtime)", advance=1)
    folder = run_dir(DAG_ID, run_key)
    paths = RunPaths(
        run_dir=folder,
        intent_path=Path(intent["intent_path"]),
        params_path=Path(written["params_path"]),
        algorithm_path=ALGORITHM_PATH,
        data_folder=data_folder(),
        algorithm_id=run_key,
    )
    engine = run_lean_local(
        paths,
        mode="backtest",
        parameters={"starting-cash": args.starting_cash},
        timeout_s=args.timeout,
        on_line=lambda line: bar.update(f"run_lean: {line[:70]}") if "%" in line else None,
    )
    bar.update("ingest_events", advance=1)
    ingested = step_ingest(dag_id=DAG_ID, run_key=run_key, run_dir=str(folder), results_dir=str(paths.results_dir),
                           mode="backtest", engine=engine)
    bar.update("consistency_check", advance=1)
    checked = step_check(dag_id=DAG_ID, run_key=run_key, run_dir=str(folder), policy=args.policy)
    bar.update("done", advance=1)
    bar.close()
    from include.cli.cmd_report import SUMMARY_STATISTICS
    from include.reporting.run_view import load_run_view

    view = load_run_view(folder)
    rows = [("run folder", str(folder)), ("trading days", str(len(dates))), ("orders", str(len(view.orders))),
            ("events inserted", f"{ingested['inserted']} (already present {ingested['already_present']})"),
            ("verdict", checked["verdict"])]
    rows += [(k, view.statistics[k]) for k in SUMMARY_STATISTICS if k in view.statistics]
    rows.append(("report", checked["report_html"]))
    width = max(len(k) for k, _ in rows)
    sys.stderr.write("\n".join(f"{k:<{width}}  {v}" for k, v in rows) + "\n")
    print_json({"run_dir": str(folder), "run_key": run_key, "ingest": ingested, "check": checked, "engine": engine})
    return 0
