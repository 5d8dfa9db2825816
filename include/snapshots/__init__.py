"""Snapshot providers: where the backend's target weights come from.

- ``trend_rotation`` (default): top-N momentum over a lookback, computed from the data folder;
- ``file``: a CSV, JSON or Parquet table of date, symbol, weight;
- ``sql``: a table of date, symbol, weight read with SQLAlchemy.

The file provider reads only under the weights base folders (:func:`weights_dirs`):
``$LEAN_AIRFLOW_WEIGHTS_DIRS``, ``os.pathsep``-separated, default ``<repo>/weights``. The path
comes from the DAG form (``weights_file``) or the CLI (``--weights-file``), so without this
anyone who may trigger a DAG could read any file the worker can. The default sits beside
``algorithms/``: in the compose deployment that is ``$LEAN_AIRFLOW_PROJECT_DIR/weights``, the same
folder the CLI on the host uses, mounted read-only at the same path.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.errors import SnapshotError, WeightsFileLocationError
from include.run_folder import REPO_ROOT

if TYPE_CHECKING:
    from include.contracts.snapshot import DecisionSnapshot

PROVIDERS = ("trend_rotation", "file", "sql")
# The trend-rotation strategy's defaults (the DAG form and the CLI take them from here).
DEFAULT_TOP_N = 3
DEFAULT_LOOKBACK_DAYS = 20
# Where the file provider may read weights tables from (see the module docstring).
WEIGHTS_DIRS_ENV = "LEAN_AIRFLOW_WEIGHTS_DIRS"
DEFAULT_WEIGHTS_DIR = REPO_ROOT / "weights"


def weights_dirs() -> tuple[Path, ...]:
    """The weights base folders, resolved (symlinks followed): ``$LEAN_AIRFLOW_WEIGHTS_DIRS``
    split on ``os.pathsep`` (empty entries skipped), default ``<repo>/weights``."""
    raw = os.environ.get(WEIGHTS_DIRS_ENV) or ""
    entries = [entry.strip() for entry in raw.split(os.pathsep) if entry.strip()]
    return tuple(Path(entry).expanduser().resolve() for entry in entries or [os.fspath(DEFAULT_WEIGHTS_DIR)])


def confine_weights_file(path: str | os.PathLike[str]) -> Path:
    """``path`` resolved (``..`` and symlinks followed), or ``WeightsFileLocationError`` unless it lies
    under one of :func:`weights_dirs`. A relative path is taken relative to the first base folder,
    never to the worker's current directory (which differs between the CLI and a task)."""
    bases = weights_dirs()
    candidate = Path(path).expanduser()
    resolved = (candidate if candidate.is_absolute() else bases[0] / candidate).resolve()
    if not any(base in resolved.parents for base in bases):
        raise WeightsFileLocationError(os.fspath(path), os.fspath(resolved), [os.fspath(base) for base in bases])
    return resolved


def take_snapshot(provider: str, *, as_of: dt.date, data_folder: str, options: Mapping[str, Any]) -> DecisionSnapshot:
    """One ``DecisionSnapshot`` for ``as_of`` from the named provider."""
    # The providers read tables with pandas: imported here, so the DAG form's defaults stay cheap.
    from include.snapshots.providers import file_snapshot, sql_snapshot, trend_rotation_snapshot

    name = (provider or "trend_rotation").strip().lower()
    if name == "trend_rotation":
        return trend_rotation_snapshot(
            as_of=as_of,
            data_folder=data_folder,
            universe=options.get("universe") or None,
            top_n=int(options.get("top_n", DEFAULT_TOP_N)),
            lookback_days=int(options.get("lookback_days", DEFAULT_LOOKBACK_DAYS)),
        )
    if name == "file":
        return file_snapshot(as_of=as_of, path=_required(options, "path", name))
    if name == "sql":
        return sql_snapshot(
            as_of=as_of,
            url=_required(options, "url", name),
            table=_required(options, "table", name),
        )
    raise SnapshotError([f"provider={provider!r}: expected one of {', '.join(PROVIDERS)}"])


def _required(options: Mapping[str, Any], key: str, provider: str) -> str:
    value = options.get(key)
    if not isinstance(value, str) or not value:
        raise SnapshotError([f"provider {provider!r} needs option {key!r} (got {value!r})"])
    return value
