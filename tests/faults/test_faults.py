"""Faults in the chain (issue #8): Lean failing or killed, broken events files, the audit DB
dropping the connection. In every case the step fails with a clear message, the audit DB keeps
exactly what it held (no half-ingested run), and a later re-run ends with exactly the right rows:
the order_events rows equal the events in the results file, one rebalance_runs row, the intent's
orders, and one consistency row per check."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from bench.bench_ingest import ALGORITHM_ID, write_events_file
from include.audit import ingest as ingest_module
from include.audit.db import make_engine
from include.audit.ingest import ingest_order_events
from include.errors import LeanRunError, OrderEventsFileError, OrderEventsMissingError
from include.run_folder import DEFAULT_DATA_FOLDER, RunFolder
from tests.airflow_fixtures import RecordingTI
from tests.db_fixtures import _pg_admin_url
from tests.faults.helpers import (
    RAISING_ALGORITHM,
    STALLING_ALGORITHM,
    STARTING_CASH,
    assert_db_matches_run,
    check,
    db_events,
    empty_counts,
    file_events,
    ingest,
    prepare_run,
    run_engine,
    run_status,
    table_counts,
    write_algorithm,
)
from tests.plugins.fake_docker_api import ContainerScript, FakeDockerAPI

TEST_IMAGE = "quantconnect/lean@sha256:" + "cd" * 32


LOCAL_RUNTIME = "local"


def _operator(run: RunFolder, **overrides: Any) -> Any:
    from lean_airflow.operators import LeanRunOperator

    kwargs: dict[str, Any] = {
        "task_id": "run_lean",
        "mode": "backtest",
        "runtime": "local",
        "run_dir": str(run.path),
        "data_path": str(DEFAULT_DATA_FOLDER),
        "parameters": {"starting-cash": STARTING_CASH},
    }
    kwargs.update(overrides)
    return LeanRunOperator(**kwargs)


def _rerun_and_assert_exact(run: RunFolder, db_url: str, runtime: str = LOCAL_RUNTIME) -> dict[str, Any]:
    """ingest + check after a good engine run; the DB then holds exactly this run, and the manifest
    names the engine the launch recorded in engine.json."""
    engine = run.engine_identity()
    assert engine["runtime"] == runtime, engine
    summary = ingest(run)
    expected = file_events(run.results_dir, run.run_key)
    assert summary["events"] == summary["inserted"] == len(expected) > 0, summary
    assert summary["already_present"] == 0
    manifest = json.loads(run.manifest_path.read_text())
    assert (manifest["runtime"], manifest["engine_identity"]) == (engine["runtime"], engine["engine"])
    assert check(run)["verdict"] in ("pass", "warn")
    assert_db_matches_run(db_url, run, checked=True)
    assert run_status(db_url, run.dag_id, run.run_key) in ("checked:pass", "checked:warn")
    return summary


# ------------------------------------------------------------------ Lean exits non-zero

BAD_ALGORITHMS = {
    # (algorithm source or None for a config pointing at a missing file, exit code, text of the tail)
    "raises_in_on_data": (RAISING_ALGORITHM, 1, "boom: the algorithm divided by zero in on_data"),
    "import_error": ("raise ImportError('cannot import name Nope from helpers')\n", 1, "cannot import name Nope"),
    "missing_algorithm_file": (None, 2, "algorithm file not found"),
}


@pytest.mark.parametrize("kind", list(BAD_ALGORITHMS))
def test_local_lean_failure_fails_the_task_with_the_log_tail_and_a_rerun_succeeds(
    kind: str, lean_env: dict[str, str], tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowException

    source, code, needle = BAD_ALGORITHMS[kind]
    run = prepare_run()
    algorithm = tmp_path / "algorithms" / "failing_algorithm.py"
    if source is not None:
        write_algorithm(algorithm.parent, algorithm.stem, source)
    with pytest.raises(AirflowException) as info:
        _operator(run, algorithm_path=str(algorithm)).execute({"ti": RecordingTI()})
    message = str(info.value)
    assert f"Lean (local) exited with code {code}. Last log lines:" in message
    assert needle in message, message
    assert "(no Lean log file was written)" not in message
    assert not run.engine_path.exists(), "a failed launch must not record an engine identity"
    if kind == "raises_in_on_data":
        # Lean still wrote the events of the failed attempt: the re-run must not keep any of them.
        assert file_events(run.results_dir, run.run_key)
    assert table_counts(lean_env["db_url"]) == empty_counts()

    ti = RecordingTI()
    assert _operator(run).execute({"ti": ti}) == run.results_dir.as_uri()
    assert run.engine_identity()["runtime"] == "local"
    assert needle not in (run.results_dir / "log.txt").read_text()
    _rerun_and_assert_exact(run, lean_env["db_url"])


def _mount(request: dict[str, Any], target: str) -> Path:
    return Path(next(m["Source"] for m in request["HostConfig"]["Mounts"] if m["Target"] == target))


def test_docker_lean_exit_one_fails_with_the_log_tail_and_a_rerun_succeeds(
    lean_env: dict[str, str], tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowException

    run = prepare_run()
    # What the container writes on success: the results of the same run (key, intent, params) by
    # the local runtime, made in a folder of its own.
    reference_dir = tmp_path / "reference" / run.dag_id / run.run_key
    reference_dir.mkdir(parents=True)
    shutil.copy(run.intent_path, reference_dir)
    shutil.copy(run.params_path, reference_dir)
    reference = RunFolder.open(reference_dir)
    assert reference.ref == run.ref
    run_engine(reference)

    def lean_fails(request: dict[str, Any]) -> None:
        results = _mount(request, "/Results")
        (results / "log.txt").write_text("Engine.Main(): starting\nRuntime Error: 'ZZSA' has no data in OnData\n")
        (results / f"{run.run_key}-order-events.json").write_text('[{"id":"half')

    failing = ContainerScript(log_lines=["Lean engine starting", "Runtime Error"], exit_code=1, on_run=lean_fails)
    with FakeDockerAPI(failing) as fake, pytest.raises(AirflowException) as info:
        _operator(run, runtime="docker", image=TEST_IMAGE, docker_url=fake.url).execute({"ti": RecordingTI()})
    message = str(info.value)
    assert "Lean (docker) exited with code 1. Last log lines:" in message
    assert "Runtime Error: 'ZZSA' has no data in OnData" in message
    assert not run.engine_path.exists(), "a failed launch must not record an engine identity"
    assert table_counts(lean_env["db_url"]) == empty_counts()

    def lean_succeeds(request: dict[str, Any]) -> None:
        results = _mount(request, "/Results")
        assert list(results.iterdir()) == [], "the re-run must start from an empty results folder"
        for path in reference.results_dir.iterdir():
            shutil.copy(path, results / path.name)

    ti = RecordingTI()
    with FakeDockerAPI(ContainerScript(on_run=lean_succeeds)) as fake:
        _operator(run, runtime="docker", image=TEST_IMAGE, docker_url=fake.url).execute({"ti": ti})
    identity = run.engine_identity()
    assert identity["runtime"] == "docker" and identity["engine"] == TEST_IMAGE
    assert identity["image_digest"] == TEST_IMAGE and identity["image_id"].startswith("sha256:")
    # The successful container is removed (a failed one is kept: see test_docker_lifecycle).
    assert len(fake.state.removed) == 1 and not fake.state.containers
    _rerun_and_assert_exact(run, lean_env["db_url"], "docker")
    manifest = json.loads(run.manifest_path.read_text())
    assert manifest["runtime"] == "docker" and manifest["engine_identity"] == TEST_IMAGE
    assert manifest["image_digest"] == TEST_IMAGE and manifest["image_created"] == identity["image_created"]


# ------------------------------------------------------------------ the engine is SIGKILLed


def _is_our_child(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid()


def test_engine_killed_with_sigkill_mid_run_fails_clearly_and_nothing_half_written_is_ingested(
    lean_env: dict[str, str], tmp_path: Path
) -> None:
    run = prepare_run()
    algorithm = write_algorithm(tmp_path / "algorithms", "stalls_mid_run", STALLING_ALGORITHM)
    pid_file = run.results_dir / "engine.pid"
    killed: dict[str, int] = {}

    def kill_once_started() -> None:
        deadline = time.monotonic() + 120
        while not pid_file.exists():
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        pid = int(pid_file.read_text())
        if _is_our_child(pid):  # the engine subprocess that run_lean_local started, nothing else
            os.kill(pid, signal.SIGKILL)
            killed["pid"] = pid

    killer = threading.Thread(target=kill_once_started, name="sigkill-engine", daemon=True)
    killer.start()
    lines: list[str] = []
    with pytest.raises(LeanRunError) as info:
        run_engine(run, algorithm_path=algorithm, on_line=lines.append, timeout_s=150)
    killer.join(timeout=10)
    assert killed, "the engine was never seen running"
    assert info.value.exit_code == -signal.SIGKILL
    assert "Lean (local) exited with code -9 (killed by signal SIGKILL)" in str(info.value)

    # The killed engine left a half-written events file: ingesting it is refused, DB untouched.
    with pytest.raises(OrderEventsFileError, match=r"at byte offset \d+: truncated JSON"):
        ingest(run)
    assert table_counts(lean_env["db_url"]) == empty_counts()

    run_engine(run)
    assert not pid_file.exists()
    _rerun_and_assert_exact(run, lean_env["db_url"])


# ------------------------------------------------------------------ broken events files


def _events_path(run: RunFolder) -> Path:
    return run.results_dir / f"{run.run_key}-order-events.json"


@pytest.mark.parametrize("fault", ["missing", "partial", "garbled"])
def test_broken_events_file_is_named_db_untouched_and_the_fixed_file_ingests_exactly(
    fault: str, lean_env: dict[str, str]
) -> None:
    run = prepare_run()
    run_engine(run)
    path = _events_path(run)
    good = path.read_bytes()
    expected: type[Exception]
    if fault == "missing":
        path.unlink()
        expected, pattern = OrderEventsMissingError, "non-zero target delta"
    elif fault == "partial":
        # Still being written: cut inside an event in the middle of the array.
        cut = good.index(b'"status"', len(good) // 2)
        path.write_bytes(good[:cut])
        expected, pattern = OrderEventsFileError, rf"at byte offset {cut}: truncated JSON after \d+ complete events"
    else:
        # A byte flipped to garbage at the start of an event in the middle of the array.
        at = good.index(b"},{", len(good) // 2) + 2
        path.write_bytes(good[:at] + b"#" + good[at + 1 :])
        expected, pattern = OrderEventsFileError, rf"at byte offset {at}: garbled JSON after \d+ complete events"
    with pytest.raises(expected, match=pattern) as info:
        ingest(run)
    assert path.name in str(info.value) and str(run.results_dir) in str(info.value)
    assert table_counts(lean_env["db_url"]) == empty_counts()
    with pytest.raises(expected):  # a retry of the unfixed file fails the same way
        ingest(run)
    assert table_counts(lean_env["db_url"]) == empty_counts()

    path.write_bytes(good)
    _rerun_and_assert_exact(run, lean_env["db_url"])


@pytest.mark.parametrize("fault", ["partial", "garbled"])
def test_broken_events_file_after_a_good_ingestion_changes_nothing(
    fault: str, db_engine: sa.Engine, tmp_path: Path
) -> None:
    """A later broken copy of an already ingested file fails and leaves the earlier rows as they were."""
    results = tmp_path / "results"
    results.mkdir()
    path = results / f"{ALGORITHM_ID}-order-events.json"
    write_events_file(path, 3_000)
    good = path.read_bytes()
    first = ingest_order_events(engine=db_engine, results_dir=results, algorithm_id=ALGORITHM_ID, run_key="k")
    assert first.inserted == 3_000
    url = db_engine.url.render_as_string(hide_password=False)
    before = db_events(url, "manual", "k")
    if fault == "partial":
        path.write_bytes(good[: len(good) - 500])
    else:
        at = good.index(b"},{", len(good) // 2) + 2
        path.write_bytes(good[:at] + b"\x00" + good[at + 1 :])
    with pytest.raises(OrderEventsFileError, match=r"at byte offset \d+"):
        ingest_order_events(engine=db_engine, results_dir=results, algorithm_id=ALGORITHM_ID, run_key="k")
    assert db_events(url, "manual", "k") == before
    path.write_bytes(good)
    again = ingest_order_events(engine=db_engine, results_dir=results, algorithm_id=ALGORITHM_ID, run_key="k")
    assert (again.inserted, again.already_present) == (0, 3_000)
    assert db_events(url, "manual", "k") == file_events(results, ALGORITHM_ID)


# ------------------------------------------------------------------ the DB drops the connection


def _drop_connection(conn: sa.Connection) -> None:
    """PostgreSQL: terminate the session's backend from a second connection. SQLite: close the file."""
    driver = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        assert isinstance(driver, sqlite3.Connection)
        driver.close()
        return
    assert isinstance(driver, psycopg.Connection)
    pid = driver.info.backend_pid
    admin = sa.create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as other:
            assert other.execute(sa.text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid}).scalar_one()
    finally:
        admin.dispose()


def test_database_connection_dropped_mid_ingestion_leaves_zero_rows_and_the_rerun_ingests_all(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    total = 40_000  # several batches: the drop happens with a batch already written in the transaction
    write_events_file(results / f"{ALGORITHM_ID}-order-events.json", total)
    original = ingest_module._BatchWriter.write
    written: list[int] = []

    def write_then_drop(self: Any, rows: list[tuple[Any, ...]]) -> int:
        if written:
            _drop_connection(self._conn)
        written.append(len(rows))
        return original(self, rows)

    engine = make_engine(db_url)
    try:
        monkeypatch.setattr(ingest_module._BatchWriter, "write", write_then_drop)
        with pytest.raises((sa.exc.DBAPIError, psycopg.OperationalError, sqlite3.ProgrammingError)) as info:
            ingest_order_events(engine=engine, results_dir=results, algorithm_id=ALGORITHM_ID, dag_id="d", run_key="k")
        assert len(written) == 2 and 0 < written[0] < total
        # The error names the lost connection, and its chain the server's reason.
        chain: list[BaseException] = [info.value]
        while chain[-1].__context__ is not None:
            chain.append(chain[-1].__context__)  # type: ignore[arg-type]
        reasons = " <- ".join(f"{type(e).__name__}: {e}" for e in chain)
        if db_url.startswith("sqlite"):
            assert "Cannot operate on a closed database" in reasons
        else:
            assert "connection is lost" in str(info.value)
            assert "terminating connection due to administrator command" in reasons
        monkeypatch.undo()
        assert table_counts(db_url) == empty_counts()

        # The same engine (its pool held the dropped connection) ingests everything on the re-run.
        summary = ingest_order_events(
            engine=engine, results_dir=results, algorithm_id=ALGORITHM_ID, dag_id="d", run_key="k"
        )
    finally:
        engine.dispose()
    assert (summary.events, summary.inserted, summary.already_present) == (total, total, 0)
    assert db_events(db_url, "d", "k") == file_events(results, ALGORITHM_ID)
    assert table_counts(db_url) == {**empty_counts(), "rebalance_runs": 1, "order_events": total}
