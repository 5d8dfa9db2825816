"""Every failure named (issue #18): an audit DB that is unavailable, read-only, locked or full, an
input file that cannot be read, a bad snapshot-provider URL. Each error says what failed, where
(the URL with its password hidden, the file) and what to do, and the CLI exits with its own code
(3, the environment) instead of a traceback, distinct from an algorithm's or an input's failure (1)
and a usage error (2).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

import include.audit.db as audit_db
from bench.bench_ingest import ALGORITHM_ID, write_events_file
from include.audit.db_errors import audit_db_errors
from include.cli import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_USAGE, main
from include.contracts.intent import load_order_intent
from include.contracts.params import load_execution_params
from include.contracts.snapshot import load_snapshot, load_snapshots
from include.errors import (
    AuditDatabaseUnavailableError,
    ExecutionParamsError,
    InputFileError,
    OrderIntentError,
    SnapshotError,
    SnapshotSourceError,
)
from include.snapshots.providers import file_snapshot, sql_snapshot

REPO = Path(__file__).resolve().parents[2]
PG = os.environ.get("LEAN_AIRFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
AS_OF = dt.date(2021, 3, 1)


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "include.cli", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _named(done: subprocess.CompletedProcess[str], code: int, name: str) -> str:
    """The one stderr line of a named failure (no traceback), after checking the exit code."""
    assert done.returncode == code, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {name}: "), done.stderr
    return lines[0]


@contextmanager
def _deadline(seconds: int = 10) -> Iterator[None]:
    """Fail (instead of hanging the suite) when a read blocks, as a FIFO's open does."""

    def expired(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"blocked for {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _results(tmp_path: Path, events: int = 20) -> Path:
    results = tmp_path / "results"
    results.mkdir()
    write_events_file(results / f"{ALGORITHM_ID}-order-events.json", events)
    return results


def _ingest_args(results: Path, url: str) -> list[str]:
    return ["ingest", str(results), "--run-key", "k", "--dag-id", "d", "--algorithm-id", ALGORITHM_ID, "--url", url]


# ------------------------------------------------------------------------------ the audit database


def _read_only_url(db_url: str) -> str:
    """The same migrated database, read-only: a SQLite ``mode=ro`` URI (root writes through a chmod),
    PostgreSQL sessions in read-only transactions."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///file:{url.database}?mode=ro&uri=true"
    options = f"{url.query['options']} -cdefault_transaction_read_only=on"
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


def test_a_read_only_audit_db_is_named_and_exits_3(db_url: str, tmp_path: Path) -> None:
    results = _results(tmp_path)
    line = _named(_cli(*_ingest_args(results, _read_only_url(db_url))), EXIT_ENVIRONMENT, "AuditDatabaseReadOnlyError")
    assert "is read-only" in line and "Fix: give this user write access" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 0444; the mode=ro variant covers root")
def test_a_chmod_read_only_sqlite_file_and_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    url = f"sqlite:///{folder / 'audit.db'}"
    audit_db.upgrade_database(url)
    results = _results(tmp_path)
    (folder / "audit.db").chmod(0o444)
    for extra in folder.glob("audit.db-*"):
        extra.chmod(0o444)
    folder.chmod(0o555)
    try:
        line = _named(_cli(*_ingest_args(results, url)), EXIT_ENVIRONMENT, "AuditDatabaseReadOnlyError")
    finally:
        folder.chmod(0o755)
    assert str(folder / "audit.db") in line


def _sqlite_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    audit_db.upgrade_database(url)
    return url


def test_a_locked_sqlite_db_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db_url = _sqlite_db(tmp_path)
    pragmas = audit_db._sqlite_pragmas

    def short_busy_timeout(dbapi_connection: Any, record: Any) -> None:
        pragmas(dbapi_connection, record)
        dbapi_connection.execute("PRAGMA busy_timeout=100")

    monkeypatch.setattr(audit_db, "_sqlite_pragmas", short_busy_timeout)
    results = _results(tmp_path)
    holder = sqlite3.connect(make_url(db_url).database or "", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert main(_ingest_args(results, db_url)) == EXIT_ENVIRONMENT
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    assert err.startswith("error: AuditDatabaseLockedError: ") and "database is locked" in err
    assert "Fix: wait for the other writer" in err and db_url in err
    # Then the lock is gone and the same command ingests.
    assert main(_ingest_args(results, db_url)) == 0


def test_a_full_sqlite_db_is_named_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # (PostgreSQL's disk cannot be filled from a test; its DiskFull is SQLSTATE 53100, mapped the same.)
    db_url = _sqlite_db(tmp_path)
    path = make_url(db_url).database or ""
    pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]
    pragmas = audit_db._sqlite_pragmas

    def small_disk(dbapi_connection: Any, record: Any) -> None:
        pragmas(dbapi_connection, record)
        dbapi_connection.execute(f"PRAGMA max_page_count={pages + 4}")

    monkeypatch.setattr(audit_db, "_sqlite_pragmas", small_disk)
    results = _results(tmp_path, events=4000)
    assert main(_ingest_args(results, db_url)) == EXIT_ENVIRONMENT
    err = capsys.readouterr().err
    assert err.startswith("error: AuditDatabaseFullError: ") and "database or disk is full" in err
    assert "free disk space" in err
    assert sqlite3.connect(path).execute("SELECT count(*) FROM order_events").fetchone() == (0,)


def test_a_locked_postgres_table_is_named(db_url: str, tmp_path: Path) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's lock_timeout; the SQLite file lock has its own test")
    import sqlalchemy as sa

    url = make_url(db_url)
    locked_url = url.update_query_dict({"options": f"{url.query['options']} -clock_timeout=200"})
    holder = sa.create_engine(db_url)
    try:
        with holder.connect() as conn:
            conn.execute(sa.text("LOCK TABLE rebalance_runs IN ACCESS EXCLUSIVE MODE"))
            done = _cli(*_ingest_args(_results(tmp_path), locked_url.render_as_string(hide_password=False)))
            conn.rollback()
    finally:
        holder.dispose()
    line = _named(done, EXIT_ENVIRONMENT, "AuditDatabaseLockedError")
    assert "lock timeout" in line and "Fix: wait for the other writer" in line


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql+psycopg://lean:hunter2@127.0.0.1:1/audit", "Connection refused"),
        (
            make_url(PG).set(database="no_such_database_18", password="hunter2").render_as_string(False),
            "does not exist",
        ),
        ("postgresql+psycopg://lean:hunter2@no-such-host.invalid:5432/audit", "no-such-host.invalid"),
    ],
    ids=["closed port", "no such database", "unknown host"],
)
@pytest.mark.parametrize("command", ["db", "ingest"])
def test_an_unavailable_postgres_is_named_with_the_password_hidden(
    url: str, says: str, command: str, tmp_path: Path
) -> None:
    args = ["db", "upgrade", "--url", url] if command == "db" else _ingest_args(_results(tmp_path), url)
    line = _named(_cli(*args), EXIT_ENVIRONMENT, "AuditDatabaseUnavailableError")
    assert says in line and "is unavailable" in line and "Fix: start the database server" in line
    assert "hunter2" not in line and "***" in line


def test_the_pipeline_steps_name_an_unavailable_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.pipeline import step_check
    from include.run_folder import RunFolder

    monkeypatch.setenv(audit_db.DB_URL_ENV, "postgresql+psycopg://lean:hunter2@127.0.0.1:1/audit")
    (tmp_path / "d" / "k").mkdir(parents=True)
    with pytest.raises(AuditDatabaseUnavailableError, match=r"lean:\*\*\*@127\.0\.0\.1:1/audit is unavailable"):
        step_check(RunFolder.open(tmp_path / "d" / "k"))
    # The context manager itself: the default URL (the env var) when none is given; other errors pass.
    with pytest.raises(AuditDatabaseUnavailableError, match="Connection refused"), audit_db_errors():
        audit_db.audit_engine()
    with pytest.raises(KeyError), audit_db_errors():
        raise KeyError("not a database failure")


def test_an_uncreatable_sqlite_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(AuditDatabaseUnavailableError, match="cannot create its folder"):
        audit_db.make_engine(f"sqlite:///{tmp_path / 'file' / 'sub' / 'audit.db'}")


# ------------------------------------------------------------------------------ unreadable files

Reader = Callable[[Path], object]
READERS: list[tuple[str, Reader, str, type[Exception]]] = [
    ("snapshot", load_snapshot, "snapshot.json", SnapshotError),
    ("snapshots jsonl", load_snapshots, "snapshots.jsonl", SnapshotError),
    ("intent", load_order_intent, "intent.json", OrderIntentError),
    ("params", load_execution_params, "params.json", ExecutionParamsError),
    ("weights csv", lambda p: file_snapshot(as_of=AS_OF, path=p), "weights.csv", SnapshotError),
    ("weights json", lambda p: file_snapshot(as_of=AS_OF, path=p), "weights.json", SnapshotError),
]


def _make(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "not utf-8":
        path.write_bytes(
            b'{"a": "caf\xe9"}\n' if path.suffix != ".csv" else b"date,symbol,weight\n2021-03-01,CAF\xc9,0.1\n"
        )


UNREADABLE = {
    "fifo": r"is a FIFO \(named pipe\), not a regular file",
    "directory": r"is a directory, not a file",
    "not utf-8": r"not UTF-8 text \(byte offset \d+\)",
    "missing": r"does not exist",
}


@pytest.mark.parametrize("kind", list(UNREADABLE))
@pytest.mark.parametrize(("reader_name", "reader", "name", "contract_error"), READERS, ids=[r[0] for r in READERS])
def test_an_unreadable_input_file_is_named_and_never_blocks(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    reader_name: str,
    reader: Reader,
    name: str,
    contract_error: type[Exception],
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_WEIGHTS_DIRS", str(tmp_path))  # the file provider reads only there
    path = tmp_path / name
    _make(kind, path)
    # A file that cannot be read is an InputFileError (exit 3); one read whose bytes are not UTF-8
    # has bad content, like bad JSON: the contract's own error (exit 1). Either names file and fix.
    expected = contract_error if kind == "not utf-8" else InputFileError
    with _deadline(), pytest.raises(expected, match=UNREADABLE[kind]) as info:
        reader(path)
    assert isinstance(info.value, contract_error)  # still the contract's error, for its callers
    assert isinstance(info.value, InputFileError) == (kind != "not utf-8")
    assert str(path) in str(info.value) and "Fix: " in str(info.value)


def test_the_cli_names_unreadable_files_and_exits_3(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    out = str(tmp_path / "out")
    _named(
        _cli("intent", "--output-dir", out, "--run-key", "k", "--snapshot", str(fifo), timeout=30),
        EXIT_ENVIRONMENT,
        "SnapshotFileError",
    )
    latin = tmp_path / "params.json"
    latin.write_bytes(b'{"fee_bps": 1.0, "x": "\xe9"}')
    line = _named(
        _cli("params", "--output-dir", out, "--run-key", "k", "--from-file", str(latin)),
        EXIT_FAILED,
        "ExecutionParamsError",
    )
    assert "params.json: not UTF-8 text (byte offset 23). Fix: save it as UTF-8" in line
    line = _named(
        _cli("params", "--output-dir", out, "--run-key", "k", "--from-file", str(tmp_path / "nope.json")),
        EXIT_ENVIRONMENT,
        "ExecutionParamsFileError",
    )
    assert "nope.json: does not exist" in line
    line = _named(
        _cli("data", "import-csv", "--csv", str(fifo), "--ticker", "ZZ", "--data-folder", out, timeout=30),
        EXIT_ENVIRONMENT,
        "CsvFileError",
    )
    assert "FIFO" in line
    line = _named(
        _cli("intent", "--output-dir", out, "--run-key", "k", "--snapshot", str(tmp_path)),
        EXIT_ENVIRONMENT,
        "SnapshotFileError",
    )
    assert "is a directory" in line


def test_exit_codes_stay_distinct(tmp_path: Path) -> None:
    """1: a named failure of the inputs or the run; 2: usage; 3: the environment."""
    done = _cli("params", "--output-dir", str(tmp_path), "--run-key", "k", "--min-qty", "-5")
    _named(done, EXIT_FAILED, "ExecutionParamsError")
    done = _cli("params", "--no-such-flag")
    assert done.returncode == EXIT_USAGE and "usage:" in done.stderr
    assert (EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT) == (1, 2, 3)


# ------------------------------------------------------------------------------ the SQL provider


def _weights_db(tmp_path: Path, columns: str = "date TEXT, symbol TEXT, weight REAL") -> str:
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE weights ({columns})")
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url at all", "not a SQLAlchemy URL"),
        ("postgresql+nosuchdriver://lean:hunter2@127.0.0.1/db", "unknown database driver"),
        ("nosuchdb://lean:hunter2@127.0.0.1/db", "unknown database driver"),
        ("postgresql+psycopg://lean:hunter2@127.0.0.1:1/db", "Connection refused"),
    ],
    ids=["unparsable", "unknown driver", "unknown dialect", "closed port"],
)
def test_a_bad_sql_provider_url_is_named_with_the_password_hidden(url: str, says: str) -> None:
    with pytest.raises(SnapshotSourceError, match=says) as info:
        sql_snapshot(as_of=AS_OF, url=url, table="weights")
    assert "hunter2" not in str(info.value) and "Fix: " in str(info.value)


def test_a_sql_provider_table_without_the_weight_column_is_named(tmp_path: Path) -> None:
    url = _weights_db(tmp_path, "date TEXT, symbol TEXT, wt REAL")
    with pytest.raises(
        SnapshotSourceError, match=r"missing column\(s\) \['weight'\]; it has \['date', 'symbol', 'wt'\]"
    ):
        sql_snapshot(as_of=AS_OF, url=url, table="weights")


def test_a_missing_sql_provider_table_names_the_database(tmp_path: Path) -> None:
    url = _weights_db(tmp_path)
    with pytest.raises(SnapshotSourceError, match=r"sql table 'nope' at sqlite:///.*w\.db: the table does not exist"):
        sql_snapshot(as_of=AS_OF, url=url, table="nope")


def test_the_exit_code_table_is_in_the_cli_docstring() -> None:
    import include.cli

    doc = include.cli.__doc__ or ""
    for code in ("0 ``EXIT_OK``", "1 ``EXIT_FAILED``", "2 ``EXIT_USAGE``", "3 ``EXIT_ENVIRONMENT``"):
        assert code in doc
