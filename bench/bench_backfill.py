"""Per-run cost of a backfill of ``lean_backtest_daily`` against a backfill of a six-task no-op DAG on
the same NYSE timetable (``NyseTradingDayTimetable``), both through Airflow's real machinery
(``airflow backfill create`` executed by a scheduler with the LocalExecutor, an api-server and a
dag-processor on SQLite; ``tests/airflow_stack.AirflowStack``), in one stack, measured in the same run.

    PYTHONPATH=. .venv/bin/python bench/bench_backfill.py [--days 60] [--json-out FILE] [--keep]

The DAGs folder is a temp copy of ``dags/`` plus the no-op DAG (``bench/_noop_dag.py``: same chain,
timetable, ``depends_on_past`` and retries). Each backfill is created while the scheduler is stopped
(SQLite has one writer; see ``backfill``), then timed from the scheduler's start to the end of its
last run, read from Airflow's metadata DB (polled read-only, so the polling does not compete with
the scheduler for the CPU). A 2-session backfill of a second no-op DAG warms the stack up; then
the no-op DAG, then ``lean_backtest_daily``, over the same sessions.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from _figures import emit, figure  # noqa: E402
from _noop_dag import noop_dag_source  # noqa: E402

from include.trading_calendar import sessions_between  # noqa: E402
from tests.airflow_stack import AirflowStack  # noqa: E402

FROM = "2021-01-04"
LAST_DATA_DAY = dt.date(2021, 12, 31)  # the bundled sample data covers 2019-2021
WARMUP_DAYS = 2
NOOP_DAG_ID = "noop_backfill"
WARMUP_DAG_ID = "noop_warmup"  # its own DAG: a DAG's finished backfill is only marked complete every 30 s
LEAN_DAG_ID = "lean_backtest_daily"


def _sessions(days: int) -> list[dt.date]:
    sessions = sessions_between(dt.date.fromisoformat(FROM), LAST_DATA_DAY)
    if not 1 <= days <= len(sessions):
        raise SystemExit(f"--days must be within 1..{len(sessions)} (sessions from {FROM} to {LAST_DATA_DAY})")
    return list(sessions[:days])


def _to_date(days: int) -> str:
    """The --to-date that makes ``days`` sessions from FROM: the day after the last one, since a
    session's logical date is its close + 30 min."""
    return (_sessions(days)[-1] + dt.timedelta(days=1)).isoformat()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _ts(value: str | None) -> dt.datetime | None:
    """A metadata-DB timestamp as naive UTC (Airflow stores UTC)."""
    if not value:
        return None
    moment = dt.datetime.fromisoformat(value)
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _runs(db: Path, dag_id: str, from_date: str, to_date: str) -> list[dict[str, Any]]:
    """The backfill runs of ``dag_id`` in [from_date, to_date) (state, start, end), read from the
    metadata DB without taking a write lock (it is in WAL mode)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT logical_date, state, start_date, end_date FROM dag_run WHERE dag_id = ?"
            " AND run_type = 'backfill' AND logical_date >= ? AND logical_date < ? ORDER BY logical_date",
            (dag_id, from_date, to_date),
        ).fetchall()
    return [{"logical_date": r[0], "state": r[1], "start": _ts(r[2]), "end": _ts(r[3])} for r in rows]


def backfill(stack: AirflowStack, dag_id: str, from_date: str, to_date: str, runs: int) -> dict[str, float]:
    """Backfill ``runs`` sessions of ``dag_id``: ``airflow backfill create`` while the scheduler is
    stopped, then a scheduler runs it. ``wall_s`` is from the scheduler's start to the end of the
    last run; also the span from the first run's start to the last run's end and the median run."""
    db = stack.home / "airflow.db"
    # SQLite has a single writer: ``backfill create`` racing the scheduler can hit "database is
    # locked", on which Airflow deletes the runs it made -- and a scheduler that had loaded them
    # dies (ObjectDeletedError). So, as tests/dags/test_backfill.py does, create it first.
    stack.cli("dags", "unpause", dag_id)
    t = time.perf_counter()
    stack.cli(
        "backfill",
        "create",
        "--dag-id",
        dag_id,
        "--from-date",
        from_date,
        "--to-date",
        to_date,
        "--reprocess-behavior",
        "failed",
        "--max-active-runs",
        "1",
    )
    create_s = time.perf_counter() - t
    if len(created := _runs(db, dag_id, from_date, to_date)) != runs:
        raise SystemExit(f"{dag_id}: backfill create made {len(created)} runs, expected {runs}")
    started = _utcnow()
    stack.start_scheduler()
    try:
        deadline = time.monotonic() + max(900, 120 * runs)
        while time.monotonic() < deadline:
            stack.assert_alive()
            found = _runs(db, dag_id, from_date, to_date)
            if len(found) == runs and all(r["state"] in ("success", "failed") for r in found):
                states = {r["logical_date"]: r["state"] for r in found}
                if set(states.values()) != {"success"}:
                    raise SystemExit(f"{dag_id}: backfill runs failed: {states}\n{stack.logs()}")
                first = min(r["start"] for r in found)
                last = max(r["end"] for r in found)
                durations = [(r["end"] - r["start"]).total_seconds() for r in found]
                return {
                    # Ends at the last run's end as recorded by Airflow, not at our poll.
                    "wall_s": (last - started).total_seconds(),
                    "span_s": (last - first).total_seconds(),
                    "to_first_start_s": (first - started).total_seconds(),
                    "median_run_s": statistics.median(durations),
                    "create_s": create_s,
                    "runs": len(found),
                }
            time.sleep(0.5)
        done = sum(r["state"] in ("success", "failed") for r in _runs(db, dag_id, from_date, to_date))
        raise SystemExit(f"{dag_id}: backfill did not finish in time: {done} of {runs} runs\n{stack.logs()}")
    finally:
        stack.stop_scheduler()


@contextlib.contextmanager
def bench_stack(home: Path, *, dags_folder: Path, extra_env: dict[str, str]) -> Iterator[AirflowStack]:
    """The api-server and dag-processor running; the scheduler is started per backfill."""
    stack = AirflowStack(home, dags_folder=dags_folder, extra_env=extra_env)
    try:
        stack.start(scheduler=False)
        yield stack
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=60, help="sessions to backfill from 2021-01-04 (default 60)")
    parser.add_argument("--json-out")
    parser.add_argument("--keep", action="store_true", help="keep the temp AIRFLOW_HOME (logs, DBs) for debugging")
    args = parser.parse_args()
    to_date = _to_date(args.days)
    home = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    try:
        dags = home / "dags"
        dags.mkdir()
        for path in (REPO / "dags").glob("*.py"):
            shutil.copy(path, dags / path.name)
        for dag_id in (NOOP_DAG_ID, WARMUP_DAG_ID):
            (dags / f"{dag_id}.py").write_text(noop_dag_source(dag_id))
        env = {
            "LEAN_AIRFLOW_ARTIFACT_ROOT": str(home / "artifacts"),
            "LEAN_AIRFLOW_DB_URL": f"sqlite:///{home / 'audit.db'}",
            "LEAN_AIRFLOW_RUNTIME": "local",
        }
        with bench_stack(home / "airflow", dags_folder=dags, extra_env=env) as stack:
            stack.wait_for_dag(WARMUP_DAG_ID)
            stack.wait_for_dag(NOOP_DAG_ID)
            stack.wait_for_dag(LEAN_DAG_ID)
            # A first backfill pays one-off costs (imports, caches) that belong to neither DAG.
            backfill(stack, WARMUP_DAG_ID, FROM, _to_date(WARMUP_DAYS), WARMUP_DAYS)
            noop = backfill(stack, NOOP_DAG_ID, FROM, to_date, args.days)
            lean = backfill(stack, LEAN_DAG_ID, FROM, to_date, args.days)
    finally:
        if args.keep:
            print(f"kept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    per_lean, per_noop = lean["wall_s"] / args.days, noop["wall_s"] / args.days
    for name, r in ((LEAN_DAG_ID, lean), ("no-op six-task DAG", noop)):
        print(
            f"{name:>20}: {r['wall_s'] / args.days:.2f} s/run ({r['wall_s']:.0f} s for {args.days} runs; "
            f"first run started {r['to_first_start_s']:.1f} s after the scheduler; "
            f"median run {r['median_run_s']:.2f} s)"
        )
    print(f"backfill of {args.days} sessions ({FROM}..{to_date}): ratio {per_lean / per_noop:.2f}")
    emit(
        args.json_out,
        figures=[
            figure(
                f"backfill of lean_backtest_daily, {args.days} sessions, per run",
                per_lean,
                "s/run",
                baseline="backfill of a six-task no-op DAG, same timetable and stack, per run",
                baseline_value=per_noop,
                ratio=per_lean / per_noop,
                target="reported (no target set)",
                met=True,
            )
        ],
        sizes={"days": args.days, "from": FROM, "to": to_date},
        series={
            "days": args.days,
            "lean": {k: round(v, 3) for k, v in lean.items()},
            "noop": {k: round(v, 3) for k, v in noop.items()},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
