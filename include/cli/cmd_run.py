"""``run --config PATH``: run a Lean algorithm through the embedded local runtime."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from include.cli import print_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run a Lean algorithm with the local runtime (include.lean_local)")
    parser.add_argument("--config", required=True, type=Path, help="Lean launcher config.json")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from include.launch.local import StopRequested, interrupted_message, stop_on_signals
    from include.lean_local.config import load_config
    from include.lean_local.errors import LocalConfigError
    from include.lean_local.runner import run

    sys.stderr.write(f"lean_local: running {args.config}\n")
    # The engine runs in this process: SIGTERM or SIGINT ends it with a named message, not a traceback.
    try:
        with stop_on_signals():
            code = run(str(args.config))
    except StopRequested as stop:
        sys.stderr.write(f"error: {interrupted_message('run', stop, in_process=True)}\n")
        return stop.exit_code
    try:
        cfg = load_config(args.config)
    except LocalConfigError:
        return code
    out = cfg.results_folder
    files = sorted(p.name for p in out.glob(f"{cfg.algorithm_id}*")) if out.is_dir() else []
    print_json({"exit_code": code, "algorithm_id": cfg.algorithm_id, "results_folder": str(out), "files": files})
    sys.stderr.write(f"lean_local: finished with exit code {code}\n")
    return code
