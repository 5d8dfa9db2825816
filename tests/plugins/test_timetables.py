"""The trading-day timetable: NYSE sessions only, run after the close, backfill-compatible.

A session's run has the data interval [close, run time]: its logical date is the close, so the
session date derives from it, and it runs at the interval's end (which may be the next day).
"""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from lean_airflow.timetables import NyseTradingDayTimetable, session_date_of


def _infos(start: dt.date, end: dt.date, timetable: NyseTradingDayTimetable | None = None) -> list[DagRunInfo]:
    timetable = timetable or NyseTradingDayTimetable()
    restriction = TimeRestriction(
        earliest=pendulum.datetime(start.year, start.month, start.day, tz="UTC"),
        latest=pendulum.datetime(end.year, end.month, end.day, 23, 59, tz="UTC"),
        catchup=True,
    )
    infos: list[DagRunInfo] = []
    last: DataInterval | None = None
    while (info := timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)) is not None:
        assert info.logical_date is not None and info.data_interval is not None
        infos.append(info)
        last = info.data_interval
    return infos


def _runs(start: dt.date, end: dt.date) -> list[pendulum.DateTime]:
    return [info.logical_date for info in _infos(start, end) if info.logical_date is not None]


def test_skips_christmas_and_observed_independence_day() -> None:
    december = [session_date_of(r) for r in _runs(dt.date(2025, 12, 22), dt.date(2025, 12, 31))]
    assert dt.date(2025, 12, 25) not in december
    assert december == [
        dt.date(2025, 12, 22),
        dt.date(2025, 12, 23),
        dt.date(2025, 12, 24),
        dt.date(2025, 12, 26),
        dt.date(2025, 12, 29),
        dt.date(2025, 12, 30),
        dt.date(2025, 12, 31),
    ]
    july = [session_date_of(r) for r in _runs(dt.date(2026, 6, 30), dt.date(2026, 7, 8))]
    assert dt.date(2026, 7, 3) not in july  # Independence Day observed (July 4th is a Saturday)
    assert july == [
        dt.date(2026, 6, 30),
        dt.date(2026, 7, 1),
        dt.date(2026, 7, 2),
        dt.date(2026, 7, 6),
        dt.date(2026, 7, 7),
        dt.date(2026, 7, 8),
    ]


def test_never_schedules_a_weekend() -> None:
    runs = _runs(dt.date(2024, 1, 1), dt.date(2024, 6, 30))
    assert runs and all(session_date_of(r).weekday() < 5 for r in runs)
    assert len(runs) == 124  # NYSE sessions in 2024H1


def test_runs_thirty_minutes_after_the_close_including_half_days() -> None:
    infos = {session_date_of(i.logical_date): i for i in _infos(dt.date(2025, 11, 26), dt.date(2025, 11, 28))}
    full, half = infos[dt.date(2025, 11, 26)], infos[dt.date(2025, 11, 28)]
    assert full.logical_date == pendulum.datetime(2025, 11, 26, 21, tz="UTC")  # the 16:00 ET close
    assert full.run_after == pendulum.datetime(2025, 11, 26, 21, 30, tz="UTC")  # 16:00 ET + 30m
    assert half.logical_date == pendulum.datetime(2025, 11, 28, 18, tz="UTC")  # the 13:00 half-day close
    assert half.run_after == pendulum.datetime(2025, 11, 28, 18, 30, tz="UTC")
    assert full.data_interval == DataInterval(full.logical_date, full.run_after)


def test_a_daily_backtest_runs_after_midnight_so_lean_keeps_its_session() -> None:
    """Lean cuts a backtest's end to yesterday (New York) when it starts: the daily backtest of D
    must start on a later New York date, or D is never traded (QCAlgorithm.SetEndDate)."""
    from lean_airflow.dag_factory import DAILY_BACKTEST_MINUTES_AFTER_CLOSE

    timetable = NyseTradingDayTimetable(minutes_after_close=DAILY_BACKTEST_MINUTES_AFTER_CLOSE)
    infos = _infos(dt.date(2025, 11, 24), dt.date(2025, 12, 1), timetable)
    sessions = [session_date_of(i.logical_date) for i in infos]
    assert sessions == [dt.date(2025, 11, d) for d in (24, 25, 26, 28)] + [dt.date(2025, 12, 1)]
    for session, info in zip(sessions, infos, strict=True):
        started = info.run_after.in_timezone("America/New_York")
        assert started.date() > session  # Lean's "yesterday" at the start is D or later
        assert started.date() - dt.timedelta(days=1) >= session
    # 06:00 ET the next day after a full session, 03:00 after the 13:00 early close of Nov 28.
    by_session = dict(zip(sessions, infos, strict=True))
    assert by_session[dt.date(2025, 11, 26)].run_after == pendulum.datetime(2025, 11, 27, 11, tz="UTC")
    assert by_session[dt.date(2025, 11, 28)].run_after == pendulum.datetime(2025, 11, 29, 8, tz="UTC")


def test_a_backfill_range_selects_sessions_by_their_close() -> None:
    from lean_airflow.dag_factory import DAILY_BACKTEST_MINUTES_AFTER_CLOSE

    timetable = NyseTradingDayTimetable(minutes_after_close=DAILY_BACKTEST_MINUTES_AFTER_CLOSE)
    # What `airflow backfill create --from-date 2021-02-01 --to-date 2021-03-02` asks for.
    restriction = TimeRestriction(
        earliest=pendulum.datetime(2021, 2, 1, tz="UTC"), latest=pendulum.datetime(2021, 3, 2, tz="UTC"), catchup=True
    )
    sessions, last = [], None
    while (info := timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)) is not None:
        assert info.logical_date is not None and info.logical_date >= restriction.earliest
        sessions.append(session_date_of(info.logical_date))
        last = info.data_interval
    assert sessions[0] == dt.date(2021, 2, 1) and sessions[-1] == dt.date(2021, 3, 1)
    assert len(sessions) == 20 and dt.date(2021, 2, 15) not in sessions  # Presidents' Day


def test_interval_is_zero_length_and_serialization_round_trips() -> None:
    timetable = NyseTradingDayTimetable(minutes_after_close=45)
    assert NyseTradingDayTimetable.deserialize(timetable.serialize()) == timetable
    moment = pendulum.datetime(2024, 3, 5, 22, tz="UTC")
    interval = timetable.infer_manual_data_interval(run_after=moment)
    assert interval.start == interval.end == moment
    with pytest.raises(ValueError, match="minutes_after_close"):
        NyseTradingDayTimetable(minutes_after_close=-1)
    with pytest.raises(ValueError, match="minutes_after_close"):
        NyseTradingDayTimetable(minutes_after_close=24 * 60)


def test_without_catchup_missed_sessions_are_not_replayed() -> None:
    timetable = NyseTradingDayTimetable()
    old = pendulum.datetime(2021, 3, 1, 21, 30, tz="UTC")
    info = timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval.exact(old),
        restriction=TimeRestriction(earliest=pendulum.datetime(2019, 1, 1, tz="UTC"), latest=None, catchup=False),
    )
    assert info is not None and info.logical_date is not None
    assert info.run_after >= pendulum.now("UTC")  # the next run still to come; its session may have closed


# ---------------------------------------------------------------------------- the live rebalance: before the close


def _live(minutes: int = 50) -> NyseTradingDayTimetable:
    return NyseTradingDayTimetable(minutes_before_close=minutes)


def _by_session(infos: list[DagRunInfo]) -> dict[dt.date, DagRunInfo]:
    return {session_date_of(i.logical_date): i for i in infos if i.logical_date is not None}


def test_live_runs_fifty_minutes_before_the_close_on_full_and_early_close_days() -> None:
    infos = _by_session(_infos(dt.date(2025, 11, 26), dt.date(2025, 11, 28), _live()))
    assert sorted(infos) == [dt.date(2025, 11, 26), dt.date(2025, 11, 28)]  # Thanksgiving skipped
    full, half = infos[dt.date(2025, 11, 26)], infos[dt.date(2025, 11, 28)]
    assert full.run_after.in_timezone("America/New_York").time() == dt.time(15, 10)
    assert full.run_after == pendulum.datetime(2025, 11, 26, 20, 10, tz="UTC")  # EST: UTC-5
    assert half.run_after.in_timezone("America/New_York").time() == dt.time(12, 10)  # the 13:00 early close
    # The interval is the run instant: the logical date is on D, so the tasks derive D from it.
    assert full.data_interval == DataInterval.exact(full.run_after) and full.logical_date == full.run_after
    christmas_eve = _by_session(_infos(dt.date(2024, 12, 24), dt.date(2024, 12, 26), _live()))
    assert sorted(christmas_eve) == [dt.date(2024, 12, 24), dt.date(2024, 12, 26)]
    assert christmas_eve[dt.date(2024, 12, 24)].run_after == pendulum.datetime(2024, 12, 24, 17, 10, tz="UTC")


def test_live_run_time_follows_new_york_across_both_dst_changes() -> None:
    spring = _by_session(_infos(dt.date(2025, 3, 7), dt.date(2025, 3, 10), _live()))
    assert spring[dt.date(2025, 3, 7)].run_after == pendulum.datetime(2025, 3, 7, 20, 10, tz="UTC")  # EST
    assert spring[dt.date(2025, 3, 10)].run_after == pendulum.datetime(2025, 3, 10, 19, 10, tz="UTC")  # EDT
    autumn = _by_session(_infos(dt.date(2025, 10, 31), dt.date(2025, 11, 3), _live()))
    assert autumn[dt.date(2025, 10, 31)].run_after == pendulum.datetime(2025, 10, 31, 19, 10, tz="UTC")  # EDT
    assert autumn[dt.date(2025, 11, 3)].run_after == pendulum.datetime(2025, 11, 3, 20, 10, tz="UTC")  # EST
    for info in [*spring.values(), *autumn.values()]:
        assert info.run_after.in_timezone("America/New_York").time() == dt.time(15, 10)


def test_live_skips_weekends_and_holidays_and_keeps_its_session() -> None:
    from include.pipeline import session_of
    from include.trading_calendar import sessions_between

    infos = _infos(dt.date(2025, 12, 20), dt.date(2026, 1, 5), _live(30))
    sessions = [session_date_of(i.logical_date) for i in infos if i.logical_date is not None]
    assert sessions == sessions_between(dt.date(2025, 12, 20), dt.date(2026, 1, 5))
    assert dt.date(2025, 12, 25) not in sessions and dt.date(2026, 1, 1) not in sessions
    for session, info in zip(sessions, infos, strict=True):
        assert info.data_interval is not None
        assert session_of(info.data_interval.start) == session  # what the snapshot task derives
        assert info.run_after < NyseTradingDayTimetable().close_of(session)  # before the close of D


def test_a_live_backfill_range_selects_sessions_by_their_run_time() -> None:
    # `airflow backfill create --from-date 2021-02-01 --to-date 2021-03-02` on the live DAG.
    restriction = TimeRestriction(
        earliest=pendulum.datetime(2021, 2, 1, tz="UTC"), latest=pendulum.datetime(2021, 3, 2, tz="UTC"), catchup=True
    )
    sessions, last = [], None
    while (info := _live().next_dagrun_info(last_automated_data_interval=last, restriction=restriction)) is not None:
        assert info.logical_date is not None and restriction.earliest is not None
        assert restriction.earliest <= info.logical_date <= pendulum.datetime(2021, 3, 2, tz="UTC")
        sessions.append(session_date_of(info.logical_date))
        last = info.data_interval
    assert sessions[0] == dt.date(2021, 2, 1) and sessions[-1] == dt.date(2021, 3, 1)
    assert len(sessions) == 20 and dt.date(2021, 2, 15) not in sessions  # Presidents' Day
    # A range starting after a session's run time (but before its close) begins with the next session.
    late = TimeRestriction(earliest=pendulum.datetime(2021, 2, 1, 20, 30, tz="UTC"), latest=None, catchup=True)
    first = _live().next_dagrun_info(last_automated_data_interval=None, restriction=late)
    assert first is not None and first.logical_date is not None
    assert session_date_of(first.logical_date) == dt.date(2021, 2, 2)


def test_live_serialization_round_trips_and_differs_from_after_close() -> None:
    live = _live(45)
    assert live.serialize() == {"minutes_before_close": 45}
    assert NyseTradingDayTimetable.deserialize(live.serialize()) == live
    assert live != NyseTradingDayTimetable(minutes_after_close=45) and live.summary == "NYSE close -45m"
    # The backtest's form is unchanged (its serialized DAGs stay equal).
    assert NyseTradingDayTimetable(minutes_after_close=840).serialize() == {"minutes_after_close": 840}
    assert NyseTradingDayTimetable.deserialize({"minutes_after_close": 30}) == NyseTradingDayTimetable()
    for bad in (0, -5, 12 * 60 + 1):
        with pytest.raises(ValueError, match="minutes_before_close"):
            NyseTradingDayTimetable(minutes_before_close=bad)
    with pytest.raises(ValueError, match="not both"):
        NyseTradingDayTimetable(minutes_after_close=10, minutes_before_close=50)


def test_live_dag_setting_and_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as _dt

    from lean_airflow.dag_factory import live_engine_timeout

    from include.live_session import LIVE_MINUTES_BEFORE_CLOSE_ENV, live_minutes_before_close

    monkeypatch.delenv(LIVE_MINUTES_BEFORE_CLOSE_ENV, raising=False)
    assert live_minutes_before_close() == 50
    monkeypatch.setenv(LIVE_MINUTES_BEFORE_CLOSE_ENV, "35")
    assert live_minutes_before_close() == 35
    for bad in ("10", "abc", "800"):
        monkeypatch.setenv(LIVE_MINUTES_BEFORE_CLOSE_ENV, bad)
        with pytest.raises(ValueError, match=LIVE_MINUTES_BEFORE_CLOSE_ENV):
            live_minutes_before_close()
    # Start (close - 50) to the deadline (close + 10) is 60 min; the engine gets a margin on top.
    assert live_engine_timeout(50) > _dt.timedelta(minutes=60)


def test_the_live_dag_runs_before_the_close_and_the_backtest_dag_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    from lean_airflow.dag_factory import DAILY_BACKTEST_MINUTES_AFTER_CLOSE, build_lean_dag, live_engine_timeout
    from lean_airflow.operators import task_execution_timeout

    from include.live_session import LIVE_MINUTES_BEFORE_CLOSE_ENV

    monkeypatch.setenv(LIVE_MINUTES_BEFORE_CLOSE_ENV, "40")
    live = build_lean_dag(dag_id="t_live", kind="daily", mode="live", description="d", doc_md="d")
    assert live.timetable == NyseTradingDayTimetable(minutes_before_close=40)
    run_lean = live.get_task("run_lean")
    assert run_lean.engine_timeout == live_engine_timeout(40)  # type: ignore[attr-defined]
    assert run_lean.execution_timeout == task_execution_timeout(live_engine_timeout(40))
    daily = build_lean_dag(dag_id="t_daily", kind="daily", mode="backtest", description="d", doc_md="d")
    assert daily.timetable == NyseTradingDayTimetable(minutes_after_close=DAILY_BACKTEST_MINUTES_AFTER_CLOSE)
    assert daily.get_task("run_lean").execution_timeout == task_execution_timeout()
