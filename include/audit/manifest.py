"""``manifest.json``: the exact inputs and engine of a run, by sha256.

Never imports Airflow: Airflow identifiers are plain optional arguments. Paths in the manifest
are relative (to the run folder, or ``data/...`` for data files), never machine-absolute. A run folder
staged from an artifact store (``include.artifact_store``) is hashed on the store's bytes.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.metadata
import os
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import update
from sqlalchemy.engine import Engine

from include.atomic_io import dumps_canonical
from include.contracts.manifest import AirflowRunIds, FileDigest, RunManifest
from include.contracts.report import read_report_head
from include.errors import RunFolderError
from include.launch.config import LauncherConfig
from include.run_folder import RunFolder

KEY_PACKAGES = ("apache-airflow", "pydantic", "SQLAlchemy", "alembic", "psycopg", "ijson", "numpy", "pandas", "pyarrow")
_CHUNK = 1 << 20
# engine.json keys that RunManifest carries as fields of their own.
ENGINE_DETAIL_FIELDS = ("image_id", "image_digest", "image_created", "lean_version")


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _digest(path: Path, shown_as: str) -> FileDigest:
    return FileDigest(path=shown_as, sha256=sha256_file(path), size=path.stat().st_size)


def _run_file_digest(folder: RunFolder, path: Path) -> FileDigest:
    """A run folder file's digest; for a folder staged from an object store, of the bytes the store holds
    (what later tasks and other workers read), which must be the bytes staged here."""
    local = folder.inside(path)
    store = folder.store
    if store is None or store.in_place:
        return _digest(local, path.name)
    uri = store.file_uri(folder, path)
    try:
        stored = store.read_bytes(uri)
    except FileNotFoundError:
        raise RunFolderError([f"{path.name}: not in the artifact store ({uri}); it was never uploaded"]) from None
    digest = hashlib.sha256(stored).hexdigest()
    if digest != sha256_file(local):
        raise RunFolderError([f"{path.name}: the staged copy differs from the artifact store's {uri}"])
    return FileDigest(path=path.name, sha256=digest, size=len(stored))


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str]:
    return {name: _package_version(name) for name in names}


@functools.cache
def _package_version(name: str) -> str:
    """Installed packages do not change under a running process; each lookup scans site-packages."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def combined_sha256(digests: Iterable[FileDigest]) -> str:
    """One hash over (path, sha256) pairs sorted by path."""
    digest = hashlib.sha256()
    for item in sorted(digests, key=lambda d: d.path):
        digest.update(f"{item.path}\0{item.sha256}\n".encode())
    return digest.hexdigest()


def input_files(folder: RunFolder) -> tuple[tuple[str, Path], ...]:
    """The run folder's input files by manifest role (present or not)."""
    return (
        ("snapshot", folder.snapshots_path),
        ("intent", folder.intent_path),
        ("params", folder.params_path),
        ("config", folder.config_path),
        # A continued account's starting holdings are an input like the others.
        ("initial_state", folder.initial_state_path),
    )


@dataclass(frozen=True)
class RunFreshness:
    """Whether a run folder's results, manifest and report belong to the inputs now in it.

    ``current``: the manifest hashes every input file as it is on disk and the report was made
    from that manifest. ``incomplete``: the inputs have no manifest or no report yet (a run in
    progress, or a re-run that stopped early). ``stale``: the inputs changed after the manifest,
    or the report belongs to another manifest. Only a current run's verdict may be shown.
    """

    state: Literal["current", "stale", "incomplete"]
    problems: tuple[str, ...] = ()


def check_freshness(folder: RunFolder, *, report_manifest_sha256: str | None = None) -> RunFreshness:
    """Compare the run folder's files with its manifest (sha256 of each small input file, the
    same digests that identify the attempt) and the report with the manifest.

    ``report_manifest_sha256``: the report's link to its manifest when the caller holds a report
    not yet on disk (the check rendering ``report.html``); else it is read from ``report.json``."""
    if not folder.manifest_path.exists():
        if folder.report_json_path.exists():
            return RunFreshness("stale", ("report.json has no manifest.json beside it",))
        return RunFreshness("incomplete", ("no manifest.json: the run was not ingested since its inputs were written",))
    raw = folder.inside(folder.manifest_path).read_bytes()
    try:
        manifest = RunManifest.model_validate_json(raw)
    except ValueError as exc:
        return RunFreshness("stale", (f"manifest.json is not a valid manifest: {str(exc).splitlines()[0]}",))
    problems: list[str] = []
    for role, path in input_files(folder):
        recorded = manifest.files.get(role)
        if not path.exists():
            if recorded is not None:
                problems.append(f"{path.name} ({role}) is gone since the manifest")
            continue
        if recorded is None:
            problems.append(f"{path.name} ({role}) was written after the manifest")
        elif sha256_file(folder.inside(path)) != recorded.sha256:
            problems.append(f"{path.name} ({role}) changed since the manifest")
    if problems:
        return RunFreshness("stale", tuple(problems))
    if report_manifest_sha256 is None:
        if not folder.report_json_path.exists():
            return RunFreshness("incomplete", ("no report.json: the run was not checked since it was ingested",))
        report_manifest_sha256 = read_report_head(folder.inside(folder.report_json_path)).get("manifest_sha256")
    if report_manifest_sha256 != hashlib.sha256(raw).hexdigest():
        return RunFreshness("stale", ("report.json was made from another manifest.json",))
    return RunFreshness("current")


def build_run_manifest(
    folder: RunFolder,
    config: LauncherConfig,
    *,
    engine_identity: str,
    engine_details: Mapping[str, str] | None = None,
    runtime: Literal["docker", "local"] = "local",
    algorithm_path: str | os.PathLike[str] | None = None,
    data_folder: str | os.PathLike[str] | None = None,
    airflow: Mapping[str, str] | None = None,
) -> RunManifest:
    """Hash the run's inputs (the caller writes ``manifest.json`` once the events are stored).

    ``engine_details``: the rest of the run's ``engine.json`` (``image_id``, ``image_digest``,
    ``image_created``, ``lean_version``), whichever the launch recorded.
    """
    files = {role: _run_file_digest(folder, path) for role, path in input_files(folder) if path.exists()}
    algorithm = Path(algorithm_path) if algorithm_path is not None else folder.algorithm_path(config)
    if algorithm is None or not algorithm.exists():
        raise RunFolderError(
            [f"algorithm file not found (config algorithm-location {config.get('algorithm-location')!r})"]
        )
    files["algorithm"] = _digest(algorithm, algorithm.name)
    data = Path(data_folder) if data_folder is not None else folder.data_folder(config)
    data_files: list[FileDigest] = []
    for symbol in folder.load_intent().symbols:
        for relative in (
            Path("equity/usa/daily") / f"{symbol.lower()}.zip",
            Path("equity/usa/factor_files") / f"{symbol.lower()}.csv",
            Path("equity/usa/map_files") / f"{symbol.lower()}.csv",
        ):
            if (data / relative).exists():
                data_files.append(_digest(data / relative, f"data/{relative.as_posix()}"))
    ids = dict(airflow or {})
    return RunManifest(
        dag_id=folder.dag_id,
        run_key=folder.run_key,
        mode=config.mode,
        runtime=runtime,
        algorithm_id=folder.algorithm_id,
        created_at=dt.datetime.now(dt.UTC),
        files=files,
        data_files=tuple(data_files),
        data_sha256=combined_sha256(data_files) if data_files else None,
        engine_identity=engine_identity,
        **{key: value for key, value in (engine_details or {}).items() if key in ENGINE_DETAIL_FIELDS and value},
        python_version=platform.python_version(),
        package_versions=package_versions(),
        airflow=AirflowRunIds(
            dag_id=ids.get("dag_id"),
            run_id=ids.get("run_id"),
            task_id=ids.get("task_id"),
            try_number=int(ids["try_number"]) if ids.get("try_number") else None,
            logical_date=ids.get("logical_date"),
        ),
    )


def inputs_sha256(manifest: RunManifest) -> str:
    """What identifies an attempt of a run: the hashes of every input (snapshot, intent, params,
    config, starting state, algorithm, data files) and the engine. Unlike :func:`manifest_sha256`
    it leaves out when and by which Airflow try the run was made, so a retry hashes the same."""
    digest = hashlib.sha256()
    digest.update(
        combined_sha256(
            FileDigest(path=role, sha256=d.sha256, size=d.size) for role, d in manifest.files.items()
        ).encode()
    )
    digest.update(f"\0{manifest.data_sha256 or ''}\0{manifest.engine_identity}\0{manifest.image_id or ''}".encode())
    return digest.hexdigest()


def manifest_sha256(manifest: RunManifest) -> str:
    """sha256 of the manifest's canonical JSON (what ``manifest.json`` holds)."""
    return hashlib.sha256(dumps_canonical(manifest.model_dump(mode="json")).encode("utf-8")).hexdigest()


def record_manifest(engine: Engine, manifest: RunManifest) -> int:
    """Store the manifest (JSON + hashes + Airflow ids) on its rebalance_runs row (created if absent)."""
    from include.audit.db import RebalanceRun
    from include.audit.ingest import ensure_run

    payload: dict[str, Any] = manifest.model_dump(mode="json")
    with engine.begin() as conn:
        run_id = ensure_run(
            conn,
            dag_id=manifest.dag_id,
            run_key=manifest.run_key,
            mode=manifest.mode,
            runtime=manifest.runtime,
            algorithm_id=manifest.algorithm_id,
        )
        conn.execute(
            update(RebalanceRun)
            .where(RebalanceRun.id == run_id)
            .values(
                manifest=payload,
                manifest_sha256=manifest_sha256(manifest),
                snapshot_sha256=manifest.files["snapshot"].sha256 if "snapshot" in manifest.files else None,
                intent_sha256=manifest.files["intent"].sha256 if "intent" in manifest.files else None,
                params_sha256=manifest.files["params"].sha256 if "params" in manifest.files else None,
                config_sha256=manifest.files["config"].sha256 if "config" in manifest.files else None,
                airflow_dag_run_id=manifest.airflow.run_id,
                airflow_task_id=manifest.airflow.task_id,
                airflow_try_number=manifest.airflow.try_number,
                mode=manifest.mode,
                runtime=manifest.runtime,
                updated_at=dt.datetime.now(dt.UTC),
            )
        )
    return run_id
