"""Run folders (confinement, run keys) and the pre-Lean pipeline steps."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from include.artifacts import confine, run_dir, run_key_for_date, run_key_for_range
from include.errors import ArtifactPathError
from include.pipeline import (
    RunDateError,
    load_snapshots,
    previous_run_dir,
    resolve_run_dates,
    step_snapshot,
    step_write_intent,
    step_write_params,
)
from include.trading_calendar import sessions_between
from tests.lean_data_factory import write_closes


def test_run_dir_layout_and_confinement(tmp_path: Path) -> None:
    folder = run_dir("lean_backtest_daily", "20240305", root=tmp_path)
    assert folder == tmp_path.resolve() / "lean_backtest_daily" / "20240305"
    assert folder.is_dir()
    for dag_id, key in [("..", "k"), ("a/b", "k"), ("d", "../x"), ("d", "a/b"), ("d", ""), ("d", "x\x00")]:
        with pytest.raises(ArtifactPathError):
            run_dir(dag_id, key, root=tmp_path)


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    os.symlink(outside, root / "evil_dag")
    with pytest.raises(ArtifactPathError, match="outside the artifact root"):
        run_dir("evil_dag", "20240305", root=root)
    assert list(outside.iterdir()) == []
    with pytest.raises(ArtifactPathError):
        confine(root / ".." / "outside", root)


def test_run_keys() -> None:
    assert run_key_for_date(dt.date(2024, 3, 5)) == "20240305"
    assert run_key_for_range(dt.date(2024, 1, 2), dt.date(2024, 3, 28)) == "20240102_20240328"
    with pytest.raises(ArtifactPathError, match="before its start"):
        run_key_for_range(dt.date(2024, 3, 2), dt.date(2024, 1, 2))


def test_resolve_dates_scheduled_manual_and_range() -> None:
    assert resolve_run_dates(
        kind="daily", run_type="scheduled", interval_end_session=dt.date(2024, 3, 5), params={}
    ) == ("20240305", [dt.date(2024, 3, 5)])
    assert resolve_run_dates(
        kind="daily", run_type="backfill", interval_end_session=dt.date(2024, 3, 6), params={"as_of": "2020-01-02"}
    ) == ("20240306", [dt.date(2024, 3, 6)])
    assert resolve_run_dates(
        kind="daily", run_type="manual", interval_end_session=dt.date(2024, 3, 6), params={"as_of": "2024-03-05"}
    ) == ("20240305", [dt.date(2024, 3, 5)])
    key, dates = resolve_run_dates(
        kind="range",
        run_type="manual",
        interval_end_session=None,
        params={"start_date": "2025-12-22", "end_date": "2025-12-31"},
    )
    assert key == "20251222_20251231"
    assert dt.date(2025, 12, 25) not in dates and len(dates) == 7


@pytest.mark.parametrize(
    ("kind", "run_type", "params", "message"),
    [
        ("daily", "manual", {}, "as_of is required"),
        ("daily", "manual", {"as_of": "2024-13-01"}, "expected a date"),
        ("daily", "manual", {"as_of": "2025-12-25"}, "not an NYSE trading session"),
        ("range", "manual", {"start_date": "2024-03-05", "end_date": "2024-03-01"}, "end is before start"),
        ("range", "manual", {"start_date": "2024-03-09", "end_date": "2024-03-10"}, "no NYSE session"),
    ],
)
def test_resolve_dates_errors(kind: str, run_type: str, params: dict[str, str], message: str) -> None:
    with pytest.raises(RunDateError, match=message):
        resolve_run_dates(kind=kind, run_type=run_type, interval_end_session=None, params=params)  # type: ignore[arg-type]


def test_snapshot_intent_params_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = sessions_between(dt.date(2021, 1, 4), dt.date(2021, 2, 26))
    data = tmp_path / "data"
    write_closes(data, {"AAA": {d: 10 + i for i, d in enumerate(sessions)}, "BBB": {d: 50.0 for d in sessions}})
    root = tmp_path / "artifacts"
    days = sessions[-3:]
    snap = step_snapshot(
        dag_id="lean_backtest_range",
        run_key="k1",
        dates=days,
        provider="trend_rotation",
        options={"top_n": 1, "lookback_days": 5},
        data_folder=data,
        root=root,
    )
    assert [s.as_of for s in load_snapshots(snap["snapshots_path"])] == days
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(root))
    intent = step_write_intent(run_dir=snap["run_dir"], run_key="k1", snapshots_path=snap["snapshots_path"])
    raw = json.loads(Path(intent["intent_path"]).read_text())
    assert [r["date"] for r in raw["rebalances"]] == [d.isoformat() for d in days]
    params = step_write_params(run_dir=snap["run_dir"], run_key="k1", params={"lot_size": 5, "fee_bps": None})
    assert json.loads(Path(params["params_path"]).read_text())["lot_size"] == 5
    assert "initial_state_path" not in params
    # A continuous account copies the previous run's final state into its own folder.
    prev = run_dir("lean_backtest_daily", "20210225", root=root)
    (prev / "results").mkdir()
    (prev / "results" / "final-state.json").write_text('{"cash": 5.0, "holdings": {}}')
    assert previous_run_dir("lean_backtest_daily", dt.date(2021, 2, 26), root=root) == str(prev)
    assert previous_run_dir("lean_backtest_daily", dt.date(2021, 2, 25), root=root) is None
    chained = step_write_params(run_dir=snap["run_dir"], run_key="k1", params={}, previous_run_dir=str(prev))
    assert Path(chained["initial_state_path"]).read_text() == '{"cash": 5.0, "holdings": {}}'
    with pytest.raises(ArtifactPathError):
        step_write_intent(run_dir=str(tmp_path), run_key="k1", snapshots_path=snap["snapshots_path"])
