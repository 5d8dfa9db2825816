"""Per-run cost of a backfill of ``lean_backtest_daily`` against a backfill of a six-task no-op DAG on
the same NYSE timetable, both through Airflow's real machinery (``airflow backfill create`` executed
by a scheduler, api-server and dag-processor on SQLite), measured in the same run.

    PYTHONPATH=. .venv/bin/python bench/bench_backfill.py [--days 60] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from _figures import emit, figure  # noqa: E402
from _noop_dag import noop_dag_source  # noqa: E402

from include.trading_calendar import sessions_between  # noqa: E402
from tests.airflow_stack import running_stack  # noqa: E402

FROM = "2021-01-04"


def _to_date(days: int) -> str:
    """The --to-date that makes ``days`` sessions from FROM: the day after the last one, since a
    session's logical date is its close + 30 min (the bundled data covers 2019-2021)."""
    last = sessions_between(dt.date.fromisoformat(FROM), dt.date(2021, 12, 31))[days - 1]
    return (last + dt.timedelta(days=1)).isoformat()


def backfill_seconds(stack: object, dag_id: str, to_date: str, runs: int) -> float:
    stack.cli("dags", "unpause", dag_id)  # type: ignore[attr-defined]
    started = time.perf_counter()
    stack.cli(  # type: ignore[attr-defined]
        "backfill",
        "create",
        "--dag-id",
        dag_id,
        "--from-date",
        FROM,
        "--to-date",
        to_date,
        "--reprocess-behavior",
        "failed",
        "--max-active-runs",
        "1",
    )
    deadline = time.monotonic() + 60 * runs
    while time.monotonic() < deadline:
        stack.assert_alive()  # type: ignore[attr-defined]
        states = stack.dag_run_states(dag_id)  # type: ignore[attr-defined]
        if len(states) == runs and all(s in ("success", "failed") for s in states.values()):
            if set(states.values()) != {"success"}:
                raise SystemExit(f"{dag_id}: backfill runs failed: {states}")
            return time.perf_counter() - started
        time.sleep(1)
    raise SystemExit(f"{dag_id}: backfill did not finish in time")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    to_date = _to_date(args.days)
    home = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    try:
        dags = home / "dags"
        dags.mkdir()
        for path in (REPO / "dags").glob("*.py"):
            shutil.copy(path, dags / path.name)
        (dags / "noop_backfill.py").write_text(noop_dag_source("noop_backfill"))
        env = {
            "LEAN_AIRFLOW_ARTIFACT_ROOT": str(home / "artifacts"),
            "LEAN_AIRFLOW_DB_URL": f"sqlite:///{home / 'audit.db'}",
            "LEAN_AIRFLOW_RUNTIME": "local",
        }
        with running_stack(home / "airflow", dags_folder=dags, extra_env=env) as stack:
            stack.wait_for_dag("noop_backfill")
            stack.wait_for_dag("lean_backtest_daily")
            noop_s = backfill_seconds(stack, "noop_backfill", to_date, args.days)
            lean_s = backfill_seconds(stack, "lean_backtest_daily", to_date, args.days)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    per_lean, per_noop = lean_s / args.days, noop_s / args.days
    print(
        f"backfill of {args.days} sessions ({FROM}..{to_date}): lean_backtest_daily {per_lean:.2f} s/run, "
        f"no-op six-task DAG {per_noop:.2f} s/run; ratio {per_lean / per_noop:.2f}"
    )
    emit(
        args.json_out,
        figures=[
            figure(
                f"backfill of lean_backtest_daily, {args.days} sessions, per run",
                per_lean,
                "s/run",
                baseline="backfill of a six-task no-op DAG, same timetable, per run",
                baseline_value=per_noop,
                ratio=per_lean / per_noop,
                target="reported (no target set)",
                met=True,
            )
        ],
        sizes={"days": args.days, "from": FROM, "to": to_date},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
