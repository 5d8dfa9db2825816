"""How a Lean run is launched, independent of Airflow: the launcher config on disk, the
Docker container spec (lean-cli's mounts), and the local engine subprocess.

``plugins/lean_airflow/operators.py`` wires these into ``LeanRunOperator``; keeping them here
means the exact container request and the subprocess contract are tested without Airflow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from include.artifacts import REPO_ROOT, confine
from include.atomic_io import atomic_write_json
from include.errors import LeanAirflowError, LeanConfigError
from include.lean_config import Mode, build_execution_config

Runtime = Literal["docker", "local"]

# lean-cli's container layout (lean/components/docker/lean_runner.py).
CONTAINER_ALGORITHM_DIR = "/LeanCLI"
CONTAINER_DATA_DIR = "/Lean/Data"
CONTAINER_RESULTS_DIR = "/Results"
CONTAINER_STORAGE_DIR = "/Storage"
CONTAINER_CONFIG_PATH = "/Lean/Launcher/bin/Debug/config.json"
CONTAINER_FILES_DIR = "/Files"
LEAN_IMAGE_ENV = "LEAN_IMAGE"
HOST_PATH_MAP_ENV = "LEAN_AIRFLOW_HOST_PATH_MAP"
SECRET_CONFIG_ENV = "LEAN_SECRET_CONFIG"
FINAL_STATE_FILE = "final-state.json"
NO_LOG_TAIL = "(no Lean log file was written)"
IMAGE_DIGEST_RE = re.compile(r"^[a-z0-9][a-z0-9._/\-]*(:[A-Za-z0-9._\-]+)?@sha256:[0-9a-f]{64}$")

# Lean reads credentials only from its config. The mounted config is read-only and has no
# secrets; this entry script merges $LEAN_SECRET_CONFIG (a JSON object passed through Docker's
# environment, never a file) into a copy inside the container and starts the launcher on it.
CONTAINER_ENTRY_SCRIPT = """set -euo pipefail
if [ -n "${LEAN_SECRET_CONFIG:-}" ]; then
  python3 - <<'PY'
import json, os
with open("/Lean/Launcher/bin/Debug/config.json") as handle:
    config = json.load(handle)
config.update(json.loads(os.environ["LEAN_SECRET_CONFIG"]))
fd = os.open("/tmp/lean-config.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as handle:
    json.dump(config, handle)
PY
  unset LEAN_SECRET_CONFIG
  exec dotnet QuantConnect.Lean.Launcher.dll --config /tmp/lean-config.json
fi
exec dotnet QuantConnect.Lean.Launcher.dll
"""


class LeanRunError(LeanAirflowError, RuntimeError):
    """Lean (Docker or local) exited non-zero; carries the exit code and the log tail."""

    def __init__(self, runtime: str, exit_code: int, log_tail: str) -> None:
        self.runtime = runtime
        self.exit_code = exit_code
        self.log_tail = log_tail
        super().__init__(
            f"Lean ({runtime}) exited with code {exit_code}{_signal_note(exit_code)}. Last log lines:\n{log_tail}"
        )


def _signal_note(exit_code: int) -> str:
    """Names the signal behind an exit code: -N (subprocess) or 128+N (a shell or container's init)."""
    number = -exit_code if exit_code < 0 else exit_code - 128 if 128 < exit_code < 160 else None
    if number is None:
        return ""
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f" (killed by signal {number})"
    return f" (killed by signal {name})"


@dataclass(frozen=True)
class RunPaths:
    """Host paths of one run (see include.artifacts.run_dir)."""

    run_dir: Path
    intent_path: Path
    params_path: Path
    algorithm_path: Path
    data_folder: Path
    algorithm_id: str
    # A previous run's final account state to start from (continuous daily backtests).
    initial_state_path: Path | None = None

    @property
    def results_dir(self) -> Path:
        return self.run_dir / "results"

    @property
    def storage_dir(self) -> Path:
        return self.run_dir / "storage"

    @property
    def config_path(self) -> Path:
        return self.run_dir / "config.json"

    @property
    def final_state_path(self) -> Path:
        return self.results_dir / FINAL_STATE_FILE

    @property
    def input_files(self) -> tuple[Path, ...]:
        """Files the engine reads besides data: bound read-only under /Files for Docker."""
        extra = (self.initial_state_path,) if self.initial_state_path is not None else ()
        return (self.intent_path, self.params_path, *extra)


def map_host_path(path: str | os.PathLike[str], mapping: Mapping[str, str] | None) -> str:
    """Translate a path as Airflow sees it into the Docker host's path (longest prefix wins).

    Needed when Airflow itself runs in a container: bind sources are resolved by the daemon.
    """
    text = os.fspath(path)
    for prefix in sorted(mapping or {}, key=len, reverse=True):
        clean = prefix.rstrip("/")
        if text == clean or text.startswith(clean + "/"):
            return mapping[prefix].rstrip("/") + text[len(clean):]  # type: ignore[index]
    return text


def host_path_map_from_env() -> dict[str, str]:
    raw = os.environ.get(HOST_PATH_MAP_ENV, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LeanConfigError([f"{HOST_PATH_MAP_ENV}: not valid JSON ({exc})"]) from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise LeanConfigError([f"{HOST_PATH_MAP_ENV}: expected a JSON object of path prefix -> host path prefix"])
    return value


def resolve_image(image: str | None) -> str:
    """The Lean image, pinned by digest: ``quantconnect/lean@sha256:<64 hex>`` (a tag may precede @)."""
    ref = (image or os.environ.get(LEAN_IMAGE_ENV, "")).strip()
    if not ref:
        raise LeanConfigError(
            [
                f"no Lean image: set {LEAN_IMAGE_ENV} to a digest-pinned reference, e.g. the output of "
                "`docker inspect --format '{{index .RepoDigests 0}}' quantconnect/lean:latest`"
            ]
        )
    if not IMAGE_DIGEST_RE.match(ref):
        raise LeanConfigError([f"image={ref!r}: must be pinned by digest (name@sha256:<64 hex>), not a mutable tag"])
    return ref


def engine_config(
    paths: RunPaths,
    *,
    mode: Mode,
    runtime: Runtime,
    parameters: Mapping[str, Any],
    live_as_of: str | None = None,
) -> dict[str, Any]:
    """The launcher config with paths as the engine sees them (container or host).

    ``live_as_of`` (live mode) pins the session the local paper broker trades at; Lean itself
    ignores the key and trades at the real "now".
    """
    engine_parameters = dict(parameters)
    if runtime == "docker":
        engine_parameters["final-state-path"] = f"{CONTAINER_RESULTS_DIR}/{FINAL_STATE_FILE}"
        if paths.initial_state_path is not None:
            engine_parameters["initial-state-path"] = f"{CONTAINER_FILES_DIR}/{paths.initial_state_path.name}"
        view = {
            "intent_path": f"{CONTAINER_FILES_DIR}/{paths.intent_path.name}",
            "params_path": f"{CONTAINER_FILES_DIR}/{paths.params_path.name}",
            "algorithm_location": f"{CONTAINER_ALGORITHM_DIR}/{paths.algorithm_path.name}",
            "data_folder": CONTAINER_DATA_DIR,
            "results_folder": CONTAINER_RESULTS_DIR,
            "object_store_root": CONTAINER_STORAGE_DIR,
        }
    elif runtime == "local":
        engine_parameters["final-state-path"] = str(paths.final_state_path)
        if paths.initial_state_path is not None:
            engine_parameters["initial-state-path"] = str(paths.initial_state_path)
        view = {
            "intent_path": str(paths.intent_path),
            "params_path": str(paths.params_path),
            "algorithm_location": str(paths.algorithm_path),
            "data_folder": str(paths.data_folder),
            "results_folder": str(paths.results_dir),
            "object_store_root": str(paths.storage_dir),
        }
    else:
        raise LeanConfigError([f"runtime={runtime!r}: expected 'docker' or 'local'"])
    return build_execution_config(
        mode=mode,
        algorithm_id=paths.algorithm_id,
        parameters=engine_parameters,
        intent_path=view["intent_path"],
        params_path=view["params_path"],
        algorithm_location=view["algorithm_location"],
        data_folder=view["data_folder"],
        results_folder=view["results_folder"],
        object_store_root=view["object_store_root"],
        extra={"live-as-of": live_as_of} if mode == "live" and live_as_of else None,
    )


def write_engine_config(
    paths: RunPaths,
    *,
    mode: Mode,
    runtime: Runtime,
    parameters: Mapping[str, Any],
    live_as_of: str | None = None,
) -> Path:
    """Write ``config.json`` atomically (it never holds secrets) and prepare the output folders.

    A backtest re-run starts from empty ``results/`` and ``storage/``, so nothing of an earlier
    attempt survives and the re-run is deterministic. A live run keeps both: its per-day event
    files and its object store (executed dates, broker state) must survive a retry.
    """
    config = engine_config(paths, mode=mode, runtime=runtime, parameters=parameters, live_as_of=live_as_of)
    for folder in (paths.results_dir, paths.storage_dir):
        confined = confine(folder, paths.run_dir)
        if mode == "backtest" and confined.exists():
            shutil.rmtree(confined)
        confined.mkdir(parents=True, exist_ok=True)
    atomic_write_json(paths.config_path, config)
    return paths.config_path


@dataclass(frozen=True)
class ContainerSpec:
    """Everything DockerOperator needs, as plain data (asserted exactly in tests)."""

    image: str
    mounts: list[dict[str, Any]]
    entrypoint: list[str]
    environment: dict[str, str] = field(default_factory=dict)


def container_spec(
    paths: RunPaths, *, image: str | None = None, host_path_map: Mapping[str, str] | None = None
) -> ContainerSpec:
    """lean-cli's mounts: algorithm folder, data, results, storage, and the config read-only.

    Config-referenced files (intent, params, initial state) are bound read-only under /Files,
    as lean-cli does for files named in the config.
    """

    def bind(source: Path, target: str, read_only: bool) -> dict[str, Any]:
        return {
            "Target": target,
            "Source": map_host_path(source, host_path_map),
            "Type": "bind",
            "ReadOnly": read_only,
        }

    return ContainerSpec(
        image=resolve_image(image),
        mounts=[
            bind(paths.algorithm_path.parent, CONTAINER_ALGORITHM_DIR, False),
            bind(paths.data_folder, CONTAINER_DATA_DIR, False),
            bind(paths.results_dir, CONTAINER_RESULTS_DIR, False),
            bind(paths.storage_dir, CONTAINER_STORAGE_DIR, False),
            bind(paths.config_path, CONTAINER_CONFIG_PATH, True),
            *(bind(path, f"{CONTAINER_FILES_DIR}/{path.name}", True) for path in paths.input_files),
        ],
        entrypoint=["bash", "-c", CONTAINER_ENTRY_SCRIPT],
        environment={"PYTHONUNBUFFERED": "1"},
    )


def lean_log_tail(results_dir: str | os.PathLike[str], algorithm_id: str, lines: int = 40) -> str:
    """The last lines of Lean's logs (engine log.txt, else the algorithm log)."""
    folder = Path(results_dir)
    for name in ("log.txt", f"{algorithm_id}-log.txt"):
        path = folder / name
        if path.exists():
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
            return "\n".join(text[-lines:])
    return NO_LOG_TAIL


def local_engine_command(config_path: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "include.lean_local", "--config", os.fspath(config_path)]


def run_local_engine(
    config_path: str | os.PathLike[str],
    *,
    timeout_s: float,
    on_line: Callable[[str], None],
    env: Mapping[str, str] | None = None,
) -> int:
    """Run the local runtime in a subprocess, streaming its output line by line; return its exit code.

    On timeout the process is killed and ``subprocess.TimeoutExpired`` propagates.
    """
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), child_env.get("PYTHONPATH", "")]))
    child_env["PYTHONUNBUFFERED"] = "1"
    with subprocess.Popen(
        local_engine_command(config_path),
        cwd=REPO_ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        stream = process.stdout

        def pump() -> None:
            for line in stream:
                on_line(line.rstrip("\n"))

        reader = threading.Thread(target=pump, name="lean-local-output", daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            reader.join(timeout=5)
    return code


def run_lean_local(
    paths: RunPaths,
    *,
    mode: Mode,
    parameters: Mapping[str, Any],
    timeout_s: float,
    on_line: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    live_as_of: str | None = None,
) -> dict[str, str]:
    """Write the config and run the local runtime; LeanRunError on a non-zero exit.

    Returns the engine identity recorded in the run manifest.
    """
    from include.lean_local import __version__ as local_version

    write_engine_config(paths, mode=mode, runtime="local", parameters=parameters, live_as_of=live_as_of)
    # The engine's own output: the only trace of a failure before any log file is written
    # (a bad config, an engine killed by a signal).
    recent: deque[str] = deque(maxlen=40)

    def relay(line: str) -> None:
        recent.append(line)
        on_line(line)

    code = run_local_engine(paths.config_path, timeout_s=timeout_s, on_line=relay, env=env)
    if code != 0:
        tail = lean_log_tail(paths.results_dir, paths.algorithm_id)
        if tail == NO_LOG_TAIL and recent:
            tail = "\n".join(recent)
        raise LeanRunError("local", code, tail)
    return {"runtime": "local", "engine": f"lean_local {local_version}"}
