"""The chain, once: snapshot -> write_intent -> write_params -> run_lean -> ingest_events -> consistency_check.

Each step is a plain function of the run folder; the DAG tasks call them one per task (XCom
carries the run folder's path), and :func:`run_chain` calls them in order for the CLI's
``backtest`` and the tests, with a progress callback between steps. Nothing here imports Airflow.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from include.errors import ArtifactPathError, ContractValidationError, SnapshotError
from include.launch.config import LeanJob, Mode
from include.run_folder import RunFolder, RunRef, data_folder
from include.trading_calendar import is_session, previous_session, sessions_between

if TYPE_CHECKING:
    from include.artifact_store import ArtifactStore

log = logging.getLogger(__name__)

TASKS = ("snapshot", "write_intent", "write_params", "run_lean", "ingest_events", "consistency_check")
DagKind = Literal["daily", "range"]
Policy = Literal["fail", "warn"]
DEFAULT_STARTING_CASH = 100_000.0
# How long a Lean run may take before it is stopped (the operator and the CLI both use it).
DEFAULT_ENGINE_TIMEOUT_S = 2 * 3600.0


class RunDateError(SnapshotError):
    """The run's dates cannot be resolved (missing ``as_of``, not a session, bad range)."""

    def __init__(self, problems: list[str]) -> None:
        # Still a SnapshotError (the snapshot step raises it), but the message names the form's dates.
        ContractValidationError.__init__(self, "run dates", problems)


def should_skip_order_build(execution_source: str | None) -> bool:
    """True only when Lean builds the orders ("lean", trimmed, any case).

    Then our Python order build is skipped in the pipeline; it still runs inside the
    consistency check as the independent recomputation.
    """
    return isinstance(execution_source, str) and execution_source.strip().lower() == "lean"


# The seed plan's name (its trade_executor module).
_should_skip_order_build = should_skip_order_build


# ---------------------------------------------------------------------------- which run, which dates


def _parse_date(value: Any, name: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise RunDateError([f"Param {name}={value!r}: expected a date YYYY-MM-DD"]) from None


def resolve_run(
    *,
    dag_id: str,
    kind: DagKind,
    run_type: str,
    interval_session: dt.date | None,
    params: Mapping[str, Any],
    today: dt.date | None = None,
    mode: Mode = "backtest",
) -> tuple[RunRef, list[dt.date]]:
    """The run and its rebalance dates, from the run's data interval or its Params; never its run_id.

    ``interval_session`` is the session of a scheduled or backfill run. A backtest must end before
    ``today`` (New York; default the clock's): Lean ends a backtest yesterday at the latest
    (``QCAlgorithm.SetEndDate``), so a later date would silently not be traded.
    """
    if kind == "range":
        start = _parse_date(params.get("start_date"), "start_date")
        end = _parse_date(params.get("end_date"), "end_date")
        if end < start:
            raise RunDateError([f"Params start_date={start} and end_date={end}: end is before start"])
        _check_backtest_end(end, "end_date", today)
        sessions = sessions_between(start, end)
        if not sessions:
            raise RunDateError([f"no NYSE session between {start} and {end}"])
        return RunRef.for_range(dag_id, start, end), sessions
    if run_type == "manual" or interval_session is None:
        raw = params.get("as_of")
        if raw in (None, ""):
            raise RunDateError(["Param as_of is required for manual runs (the trading day to rebalance)"])
        day = _parse_date(raw, "as_of")
    else:
        day = interval_session
    if not is_session(day):
        raise RunDateError([f"as_of {day.isoformat()} is not an NYSE trading session"])
    if mode == "backtest":
        _check_backtest_end(day, "as_of", today)
    return RunRef.for_date(dag_id, day), [day]


def check_run_form(
    *,
    dag_id: str,
    kind: DagKind,
    run_type: str,
    interval_session: dt.date | None,
    params: Mapping[str, Any],
    today: dt.date | None = None,
    mode: Mode = "backtest",
) -> tuple[RunRef, list[dt.date]]:
    """Every Param of a run's form, checked together before anything is written; the run and its dates.

    The first task calls it, so a form the contracts refuse fails there, before a run folder exists:
    the dates through :func:`resolve_run` (``RunDateError``: end before start, a day that is not a
    session, a backtest ending today or later) and the execution params through their contract
    (``ExecutionParamsError``, what ``write_params`` would refuse later). Both are named errors of a
    form: trying again cannot help.
    """
    from include.contracts.params import EXECUTION_PARAM_FIELDS, parse_execution_params

    resolved = resolve_run(
        dag_id=dag_id,
        kind=kind,
        run_type=run_type,
        interval_session=interval_session,
        params=params,
        today=today,
        mode=mode,
    )
    parse_execution_params({key: params.get(key) for key in EXECUTION_PARAM_FIELDS})
    return resolved


def _check_backtest_end(end: dt.date, param: str, today: dt.date | None) -> None:
    today = today or new_york_today()
    if end >= today:
        raise RunDateError(
            [
                f"Param {param}={end}: a backtest can end on {today - dt.timedelta(days=1)} at the latest "
                "(Lean cuts a backtest's end date to yesterday in New York, QCAlgorithm.SetEndDate)"
            ]
        )


def new_york_today() -> dt.date:
    from include.trading_calendar import NEW_YORK

    return dt.datetime.now(NEW_YORK).date()


def session_of(moment: dt.datetime | None) -> dt.date | None:
    """New York date of an aware instant (a scheduled run's data-interval start: its session's close)."""
    if moment is None:
        return None
    from include.trading_calendar import NEW_YORK

    return moment.astimezone(NEW_YORK).date()


def previous_run_folder(
    ref: RunRef, day: dt.date, *, mode: Mode = "backtest", root: str | os.PathLike[str] | None = None
) -> RunFolder | None:
    """The run whose final account state this run starts from, if it exists.

    Backtests chain day by day: the previous session's run, or a fresh account when that run
    is missing (the first day of a backfill). A live account carries over from the latest
    earlier run, whatever days were skipped in between.
    """
    this = RunFolder.locate(ref, root=root)
    if mode == "live":
        base = this.path.parent
        if not base.exists():
            return None
        daily_keys = (p.name for p in base.iterdir() if p.is_dir() and len(p.name) == 8 and p.name.isdigit())
        earlier = sorted(key for key in daily_keys if key < ref.run_key)
        for key in reversed(earlier):
            folder = RunFolder.locate(RunRef(ref.dag_id, key), root=root)
            if folder.final_state_path.exists():
                return folder
        return None
    prev = previous_session(day)
    if prev is None:
        return None
    folder = RunFolder.locate(RunRef.for_date(ref.dag_id, prev), root=root)
    return folder if folder.final_state_path.exists() else None


# ---------------------------------------------------------------------------- the steps


def step_snapshot(
    ref: RunRef,
    dates: Sequence[dt.date],
    *,
    provider: str,
    options: Mapping[str, Any],
    data_folder: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
) -> RunFolder:
    """One DecisionSnapshot per rebalance date, as JSON lines: ``snapshots_run_<key>.jsonl``.

    The snapshots are taken before the folder is made: a provider error leaves no empty folder.
    """
    from include.audit.parity import update_session_parity
    from include.contracts.snapshot import write_snapshots
    from include.snapshots import take_snapshot

    snapshots = [
        take_snapshot(provider, as_of=day, data_folder=os.fspath(data_folder), options=options) for day in dates
    ]
    folder = RunFolder.create(ref, root=root)
    # A re-run starts a new attempt: what the previous one concluded goes before any input changes,
    # so a re-run that stops early leaves a folder that is visibly incomplete, never an old verdict.
    folder.invalidate_conclusions()
    # ... and the other run of its session must not keep showing a diff against what is now gone.
    update_session_parity(folder)
    write_snapshots(folder.snapshots_path, snapshots)
    return folder


def step_write_intent(folder: RunFolder) -> Path:
    from include.contracts.intent import write_order_intent
    from include.contracts.snapshot import load_snapshots

    snapshots = load_snapshots(folder.inside(folder.snapshots_path))
    return Path(write_order_intent(output_dir=folder.path, run_key=folder.run_key, rebalances=snapshots))


def step_write_params(
    folder: RunFolder, params: Mapping[str, Any] | None, *, previous: RunFolder | None = None
) -> Path:
    """Write the execution params; for a continued account, copy the previous run's final state, with
    the splits and dividends between the two runs' sessions applied as a broker would (live accounts;
    ``include.corporate_actions``, which records what it applied in the copy)."""
    from include.atomic_io import atomic_write_text
    from include.contracts.params import write_execution_params
    from include.corporate_actions import carry_over

    # Every path is checked (and the carried state worked out) before anything is written: a bad one
    # leaves no file behind.
    carried = None
    if previous is not None and previous.final_state_path.exists():
        final_state = previous.inside(previous.final_state_path)
        carried = carry_over(final_state.read_text(encoding="utf-8"), previous=previous, folder=folder)
    path = Path(write_execution_params(output_dir=folder.path, run_id=folder.run_key, params=params))
    if carried is not None:
        # Copied, so the run folder is self-contained and the Docker path can bind it read-only.
        atomic_write_text(folder.initial_state_path, carried)
    else:
        folder.initial_state_path.unlink(missing_ok=True)
    return path


def lean_job(folder: RunFolder, *, mode: Mode, parameters: Mapping[str, Any], **inputs: Any) -> LeanJob:
    """What ``run_lean`` launches for this folder. A live run trades the session of its intent's last date: on the
    machine's clock when that is today, else from that session's start on the local runtime's clock
    (``include.live_session.replay_clock``: a replay of a past session).

    Missing or stale market data fails here (``MarketDataMissingError``, ``include.data_coverage``): the
    first point where the mode, the intent, the starting state and the data folder Lean will read are all
    known, before the run_lean task starts any Lean process or container, under either policy."""
    from include.data_coverage import require_data_coverage

    local_now = None
    if mode == "live":
        from include.live_session import replay_clock

        local_now = replay_clock(folder.load_intent().rebalances[-1].date)
    job = LeanJob(folder=folder, mode=mode, parameters=dict(parameters), local_now=local_now, **inputs)
    require_data_coverage(folder, mode=mode, data_folder=job.data_folder)
    return job


def step_ingest(folder: RunFolder, *, airflow_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Write ``manifest.json`` (hashes of every input and the engine identity), store it, and
    upsert Lean's order events into the audit DB. Re-running inserts nothing twice."""
    from include.audit.db import audit_engine
    from include.audit.db_errors import audit_db_errors
    from include.audit.ingest import ingest_and_record_run

    with audit_db_errors():  # an unavailable, read-only, locked or full DB: a named error
        db = audit_engine()
        try:
            return ingest_and_record_run(db, folder, airflow_ids=airflow_ids).as_dict()
        finally:
            db.dispose()


def step_check(folder: RunFolder, *, policy: Policy = "fail") -> dict[str, Any]:
    """Check the run against its intent and params; saves report.json/.html and the DB rows.

    Under the ``fail`` policy a hard inconsistency raises ``ConsistencyCheckFailed`` (after
    the report is saved); under ``warn`` it is only reported.

    Then the session's backtest-vs-live parity (``include.audit.parity.update_session_parity``): the
    live run's ``parity.json`` is written, replaced or removed. It never fails the task, and it runs
    whatever the check concluded: a failing run's saved report still compares, and a run left
    without a report withdraws the session's earlier diff.
    """
    from include.audit.consistency import check_run_folder
    from include.audit.db import audit_engine
    from include.audit.db_errors import audit_db_errors
    from include.audit.parity import update_session_parity

    try:
        with audit_db_errors():
            db = audit_engine()
            try:
                report = check_run_folder(folder, engine=db, policy=policy)
            finally:
                db.dispose()
    finally:
        parity = update_session_parity(folder)  # never raises, so it masks no error of the check
    return {
        "verdict": report.verdict,
        "report_json": str(folder.report_json_path),
        "report_html": str(folder.report_html_path),
        "failures": len(report.failures),
        "parity": parity.verdict,
        "parity_note": parity.reason,
    }


# ---------------------------------------------------------------------------- the DAG tasks, staged
#
# Each DAG task is one of these: it stages its run folder from the artifact store
# (include.artifact_store; in place by default), runs its step on the local copy, uploads what changed and
# returns store URIs only (XCom never carries a path of the worker that wrote it).


def previous_run_ref(ref: RunRef, day: dt.date, *, mode: Mode = "backtest", store: ArtifactStore) -> RunRef | None:
    """:func:`previous_run_folder`'s run, found in the artifact store (the final state must be there)."""
    if store.in_place:
        found = previous_run_folder(ref, day, mode=mode, root=store.scratch_root)
        return found.ref if found is not None else None

    def has_final_state(candidate: RunRef) -> bool:
        return store.exists(f"{store.run_uri(candidate)}/results/final-state.json")

    if mode == "live":
        keys = [key for key in store.list_dirs(ref.dag_id) if len(key) == 8 and key.isdigit() and key < ref.run_key]
        for key in sorted(keys, reverse=True):
            if has_final_state(RunRef(ref.dag_id, key)):
                return RunRef(ref.dag_id, key)
        return None
    prev = previous_session(day)
    if prev is None:
        return None
    candidate = RunRef.for_date(ref.dag_id, prev)
    return candidate if has_final_state(candidate) else None


@contextmanager
def staged_session_partner(folder: RunFolder, *, store: ArtifactStore) -> Iterator[None]:
    """The other run of ``folder``'s session (daily backtest vs live), staged beside it for the session's
    parity (``include.audit.parity``), and its ``parity.json`` uploaded back."""
    from include.artifact_store import staged_other_run
    from include.audit.parity import session_pair

    try:
        pair = session_pair(folder)
    except ArtifactPathError:
        pair = None
    if pair is None or store.in_place:
        yield
        return
    other = pair[1] if pair[0].ref == folder.ref else pair[0]
    with staged_other_run(folder, other.ref, store=store, upload=True):
        yield


def task_snapshot(
    ref: RunRef,
    dates: Sequence[dt.date],
    *,
    provider: str,
    options: Mapping[str, Any],
    data_folder: str | os.PathLike[str],
    store: ArtifactStore | None = None,
) -> dict[str, str]:
    """The ``snapshot`` task: :func:`step_snapshot` into the run's staged folder."""
    from include.artifact_store import ArtifactStore, run_uris, staged_new_run

    store = store if store is not None else ArtifactStore.from_env()
    with staged_new_run(ref, store=store) as staged, staged_session_partner(staged, store=store):
        folder = step_snapshot(
            ref, dates, provider=provider, options=options, data_folder=data_folder, root=staged.path.parent.parent
        )
    return run_uris(store, folder, snapshots=folder.snapshots_path)


def task_write_intent(run_dir: str, *, store: ArtifactStore | None = None) -> dict[str, str]:
    from include.artifact_store import ArtifactStore, run_uris, staged_run

    store = store if store is not None else ArtifactStore.from_env()
    with staged_run(run_dir, store=store) as folder:
        return run_uris(store, folder, intent=step_write_intent(folder))


def task_write_params(
    run_dir: str,
    execution: Mapping[str, Any] | None,
    *,
    mode: Mode = "backtest",
    continuous: bool = False,
    store: ArtifactStore | None = None,
) -> dict[str, str]:
    """The ``write_params`` task; a continued account's previous run is staged from the store too."""
    from include.artifact_store import ArtifactStore, run_uris, staged_other_run, staged_run

    store = store if store is not None else ArtifactStore.from_env()
    with staged_run(run_dir, store=store) as folder:
        previous_ref = None
        if continuous:
            first_day = folder.load_intent().rebalances[0].date
            previous_ref = previous_run_ref(folder.ref, first_day, mode=mode, store=store)
        if previous_ref is None:
            written = step_write_params(folder, execution)
        else:
            with staged_other_run(folder, previous_ref, store=store) as previous:
                written = step_write_params(folder, execution, previous=previous)
        return run_uris(store, folder, params=written)


@contextmanager
def staged_lean_storage(job: LeanJob, *, store: ArtifactStore | None = None) -> Iterator[Path]:
    """Lean's object store for ``job``: a live deployment's persistent store is staged down from the artifact
    store before Lean runs and uploaded after (a backtest's ``storage/`` is part of its run folder)."""
    from include.artifact_store import ArtifactStore

    store = store if store is not None else (job.folder.store or ArtifactStore.from_env())
    if job.mode != "live":
        yield job.object_store_dir
        return
    with store.staged_deployment_storage(job.folder, job.broker.deployment) as local:
        yield local


def task_run_lean(
    run_dir: str,
    *,
    mode: Mode,
    parameters: Mapping[str, Any],
    launch: Launch | None = None,
    store: ArtifactStore | None = None,
    timeout_s: float = DEFAULT_ENGINE_TIMEOUT_S,
    **inputs: Any,
) -> str:
    """``run_lean`` as the operator's local runtime runs it (the operator adds Docker, brokers and on_kill):
    stage, run Lean in scratch, upload; returns the store URI of ``results/``."""
    from include.artifact_store import ArtifactStore, staged_run

    store = store if store is not None else ArtifactStore.from_env()
    with staged_run(run_dir, store=store) as folder:
        job = lean_job(folder, mode=mode, parameters=parameters, **inputs)
        if launch is None:
            from include.launch.local import run_lean_local

            def launch(job: LeanJob) -> dict[str, str]:
                return run_lean_local(job, timeout_s=timeout_s, on_line=lambda line: log.info("[lean] %s", line))

        with staged_lean_storage(job, store=store):
            launch(job)
        return store.file_uri(folder, folder.results_dir)


def task_ingest(
    run_dir: str, *, airflow_ids: Mapping[str, str] | None = None, store: ArtifactStore | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """The ``ingest_events`` task: (XCom URIs, the ingestion's summary)."""
    from include.artifact_store import ArtifactStore, run_uris, staged_run

    store = store if store is not None else ArtifactStore.from_env()
    with staged_run(run_dir, store=store) as folder:
        summary = step_ingest(folder, airflow_ids=airflow_ids)
        return run_uris(store, folder, manifest=folder.manifest_path), summary


def task_check(
    run_dir: str, *, policy: Policy = "fail", store: ArtifactStore | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """The ``consistency_check`` task: (XCom URIs, :func:`step_check`'s outcome). A failed check still
    uploads its report before the error propagates."""
    from include.artifact_store import ArtifactStore, run_uris, staged_run

    store = store if store is not None else ArtifactStore.from_env()
    with staged_run(run_dir, store=store) as folder, staged_session_partner(folder, store=store):
        checked = step_check(folder, policy=policy)
        uris = run_uris(store, folder, report_json=folder.report_json_path, report_html=folder.report_html_path)
    return uris, checked


# ---------------------------------------------------------------------------- the whole chain


@dataclass(frozen=True)
class ChainRequest:
    """What one run of the chain asks for (the DAG form's fields, or the CLI's flags)."""

    ref: RunRef
    dates: tuple[dt.date, ...]
    mode: Mode = "backtest"
    provider: str = "trend_rotation"
    options: Mapping[str, Any] = field(default_factory=dict)
    execution: Mapping[str, Any] | None = None  # None: the contract's defaults
    starting_cash: float = DEFAULT_STARTING_CASH
    policy: Policy = "fail"
    continue_account: bool = False
    data_folder: Path = field(default_factory=data_folder)
    root: Path | None = None
    # Other LeanJob fields, e.g. a test's own ``algorithm_path``.
    launch_inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ChainResult:
    folder: RunFolder
    outputs: dict[str, Any] = field(default_factory=dict)


Launch = Callable[[LeanJob], dict[str, str]]
Progress = Callable[[str, dict[str, Any]], None]


def run_chain(
    request: ChainRequest,
    *,
    launch: Launch | None = None,
    progress: Progress | None = None,
    until: str | None = None,
    timeout_s: float = DEFAULT_ENGINE_TIMEOUT_S,
) -> ChainResult:
    """The six steps in order, each as its DAG task runs it. ``launch`` runs Lean (default: the
    local runtime); ``progress(step, {"output": ...})`` is called after each step, and
    ``progress("run_lean", {"line": ...})`` for each line the local runtime prints; ``until`` stops
    after the named step (tests prepare a folder with ``until="write_params"``)."""
    if until is not None and until not in TASKS:
        raise ValueError(f"until={until!r}: expected one of {', '.join(TASKS)}")

    def done(step: str, output: Any) -> bool:
        result.outputs[step] = output
        if progress is not None:
            progress(step, {"output": output})
        return step == until

    folder = step_snapshot(
        request.ref,
        request.dates,
        provider=request.provider,
        options=request.options,
        data_folder=request.data_folder,
        root=request.root,
    )
    result = ChainResult(folder=folder)
    if done("snapshot", folder.snapshots_path) or done("write_intent", step_write_intent(folder)):
        return result
    previous = None
    if request.continue_account:
        previous = previous_run_folder(request.ref, request.dates[0], mode=request.mode, root=request.root)
    if done("write_params", step_write_params(folder, request.execution, previous=previous)):
        return result
    job = lean_job(
        folder,
        mode=request.mode,
        parameters={"starting-cash": request.starting_cash},
        data_folder=request.data_folder,
        **request.launch_inputs,
    )
    if launch is None:
        from include.launch.local import run_lean_local

        def on_line(line: str) -> None:
            log.info("[lean] %s", line)
            if progress is not None:
                progress("run_lean", {"line": line})

        def launch(job: LeanJob) -> dict[str, str]:
            return run_lean_local(job, timeout_s=timeout_s, on_line=on_line)

    if done("run_lean", launch(job)) or done("ingest_events", step_ingest(folder)):
        return result
    done("consistency_check", step_check(folder, policy=request.policy))
    return result


__all__ = [
    "DEFAULT_STARTING_CASH",
    "TASKS",
    "ChainRequest",
    "ChainResult",
    "RunDateError",
    "check_run_form",
    "lean_job",
    "previous_run_folder",
    "resolve_run",
    "run_chain",
    "session_of",
    "should_skip_order_build",
    "staged_lean_storage",
    "step_check",
    "step_ingest",
    "step_snapshot",
    "step_write_intent",
    "step_write_params",
    "task_check",
    "task_ingest",
    "task_run_lean",
    "task_snapshot",
    "task_write_intent",
    "task_write_params",
]
