"""Re-runs and races (issue #8): a retried task, a cleared and re-run DAG run, two runs of the
same key at once, and concurrent writes of the same run-folder files. The run folder and the
audit DB must end exactly as after one clean run: same files, every event once, one run row."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from include.atomic_io import atomic_write_bytes
from include.pipeline import step_write_intent
from tests.faults.helpers import (
    DAG_ID,
    END,
    EXECUTION,
    OPTIONS,
    START,
    assert_db_matches_run,
    check,
    file_events,
    ingest,
    prepare_run,
    run_engine,
    table_counts,
)

# Files of a run folder that a re-run must reproduce byte for byte (manifest.json and
# report.json hold timestamps and Airflow ids; they are compared field by field).
STABLE_FILES = (
    "snapshots_run_{key}.jsonl",
    "order_intent_run_{key}.json",
    "execution_params_run_{key}.json",
    "config.json",
    "results/{key}-order-events.json",
    "results/final-state.json",
    "results/{key}-summary.json",
)


def _snapshot_files(run_dir: Path, key: str) -> dict[str, bytes]:
    return {name: (run_dir / name.format(key=key)).read_bytes() for name in STABLE_FILES}


def _report_without_timestamps(run_dir: Path) -> dict[str, Any]:
    report = json.loads((run_dir / "report.json").read_text())
    # generated_at is the check's time; manifest_sha256 hashes the manifest, which holds its own
    # created_at and the Airflow run id (both differ by design between two runs).
    assert report.pop("generated_at")
    report.pop("manifest_sha256")
    return report


def _manifest_without_timestamps(run_dir: Path) -> dict[str, Any]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest.pop("created_at")
    manifest.pop("airflow")
    return manifest


# ------------------------------------------------------------------ a task is retried


def test_retried_steps_rewrite_identical_files_and_duplicate_no_row(lean_env: dict[str, str]) -> None:
    db_url = lean_env["db_url"]
    run = prepare_run()
    engine = run_engine(run)
    assert run.engine_identity() == engine
    first_ingest = ingest(run)
    check(run)
    counts = assert_db_matches_run(db_url, run, checked=True)
    files = _snapshot_files(run.path, run.run_key)
    report = _report_without_timestamps(run.path)
    manifest = _manifest_without_timestamps(run.path)
    assert first_ingest["inserted"] == counts["order_events"]

    # Every step again, for the same run key (what Airflow's retries or a re-run do).
    again = prepare_run()
    assert again == run
    assert run_engine(again) == engine
    second_ingest = ingest(again)
    check(again)
    n = counts["order_events"]
    assert (second_ingest["events"], second_ingest["inserted"], second_ingest["already_present"]) == (n, 0, n)
    assert {k: v for k, v in second_ingest.items() if k not in ("inserted", "already_present")} == {
        k: v for k, v in first_ingest.items() if k not in ("inserted", "already_present")
    }
    assert _snapshot_files(run.path, run.run_key) == files
    assert _report_without_timestamps(run.path) == report
    assert _manifest_without_timestamps(run.path) == manifest
    assert assert_db_matches_run(db_url, run, checked=True) == counts

    # Only the ingestion retried (its first try's rows are there): nothing new, same summary.
    third = ingest(run)
    assert (third["inserted"], third["already_present"]) == (0, n)
    assert assert_db_matches_run(db_url, run, checked=True) == counts


# ------------------------------------------------------------------ a DAG run is cleared and re-run

TASKS = ("snapshot", "write_intent", "write_params", "run_lean", "ingest_events", "consistency_check")


def _assert_success(dag_run: Any) -> None:
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states == dict.fromkeys(TASKS, "success"), states
    assert str(dag_run.state) == "success"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cleared", "new_run"])
def test_dag_run_cleared_or_run_again_reuses_the_folder_and_duplicates_nothing(  # type: ignore[no-untyped-def]
    how: str, dagbag, lean_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cleared``: the same DAG run again (same logical date and run_after, so the same run_id);
    dag.test() clears its task instances and replaces the run, as a clear of the whole run does.
    ``new_run``: another manual run with the same params (a new run_id)."""
    import pendulum

    import include.pipeline as pipeline

    # The ingest_events task's XCom holds paths only: its summary is taken from step_ingest itself.
    summaries: list[dict[str, Any]] = []
    real_step_ingest = pipeline.step_ingest

    def recording_step_ingest(*args: Any, **kwargs: Any) -> dict[str, Any]:
        summary = real_step_ingest(*args, **kwargs)
        summaries.append(summary)
        return summary

    monkeypatch.setattr(pipeline, "step_ingest", recording_step_ingest)
    dag = dagbag.dags[DAG_ID]
    conf = {"start_date": START, "end_date": END, **OPTIONS, **EXECUTION}
    logical = pendulum.now("UTC")  # this test's own: the Airflow metadata DB is shared by the session
    first = dag.test(logical_date=logical, run_after=logical, run_conf=conf)
    _assert_success(first)
    root = Path(lean_env["root"]) / DAG_ID
    (folder,) = root.iterdir()
    key = folder.name
    files = _snapshot_files(folder, key)
    report = _report_without_timestamps(folder)
    manifest = _manifest_without_timestamps(folder)
    counts = table_counts(lean_env["db_url"])
    events = file_events(folder / "results", key)
    assert counts["order_events"] == len(events) > 0 and counts["rebalance_runs"] == 1
    first_airflow = json.loads((folder / "manifest.json").read_text())["airflow"]
    assert (first_airflow["run_id"], first_airflow["try_number"]) == (first.run_id, 1)
    assert len(summaries) == 1 and (summaries[0]["inserted"], summaries[0]["already_present"]) == (len(events), 0)

    again = logical if how == "cleared" else pendulum.now("UTC")
    second = dag.test(logical_date=again, run_after=again, run_conf=conf)
    _assert_success(second)
    assert (second.run_id == first.run_id) is (how == "cleared")
    assert [p.name for p in root.iterdir()] == [key]  # the same run folder, no second one
    assert _snapshot_files(folder, key) == files
    assert _report_without_timestamps(folder) == report
    assert _manifest_without_timestamps(folder) == manifest
    second_airflow = json.loads((folder / "manifest.json").read_text())["airflow"]
    assert (second_airflow["run_id"], second_airflow["try_number"]) == (second.run_id, 1)
    assert table_counts(lean_env["db_url"]) == counts
    assert file_events(folder / "results", key) == events
    ingested = second.get_task_instance("ingest_events").xcom_pull(task_ids="ingest_events")
    assert ingested == {"run_dir": folder.as_uri(), "manifest": (folder / "manifest.json").as_uri()}, ingested
    assert len(summaries) == 2, summaries
    assert (summaries[1]["inserted"], summaries[1]["already_present"]) == (0, len(events))


# ------------------------------------------------------------------ two runs of one key race


def _race(target: Callable[[], Any], parties: int = 2) -> list[tuple[str, Any]]:
    """Run ``target`` in ``parties`` threads released together; (\"ok\", result) or (\"error\", exc)."""
    barrier = threading.Barrier(parties)
    outcomes: list[tuple[str, Any]] = [("missing", None)] * parties

    def worker(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = ("ok", target())
        except Exception as exc:  # reported below: a clean failure is allowed, a hang or a torn DB is not
            outcomes[index] = ("error", exc)

    threads = [threading.Thread(target=worker, args=(i,), name=f"race-{i}") for i in range(parties)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
        assert not thread.is_alive(), "a racing ingestion hung"
    return outcomes


def test_two_ingestions_of_the_same_run_racing_store_each_event_once(lean_env: dict[str, str]) -> None:
    db_url = lean_env["db_url"]
    run = prepare_run()
    run_engine(run)
    outcomes = _race(lambda: ingest(run))
    n = len(file_events(run.results_dir, run.run_key))
    for status, value in outcomes:
        assert status in ("ok", "error"), outcomes
        if status == "ok":
            assert value["events"] == n and value["inserted"] + value["already_present"] == n
        else:  # a clean failure names the database's refusal
            assert "database is locked" in str(value) or "could not serialize" in str(value), value
    assert any(status == "ok" for status, _ in outcomes), outcomes
    assert_db_matches_run(db_url, run, checked=False)
    check(run)
    assert_db_matches_run(db_url, run, checked=True)


def test_racing_ingestions_report_how_many_rows_each_inserted(lean_env: dict[str, str]) -> None:
    """Between them, the racers inserted every event exactly once."""
    run = prepare_run()
    run_engine(run)
    outcomes = _race(lambda: ingest(run))
    n = len(file_events(run.results_dir, run.run_key))
    inserted = sum(value["inserted"] for status, value in outcomes if status == "ok")
    assert inserted == n, outcomes


def test_two_consistency_checks_racing_keep_one_row_per_check(
    lean_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both checks have replaced the old rows (delete) before either writes its own (insert)."""
    import sqlalchemy as sa

    from include.audit import consistency

    run = prepare_run()
    run_engine(run)
    ingest(run)
    check(run)
    # Both saves meet after their delete; SQLite's write lock keeps the second from deleting while
    # the first holds it, so there the meeting times out and the saves go one after the other.
    meet = threading.Barrier(2, timeout=3)

    def insert_after_meeting(table: Any) -> Any:
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait()
        return sa.insert(table)

    monkeypatch.setattr(consistency, "insert", insert_after_meeting)
    outcomes = _race(lambda: check(run))
    assert [status for status, _ in outcomes] == ["ok", "ok"], outcomes
    assert_db_matches_run(lean_env["db_url"], run, checked=True)


# ------------------------------------------------------------------ concurrent writes of one file


def test_concurrent_atomic_writes_of_one_file_are_never_torn(tmp_path: Path) -> None:
    target = tmp_path / "run" / "order_intent_run_k.json"
    versions = [json.dumps({"writer": w, "pad": str(w) * 400_000}).encode() for w in range(2)]
    atomic_write_bytes(target, versions[0])
    stop = threading.Event()
    seen: list[bytes] = []
    errors: list[BaseException] = []

    def writer(data: bytes) -> None:
        try:
            for _ in range(40):
                atomic_write_bytes(target, data)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        while not stop.is_set():
            seen.append(target.read_bytes())

    reading = threading.Thread(target=reader)
    reading.start()
    writers = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    stop.set()
    reading.join(timeout=30)
    assert not errors, errors
    assert seen and all(data in versions for data in seen), "a reader saw a torn file"
    assert target.read_bytes() in versions
    assert [p.name for p in target.parent.iterdir()] == [target.name], "a temp file was left behind"


def test_two_writes_of_the_same_run_folder_files_at_once(lean_env: dict[str, str]) -> None:
    run = prepare_run()
    intent = run.intent_path.read_bytes()
    outcomes = _race(lambda: step_write_intent(run))
    assert outcomes == [("ok", run.intent_path), ("ok", run.intent_path)], outcomes
    assert run.intent_path.read_bytes() == intent
    again = _race(lambda: prepare_run())
    assert all(status == "ok" and value == run for status, value in again), again
    assert run.intent_path.read_bytes() == intent
    assert not [p.name for p in run.path.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ first runs racing on a fresh audit DB

_UPGRADE_CHILD = """
import sys
import alembic.command, alembic.runtime.migration, psycopg, sqlalchemy.dialects.sqlite
from include.audit.db import upgrade_database
print("ready", flush=True)
sys.stdin.readline()  # released together by the parent
upgrade_database(sys.argv[1])
"""


def test_concurrent_migrations_of_a_fresh_audit_db_all_succeed(raw_db_url: str) -> None:
    """Every step migrates the audit DB first: two DAGs' first runs (separate processes) and two
    tasks in one process (threads) may do it at once, on a database nobody has migrated yet."""
    import subprocess
    import sys

    from include.audit.db import current_revision, upgrade_database
    from tests.conftest import REPO_ROOT

    children = [
        subprocess.Popen(
            [sys.executable, "-c", _UPGRADE_CHILD, raw_db_url],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for child in children:  # every child has imported everything: the upgrades start together
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    threads = _race(lambda: upgrade_database(raw_db_url), parties=3)
    failures = []
    for child in children:
        _, err = child.communicate(timeout=120)
        if child.returncode != 0:
            failures.append(next(line for line in err.splitlines() if "Error" in line and ":" in line))
    assert failures == [], failures
    assert [status for status, _ in threads] == ["ok"] * 3, threads
    assert current_revision(raw_db_url) is not None
    assert table_counts(raw_db_url) == dict.fromkeys(table_counts(raw_db_url), 0)
