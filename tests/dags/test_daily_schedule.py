"""The scheduled ``lean_backtest_daily`` run of session D trades D, on both runtimes' config.

Lean cuts a backtest's end date to yesterday in New York at the moment it starts (Lean
``Algorithm/QCAlgorithm.cs`` SetEndDate(DateTime)). The run of D therefore starts after New York
midnight (the timetable), and the local runtime applies the same cut (its clock is set to the run's
start here, through ``local-runtime-now``): D is traded. Started the old way, 30 minutes after D's
close, the same run trades nothing on D, on Lean and on the local runtime alike.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pendulum
import pytest
from airflow.timetables.base import TimeRestriction
from lean_airflow.dag_factory import DAILY_BACKTEST_MINUTES_AFTER_CLOSE
from lean_airflow.timetables import NyseTradingDayTimetable

from include.launch.config import launcher_config_for, write_launcher_config
from include.launch.local import run_local_engine
from include.pipeline import ChainRequest, lean_job, resolve_run, run_chain, session_of
from include.run_folder import RunFolder

SESSION = dt.date(2021, 3, 3)
NEW_YORK = "America/New_York"


def _scheduled_run_of(session: dt.date, minutes_after_close: int) -> tuple[pendulum.DateTime, pendulum.DateTime]:
    """(data interval start, run time) of the timetable's run for ``session``."""
    timetable = NyseTradingDayTimetable(minutes_after_close=minutes_after_close)
    restriction = TimeRestriction(
        earliest=pendulum.datetime(session.year, session.month, session.day, tz="UTC"), latest=None, catchup=True
    )
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info is not None and info.data_interval is not None
    return info.data_interval.start, info.run_after


def _prepare(root: Path, interval_start: pendulum.DateTime) -> RunFolder:
    ref, dates = resolve_run(
        dag_id="lean_backtest_daily",
        kind="daily",
        run_type="scheduled",
        interval_session=session_of(interval_start),
        params={},
    )
    assert dates == [SESSION]
    request = ChainRequest(ref=ref, dates=tuple(dates), options={"top_n": 2, "lookback_days": 10}, root=root)
    return run_chain(request, until="write_params").folder


def _traded_days(folder: RunFolder, started: pendulum.DateTime) -> set[dt.date]:
    """Run the local runtime with its clock at ``started``; the New York dates of its order events."""
    job = lean_job(folder, mode="backtest", parameters={"starting-cash": 100_000})
    config_path = write_launcher_config(job, "local")
    config = json.loads(config_path.read_text())
    config["local-runtime-now"] = started.isoformat()
    config_path.write_text(json.dumps(config))
    assert run_local_engine(config_path, timeout_s=120, on_line=lambda _line: None) == 0
    files = folder.order_event_files()
    events = json.loads(files[0].read_bytes()) if files else []
    return {pendulum.from_timestamp(e["time"]).in_timezone(NEW_YORK).date() for e in events}


@pytest.mark.slow
def test_the_scheduled_daily_backtest_trades_its_session(tmp_path: Path) -> None:
    interval_start, started = _scheduled_run_of(SESSION, DAILY_BACKTEST_MINUTES_AFTER_CLOSE)
    assert session_of(interval_start) == SESSION
    # Lean's rule, as the real engine applies it when the container starts: yesterday >= D.
    assert started.in_timezone(NEW_YORK).date() - dt.timedelta(days=1) >= SESSION
    folder = _prepare(tmp_path / "scheduled", interval_start)
    # Both runtimes get the same intent (ending on D) and the same algorithm, which asks Lean to end on D.
    docker = launcher_config_for(lean_job(folder, mode="backtest", parameters={}), "docker")
    assert docker["parameters"]["execution-intent-path"].endswith(folder.intent_path.name)
    assert folder.load_intent().rebalances[-1].date == SESSION
    assert SESSION in _traded_days(folder, started)


@pytest.mark.slow
def test_started_on_the_session_itself_lean_trades_nothing_that_day(tmp_path: Path) -> None:
    interval_start, started = _scheduled_run_of(SESSION, 30)  # the old schedule: 16:30 New York on D
    assert started.in_timezone(NEW_YORK).date() == SESSION
    folder = _prepare(tmp_path / "same-day", interval_start)
    assert SESSION not in _traded_days(folder, started)
