"""`DecisionSnapshot`: the backend's decision of what to hold on one as-of date, and its I/O.

A run's snapshots are JSON lines, one snapshot per rebalance date (``snapshots_run_<key>.jsonl``);
a single snapshot may also stand alone as a JSON file (the CLI's ``intent --snapshot``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Final, Literal

from pydantic import Field, ValidationError, model_validator

from include.atomic_io import atomic_write_text
from include.contracts._base import FiniteFloat, FrozenModel, Symbol, Text
from include.contracts.validation import (
    MAX_CONTRACT_FILE_BYTES,
    describe_validation_error,
    load_json_model,
    open_input_file,
)
from include.errors import SnapshotError

SNAPSHOT_SCHEMA_VERSION: Final = 1
# Gross weight may exceed 1.0 only by float noise from normalisation.
GROSS_WEIGHT_TOLERANCE = 1e-9


class WeightItem(FrozenModel):
    symbol: Symbol
    weight: FiniteFloat = Field(ge=-1.0, le=1.0)


def check_weight_items(items: tuple[WeightItem, ...], where: str) -> None:
    """Unique symbols and gross exposure (sum of |weight|) at most 1."""
    seen: set[str] = set()
    for item in items:
        if item.symbol in seen:
            raise ValueError(f"{where}: duplicate symbol {item.symbol!r}")
        seen.add(item.symbol)
    gross = sum(abs(item.weight) for item in items)
    if gross > 1.0 + GROSS_WEIGHT_TOLERANCE:
        raise ValueError(f"{where}: gross weight {gross:.6f} exceeds 1.0")


class DecisionSnapshot(FrozenModel):
    schema_version: Literal[1] = SNAPSHOT_SCHEMA_VERSION
    as_of: dt.date
    source: Text = Field(min_length=1, max_length=200)
    items: tuple[WeightItem, ...]

    @model_validator(mode="after")
    def _unique_and_bounded(self) -> DecisionSnapshot:
        check_weight_items(self.items, f"snapshot {self.as_of.isoformat()}")
        return self


def load_snapshot(path: str | os.PathLike[str]) -> DecisionSnapshot:
    """One snapshot from a JSON file."""
    return load_json_model(path, DecisionSnapshot, SnapshotError)


def write_snapshots(path: str | os.PathLike[str], snapshots: Sequence[DecisionSnapshot]) -> str:
    """The snapshots as JSON lines, written atomically. Returns the path."""
    atomic_write_text(path, "".join(snap.model_dump_json() + "\n" for snap in snapshots))
    return os.fspath(path)


def load_snapshots(path: str | os.PathLike[str]) -> list[DecisionSnapshot]:
    """The snapshots of a ``.jsonl`` file; SnapshotError naming the file (and line) when it is bad.

    The size is checked first: a file without newlines would otherwise be read whole as one line.
    """
    snapshots: list[DecisionSnapshot] = []
    offset = 0
    with open_input_file(path, SnapshotError) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_CONTRACT_FILE_BYTES:
            raise SnapshotError([f"{path}: file is {size} bytes, over the {MAX_CONTRACT_FILE_BYTES}-byte limit"])
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SnapshotError(
                    [f"{path}:{number}: not UTF-8 text (byte offset {offset + exc.start}). Fix: save it as UTF-8"]
                ) from None
            offset += len(raw)
            if not line.strip():
                continue
            try:
                snapshots.append(DecisionSnapshot.model_validate_json(line))
            except ValidationError as exc:
                raise SnapshotError([f"{path}:{number}: {p}" for p in describe_validation_error(exc)]) from None
    if not snapshots:
        raise SnapshotError([f"{path}: no snapshots"])
    return snapshots
