"""``include.sweep``: the form's grid and walk-forward windows expanded into points (named errors for a bad
form, deterministic hashes and run keys), the point's values, the comparison and its files. Property tests
(hypothesis) for the expansion."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from include.contracts.sweep import ComparisonRow, SweepComparison, SweepPoint
from include.errors import ExecutionParamsError
from include.pipeline import RunDateError
from include.run_folder import RUN_KEY_PATTERN
from include.sweep import (
    COMPARISON_HTML,
    COMPARISON_JSON,
    MAX_POINTS,
    PLAN_FILE,
    SweepFormError,
    SweepGridError,
    SweepPlanError,
    SweepTooLargeError,
    WalkForwardError,
    build_comparison,
    check_point,
    compare_sweep,
    comparison_json,
    expand_sweep,
    failed_point_tasks,
    grid_combinations,
    load_comparison,
    parse_statistic,
    point_execution,
    point_params,
    rank_rows,
    read_comparison,
    sweep_dir,
    write_sweep_files,
)
from include.trading_calendar import sessions_between

FEB = {"start_date": "2021-02-01", "end_date": "2021-02-26"}  # 19 sessions (Presidents' Day is closed)
BASE = {"top_n": 3, "lookback_days": 20, "universe": [], "runtime": "local", "consistency_policy": "fail"}


def _form(**fields: Any) -> dict[str, Any]:
    return {**BASE, **FEB, **fields}


# ---------------------------------------------------------------------------- the form's named errors


@pytest.mark.parametrize(
    ("grid", "error", "words"),
    [
        ({"fees": [1.0]}, SweepGridError, "grid key 'fees': not a sweepable name"),
        ({"top_n": 3}, SweepGridError, "grid['top_n']=3: expected a non-empty list"),
        ({"top_n": []}, SweepGridError, "grid['top_n']=[]: expected a non-empty list"),
        ({"top_n": [2, 0]}, SweepGridError, "grid['top_n'] value 0: expected a whole number >= 1"),
        ({"lookback_days": [True]}, SweepGridError, "grid['lookback_days'] value True: expected a whole number"),
        ({"lookback_days": [2.5]}, SweepGridError, "grid['lookback_days'] value 2.5: expected a whole number"),
        ({"fee_bps": [1, 1.0]}, SweepGridError, "grid['fee_bps'] value 1.0: given twice"),
        ({"fee_bps": [[1, 2]]}, SweepGridError, "grid['fee_bps'] value [1, 2]: expected a number"),
        ([1, 2], SweepGridError, "grid=[1, 2]: expected a JSON object"),
        ('{"top_n": [1,', SweepGridError, "grid='{\"top_n\": [1,': not JSON"),
    ],
)
def test_a_bad_grid_is_a_named_error_naming_key_and_value(grid: Any, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as caught:
        expand_sweep(_form(grid=grid))
    assert words in str(caught.value)
    assert isinstance(caught.value, SweepFormError)


def test_a_grid_typed_as_json_text_is_the_same_grid() -> None:
    as_text = expand_sweep(_form(grid='{"top_n": [1, 2], "fee_bps": [2.0]}'))
    as_object = expand_sweep(_form(grid={"top_n": [1, 2], "fee_bps": [2.0]}))
    assert as_text == as_object


def test_other_bad_forms_are_named() -> None:
    with pytest.raises(SweepFormError, match="rank_by='Sharpe': not one of Lean's numeric statistics"):
        expand_sweep(_form(rank_by="Sharpe"))
    with pytest.raises(SweepFormError, match="end_date 2021-02-01 is before start_date 2021-02-26"):
        expand_sweep(_form(start_date="2021-02-26", end_date="2021-02-01"))
    with pytest.raises(WalkForwardError, match=r"window_sessions=20: longer than the range .* which has 19 sessions"):
        expand_sweep(_form(walk_forward={"window_sessions": 20, "step_sessions": 5}))
    with pytest.raises(WalkForwardError, match=r"walk_forward\.step_sessions=0"):
        expand_sweep(_form(walk_forward={"window_sessions": 5, "step_sessions": 0}))
    with pytest.raises(WalkForwardError, match=r"walk_forward\.extra"):
        expand_sweep(_form(walk_forward={"window_sessions": 5, "step_sessions": 1, "extra": 1}))
    # The range's dates are a range run's: a backtest cannot end today.
    with pytest.raises(RunDateError, match="end_date"):
        expand_sweep(_form(end_date="2021-03-01"), today=dt.date(2021, 3, 1))


def test_too_many_points_is_a_named_error_before_anything_is_made() -> None:
    grid = {"fee_bps": [float(v) for v in range(17)], "top_n": list(range(1, 17))}  # 272 points
    with pytest.raises(
        SweepTooLargeError, match=f"1 window\\(s\\) x 272 grid combination\\(s\\) = 272 points, more than {MAX_POINTS}"
    ):
        expand_sweep(_form(grid=grid))
    assert (
        len(expand_sweep(_form(grid={"fee_bps": [float(v) for v in range(16)], "top_n": list(range(1, 17))})).points)
        == 256
    )


# ---------------------------------------------------------------------------- points, hashes, run keys


def test_points_are_windows_times_grid_in_a_fixed_order() -> None:
    plan = expand_sweep(
        _form(grid={"top_n": [1, 2], "fee_bps": [1.0, 2.0]}, walk_forward={"window_sessions": 10, "step_sessions": 5})
    )
    assert len(plan.points) == 8
    first, last = plan.points[0], plan.points[-1]
    assert (first.start_date, first.end_date) == (dt.date(2021, 2, 1), dt.date(2021, 2, 12))
    assert (last.start_date, last.end_date) == (dt.date(2021, 2, 8), dt.date(2021, 2, 22))
    # names sorted (fee_bps before top_n), values in the form's order
    assert [p.overrides for p in plan.points[:4]] == [
        {"fee_bps": 1.0, "top_n": 1},
        {"fee_bps": 1.0, "top_n": 2},
        {"fee_bps": 2.0, "top_n": 1},
        {"fee_bps": 2.0, "top_n": 2},
    ]
    assert first.run_key == f"20210201_20210212_{plan.sweep_hash}_p00"
    assert last.run_key == f"20210208_20210222_{plan.sweep_hash}_p07"


def test_the_hash_is_what_the_points_compute() -> None:
    plan = expand_sweep(_form(grid={"top_n": [1, 2]}))
    assert expand_sweep(_form(grid={"top_n": [1, 2]})).sweep_hash == plan.sweep_hash
    # How the runs are run or ranked does not change what they compute: same hash, same folders.
    same = _form(grid={"top_n": [1, 2]}, rank_by="Drawdown", runtime="docker", consistency_policy="warn")
    assert expand_sweep(same).sweep_hash == plan.sweep_hash
    for changed in (
        _form(grid={"top_n": [2, 1]}),
        _form(grid={"top_n": [1, 2]}, lookback_days=10),
        _form(grid={"top_n": [1, 2]}, end_date="2021-02-25"),
        _form(grid={"top_n": [1, 2]}, walk_forward={"window_sessions": 19, "step_sessions": 1}),
    ):
        assert expand_sweep(changed).sweep_hash != plan.sweep_hash, changed


def test_a_points_values_override_the_forms() -> None:
    plan = expand_sweep(
        _form(grid={"top_n": [1], "fee_bps": [7.5]}, walk_forward={"window_sessions": 5, "step_sessions": 5})
    )
    point = plan.points[1]
    values = point_params(_form(grid={"top_n": [1]}, walk_forward={}), point)
    assert values["top_n"] == 1 and values["fee_bps"] == 7.5 and values["lookback_days"] == 20
    assert (values["start_date"], values["end_date"]) == ("2021-02-08", "2021-02-12")
    assert "grid" not in values and "walk_forward" not in values
    assert point_execution(values)["fee_bps"] == 7.5


def test_a_value_the_params_contract_refuses_fails_its_point_only() -> None:
    params = _form(grid={"fee_bps": [1.0, -1.0]})
    plan = expand_sweep(params)  # the sweep itself is accepted
    ref, dates, _ = check_point(params, plan.points[0])
    assert ref.run_key == plan.points[0].run_key and len(dates) == 19
    with pytest.raises(ExecutionParamsError, match=r"fee_bps=-1\.0"):
        check_point(params, plan.points[1])


# ---------------------------------------------------------------------------- property tests

GRID_VALUES = {
    "top_n": st.integers(min_value=1, max_value=50),
    "lookback_days": st.integers(min_value=1, max_value=250),
    "fee_bps": st.floats(min_value=0, max_value=100, allow_nan=False),
    "min_qty": st.integers(min_value=1, max_value=1000),
    "cash_buffer_ratio": st.floats(min_value=0, max_value=0.99, allow_nan=False),
}


@st.composite
def grids(draw: st.DrawFn) -> dict[str, list[Any]]:
    names = draw(st.lists(st.sampled_from(sorted(GRID_VALUES)), unique=True, max_size=3))
    return {
        name: draw(st.lists(GRID_VALUES[name], min_size=1, max_size=4, unique_by=lambda v: float(v))) for name in names
    }


walk_forwards = st.none() | st.builds(
    lambda w, s: {"window_sessions": w, "step_sessions": s},
    st.integers(min_value=1, max_value=19),
    st.integers(min_value=1, max_value=25),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grid=grids(), walk_forward=walk_forwards)
def test_expansion_properties(grid: dict[str, list[Any]], walk_forward: dict[str, int] | None) -> None:
    form = _form(grid=grid, walk_forward=walk_forward)
    sessions = sessions_between(dt.date(2021, 2, 1), dt.date(2021, 2, 26))
    combos = 1
    for values in grid.values():
        combos *= len(values)
    windows = (
        1
        if walk_forward is None
        else len(range(0, 19 - walk_forward["window_sessions"] + 1, walk_forward["step_sessions"]))
    )
    if windows * combos > MAX_POINTS:
        with pytest.raises(SweepTooLargeError):
            expand_sweep(form)
        return
    plan = expand_sweep(form)
    points = plan.points
    # the count: windows x combinations
    assert len(points) == windows * combos
    assert [p.index for p in points] == list(range(len(points)))
    # deterministic, and the order of the grid's names in the form does not matter
    assert expand_sweep(form) == plan
    assert expand_sweep(_form(grid=dict(reversed(list(grid.items()))), walk_forward=walk_forward)) == plan
    # run keys: unique, safe path components, sortable in point order, carrying the hash
    keys = [p.run_key for p in points]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(RUN_KEY_PATTERN, k) and f"_{plan.sweep_hash}_p" in k for k in keys)
    assert sorted(keys, key=lambda k: k.rsplit("_p", 1)[1]) == keys
    # every combination of every window, exactly once
    seen = {(p.start_date, p.end_date, json.dumps(p.overrides, sort_keys=True)) for p in points}
    assert len(seen) == len(points)
    assert {json.dumps(p.overrides, sort_keys=True) for p in points} == {
        json.dumps(c, sort_keys=True) for c in grid_combinations(grid)
    }
    # windows: whole windows of the range's sessions, one every step
    starts = sorted({p.start_date for p in points})
    for point in points:
        inside = sessions_between(point.start_date, point.end_date)
        assert inside[0] == point.start_date and inside[-1] == point.end_date
        assert len(inside) == (walk_forward["window_sessions"] if walk_forward else 19)
    if walk_forward:
        assert [sessions.index(s) for s in starts] == list(
            range(0, sessions.index(starts[-1]) + 1, walk_forward["step_sessions"])
        )


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["top_n", "lookback_days"]), st.lists(st.integers(1, 9), min_size=1, max_size=20), min_size=2
    )
)
def test_too_many_points_iff_over_the_cap(grid: dict[str, list[int]]) -> None:
    unique = {name: list(dict.fromkeys(values)) for name, values in grid.items()}
    count = len(list(itertools.product(*unique.values())))
    plan_or_error: Any
    try:
        plan_or_error = expand_sweep(_form(grid=unique, walk_forward={"window_sessions": 1, "step_sessions": 1}))
    except SweepTooLargeError:
        plan_or_error = None
    assert (plan_or_error is None) == (19 * count > MAX_POINTS)


# ---------------------------------------------------------------------------- the comparison


def _row(index: int, status: str = "ok", **statistics: str) -> ComparisonRow:
    return ComparisonRow(
        index=index,
        run_key=f"20210201_20210226_abcdef01_p{index:02d}",
        start_date=dt.date(2021, 2, 1),
        end_date=dt.date(2021, 2, 26),
        overrides={"top_n": index + 1},
        status=status,  # type: ignore[arg-type]
        statistics=statistics,
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.234", 1.234),
        ("-12.5%", -12.5),
        ("$1,234.56", 1234.56),
        ("0%", 0.0),
        ("", None),
        ("ZZSA R735", None),
        (None, None),
    ],
)
def test_lean_statistics_as_numbers(text: str | None, value: float | None) -> None:
    assert parse_statistic(text) == value


def test_ranking_best_first_ties_share_failed_and_missing_unranked() -> None:
    rows = [
        _row(0, **{"Sharpe Ratio": "0.5", "Drawdown": "3.1%"}),
        _row(1, **{"Sharpe Ratio": "1.5", "Drawdown": "9.0%"}),
        _row(2, "failed"),
        _row(3, **{"Sharpe Ratio": "0.5", "Drawdown": "1.0%"}),
        _row(4, **{"Drawdown": "2%"}),
    ]
    by_sharpe = rank_rows(rows, "Sharpe Ratio")
    assert [r.rank for r in by_sharpe] == [2, 1, None, 2, None]
    # Drawdown: lower is better
    assert [r.rank for r in rank_rows(rows, "Drawdown")] == [3, 4, None, 1, 2]


def test_failed_point_tasks_from_airflow_states() -> None:
    states = {
        "point.snapshot_0": "success",
        "point.write_intent_0": "success",
        "point.write_params_0": "success",
        "point.run_lean_0": "success",
        "point.ingest_events_0": "success",
        "point.consistency_check_0": "success",
        "point.snapshot_1": "success",
        "point.write_intent_1": "success",
        "point.write_params_1": "success",
        "point.run_lean_1": "failed",
        "point.ingest_events_1": "upstream_failed",
        "point.consistency_check_1": "upstream_failed",
        "point.snapshot_12": "failed",
        "plan_sweep": "success",
    }
    assert failed_point_tasks(states, group_id="point") == {1: "run_lean", 12: "snapshot"}


def test_comparison_files_round_trip_and_mark_the_failed(chain_env: Path) -> None:
    params = _form(grid={"top_n": [1, 2]})
    plan = expand_sweep(params)
    # No point ran: each is marked (with the task Airflow says failed, or "never ran"), none dropped.
    comparison = compare_sweep(plan, failed_tasks={1: "run_lean"}, problems={1: "Lean exited with code 1"})
    assert [r.status for r in comparison.rows] == ["failed", "failed"]
    assert comparison.rows[0].problem == "no run folder: the point never ran"
    assert (comparison.rows[1].failed_task, comparison.rows[1].problem) == ("run_lean", "Lean exited with code 1")
    written = write_sweep_files(plan, comparison)
    folder = sweep_dir(plan.sweep_hash, root=chain_env)
    assert set(written) == {PLAN_FILE, COMPARISON_JSON, COMPARISON_HTML}
    assert written[COMPARISON_JSON] == (folder / COMPARISON_JSON).as_uri()
    assert read_comparison(plan.sweep_hash) == comparison
    assert load_comparison(comparison_json(comparison)) == comparison
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # atomic writes leave no temp file
    page = (folder / COMPARISON_HTML).read_text()
    assert page.count('data-status="failed"') == 2 and 'id="sweep-plot"' in page
    with pytest.raises(FileNotFoundError):
        read_comparison("0123abcd")


def test_the_comparison_contract_is_strict_and_versioned() -> None:
    plan = expand_sweep(_form(grid={"top_n": [1]}))
    payload = json.loads(comparison_json(build_comparison(plan, [_row(0, **{"Sharpe Ratio": "1"})])))
    assert payload["schema_version"] == 1 and payload["rows"][0]["rank"] == 1
    with pytest.raises(SweepPlanError, match="unexpected"):
        load_comparison(json.dumps({**payload, "unexpected": 1}))
    with pytest.raises(ValidationError):
        SweepComparison.model_validate({**payload, "schema_version": 2})
    with pytest.raises(ValidationError):
        SweepPoint(index=0, run_key="../x", start_date=dt.date(2021, 2, 1), end_date=dt.date(2021, 2, 1))


def test_the_page_escapes_what_the_form_gave() -> None:
    from include.reporting.sweep_page import render_comparison_page

    plan = expand_sweep(_form(grid={"fee_bps": ["<script>alert(1)</script>"]}))
    row = _row(0, "failed").model_copy(
        update={"overrides": {"fee_bps": "<script>alert(1)</script>"}, "problem": "<b>x"}
    )
    page = render_comparison_page(build_comparison(plan, [row]))
    assert "<script>" not in page and "<b>x" not in page
    assert "&lt;script&gt;" in page
