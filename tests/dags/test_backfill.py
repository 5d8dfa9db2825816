"""A backfill through Airflow's real machinery (``airflow backfill create`` executed by the
scheduler of ``airflow standalone``) replays 20 trading days of ``lean_backtest_daily`` as one
continuous account, ending with the same holdings as one ``lean_backtest_range`` run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.airflow_stack import running_stack
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

FROM, TO = "2021-02-01", "2021-03-02"  # 20 sessions: Feb 2021 (19, Presidents' Day off) + Mar 1
SESSIONS = 20


def test_backfill_matches_one_range_run(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    env = {
        "LEAN_AIRFLOW_ARTIFACT_ROOT": str(root),
        "LEAN_AIRFLOW_DB_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        "LEAN_AIRFLOW_RUNTIME": "local",
    }
    # The scheduler starts after the backfill is created: SQLite has a single writer.
    with running_stack(tmp_path / "airflow", dags_folder=REPO_ROOT / "dags", extra_env=env, scheduler=False) as stack:
        stack.wait_for_dag("lean_backtest_daily")
        stack.cli("dags", "unpause", "lean_backtest_daily")
        created = stack.cli(
            "backfill",
            "create",
            "--dag-id",
            "lean_backtest_daily",
            "--from-date",
            FROM,
            "--to-date",
            TO,
            "--reprocess-behavior",
            "failed",
            "--max-active-runs",
            "1",
        )
        assert "Created backfill" in created.stdout + created.stderr
        stack.start_scheduler()
        deadline = time.monotonic() + 1500
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            stack.assert_alive()
            states = stack.dag_run_states("lean_backtest_daily")
            if len(states) == SESSIONS and all(s in ("success", "failed") for s in states.values()):
                break
            time.sleep(5)
        assert len(states) == SESSIONS, states
        assert set(states.values()) == {"success"}, states
        ranged = stack.cli(
            "dags",
            "test",
            "lean_backtest_range",
            "-c",
            json.dumps({"start_date": FROM, "end_date": "2021-03-01"}),
            timeout=900,
        )
        assert ranged.returncode == 0, ranged.stdout[-3000:]

    daily_runs = sorted((root / "lean_backtest_daily").iterdir())
    assert daily_runs[0].name == "20210201" and len(daily_runs) == SESSIONS
    backfilled = json.loads((daily_runs[-1] / "results" / "final-state.json").read_text())
    ranged_path = root / "lean_backtest_range" / "20210201_20210301" / "results" / "final-state.json"
    ranged_state = json.loads(ranged_path.read_text())
    assert {s: h["quantity"] for s, h in backfilled["holdings"].items() if h["quantity"]} == {
        s: h["quantity"] for s, h in ranged_state["holdings"].items() if h["quantity"]
    }
    assert backfilled["cash"] == pytest.approx(ranged_state["cash"], rel=1e-9, abs=1e-6)
