"""A parameter sweep of Lean backtests: the form's grid and walk-forward windows expanded into points,
one complete chain per point, and the comparison of their Lean statistics.

* **Points.** The form names a date range, a ``grid`` (name -> values; the names are the execution
  params, ``top_n`` and ``lookback_days``) and optional ``walk_forward`` windows (``window_sessions``
  trading sessions each, one every ``step_sessions``). The points are the product windows x grid, in a
  fixed order (windows by date, then the grid's names sorted, each name's values in the form's order),
  so the same form always gives the same points.
* **Runs.** Each point is a run of its own: dag ``lean_backtest_sweep``, run key
  ``<start>_<end>_<sweep hash>_p<NN>`` (the point's dates, 8 hex digits of the sweep's hash, its index),
  never Airflow's run_id, so triggering the same sweep again rewrites the same folders. A point runs the
  steps of ``include.pipeline`` with the form's values overridden by its own (:func:`point_params`): a
  value the contracts refuse (``fee_bps=-1``) fails that point alone, at its first task, as the same value
  would fail a ``lean_backtest_range`` run.
* **Comparison.** ``comparison.json`` and ``comparison.html`` under ``<dag>/_sweeps/<sweep hash>/``: every
  point's Lean statistics (read from its run folder by ``include.reporting.run_view``), ranked by one of
  them; a failed point is listed and marked, never dropped.

Nothing here imports Airflow.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from include.contracts.sweep import (
    DEFAULT_RANK_BY,
    ComparisonRow,
    SweepComparison,
    SweepForm,
    SweepPlan,
    SweepPoint,
)
from include.errors import ArtifactPathError, ContractValidationError
from include.run_folder import RunFolder, RunRef, artifact_root, check_dag_id, confine

if TYPE_CHECKING:
    from include.artifact_store import ArtifactStore

SWEEP_DAG_ID: Final = "lean_backtest_sweep"
# Under the sweep DAG's folder; not a run key (a run key starts with a letter or digit), so the runs
# list never takes it for a run.
SWEEPS_DIR: Final = "_sweeps"
PLAN_FILE: Final = "plan.json"
COMPARISON_JSON: Final = "comparison.json"
COMPARISON_HTML: Final = "comparison.html"
# More points than this is a typo in the grid (or a job for another tool): refused before anything runs.
MAX_POINTS: Final = 256
STRATEGY_GRID_NAMES: Final = ("top_n", "lookback_days")
# The form's own fields; every other Param of the form is a value shared by the points (their base).
SWEEP_FIELDS: Final = ("start_date", "end_date", "grid", "walk_forward", "rank_by")
# Base values that change how a point is run or judged, not what it computes: not part of the hash, so
# switching the runtime or the policy reruns the same points into the same folders.
UNHASHED_BASE_FIELDS: Final = ("runtime", "consistency_policy")
# The statistics where a lower value ranks first; every other one ranks the highest value first.
LOWER_IS_BETTER: Final = frozenset(
    {"Drawdown", "Total Fees", "Annual Standard Deviation", "Annual Variance", "Tracking Error", "Loss Rate"}
)
# The chain of one point, in order (the tasks of the sweep's mapped task group).
POINT_TASKS: Final = ("snapshot", "write_intent", "write_params", "run_lean", "ingest_events", "consistency_check")


class SweepFormError(ContractValidationError):
    """The sweep's form is refused (dates, grid, walk-forward windows, ranking statistic)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("sweep form", problems)


class SweepGridError(SweepFormError):
    """A grid entry is refused: an unknown name, not a list, an empty list, a repeated or mistyped value."""


class WalkForwardError(SweepFormError):
    """The walk-forward windows cannot be made from the range (bad sizes, a window longer than the range)."""


class SweepTooLargeError(SweepFormError):
    """The grid and windows expand into more than ``MAX_POINTS`` points."""


class SweepPlanError(ContractValidationError):
    """A sweep's ``plan.json`` or ``comparison.json`` cannot be read or breaks its contract."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("sweep file", problems)


# ---------------------------------------------------------------------------- the form


def grid_names() -> tuple[str, ...]:
    """The names a grid may sweep: every execution param, then ``top_n`` and ``lookback_days``."""
    from include.contracts.params import EXECUTION_PARAM_FIELDS

    return (*EXECUTION_PARAM_FIELDS, *STRATEGY_GRID_NAMES)


def rankable_statistics() -> tuple[str, ...]:
    """Lean's summary statistics that are numbers (``Lowest Capacity Asset`` is a symbol)."""
    from include.lean_local.statistics import SUMMARY_KEYS

    return tuple(name for name in SUMMARY_KEYS if name != "Lowest Capacity Asset")


def _json_object(value: Any, name: str, error: type[SweepFormError]) -> Any:
    """A JSON object typed into the form as text is accepted as its parsed value."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise error([f"{name}={value!r}: not JSON ({exc.msg} at character {exc.pos})"]) from None
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _check_grid_value(name: str, value: Any) -> None:
    if name in STRATEGY_GRID_NAMES:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SweepGridError([f"grid[{name!r}] value {value!r}: expected a whole number >= 1"])
        return
    # An execution param: its contract checks the value at the point's first task (a refused value fails
    # that point alone); here only that it is a JSON value at all.
    scalar = value is None or isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value))
    if not scalar and not isinstance(value, dict):
        raise SweepGridError([f"grid[{name!r}] value {value!r}: expected a number, a string, true/false or an object"])
    if isinstance(value, dict):
        try:
            _canonical(value)
        except (TypeError, ValueError):
            raise SweepGridError([f"grid[{name!r}] value {value!r}: not a JSON object of finite values"]) from None


def parse_grid(raw: Any) -> dict[str, tuple[Any, ...]]:
    """The grid of the form (a JSON object, or its text): name -> its values, in the form's order."""
    raw = _json_object(raw, "grid", SweepGridError)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SweepGridError([f"grid={raw!r}: expected a JSON object of name -> list of values"])
    allowed = grid_names()
    grid: dict[str, tuple[Any, ...]] = {}
    for name, values in raw.items():
        if name not in allowed:
            raise SweepGridError([f"grid key {name!r}: not a sweepable name (allowed: {', '.join(allowed)})"])
        if not isinstance(values, list | tuple) or not values:
            raise SweepGridError([f"grid[{name!r}]={values!r}: expected a non-empty list of values"])
        seen: set[str] = set()
        for value in values:
            _check_grid_value(name, value)
            # 1 and 1.0 are one value to a contract: one point, not two.
            number = isinstance(value, int | float) and not isinstance(value, bool)
            key = _canonical(float(value) if number else value)
            if key in seen:
                raise SweepGridError([f"grid[{name!r}] value {value!r}: given twice (each point must differ)"])
            seen.add(key)
        grid[str(name)] = tuple(values)
    return grid


def parse_sweep_form(params: Mapping[str, Any]) -> SweepForm:
    """The sweep's own fields of the form, checked: ``SweepFormError`` (or a subclass) names what to fix."""
    grid = parse_grid(params.get("grid"))
    walk_forward = _json_object(params.get("walk_forward"), "walk_forward", WalkForwardError)
    if walk_forward in ({}, None, ""):
        walk_forward = None
    rank_by = params.get("rank_by") or DEFAULT_RANK_BY
    if rank_by not in rankable_statistics():
        raise SweepFormError(
            [f"rank_by={rank_by!r}: not one of Lean's numeric statistics ({', '.join(rankable_statistics())})"]
        )
    try:
        return SweepForm.model_validate(
            {
                "start_date": params.get("start_date"),
                "end_date": params.get("end_date"),
                "grid": grid,
                "walk_forward": walk_forward,
                "rank_by": rank_by,
            }
        )
    except ValidationError as exc:
        problems = describe(exc)
        if any(p.startswith("walk_forward") for p in problems):
            raise WalkForwardError(problems) from None
        raise SweepFormError(problems) from None


def describe(exc: ValidationError) -> list[str]:
    from include.contracts.validation import describe_validation_error

    return describe_validation_error(exc)


def base_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """The form's values every point shares: all but the sweep's own fields."""
    return {str(key): value for key, value in params.items() if key not in SWEEP_FIELDS}


# ---------------------------------------------------------------------------- the points


def windows(form: SweepForm, sessions: Sequence[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """The point's date ranges: the walk-forward windows of ``sessions`` (whole windows only), else the range."""
    if form.walk_forward is None:
        return [(form.start_date, form.end_date)]
    size, step = form.walk_forward.window_sessions, form.walk_forward.step_sessions
    if size > len(sessions):
        raise WalkForwardError(
            [
                f"walk_forward.window_sessions={size}: longer than the range {form.start_date}..{form.end_date}, "
                f"which has {len(sessions)} sessions"
            ]
        )
    return [(sessions[i], sessions[i + size - 1]) for i in range(0, len(sessions) - size + 1, step)]


def grid_combinations(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid, names sorted, each name's values in the form's order."""
    names = sorted(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def sweep_hash(form: SweepForm, base: Mapping[str, Any]) -> str:
    """sha256 (hex) of what the points compute: the range, grid, windows and the shared values."""
    hashed_base = {key: value for key, value in base.items() if key not in UNHASHED_BASE_FIELDS}
    payload = {"form": form.model_dump(mode="json", exclude={"rank_by"}), "base": hashed_base}
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


def point_run_key(start: dt.date, end: dt.date, short_hash: str, index: int, count: int) -> str:
    """``<start>_<end>_<hash>_p<NN>``; the index has as many digits as the largest (at least 2), so keys sort."""
    width = max(2, len(str(count - 1)))
    return f"{start:%Y%m%d}_{end:%Y%m%d}_{short_hash}_p{index:0{width}d}"


def expand_sweep(params: Mapping[str, Any], *, dag_id: str = SWEEP_DAG_ID, today: dt.date | None = None) -> SweepPlan:
    """The sweep's plan from its form: its hash and its points, in order. Refused forms raise a named
    error (``SweepFormError`` and subclasses, ``RunDateError``) before anything is written."""
    from include.pipeline import resolve_run

    form = parse_sweep_form(params)
    # The range's dates are checked as a range run's are (a session in it, ends before today).
    _, sessions = resolve_run(
        dag_id=dag_id,
        kind="range",
        run_type="manual",
        interval_session=None,
        params={"start_date": form.start_date.isoformat(), "end_date": form.end_date.isoformat()},
        today=today,
    )
    ranges = windows(form, sessions)
    combos = grid_combinations(form.grid)
    count = len(ranges) * len(combos)
    if count > MAX_POINTS:
        raise SweepTooLargeError(
            [
                f"{len(ranges)} window(s) x {len(combos)} grid combination(s) = {count} points, more than "
                f"{MAX_POINTS}: sweep fewer values (or fewer windows) per run"
            ]
        )
    base = base_values(params)
    short = sweep_hash(form, base)[:8]
    points = [
        SweepPoint(
            index=index,
            run_key=point_run_key(start, end, short, index, count),
            start_date=start,
            end_date=end,
            overrides=combo,
        )
        for index, ((start, end), combo) in enumerate(itertools.product(ranges, combos))
    ]
    try:
        return SweepPlan(sweep_hash=short, dag_id=check_dag_id(dag_id), form=form, base=base, points=tuple(points))
    except ValidationError as exc:  # a base value that is not JSON
        raise SweepFormError(describe(exc)) from None


def point_params(params: Mapping[str, Any], point: SweepPoint) -> dict[str, Any]:
    """The form's values as this point runs them: its overrides and its dates over the shared ones."""
    return {
        **base_values(params),
        **point.overrides,
        "start_date": point.start_date.isoformat(),
        "end_date": point.end_date.isoformat(),
    }


def point_ref(point: SweepPoint, dag_id: str = SWEEP_DAG_ID) -> RunRef:
    return RunRef(dag_id, point.run_key)


def check_point(
    params: Mapping[str, Any], point: SweepPoint, *, dag_id: str = SWEEP_DAG_ID, today: dt.date | None = None
) -> tuple[RunRef, list[dt.date], dict[str, Any]]:
    """A point's run, its rebalance dates and its values, checked as a range run's form is
    (``include.pipeline.check_run_form``: its dates, its execution params) before anything is written."""
    from include.pipeline import check_run_form

    values = point_params(params, point)
    _, dates = check_run_form(
        dag_id=dag_id, kind="range", run_type="manual", interval_session=None, params=values, today=today
    )
    return point_ref(point, dag_id), dates, values


def point_execution(values: Mapping[str, Any]) -> dict[str, Any]:
    """The execution params of a point's values (what ``step_write_params`` writes)."""
    from include.contracts.params import EXECUTION_PARAM_FIELDS

    return {key: values.get(key) for key in EXECUTION_PARAM_FIELDS}


# ---------------------------------------------------------------------------- the sweep's folder


def check_sweep_hash(value: object) -> str:
    import re

    from include.contracts.sweep import SWEEP_HASH_PATTERN

    if not isinstance(value, str) or not re.fullmatch(SWEEP_HASH_PATTERN, value):
        raise ArtifactPathError(f"sweep hash {value!r} is not 8 hex digits")
    return value


def sweep_dir(short_hash: str, *, dag_id: str = SWEEP_DAG_ID, root: str | os.PathLike[str] | None = None) -> Path:
    """``<root>/<dag_id>/_sweeps/<hash>`` (not created), confined under the root."""
    base = Path(root).resolve() if root is not None else artifact_root()
    return confine(base / check_dag_id(dag_id) / SWEEPS_DIR / check_sweep_hash(short_hash), base)


def sweep_relative_path(short_hash: str, name: str, *, dag_id: str = SWEEP_DAG_ID) -> str:
    """A sweep file's path relative to the store's root (``lean_backtest_sweep/_sweeps/<hash>/<name>``)."""
    return f"{check_dag_id(dag_id)}/{SWEEPS_DIR}/{check_sweep_hash(short_hash)}/{name}"


def plan_json(plan: SweepPlan) -> str:
    from include.atomic_io import dumps_canonical

    return dumps_canonical(plan.model_dump(mode="json"))


def load_plan(text: str | bytes) -> SweepPlan:
    try:
        return SweepPlan.model_validate_json(text)
    except ValidationError as exc:
        raise SweepPlanError([f"{PLAN_FILE}: {p}" for p in describe(exc)]) from None


def load_comparison(text: str | bytes) -> SweepComparison:
    try:
        return SweepComparison.model_validate_json(text)
    except ValidationError as exc:
        raise SweepPlanError([f"{COMPARISON_JSON}: {p}" for p in describe(exc)]) from None


# ---------------------------------------------------------------------------- the comparison


def parse_statistic(text: str | None) -> float | None:
    """A Lean statistic as printed (``1.234``, ``-12.5%``, ``$1,234.56``, ``0%``) as a number; None when it
    is not one. A percentage stays in percent: only the order matters for the ranking."""
    if text is None:
        return None
    cleaned = text.strip().replace(",", "").replace("$", "").removesuffix("%").strip()
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def failed_point_tasks(states: Mapping[str, Any], *, group_id: str) -> dict[int, str]:
    """Map index -> the first task of a point's chain that did not succeed, from Airflow's task states of the
    run (``{"<group>.<task>_<map index>": state}``, as the task SDK's ``get_task_states`` returns them). A point
    with no state for a task that ran nowhere counts as failed at the first such task."""
    by_point: dict[int, dict[str, str]] = {}
    prefix = f"{group_id}."
    for key, state in states.items():
        if not key.startswith(prefix):
            continue
        task_and_index = key[len(prefix) :]
        task_id, _, map_index = task_and_index.rpartition("_")
        if task_id not in POINT_TASKS or not map_index.isdigit():
            continue
        by_point.setdefault(int(map_index), {})[task_id] = str(getattr(state, "value", state))
    failed: dict[int, str] = {}
    for point_index, tasks in by_point.items():
        for chain_task in POINT_TASKS:
            if tasks.get(chain_task) != "success":
                failed[point_index] = chain_task
                break
    return failed


def point_row(
    point: SweepPoint, folder: RunFolder | None, *, failed_task: str | None = None, problem: str | None = None
) -> ComparisonRow:
    """One point of the comparison: its Lean statistics and its report's verdict, read from its run folder
    by the report page's reader; failed when a task of its chain failed or its run has no current report."""
    from include.reporting.run_view import load_run_view

    common: dict[str, Any] = {
        "index": point.index,
        "run_key": point.run_key,
        "start_date": point.start_date,
        "end_date": point.end_date,
        "overrides": point.overrides,
    }
    if failed_task is not None:
        # Whatever its folder holds is from another attempt: no statistics are shown for it.
        return ComparisonRow(
            **common, status="failed", failed_task=failed_task, problem=problem or f"task {failed_task} failed"
        )
    if folder is None or not folder.path.is_dir():
        return ComparisonRow(**common, status="failed", problem=problem or "no run folder: the point never ran")
    try:
        view = load_run_view(folder)
    except (ContractValidationError, ArtifactPathError, OSError, ValueError) as exc:
        return ComparisonRow(**common, status="failed", problem=f"its run folder cannot be read: {exc}")
    verdict = (view.report or {}).get("verdict") if view.freshness.state == "current" else None
    if verdict is None:
        return ComparisonRow(
            **common,
            status="failed",
            statistics=view.statistics,
            problem=f"no current consistency report ({view.freshness.state})",
        )
    return ComparisonRow(**common, status="ok", verdict=str(verdict), statistics=view.statistics)


def rank_rows(rows: Iterable[ComparisonRow], rank_by: str) -> list[ComparisonRow]:
    """The rows in the point order, each ok row with the ranking statistic's value and its rank (1: best;
    ties share a rank); a failed row, or one whose statistic is not a number, has no rank."""
    higher = rank_by not in LOWER_IS_BETTER
    valued = [
        row.model_copy(
            update={"rank_value": parse_statistic(row.statistics.get(rank_by)) if row.status == "ok" else None}
        )
        for row in rows
    ]
    values = sorted({r.rank_value for r in valued if r.rank_value is not None}, reverse=higher)
    position = {
        value: 1 + sum(1 for r in valued if r.rank_value is not None and _better(r.rank_value, value, higher))
        for value in values
    }
    return [
        row.model_copy(update={"rank": position[row.rank_value]}) if row.rank_value is not None else row
        for row in valued
    ]


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def build_comparison(plan: SweepPlan, rows: Iterable[ComparisonRow]) -> SweepComparison:
    return SweepComparison(
        sweep_hash=plan.sweep_hash,
        dag_id=plan.dag_id,
        start_date=plan.form.start_date,
        end_date=plan.form.end_date,
        rank_by=plan.form.rank_by,
        higher_is_better=plan.form.rank_by not in LOWER_IS_BETTER,
        grid_names=tuple(sorted(plan.form.grid)),
        rows=tuple(rank_rows(rows, plan.form.rank_by)),
    )


def refused_points(params: Mapping[str, Any], plan: SweepPlan) -> dict[int, str]:
    """Index -> why the contracts refuse a point's values (what failed its first task), checked again here:
    the check is a pure function of the form, so the comparison can say why without reading a task log."""
    refused: dict[int, str] = {}
    for point in plan.points:
        try:
            check_point(params, point, dag_id=plan.dag_id)
        except ContractValidationError as exc:
            refused[point.index] = str(exc)
    return refused


def compare_sweep(
    plan: SweepPlan,
    *,
    store: ArtifactStore | None = None,
    failed_tasks: Mapping[int, str] | None = None,
    problems: Mapping[int, str] | None = None,
) -> SweepComparison:
    """The comparison of the sweep's points, each read from its run folder in the artifact store (staged into
    scratch when the store is remote; in place by default). ``failed_tasks``: index -> the first task of the
    point that did not succeed (Airflow's states); ``problems``: index -> why."""
    from include.artifact_store import ArtifactStore, staged_run

    store = store if store is not None else ArtifactStore.from_env()
    failed_tasks = failed_tasks or {}
    problems = problems or {}
    rows: list[ComparisonRow] = []
    for point in plan.points:
        ref = point_ref(point, plan.dag_id)
        failed_task, problem = failed_tasks.get(point.index), problems.get(point.index)
        if failed_task is not None or not store.run_exists(ref):
            rows.append(point_row(point, None, failed_task=failed_task, problem=problem))
            continue
        with staged_run(store.run_uri(ref), store=store) as folder:
            rows.append(point_row(point, folder, problem=problem))
    return build_comparison(plan, rows)


def comparison_json(comparison: SweepComparison) -> str:
    from include.atomic_io import dumps_canonical

    return dumps_canonical(comparison.model_dump(mode="json"))


def write_sweep_files(
    plan: SweepPlan, comparison: SweepComparison | None = None, *, store: ArtifactStore | None = None
) -> dict[str, str]:
    """Write ``plan.json`` (and, given one, ``comparison.json`` and ``comparison.html``) into the sweep's folder
    of the artifact store: atomically on the local disk, then uploaded when the store is remote (one object
    per put). Returns name -> store URI."""
    from include.artifact_store import ArtifactStore
    from include.atomic_io import atomic_write_text
    from include.reporting.sweep_page import render_comparison_page

    store = store if store is not None else ArtifactStore.from_env()
    folder = sweep_dir(plan.sweep_hash, dag_id=plan.dag_id, root=store.scratch_root)
    texts = {PLAN_FILE: plan_json(plan)}
    if comparison is not None:
        texts[COMPARISON_JSON] = comparison_json(comparison)
        texts[COMPARISON_HTML] = render_comparison_page(comparison)
    for name, text in texts.items():
        atomic_write_text(folder / name, text)
    relative_dir = sweep_relative_path(plan.sweep_hash, "", dag_id=plan.dag_id).rstrip("/")
    if not store.in_place:
        store.upload_tree(folder, relative_dir, store.scratch_root)
    return {name: f"{store.uri}/{relative_dir}/{name}" for name in texts}


def read_comparison(
    short_hash: str, *, dag_id: str = SWEEP_DAG_ID, store: ArtifactStore | None = None
) -> SweepComparison:
    """A sweep's ``comparison.json`` from the artifact store, through its contract; ``FileNotFoundError``
    when the sweep has none (yet)."""
    from include.artifact_store import ArtifactStore

    store = store if store is not None else ArtifactStore.from_env()
    uri = f"{store.uri}/{sweep_relative_path(short_hash, COMPARISON_JSON, dag_id=dag_id)}"
    if not store.exists(uri):
        raise FileNotFoundError(uri)
    return load_comparison(store.read_bytes(uri))
