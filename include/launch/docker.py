"""The ``quantconnect/lean`` container: lean-cli's mounts, the entry script, the image reference,
and everything else of the container request (name, labels, limits, network, stop signal).

Everything the Docker daemon is asked for is built here as plain data, so the exact container
request is asserted in tests without a Docker engine, and ``include.cli lean-config`` can show it
without starting anything. ``include.launch.lifecycle`` sends it to the daemon.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.atomic_io import dumps_canonical
from include.errors import LeanConfigError
from include.launch.config import (
    CONTAINER_ALGORITHM_DIR,
    CONTAINER_CONFIG_PATH,
    CONTAINER_DATA_DIR,
    CONTAINER_FILES_DIR,
    CONTAINER_RESULTS_DIR,
    CONTAINER_STORAGE_DIR,
    LeanJob,
    launcher_config_for,
)

LEAN_IMAGE_ENV = "LEAN_IMAGE"
HOST_PATH_MAP_ENV = "LEAN_AIRFLOW_HOST_PATH_MAP"
SECRET_CONFIG_ENV = "LEAN_SECRET_CONFIG"
# uid:gid the entry script gives the results and storage folders to once Lean exits.
OWNER_ENV = "LEAN_OWNER"
MEMORY_ENV = "LEAN_AIRFLOW_CONTAINER_MEMORY"
CPUS_ENV = "LEAN_AIRFLOW_CONTAINER_CPUS"
DEFAULT_MEMORY = "8g"
DEFAULT_CPUS = 2.0
# Lean stops cleanly only on SIGINT (Launcher/Program.cs: Console.CancelKeyPress -> ExitKeyPress
# sets the algorithm Stopped; AlgorithmManager then runs OnEndOfAlgorithm and exits 0). lean-cli
# stops its containers the same way (lean_runner.py: stop_signal "SIGINT"; docker_manager.py:
# container.stop(timeout=60)).
STOP_SIGNAL = "SIGINT"
DEFAULT_STOP_GRACE_S = 60.0
MASK = "***"
IMAGE_DIGEST_RE = re.compile(r"[a-z0-9][a-z0-9._/\-]*(:[A-Za-z0-9._\-]+)?@sha256:[0-9a-f]{64}")

LABEL_PREFIX = "lean-airflow."
DAG_ID_LABEL = LABEL_PREFIX + "dag-id"
RUN_KEY_LABEL = LABEL_PREFIX + "run-key"
MODE_LABEL = LABEL_PREFIX + "mode"
CONFIG_SHA_LABEL = LABEL_PREFIX + "config-sha256"
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_.-]")
MAX_NAME_LENGTH = 200

# The container's entry point (bash -c). Lean reads credentials only from its config: the mounted
# config is read-only and holds no secret, so $LEAN_SECRET_CONFIG (a JSON object of Lean key -> value
# passed through Docker's environment, never a file) is merged into a 0600 copy inside the container,
# into the selected environment's block and the top level, and is unset before Lean starts. Lean
# runs as a child, not exec'd, so that the script outlives it:
# SIGINT/SIGTERM are forwarded to Lean as SIGINT (the only signal Lean stops cleanly on; SIGTERM
# would kill it unflushed), and once Lean exits the output is handed back to the Airflow worker's
# user ($LEAN_OWNER; Lean runs as root, and a re-run must be able to delete the old output). The
# container paths can be overridden by environment variables, so tests run this very script. On
# Kubernetes, $LEAN_EXIT_MARKER names a file the script's exit hook writes Lean's exit code to (also
# when the script fails before Lean starts): the pod's stage-out container uploads the results then.
CONTAINER_ENTRY_SCRIPT = r"""set -euo pipefail
if [ -n "${LEAN_EXIT_MARKER:-}" ]; then
  mark_exit() {
    local status=$?
    printf '%s\n' "$status" >"$LEAN_EXIT_MARKER.tmp" && mv -f "$LEAN_EXIT_MARKER.tmp" "$LEAN_EXIT_MARKER"
  }
  trap mark_exit EXIT
fi
config="${LEAN_CONFIG_FILE:-/Lean/Launcher/bin/Debug/config.json}"
private_config="${LEAN_PRIVATE_CONFIG_FILE:-/tmp/lean-config.json}"
results="${LEAN_RESULTS_DIR:-/Results}"
storage="${LEAN_STORAGE_DIR:-/Storage}"
if [ -n "${LEAN_SECRET_CONFIG:-}" ]; then
  LEAN_CONFIG_FILE="$config" LEAN_PRIVATE_CONFIG_FILE="$private_config" python3 - <<'PY'
import json, os
config_file = os.environ["LEAN_CONFIG_FILE"]
with open(config_file) as handle:
    config = json.load(handle)
secrets = json.loads(os.environ["LEAN_SECRET_CONFIG"])
if not isinstance(secrets, dict):
    raise SystemExit("lean-airflow: LEAN_SECRET_CONFIG must be a JSON object of Lean key -> value")
# Lean's Config.Get reads environments.<environment> first, then the top level (Configuration/Config.cs
# GetToken): the secrets go into the selected block, which wins, and the top level, which the block's
# absence would leave to a placeholder (job-user-id "0", api-access-token "").
name = config.get("environment")
if name:
    block = config.get("environments")
    for part in str(name).split("."):
        block = block.get(part) if isinstance(block, dict) else None
    if not isinstance(block, dict):
        raise SystemExit(f"lean-airflow: the environment {name!r} has no block under 'environments'")
    block.update(secrets)
config.update(secrets)
path = os.environ["LEAN_PRIVATE_CONFIG_FILE"]
if os.path.lexists(path):
    os.unlink(path)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with os.fdopen(fd, "w") as handle:
    json.dump(config, handle)
PY
  config="$private_config"
fi
unset LEAN_SECRET_CONFIG
lean_pid=""
stop_requested=""
forward_stop() {
  stop_requested=1
  if [ -n "$lean_pid" ]; then kill -INT "$lean_pid" 2>/dev/null || true; fi
}
trap forward_stop INT TERM
# Bash starts a background command with SIGINT ignored, and .NET leaves an ignored SIGINT ignored
# (no CancelKeyPress): the subshell restores the default before exec'ing Lean.
( trap - INT TERM; exec dotnet QuantConnect.Lean.Launcher.dll --config "$config" ) &
lean_pid=$!
if [ -n "$stop_requested" ]; then kill -INT "$lean_pid" 2>/dev/null || true; fi
set +e
# `wait` returns early (status > 128) when a trapped signal arrives while Lean still runs.
while kill -0 "$lean_pid" 2>/dev/null; do wait "$lean_pid"; done
wait "$lean_pid"
code=$?
if [ -n "${LEAN_OWNER:-}" ]; then
  chown -R "$LEAN_OWNER" "$results" "$storage" || echo "lean-airflow: cannot chown the output to $LEAN_OWNER" >&2
fi
exit "$code"
"""


def map_host_path(path: str | os.PathLike[str], mapping: Mapping[str, str] | None) -> str:
    """Translate a path as Airflow sees it into the Docker host's path (longest prefix wins).

    Needed when Airflow itself runs in a container: bind sources are resolved by the daemon.
    """
    text = os.fspath(path)
    for prefix in sorted(mapping or {}, key=len, reverse=True):
        clean = prefix.rstrip("/")
        if text == clean or text.startswith(clean + "/"):
            return (mapping or {})[prefix].rstrip("/") + text[len(clean) :]
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
    if not IMAGE_DIGEST_RE.fullmatch(ref):
        raise LeanConfigError([f"image={ref!r}: must be pinned by digest (name@sha256:<64 hex>), not a mutable tag"])
    return ref


# ---------------------------------------------------------------------------- name, labels, limits


def container_name(dag_id: str, run_key: str) -> str:
    """``lean-<dag_id>-<run_key>``: one name per run, so a retry finds the container of its run.

    Characters Docker refuses (it allows ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``) become ``-``; a very long
    name is cut and ends in a hash of the full one, so two runs never share a name.
    """
    raw = f"lean-{dag_id}-{run_key}"
    name = _NAME_CHARS.sub("-", raw)
    if len(name) > MAX_NAME_LENGTH:
        digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]
        name = f"{name[: MAX_NAME_LENGTH - 17]}-{digest}"
    return name


def config_sha256(job: LeanJob) -> str:
    """sha256 of the ``config.json`` bytes the Docker runtime writes for ``job`` (without writing it)."""
    return hashlib.sha256(dumps_canonical(launcher_config_for(job, "docker")).encode("utf-8")).hexdigest()


def default_owner() -> str:
    """``uid:gid`` of this process: who must own the run folder's output after Lean (root) wrote it."""
    return f"{os.getuid()}:{os.getgid()}"


_MEMORY_RE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[bkmg]?)b?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def memory_limit(value: str | int | None) -> int | None:
    """The memory limit in bytes: the argument, else ``$LEAN_AIRFLOW_CONTAINER_MEMORY``, else 8 GiB.

    Docker's notation (``512m``, ``8g``, a byte count); ``none`` means no limit.
    """
    raw: str | int = value if value is not None else (os.environ.get(MEMORY_ENV, "").strip() or DEFAULT_MEMORY)
    if isinstance(raw, int) and not isinstance(raw, bool):
        number, unit = float(raw), ""
    else:
        text = str(raw).strip()
        if text.lower() == "none":
            return None
        match = _MEMORY_RE.fullmatch(text)
        if match is None:
            raise LeanConfigError([f"memory limit {raw!r} ({MEMORY_ENV}): expected e.g. 8g, 512m or 'none'"])
        number, unit = float(match["number"]), match["unit"].lower()
    limit = int(number * _UNITS[unit])
    if limit < 6 << 20:  # the daemon's own minimum
        raise LeanConfigError([f"memory limit {raw!r} ({MEMORY_ENV}): Docker needs at least 6m"])
    return limit


def nano_cpus(value: float | str | None) -> int | None:
    """The CPU limit in billionths of a CPU: the argument, else ``$LEAN_AIRFLOW_CONTAINER_CPUS``, else 2.

    ``none`` means no limit.
    """
    raw: float | str = value if value is not None else (os.environ.get(CPUS_ENV, "").strip() or DEFAULT_CPUS)
    if isinstance(raw, str) and raw.strip().lower() == "none":
        return None
    try:
        cpus = float(raw)
    except ValueError:
        raise LeanConfigError([f"CPU limit {raw!r} ({CPUS_ENV}): expected a number of CPUs, e.g. 2 or 0.5"]) from None
    if not 0 < cpus < 1024:
        raise LeanConfigError([f"CPU limit {raw!r} ({CPUS_ENV}): expected a number of CPUs above 0"])
    return int(cpus * 1e9)


# ---------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class ContainerSpec:
    """The whole container request, as plain data (asserted exactly in tests).

    ``private_environment`` holds the secrets: it is sent to the daemon but never logged, shown or
    written to a file (``preview`` masks it).
    """

    image: str
    name: str
    labels: dict[str, str]
    mounts: list[dict[str, Any]]
    entrypoint: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    # Kept out of repr(): a logged spec must not carry the broker's credentials.
    private_environment: dict[str, str] = field(default_factory=dict, repr=False)
    mem_limit: int | None = None
    nano_cpus: int | None = None
    network_mode: str | None = None
    stop_signal: str = STOP_SIGNAL
    stop_grace_s: float = DEFAULT_STOP_GRACE_S

    @property
    def config_sha256(self) -> str:
        return self.labels[CONFIG_SHA_LABEL]

    def host_config(self) -> dict[str, Any]:
        """Keyword arguments of docker-py's ``create_host_config``: never privileged, no auto-remove
        (a failed container is kept for inspection; the lifecycle removes a successful one)."""
        config: dict[str, Any] = {"mounts": list(self.mounts), "privileged": False, "auto_remove": False}
        if self.mem_limit is not None:
            config["mem_limit"] = self.mem_limit
        if self.nano_cpus is not None:
            config["nano_cpus"] = self.nano_cpus
        if self.network_mode is not None:
            config["network_mode"] = self.network_mode
        return config

    def preview(self) -> dict[str, Any]:
        """What ``include.cli lean-config`` prints: the request with every secret value masked."""
        return {
            "image": self.image,
            "name": self.name,
            "labels": dict(self.labels),
            "mounts": [dict(mount) for mount in self.mounts],
            "entrypoint": list(self.entrypoint),
            "environment": {**self.environment, **dict.fromkeys(self.private_environment, MASK)},
            "memory_bytes": self.mem_limit,
            "nano_cpus": self.nano_cpus,
            "network_mode": self.network_mode or "default",
            "privileged": False,
            "stop_signal": self.stop_signal,
            "stop_grace_seconds": self.stop_grace_s,
        }


def container_spec(
    job: LeanJob,
    *,
    image: str | None = None,
    host_path_map: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    owner: str | None = None,
    mem_limit: str | int | None = None,
    cpus: float | str | None = None,
    network_mode: str | None = None,
    stop_grace_s: float = DEFAULT_STOP_GRACE_S,
) -> ContainerSpec:
    """The container of ``job``: lean-cli's mounts, its name and labels, limits and network.

    The algorithm folder and the data folder are read-only (root-run Lean must not write into the
    repository or the shared data; ``PYTHONDONTWRITEBYTECODE`` keeps Python from trying), results
    and storage are writable, and the config and the files it names (intent, params, initial
    state) are bound read-only, the config at the launcher's path and the others under ``/Files``,
    as lean-cli does. A backtest gets no network (``none``); a live run needs the broker's.
    """

    def bind(source: Path, target: str, read_only: bool) -> dict[str, Any]:
        return {"Target": target, "Source": map_host_path(source, host_path_map), "Type": "bind", "ReadOnly": read_only}

    folder = job.folder
    environment = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", OWNER_ENV: owner or default_owner()}
    private = {SECRET_CONFIG_ENV: json.dumps(dict(secrets))} if secrets else {}
    return ContainerSpec(
        image=resolve_image(image),
        name=container_name(folder.dag_id, folder.run_key),
        labels={
            DAG_ID_LABEL: folder.dag_id,
            RUN_KEY_LABEL: folder.run_key,
            MODE_LABEL: job.mode,
            CONFIG_SHA_LABEL: config_sha256(job),
        },
        mounts=[
            bind(job.algorithm_path.parent, CONTAINER_ALGORITHM_DIR, True),
            bind(job.data_folder, CONTAINER_DATA_DIR, True),
            bind(folder.results_dir, CONTAINER_RESULTS_DIR, False),
            # A live run's store is its deployment's (persistent), a backtest's its own run's.
            bind(job.object_store_dir, CONTAINER_STORAGE_DIR, False),
            bind(folder.config_path, CONTAINER_CONFIG_PATH, True),
            *(bind(path, f"{CONTAINER_FILES_DIR}/{path.name}", True) for path in folder.input_files),
        ],
        entrypoint=["bash", "-c", CONTAINER_ENTRY_SCRIPT],
        environment=environment,
        private_environment=private,
        mem_limit=memory_limit(mem_limit),
        nano_cpus=nano_cpus(cpus),
        network_mode=network_mode if network_mode is not None else ("none" if job.mode == "backtest" else None),
        stop_grace_s=stop_grace_s,
    )
