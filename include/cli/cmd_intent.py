"""``intent``: build the order intent from snapshot files and write ``order_intent_run_<id>.json``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from include.cli import print_json
from include.contracts.intent import SkippedRow, build_order_intent, write_order_intent
from include.contracts.snapshot import load_snapshot


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("intent", help="write the order-intent file from snapshot JSON files")
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument(
        "--run-key", "--run-id", dest="run_key", required=True, help="the run key: order_intent_run_<key>.json"
    )
    parser.add_argument("--snapshot", required=True, type=Path, action="append", help="DecisionSnapshot JSON (repeat)")
    parser.add_argument("--source", help="overrides the snapshots' source")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    snapshots = [load_snapshot(path) for path in args.snapshot]
    skipped: list[SkippedRow] = []
    intent = build_order_intent(run_key=args.run_key, rebalances=snapshots, source=args.source, skipped=skipped)
    path = write_order_intent(output_dir=args.output_dir, run_key=args.run_key, rebalances=intent)
    print_json(
        {
            "order_intent_path": path,
            "rebalances": len(intent.rebalances),
            "intent_orders": len(intent.intent_orders),
            "skipped": [{"index": s.index, "reason": s.reason} for s in skipped],
        }
    )
    return 0
