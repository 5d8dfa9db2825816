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

from include.cli import print_json
from include.errors import ExecutionParamsError
from include.launch.local import StopRequested, interrupted_message, stop_on_signals
from include.pipeline import (
    DEFAULT_ENGINE_TIMEOUT_S,
    DEFAULT_STARTING_CASH,
    TASKS,
    ChainRequest,
    resolve_run,
    run_chain,
)
from include.snapshots import DEFAULT_LOOKBACK_DAYS, DEFAULT_TOP_N, PROVIDERS

DAG_ID = "lean_backtest_range"


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
    parser.add_argument("--params", type=Path, help="JSON file of execution params (default: the contract's)")
    parser.add_argument("--provider", default="trend_rotation", choices=PROVIDERS)
    parser.add_argument("--weights-file", help="weights table for --provider file")
    parser.add_argument("--top-n", type=int, default=DEFAULT_TOP_N)
    parser.add_argument("--lookback-days", type=int, default=DEFAULT_LOOKBACK_DAYS)
    parser.add_argument("--universe", nargs="*", default=[])
    parser.add_argument("--starting-cash", type=float, default=DEFAULT_STARTING_CASH)
    parser.add_argument("--policy", choices=["fail", "warn"], default="fail")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_ENGINE_TIMEOUT_S, help="seconds before the engine is stopped"
    )
    parser.set_defaults(handler=_run)


def _load_params(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExecutionParamsError([f"--params {path}: cannot read JSON ({exc})"]) from None
    if not isinstance(loaded, dict):
        raise ExecutionParamsError([f"--params {path}: expected a JSON object"])
    return loaded


def _run(args: argparse.Namespace) -> int:
    ref, dates = resolve_run(
        dag_id=DAG_ID,
        kind="range",
        run_type="manual",
        interval_session=None,
        params={"start_date": args.start.isoformat(), "end_date": args.end.isoformat()},
    )
    request = ChainRequest(
        ref=ref,
        dates=tuple(dates),
        provider=args.provider,
        options={
            "top_n": args.top_n,
            "lookback_days": args.lookback_days,
            "universe": args.universe,
            "path": args.weights_file,
        },
        execution=_load_params(args.params),
        starting_cash=args.starting_cash,
        policy=args.policy,
    )
    bar = ProgressBar(len(TASKS))
    bar.update(f"snapshot: {len(dates)} trading days")

    def progress(step: str, detail: dict[str, Any]) -> None:
        if "line" in detail:  # the engine's own output (on success it prints nothing: its log is a file)
            bar.update(f"run_lean: {detail['line'][:70]}")
            return
        following = TASKS.index(step) + 1
        bar.update(TASKS[following] if following < len(TASKS) else "done", advance=1)

    # SIGTERM or SIGINT (Ctrl-C) stops the engine's process group with the command, never leaves it running.
    try:
        with stop_on_signals():
            result = run_chain(request, progress=progress, timeout_s=args.timeout)
    except StopRequested as stop:
        bar.close()
        sys.stderr.write(f"error: {interrupted_message('backtest', stop)}\n")
        return stop.exit_code
    bar.close()
    _print_summary(result.folder, len(dates), result.outputs)
    return 0


def _print_summary(folder: Any, trading_days: int, outputs: dict[str, Any]) -> None:
    from include.cli.cmd_report import SUMMARY_STATISTICS
    from include.reporting.run_view import load_run_view

    view = load_run_view(folder.path)
    ingested, checked = outputs["ingest_events"], outputs["consistency_check"]
    rows = [
        ("run folder", str(folder.path)),
        ("trading days", str(trading_days)),
        ("orders", str(len(view.orders))),
        ("events inserted", f"{ingested['inserted']} (already present {ingested['already_present']})"),
        ("verdict", checked["verdict"]),
    ]
    rows += [(k, view.statistics[k]) for k in SUMMARY_STATISTICS if k in view.statistics]
    rows.append(("report", checked["report_html"]))
    width = max(len(k) for k, _ in rows)
    sys.stderr.write("\n".join(f"{k:<{width}}  {v}" for k, v in rows) + "\n")
    print_json(
        {
            "run_dir": str(folder.path),
            "run_key": folder.run_key,
            "ingest": ingested,
            "check": checked,
            "engine": outputs["run_lean"],
        }
    )
