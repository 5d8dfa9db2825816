"""The artifact root and per-run folders.

Each DAG run owns ``<artifact root>/<dag_id>/<run key>/``. Run keys come from the run's
logical date (or its ``as_of`` / date-range Params), never from Airflow's ``run_id``, so a
re-run rewrites the same folder. Every path is resolved and confined under the root.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from include.contracts._base import check_run_key
from include.errors import ArtifactPathError

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACT_ROOT_ENV = "LEAN_AIRFLOW_ARTIFACT_ROOT"
DATA_FOLDER_ENV = "LEAN_AIRFLOW_DATA_FOLDER"
DEFAULT_DATA_FOLDER = REPO_ROOT / "include" / "sample_data" / "lean"
ALGORITHM_PATH = REPO_ROOT / "algorithms" / "lean_trend_rotation.py"
_DAG_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")


def artifact_root() -> Path:
    """``$LEAN_AIRFLOW_ARTIFACT_ROOT``, default ``<repo>/artifacts``; created if missing."""
    root = Path(os.environ.get(ARTIFACT_ROOT_ENV) or REPO_ROOT / "artifacts").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def data_folder() -> Path:
    """The Lean data folder: ``$LEAN_AIRFLOW_DATA_FOLDER``, default the bundled sample data."""
    return Path(os.environ.get(DATA_FOLDER_ENV) or DEFAULT_DATA_FOLDER).expanduser().resolve()


def confine(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """``path`` resolved (symlinks followed); ArtifactPathError unless it lies under ``root``."""
    base = Path(root).resolve() if root is not None else artifact_root()
    resolved = Path(path).resolve()
    if resolved != base and base not in resolved.parents:
        raise ArtifactPathError(f"path {os.fspath(path)!r} resolves to {resolved}, outside the artifact root {base}")
    return resolved


def run_key_for_date(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def run_key_for_range(start: dt.date, end: dt.date) -> str:
    if end < start:
        raise ArtifactPathError(f"date range end {end.isoformat()} is before its start {start.isoformat()}")
    return f"{run_key_for_date(start)}_{run_key_for_date(end)}"


def run_dir(dag_id: str, run_key: str, *, root: str | os.PathLike[str] | None = None, create: bool = True) -> Path:
    """``<root>/<dag_id>/<run_key>``, confined under the root (symlinks out are refused)."""
    if not _DAG_ID_RE.match(dag_id) or dag_id in {".", ".."}:
        raise ArtifactPathError(f"dag_id {dag_id!r} is not a safe folder name")
    check_run_key(run_key)
    base = Path(root).resolve() if root is not None else artifact_root()
    folder = confine(base / dag_id / run_key, base)
    if create:
        folder.mkdir(parents=True, exist_ok=True)
        # Re-check after mkdir: a symlinked dag folder created meanwhile must not escape.
        confine(folder, base)
    return folder
