"""The staging containers of the Kubernetes runtime's pod (``include.launch.kubernetes``).

``stage in`` (init container) mirrors the run folder (and a live run's deployment store) from the
artifact store into the pod's ``emptyDir`` and prepares it as ``write_launcher_config`` prepares a
folder for Docker: the checked launcher config written, a backtest's old output removed. ``stage
out`` (a container beside Lean) waits for the exit code the entry script's exit hook writes, then
uploads what changed; the download state in the ``emptyDir`` (``include.artifact_store``) lets the
upload remove from the store what stage-in removed, as a Docker re-run does.

No Airflow here: the pod runs ``python -m include.cli stage ...`` in the project's image.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from include.atomic_io import atomic_write_text
from include.errors import LeanConfigError
from include.launch.config import MODES, remove_output_tree
from include.run_folder import RunFolder

MARKER_POLL_S = 0.5
# Python caches and VCS folders are no part of what Lean reads.
_ALGORITHM_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".git")


@dataclass(frozen=True)
class StagedPod:
    folder: RunFolder
    deployment_storage: Path | None


def _store() -> Any:
    from include.artifact_store import ArtifactStore

    return ArtifactStore.from_env()


def _check(mode: str, deployment: str | None) -> None:
    if mode not in MODES:
        raise LeanConfigError([f"mode={mode!r}: expected 'backtest' or 'live'"])
    if mode == "live" and not deployment:
        raise LeanConfigError(["a live run needs --deployment (its object store outlives the run)"])


def stage_in(
    run_uri: str,
    scratch: Path,
    *,
    mode: str,
    config_text: str,
    deployment: str | None = None,
    algorithms: Path | None = None,
    algorithms_to: Path | None = None,
) -> dict[str, Any]:
    """Download the run (and a live run's deployment store) into ``scratch``; write the config."""
    _check(mode, deployment)
    try:
        config = json.loads(config_text)
    except json.JSONDecodeError as exc:
        raise LeanConfigError([f"the launcher config handed to stage-in is not JSON ({exc})"]) from None
    if not isinstance(config, dict):
        raise LeanConfigError(["the launcher config handed to stage-in must be a JSON object"])
    store = _store()
    ref = store.ref_of(run_uri)
    folder = store.download_run(ref, scratch)
    storage = folder.storage_dir
    if mode == "live":
        assert deployment is not None
        storage = folder.deployment_storage_dir(deployment)
        storage.mkdir(parents=True, exist_ok=True)
        store.download_tree(store.deployment_relative(folder.dag_id, deployment), storage, scratch)
    # As write_launcher_config: a backtest re-run starts from empty output (the upload then removes the
    # old files from the store); a live run keeps its results and its deployment's store.
    for output in (folder.results_dir, storage):
        if mode == "backtest" and output.exists():
            remove_output_tree(output, folder.path)
        output.mkdir(parents=True, exist_ok=True)
    folder.engine_path.unlink(missing_ok=True)
    atomic_write_text(folder.config_path, config_text)
    copied = 0
    if algorithms is not None and algorithms_to is not None:
        shutil.copytree(algorithms, algorithms_to, ignore=_ALGORITHM_IGNORE, dirs_exist_ok=True)
        copied = sum(1 for path in algorithms_to.rglob("*") if path.is_file())
    return {
        "run": store.run_uri(ref),
        "folder": str(folder.path),
        "files": sorted(str(p.relative_to(folder.path)) for p in folder.path.rglob("*") if p.is_file()),
        "algorithm_files": copied,
    }


class _Terminated:
    """Records SIGTERM instead of dying of it: the pod's deletion signals every container at once, and
    this one must outlive Lean, which needs the grace to finish, to upload what Lean wrote."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.at is None:
            self.at = time.monotonic()


def wait_for_exit_code(
    marker: Path,
    *,
    stop_grace_s: float,
    terminated: Callable[[], float | None],
    poll_s: float = MARKER_POLL_S,
) -> int | None:
    """Lean's exit code once the marker exists; None when the pod was told to stop and Lean has not
    finished within ``stop_grace_s`` after that (then what exists is uploaded anyway)."""
    while True:
        if marker.is_file():
            text = marker.read_text(encoding="utf-8").strip()
            try:
                return int(text)
            except ValueError:
                raise LeanConfigError([f"{marker}: expected Lean's exit code, found {text[:40]!r}"]) from None
        since = terminated()
        if since is not None and time.monotonic() - since > stop_grace_s:
            return None
        time.sleep(poll_s)


def stage_out(
    run_uri: str,
    scratch: Path,
    *,
    mode: str,
    exit_marker: Path,
    stop_grace_s: float,
    deployment: str | None = None,
) -> dict[str, Any]:
    """Wait for Lean's exit code, then upload the run folder (and a live run's deployment store)."""
    _check(mode, deployment)
    terminated = _Terminated()
    signal.signal(signal.SIGTERM, terminated)
    code = wait_for_exit_code(exit_marker, stop_grace_s=stop_grace_s, terminated=lambda: terminated.at)
    store = _store()
    ref = store.ref_of(run_uri)
    folder = RunFolder.open(scratch / ref.dag_id / ref.run_key, root=scratch)
    written = list(store.upload_run(folder))
    if mode == "live":
        assert deployment is not None
        relative = store.deployment_relative(folder.dag_id, deployment)
        written += store.upload_tree(folder.deployment_storage_dir(deployment), relative, scratch)
    return {"run": store.run_uri(ref), "lean_exit_code": code, "uploaded": written}
