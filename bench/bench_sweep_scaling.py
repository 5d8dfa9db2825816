"""Scaling of a Lean sweep over Celery workers, and the cost of staging a run through the artifact store.

    PYTHONPATH=. .venv/bin/python bench/bench_sweep_scaling.py [--repeat 3] [--json-out FILE] [--keep]
    PYTHONPATH=. .venv/bin/python bench/bench_sweep_scaling.py --no-sweep      # staging only (no Redis)

1. The same 8-point ``lean_backtest_sweep`` (two walk-forward windows of February 2021 x a 2 x 2 grid)
   with one Celery worker and with two, in one CeleryExecutor stack (``tests/celery_stack.py``: real
   ``airflow celery worker`` processes on this machine's Redis and PostgreSQL, each worker with its own
   scratch folder, the store on a ``file://`` path). A 2-point sweep first warms both workers up; for
   the one-worker sweep the second worker stops consuming (Celery's ``cancel_consumer``), so both
   measurements run beside the same processes. Each sweep's time is its DAG run's, start to end, as
   Airflow records it. The two sweeps differ only in the starting cash (so their run keys differ),
   which costs nothing. Figure: one-worker time / two-worker time (the speedup).
2. The per-run overhead of staging: the six tasks of one ``lean_backtest_range`` run as the DAG runs
   them (``include.pipeline.task_*``), in place (the embedded default: no store) against a ``file://``
   store with each task on a fresh scratch folder, as when every task lands on another worker (each
   downloads the run folder and uploads what it wrote). Best of ``--repeat`` each. Figure: staged /
   in place.

The speedup depends on the CPUs free for the workers (the machine's count is in results.json): on a
2-CPU machine the two workers, the scheduler and Lean share two CPUs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from _figures import emit, figure  # noqa: E402

SWEEP_DAG_ID = "lean_backtest_sweep"
EIGHT_POINTS: dict[str, Any] = {
    "start_date": "2021-02-01",
    "end_date": "2021-02-26",
    "grid": {"top_n": [1, 2], "lookback_days": [5, 10]},
    "walk_forward": {"window_sessions": 10, "step_sessions": 5},
    "rank_by": "Net Profit",
}
WARMUP: dict[str, Any] = {
    "start_date": "2021-03-01",
    "end_date": "2021-03-05",
    "grid": {"top_n": [1, 2]},
    "rank_by": "Net Profit",
}
RANGE_FROM, RANGE_TO = dt.date(2021, 2, 1), dt.date(2021, 2, 26)
SWEEP_TIMEOUT_S = 3600


# ---------------------------------------------------------------------------- 1. one worker against two


def _run_seconds(stack: Any, dag_id: str, run_id: str) -> float:
    (start, end), *_ = stack.query(
        "SELECT start_date, end_date FROM dag_run WHERE dag_id = %s AND run_id = %s", dag_id, run_id
    )
    return float((end - start).total_seconds())


def _sweep(stack: Any, conf: dict[str, Any]) -> float:
    run_id = stack.trigger(SWEEP_DAG_ID, conf)
    state = stack.wait_for_run(SWEEP_DAG_ID, run_id, SWEEP_TIMEOUT_S)
    if state != "success":
        raise SystemExit(f"sweep {conf} ended {state}:\n{stack.logs()}")
    hosts = {ti["hostname"] for ti in stack.task_instances(SWEEP_DAG_ID, run_id)}
    seconds = _run_seconds(stack, SWEEP_DAG_ID, run_id)
    print(f"  sweep of {conf['grid']} on {sorted(hosts)}: {seconds:.1f} s", file=sys.stderr)
    return seconds


@contextmanager
def _only_first_worker(stack: Any) -> Iterator[None]:
    """The other workers stop taking tasks (their processes stay up), then take them again."""
    from celery import Celery

    from tests.celery_stack import WORKER_QUEUES

    app = Celery(broker=stack.env["AIRFLOW__CELERY__BROKER_URL"])
    app.conf.broker_transport_options = {"global_keyprefix": stack.key_prefix}
    others = [f"celery@{worker.name}" for worker in stack.workers[1:]]
    queues = WORKER_QUEUES.split(",")
    try:
        for queue in queues:
            app.control.cancel_consumer(queue, destination=others, reply=True, timeout=10)
        yield
    finally:
        for queue in queues:
            app.control.add_consumer(queue, destination=others, reply=True, timeout=10)
        app.close()


def measure_sweeps(home: Path) -> dict[str, float]:
    from tests.celery_stack import running_celery_stack, services_unreachable

    reason = services_unreachable()
    if reason is not None:
        raise SystemExit(f"the sweep benchmark needs Redis and PostgreSQL: {reason} (--no-sweep skips it)")
    with running_celery_stack(home, workers=2) as stack:
        stack.wait_for_dag(SWEEP_DAG_ID)
        _sweep(stack, WARMUP)
        with _only_first_worker(stack):
            one = _sweep(stack, {**EIGHT_POINTS, "starting_cash": 100_000})
        two = _sweep(stack, {**EIGHT_POINTS, "starting_cash": 100_001})
    return {"one_worker_s": one, "two_workers_s": two}


# ---------------------------------------------------------------------------- 2. staging overhead


@contextmanager
def _env(**values: str | None) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _chain(home: Path, *, store: Path | None) -> float:
    """Seconds for the six tasks of one range run; with ``store``, each task on a fresh scratch folder."""
    from include.artifact_store import ArtifactStore
    from include.pipeline import (
        resolve_run,
        task_check,
        task_ingest,
        task_run_lean,
        task_snapshot,
        task_write_intent,
        task_write_params,
    )
    from include.run_folder import DEFAULT_DATA_FOLDER

    ref, dates = resolve_run(
        dag_id="lean_backtest_range",
        kind="range",
        run_type="manual",
        interval_session=None,
        params={"start_date": RANGE_FROM.isoformat(), "end_date": RANGE_TO.isoformat()},
    )
    scratches = iter(range(100))

    def where() -> ArtifactStore:
        """The store as the next task's worker sees it."""
        if store is None:
            os.environ["LEAN_AIRFLOW_ARTIFACT_ROOT"] = str(home / "artifacts")
        else:
            os.environ["LEAN_AIRFLOW_ARTIFACT_ROOT"] = str(home / f"scratch-{next(scratches)}")
        return ArtifactStore.from_env()

    store_uri = store.as_uri() if store is not None else None
    with _env(LEAN_AIRFLOW_ARTIFACT_STORE=store_uri, LEAN_AIRFLOW_DB_URL=f"sqlite:///{home / 'audit.db'}"):
        started = time.perf_counter()
        uris = task_snapshot(
            ref, dates, provider="trend_rotation", options={}, data_folder=DEFAULT_DATA_FOLDER, store=where()
        )
        run_dir = task_write_intent(uris["run_dir"], store=where())["run_dir"]
        run_dir = task_write_params(run_dir, None, store=where())["run_dir"]
        task_run_lean(run_dir, mode="backtest", parameters={"starting-cash": 100_000}, store=where())
        task_ingest(run_dir, store=where())
        checked, _ = task_check(run_dir, store=where())
        elapsed = time.perf_counter() - started
    if not checked["report_json"].startswith((store or home / "artifacts").resolve().as_uri()):
        raise SystemExit(f"the report is not where it should be: {checked}")
    return elapsed


def measure_staging(home: Path, repeat: int) -> dict[str, float]:
    in_place, staged = [], []
    for attempt in range(repeat):
        # Alternate which goes first, so neither always meets the warmer caches.
        order = [("in_place", None), ("staged", "store")]
        if attempt % 2:
            order.reverse()
        for name, store_name in order:
            run_home = home / f"{name}-{attempt}"
            run_home.mkdir(parents=True)
            seconds = _chain(run_home, store=run_home / store_name if store_name else None)
            (in_place if name == "in_place" else staged).append(seconds)
            print(f"  chain {name}: {seconds:.2f} s", file=sys.stderr)
    return {"in_place_s": min(in_place), "staged_s": min(staged)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="runs of each chain for the staging figure (best counts)")
    parser.add_argument("--no-sweep", action="store_true", help="only the staging overhead (no Celery stack)")
    parser.add_argument("--json-out")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, stores) for debugging")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-sweep-scaling-"))
    try:
        # A first chain pays one-off costs (imports, the audit DB's creation) that belong to neither side.
        _chain(home / "warmup", store=None)
        staging = measure_staging(home / "staging", args.repeat)
        sweeps = None if args.no_sweep else measure_sweeps(home / "celery")
    finally:
        if args.keep:
            print(f"kept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    overhead = staging["staged_s"] - staging["in_place_s"]
    print(
        f"one range run (six tasks, {RANGE_FROM}..{RANGE_TO}): in place {staging['in_place_s']:.2f} s, "
        f"staged through a file:// store {staging['staged_s']:.2f} s: +{overhead:.2f} s per run, "
        f"ratio {staging['staged_s'] / staging['in_place_s']:.2f}"
    )
    figures = [
        figure(
            "one range run staged through a file:// store, every task on another worker",
            staging["staged_s"],
            "s",
            baseline="the same six tasks in place (no store), same run",
            baseline_value=staging["in_place_s"],
            ratio=staging["staged_s"] / staging["in_place_s"],
            target="reported (no target set)",
            met=True,
            note=f"staging overhead {overhead:.2f} s per run",
        )
    ]
    if sweeps is not None:
        speedup = sweeps["one_worker_s"] / sweeps["two_workers_s"]
        print(
            f"8-point sweep: one worker {sweeps['one_worker_s']:.1f} s, two workers {sweeps['two_workers_s']:.1f} s: "
            f"speedup {speedup:.2f} ({os.cpu_count()} CPUs)"
        )
        figures.append(
            figure(
                "8-point lean_backtest_sweep on two Celery workers",
                sweeps["two_workers_s"],
                "s",
                baseline="the same sweep on one worker, same stack",
                baseline_value=sweeps["one_worker_s"],
                ratio=speedup,
                ratio_is="baseline / value (speedup)",
                target="reported (no target set)",
                met=True,
                note=f"{os.cpu_count()} CPUs shared by the workers, the scheduler and Lean",
            )
        )
    emit(
        args.json_out,
        figures=figures,
        sizes={"points": 8, "repeat": args.repeat, "range": f"{RANGE_FROM}..{RANGE_TO}"},
        series={"staging": {k: round(v, 3) for k, v in staging.items()}}
        | ({"sweep": {k: round(v, 3) for k, v in sweeps.items()}} if sweeps else {}),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
