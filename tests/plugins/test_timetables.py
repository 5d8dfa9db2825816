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
