"""The trading-day timetable: NYSE sessions only, run after the close, backfill-compatible."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction
from lean_airflow.timetables import NyseTradingDayTimetable, session_date_of


def _runs(start: dt.date, end: dt.date) -> list[pendulum.DateTime]:
    timetable = NyseTradingDayTimetable()
    restriction = TimeRestriction(
        earliest=pendulum.datetime(start.year, start.month, start.day, tz="UTC"),
        latest=pendulum.datetime(end.year, end.month, end.day, 23, 59, tz="UTC"),
        catchup=True,
    )
    runs: list[pendulum.DateTime] = []
    last: DataInterval | None = None
    while (info := timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)) is not None:
        assert info.logical_date is not None
        runs.append(info.logical_date)
        last = info.data_interval
    return runs


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
    runs = {session_date_of(r): r for r in _runs(dt.date(2025, 11, 26), dt.date(2025, 11, 28))}
    assert runs[dt.date(2025, 11, 26)] == pendulum.datetime(2025, 11, 26, 21, 30, tz="UTC")  # 16:00 ET + 30m
    assert runs[dt.date(2025, 11, 28)] == pendulum.datetime(2025, 11, 28, 18, 30, tz="UTC")  # 13:00 half day


def test_interval_is_zero_length_and_serialization_round_trips() -> None:
    timetable = NyseTradingDayTimetable(minutes_after_close=45)
    assert NyseTradingDayTimetable.deserialize(timetable.serialize()) == timetable
    moment = pendulum.datetime(2024, 3, 5, 22, tz="UTC")
    interval = timetable.infer_manual_data_interval(run_after=moment)
    assert interval.start == interval.end == moment
    with pytest.raises(ValueError, match="minutes_after_close"):
        NyseTradingDayTimetable(minutes_after_close=-1)


def test_without_catchup_missed_sessions_are_not_replayed() -> None:
    timetable = NyseTradingDayTimetable()
    old = pendulum.datetime(2021, 3, 1, 21, 30, tz="UTC")
    info = timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval.exact(old),
        restriction=TimeRestriction(earliest=pendulum.datetime(2019, 1, 1, tz="UTC"), latest=None, catchup=False),
    )
    assert info is not None and info.logical_date is not None
    assert info.logical_date >= pendulum.now("UTC")
