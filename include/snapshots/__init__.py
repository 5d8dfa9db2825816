"""Snapshot providers: where the backend's target weights come from.

- ``trend_rotation`` (default): top-N momentum over a lookback, computed from the data folder;
- ``file``: a CSV, JSON or Parquet table of date, symbol, weight;
- ``sql``: a table of date, symbol, weight read with SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from include.errors import SnapshotError

if TYPE_CHECKING:
    from include.contracts.snapshot import DecisionSnapshot

PROVIDERS = ("trend_rotation", "file", "sql")
# The trend-rotation strategy's defaults (the DAG form and the CLI take them from here).
DEFAULT_TOP_N = 3
DEFAULT_LOOKBACK_DAYS = 20


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
