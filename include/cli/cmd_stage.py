"""``stage in`` / ``stage out``: the staging containers of the Kubernetes runtime's Lean pod.

Run inside the pod (``include.launch.kubernetes``), in the project's image, against the store of
``$LEAN_AIRFLOW_ARTIFACT_STORE``; see ``include.launch.pod_staging``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from include.cli import EXIT_FAILED, EXIT_OK, print_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("stage", help="stage a run folder in or out of a Kubernetes Lean pod")
    actions = parser.add_subparsers(dest="direction", required=True, metavar="DIRECTION")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--run", required=True, help="the run folder's URI in the artifact store")
        sub.add_argument("--scratch", required=True, type=Path, help="the pod's staging folder (an emptyDir)")
        sub.add_argument("--mode", required=True, choices=("backtest", "live"))
        sub.add_argument("--deployment", help="live: the deployment whose object store Lean uses")

    stage_in = actions.add_parser("in", help="download the run folder and write the launcher config")
    common(stage_in)
    stage_in.add_argument("--config-env", required=True, help="the variable holding the launcher config (JSON)")
    stage_in.add_argument("--algorithms", type=Path, help="the algorithms folder of this image, copied for Lean")
    stage_in.add_argument("--algorithms-to", type=Path, help="where Lean's container finds the algorithms")
    stage_in.set_defaults(handler=_stage_in)

    stage_out = actions.add_parser("out", help="wait for Lean's exit code, then upload the run folder")
    common(stage_out)
    stage_out.add_argument("--exit-marker", required=True, type=Path, help="the file the entry script's hook writes")
    stage_out.add_argument("--stop-grace", required=True, type=float, help="seconds Lean has to stop after SIGTERM")
    stage_out.set_defaults(handler=_stage_out)


def _stage_in(args: argparse.Namespace) -> int:
    from include.errors import LeanConfigError
    from include.launch.pod_staging import stage_in

    config_text = os.environ.get(args.config_env, "")
    if not config_text.strip():
        raise LeanConfigError([f"${args.config_env}: empty (the launcher config the worker checked)"])
    print_json(
        stage_in(
            args.run,
            args.scratch,
            mode=args.mode,
            deployment=args.deployment,
            config_text=config_text,
            algorithms=args.algorithms,
            algorithms_to=args.algorithms_to,
        )
    )
    return EXIT_OK


def _stage_out(args: argparse.Namespace) -> int:
    from include.launch.pod_staging import stage_out

    summary = stage_out(
        args.run,
        args.scratch,
        mode=args.mode,
        deployment=args.deployment,
        exit_marker=args.exit_marker,
        stop_grace_s=args.stop_grace,
    )
    print_json(summary)
    if summary["lean_exit_code"] is None:
        sys.stderr.write(
            f"error: Lean did not finish within {args.stop_grace:g} s of the pod's stop; its partial output was "
            "uploaded\n"
        )
        return EXIT_FAILED
    return EXIT_OK
