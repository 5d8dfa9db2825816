"""Decision snapshots: read and write the backend's as-of weights file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from include.atomic_io import atomic_write_json
from include.contracts._base import check_run_key
from include.contracts.snapshot import DecisionSnapshot
from include.contracts.validation import describe_validation_error
from include.errors import SnapshotError


def snapshot_filename(run_id: str) -> str:
    check_run_key(run_id, "run_id")
    return f"snapshot_run_{run_id}.json"


def write_snapshot(*, output_dir: str | os.PathLike[str], run_id: str, snapshot: DecisionSnapshot) -> str:
    path = Path(output_dir) / snapshot_filename(run_id)
    atomic_write_json(path, snapshot.model_dump(mode="json"))
    return str(path)


def load_snapshot(path: str | os.PathLike[str]) -> DecisionSnapshot:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError([f"{path}: cannot read JSON ({exc})"]) from None
    try:
        return DecisionSnapshot.model_validate(raw)
    except ValidationError as exc:
        raise SnapshotError([f"{path}: {p}" for p in describe_validation_error(exc)]) from None
