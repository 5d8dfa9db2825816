"""``parity A B``: per-order diff of a backtest (A) and a live run (B) of the same date and intent."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from include.cli import print_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("parity", help="compare the orders of a backtest and a live run")
    parser.add_argument("backtest", type=Path, metavar="A", help="backtest results folder (or run folder)")
    parser.add_argument("live", type=Path, metavar="B", help="live results folder (or run folder)")
    parser.add_argument("--backtest-algorithm-id")
    parser.add_argument("--live-algorithm-id")
    parser.add_argument("--price-tolerance-bps", type=float, default=1.0)
    parser.add_argument("--time-tolerance-seconds", type=float, default=60.0)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from include.audit.parity import compare_runs

    report = compare_runs(
        args.backtest,
        args.live,
        backtest_algorithm_id=args.backtest_algorithm_id,
        live_algorithm_id=args.live_algorithm_id,
        price_tolerance_bps=args.price_tolerance_bps,
        time_tolerance_seconds=args.time_tolerance_seconds,
    )
    print_json(report.model_dump(mode="json"))
    return 0 if report.verdict != "mismatch" else 2
