"""The steps of the chain, as plain functions: snapshot -> intent -> params -> (Lean) -> ingest -> check.

DAG tasks only call these with values from the Airflow context; everything here is testable
without Airflow. Each step returns small JSON-able dicts of file paths (what XCom carries).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import ValidationError

from include.artifacts import confine, run_dir, run_key_for_date, run_key_for_range
from include.atomic_io import atomic_write_json, atomic_write_text
from include.contracts.snapshot import DecisionSnapshot
from include.contracts.validation import check_file_size, describe_validation_error
from include.errors import SnapshotError
from include.execution_params import write_execution_params
from include.intent import write_order_intent
from include.lean_runtime import FINAL_STATE_FILE
from include.snapshots import take_snapshot
from include.trading_calendar import is_session, previous_session, sessions_between

DagKind = Literal["daily", "range"]
INITIAL_STATE_FILE = "initial_state.json"


class RunDateError(SnapshotError):
    """The run's dates cannot be resolved (missing ``as_of``, not a session, bad range)."""


def _parse_date(value: Any, name: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise RunDateError([f"Param {name}={value!r}: expected a date YYYY-MM-DD"]) from None


def resolve_run_dates(
    *,
    kind: DagKind,
    run_type: str,
    interval_end_session: dt.date | None,
    params: Mapping[str, Any],
) -> tuple[str, list[dt.date]]:
    """(run key, rebalance dates) from the run's logical date or its Params; never its run_id."""
    if kind == "range":
        start = _parse_date(params.get("start_date"), "start_date")
        end = _parse_date(params.get("end_date"), "end_date")
        if end < start:
            raise RunDateError([f"Params start_date={start} and end_date={end}: end is before start"])
        sessions = sessions_between(start, end)
        if not sessions:
            raise RunDateError([f"no NYSE session between {start} and {end}"])
        return run_key_for_range(start, end), sessions
    if run_type == "manual" or interval_end_session is None:
        raw = params.get("as_of")
        if raw in (None, ""):
            raise RunDateError(["Param as_of is required for manual runs (the trading day to rebalance)"])
        day = _parse_date(raw, "as_of")
    else:
        day = interval_end_session
    if not is_session(day):
        raise RunDateError([f"as_of {day.isoformat()} is not an NYSE trading session"])
    return run_key_for_date(day), [day]


def step_snapshot(
    *,
    dag_id: str,
    run_key: str,
    dates: Sequence[dt.date],
    provider: str,
    options: Mapping[str, Any],
    data_folder: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """One DecisionSnapshot per rebalance date, as JSON lines: ``snapshots_run_<key>.jsonl``."""
    folder = run_dir(dag_id, run_key, root=root)
    lines = [
        take_snapshot(provider, as_of=day, data_folder=os.fspath(data_folder), options=options).model_dump_json()
        for day in dates
    ]
    path = folder / f"snapshots_run_{run_key}.jsonl"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return {"run_dir": str(folder), "snapshots_path": str(path)}


def load_snapshots(path: str | os.PathLike[str]) -> list[DecisionSnapshot]:
    """The snapshots of a ``.jsonl`` file; SnapshotError naming the file (and line) when it is bad.

    The size is checked first: a file without newlines would otherwise be read whole as one line.
    """
    snapshots: list[DecisionSnapshot] = []
    try:
        check_file_size(path, SnapshotError)
    except OSError as exc:
        raise SnapshotError([f"{path}: cannot read ({exc.strerror})"]) from None
    offset = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SnapshotError([f"{path}:{number}: not UTF-8 text (byte offset {offset + exc.start})"]) from None
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


def step_write_intent(*, run_dir: str, run_key: str, snapshots_path: str) -> dict[str, str]:
    folder = confine(run_dir)
    snapshots = load_snapshots(confine(snapshots_path))
    return {"intent_path": write_order_intent(output_dir=folder, run_id=run_key, rebalances=snapshots)}


def step_write_params(
    *,
    run_dir: str,
    run_key: str,
    params: Mapping[str, Any] | None,
    previous_run_dir: str | None = None,
) -> dict[str, str]:
    """Write the execution params; for a continuous account, copy the previous run's final state."""
    folder = confine(run_dir)
    # Every path is checked before anything is written: a bad one leaves no file behind.
    previous_state = None if previous_run_dir is None else confine(previous_run_dir) / "results" / FINAL_STATE_FILE
    out = {"params_path": write_execution_params(output_dir=folder, run_id=run_key, params=params)}
    initial = folder / INITIAL_STATE_FILE
    if previous_state is not None and previous_state.exists():
        # Copy, so the run folder is self-contained and the Docker path can bind it read-only.
        atomic_write_text(initial, previous_state.read_text(encoding="utf-8"))
        out["initial_state_path"] = str(initial)
        return out
    initial.unlink(missing_ok=True)
    return out


def previous_run_dir(
    dag_id: str, day: dt.date, *, mode: str = "backtest", root: str | os.PathLike[str] | None = None
) -> str | None:
    """The run whose final account state this run starts from, if it exists.

    Backtests chain day by day: the previous session's run, or a fresh account when that run
    is missing (the first day of a backfill). A live account carries over from the latest
    earlier run, whatever days were skipped in between.
    """
    if mode == "live":
        base = run_dir(dag_id, run_key_for_date(day), root=root, create=False).parent
        if not base.exists():
            return None
        key = run_key_for_date(day)
        earlier = sorted(
            p for p in base.iterdir() if p.is_dir() and len(p.name) == 8 and p.name.isdigit() and p.name < key
        )
        for folder in reversed(earlier):
            if (folder / "results" / FINAL_STATE_FILE).exists():
                return str(folder)
        return None
    prev = previous_session(day)
    if prev is None:
        return None
    folder = run_dir(dag_id, run_key_for_date(prev), root=root, create=False)
    return str(folder) if (folder / "results" / FINAL_STATE_FILE).exists() else None


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def session_of(moment: dt.datetime | None) -> dt.date | None:
    """New York date of an aware instant (a run's data-interval end)."""
    if moment is None:
        return None
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("America/New_York")).date()


def _audit_engine() -> Any:
    """The audit DB engine, migrated to head (idempotent: Alembic skips applied revisions)."""
    from include.audit.db import make_engine, upgrade_database

    upgrade_database()
    return make_engine()


def step_ingest(
    *,
    dag_id: str,
    run_key: str,
    run_dir: str,
    results_dir: str,
    mode: str,
    engine: Mapping[str, str],
    airflow_ids: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write ``manifest.json`` (hashes of every input and the engine identity), store it, and
    upsert Lean's order events into the audit DB. Re-running inserts nothing twice."""
    from include.audit.ingest import ingest_order_events
    from include.audit.manifest import build_run_manifest, record_manifest
    from include.audit.run_folder import open_run_folder

    folder = confine(run_dir)
    results = confine(results_dir, folder)
    run = open_run_folder(folder)
    if run.run_key != run_key or run.dag_id != dag_id:
        raise SnapshotError([f"{folder}: holds run {run.dag_id}/{run.run_key}, expected {dag_id}/{run_key}"])
    ids = dict(airflow_ids or {})
    # Built now (it hashes the inputs), written only once the events are in: a failed ingestion
    # leaves neither a row nor a new manifest.json behind.
    manifest = build_run_manifest(
        folder,
        engine_identity=str(engine.get("engine") or "unknown"),
        runtime="docker" if engine.get("runtime") == "docker" else "local",
        airflow_dag_id=ids.get("dag_id"),
        airflow_run_id=ids.get("run_id"),
        airflow_task_id=ids.get("task_id"),
        airflow_try_number=int(ids["try_number"]) if ids.get("try_number") else None,
        airflow_logical_date=ids.get("logical_date"),
        write=False,
    )
    db = _audit_engine()
    try:
        # Events first: a failed ingestion rolls back its one transaction and leaves the DB
        # untouched (no run row either); the manifest is then stored on the run's row.
        summary = ingest_order_events(
            engine=db,
            results_dir=results,
            algorithm_id=run.algorithm_id,
            intent=run.load_intent(),
            dag_id=dag_id,
            run_key=run_key,
            mode="live" if mode == "live" else "backtest",
            runtime="docker" if engine.get("runtime") == "docker" else "local",
            holdings=run.starting_state().holdings,
        )
        record_manifest(db, manifest)
    finally:
        db.dispose()
    atomic_write_json(run.manifest_path, manifest.model_dump(mode="json"))
    return summary.as_dict()


def step_check(*, dag_id: str, run_key: str, run_dir: str, policy: str = "fail") -> dict[str, Any]:
    """Check the run against its intent and params; saves report.json/.html and DB rows.

    Under the ``fail`` policy a hard inconsistency raises ``ConsistencyCheckFailed`` (after
    the report is saved); under ``warn`` it is only reported.
    """
    from include.audit.consistency import check_run_dir

    folder = confine(run_dir)
    if folder.name != run_key or folder.parent.name != dag_id:
        raise SnapshotError([f"{folder}: is not the folder of {dag_id}/{run_key}"])
    db = _audit_engine()
    try:
        report = check_run_dir(folder, engine=db, policy="warn" if policy == "warn" else "fail")
    finally:
        db.dispose()
    return {
        "verdict": report.verdict,
        "report_json": str(folder / "report.json"),
        "report_html": str(folder / "report.html"),
        "failures": len(report.failures),
    }
