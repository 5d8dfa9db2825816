"""``lean-config``: preview what a run would hand Lean, without running anything.

Prints the exact launcher config (``config.json``) a run of ``--dag-id``/``--run-key`` would write,
the problems Lean's pinned config rules find in it, and, for ``--runtime docker``, the container
request (name, labels, mounts, environment with every secret masked, limits, network, stop signal);
for ``--runtime kubernetes``, the pod (``include.launch.kubernetes``; it refers to secrets by name only).
Nothing is written: the run folder is located, not created.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any, Literal

from include.cli import print_json
from include.launch.config import LeanJob, Mode, Runtime, launcher_config_for
from include.launch.docker import container_spec
from include.launch.lean_rules import check_launcher_config
from include.pipeline import DEFAULT_STARTING_CASH
from include.run_folder import RunFolder, RunRef, artifact_root, data_folder


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lean-config", help="print the launcher config and container spec a run would use (secrets masked)"
    )
    parser.add_argument("--dag-id", required=True, help="the DAG, e.g. lean_backtest_daily")
    parser.add_argument("--run-key", required=True, help="the run key, e.g. 20240105 or 20240102_20240131")
    parser.add_argument("--mode", choices=("backtest", "live"), default=None, help="default: live for *_live_* DAGs")
    parser.add_argument("--runtime", choices=("local", "docker", "kubernetes"), default="local")
    parser.add_argument("--starting-cash", type=float, default=DEFAULT_STARTING_CASH)
    parser.add_argument("--data-folder", type=Path, default=None, help="default: $LEAN_AIRFLOW_DATA_FOLDER or sample")
    parser.add_argument("--image", default=None, help="default: $LEAN_IMAGE")
    parser.add_argument(
        "--secret-key",
        action="append",
        default=[],
        metavar="KEY",
        help="a Lean config key the broker connection supplies (shown masked); repeatable",
    )
    parser.set_defaults(handler=_run)


def default_mode(dag_id: str) -> Mode:
    return "live" if "_live_" in f"_{dag_id}_" else "backtest"


def _local_now(folder: RunFolder, mode: Mode) -> str | None:
    """A live run trades the last date of its intent (before the intent exists, the run key's date): the local
    runtime's clock for a past session (``include.live_session.replay_clock``)."""
    if mode != "live":
        return None
    from include.live_session import replay_clock

    if folder.intent_path.exists():
        return replay_clock(folder.load_intent().rebalances[-1].date)
    key = folder.run_key[:8]
    return replay_clock(dt.date(int(key[:4]), int(key[4:6]), int(key[6:8]))) if key.isdigit() else None


def lean_config_preview(
    dag_id: str,
    run_key: str,
    *,
    mode: Mode,
    runtime: Runtime | Literal["kubernetes"],
    starting_cash: float = DEFAULT_STARTING_CASH,
    data: Path | None = None,
    image: str | None = None,
    secret_keys: list[str] | None = None,
) -> dict[str, Any]:
    folder = RunFolder.locate(RunRef(dag_id, run_key), root=artifact_root(create=False))
    job = LeanJob(
        folder=folder,
        mode=mode,
        parameters={"starting-cash": starting_cash},
        data_folder=(data or data_folder()).resolve(),
        local_now=_local_now(folder, mode),
    )
    # The pod's Lean is the Docker runtime's container: the same config.
    config = launcher_config_for(job, "docker" if runtime == "kubernetes" else runtime)
    preview: dict[str, Any] = {
        "run_folder": str(folder.path),
        "mode": mode,
        "runtime": runtime,
        "launcher_config": config,
        "lean_rule_problems": check_launcher_config(config),
    }
    if runtime == "docker":
        # Placeholder values: only the keys are real, and preview() masks every secret value.
        secrets = dict.fromkeys(secret_keys or [], "***")
        preview["container"] = container_spec(job, image=image, secrets=secrets).preview()
    elif runtime == "kubernetes":
        from include.artifact_store import ArtifactStore
        from include.launch.kubernetes import pod_manifest, pod_spec

        store = ArtifactStore.from_env()
        pod = pod_spec(job, run_uri=store.run_uri(folder.ref), store_uri=store.uri, image=image)
        preview["pod"] = pod_manifest(pod)
    return preview


def _run(args: argparse.Namespace) -> int:
    mode: Mode = args.mode or default_mode(args.dag_id)
    print_json(
        lean_config_preview(
            args.dag_id,
            args.run_key,
            mode=mode,
            runtime=args.runtime,
            starting_cash=args.starting_cash,
            data=args.data_folder,
            image=args.image,
            secret_keys=args.secret_key,
        )
    )
    return 0
