"""`RunManifest`: what exactly produced a run (inputs by sha256, engine identity, versions)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

from pydantic import Field, model_validator

from include.contracts._base import RUN_KEY_PATTERN, FrozenModel

# Version 2 added the engine's image id, digest, build time and Lean version (all optional).
MANIFEST_SCHEMA_VERSION: Final = 2
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class FileDigest(FrozenModel):
    """A file by name (relative to the run folder or data folder, never machine-absolute) and sha256."""

    path: str = Field(min_length=1)
    sha256: str = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=0)


class AirflowRunIds(FrozenModel):
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    try_number: int | None = None
    logical_date: str | None = None


class RunManifest(FrozenModel):
    schema_version: Literal[2] = MANIFEST_SCHEMA_VERSION
    dag_id: str = Field(min_length=1, max_length=250)
    run_key: str = Field(pattern=RUN_KEY_PATTERN)
    mode: Literal["backtest", "live"]
    runtime: Literal["docker", "local"]
    algorithm_id: str | None = None
    created_at: dt.datetime
    # Role ("snapshot", "intent", "params", "config", "algorithm") -> digest; absent roles are omitted.
    files: dict[str, FileDigest]
    # One digest per data file read (the daily zips of the intent symbols), and their combined hash.
    data_files: tuple[FileDigest, ...] = ()
    data_sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    # Lean image reference (docker) or local runtime version string.
    engine_identity: str = Field(min_length=1)
    # Docker only: the image the daemon ran (its id, its repo digest and its build time, as the
    # daemon reports them) and the Lean version of the engine's start banner in log.txt.
    image_id: str | None = None
    image_digest: str | None = None
    image_created: str | None = None
    lean_version: str | None = None
    python_version: str
    package_versions: dict[str, str]
    airflow: AirflowRunIds = Field(default_factory=AirflowRunIds)

    @model_validator(mode="before")
    @classmethod
    def _upgrade_version_1(cls, data: Any) -> Any:
        """A version-1 manifest is a version 2 without the optional engine fields."""
        if isinstance(data, dict) and data.get("schema_version") == 1:
            return {**data, "schema_version": MANIFEST_SCHEMA_VERSION}
        return data
