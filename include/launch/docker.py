"""The ``quantconnect/lean`` container: lean-cli's mounts, the entry script and the image reference.

Everything the Docker provider needs is built here as plain data, so the exact container
request is asserted in tests without a Docker engine.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.errors import LeanConfigError
from include.launch.config import (
    CONTAINER_ALGORITHM_DIR,
    CONTAINER_CONFIG_PATH,
    CONTAINER_DATA_DIR,
    CONTAINER_FILES_DIR,
    CONTAINER_RESULTS_DIR,
    CONTAINER_STORAGE_DIR,
    LeanJob,
)

LEAN_IMAGE_ENV = "LEAN_IMAGE"
HOST_PATH_MAP_ENV = "LEAN_AIRFLOW_HOST_PATH_MAP"
SECRET_CONFIG_ENV = "LEAN_SECRET_CONFIG"
IMAGE_DIGEST_RE = re.compile(r"[a-z0-9][a-z0-9._/\-]*(:[A-Za-z0-9._\-]+)?@sha256:[0-9a-f]{64}")

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


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the Docker provider needs, as plain data (asserted exactly in tests)."""

    image: str
    mounts: list[dict[str, Any]]
    entrypoint: list[str]
    environment: dict[str, str] = field(default_factory=dict)


def container_spec(
    job: LeanJob, *, image: str | None = None, host_path_map: Mapping[str, str] | None = None
) -> ContainerSpec:
    """lean-cli's mounts: algorithm folder, data, results, storage, and the config read-only.

    Config-referenced files (intent, params, initial state) are bound read-only under /Files,
    as lean-cli does for files named in the config.
    """

    def bind(source: Path, target: str, read_only: bool) -> dict[str, Any]:
        return {"Target": target, "Source": map_host_path(source, host_path_map), "Type": "bind", "ReadOnly": read_only}

    folder = job.folder
    return ContainerSpec(
        image=resolve_image(image),
        mounts=[
            bind(job.algorithm_path.parent, CONTAINER_ALGORITHM_DIR, False),
            bind(job.data_folder, CONTAINER_DATA_DIR, False),
            bind(folder.results_dir, CONTAINER_RESULTS_DIR, False),
            bind(folder.storage_dir, CONTAINER_STORAGE_DIR, False),
            bind(folder.config_path, CONTAINER_CONFIG_PATH, True),
            *(bind(path, f"{CONTAINER_FILES_DIR}/{path.name}", True) for path in folder.input_files),
        ],
        entrypoint=["bash", "-c", CONTAINER_ENTRY_SCRIPT],
        environment={"PYTHONUNBUFFERED": "1"},
    )
