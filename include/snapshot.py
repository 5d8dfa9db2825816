"""Decision snapshots: read and write the backend's as-of weights file."""

from __future__ import annotations

import os
from pathlib import Path

from include.atomic_io import atomic_write_json
from include.contracts._base import check_run_key
from include.contracts.snapshot import DecisionSnapshot
from include.contracts.validation import load_json_model
from include.errors import SnapshotError


def snapshot_filename(run_id: str) -> str:
    check_run_key(run_id, "run_id")
    return f"snapshot_run_{run_id}.json"


def write_snapshot(*, output_dir: str | os.PathLike[str], run_id: str, snapshot: DecisionSnapshot) -> str:
    path = Path(output_dir) / snapshot_filename(run_id)
    atomic_write_json(path, snapshot.model_dump(mode="json"))
    return str(path)


def load_snapshot(path: str | os.PathLike[str]) -> DecisionSnapshot:
    return load_json_model(path, DecisionSnapshot, SnapshotError)
