"""The engine's NYSE session index: the project's calendar (include/trading_calendar.py), keyed by day."""

from __future__ import annotations

import datetime as dt

from include.lean_local.sessions import from_yyyymmdd, local_to_utc, nyse_sessions, utc_to_local, yyyymmdd
from include.trading_calendar import session_close_utc, sessions_between


def test_sessions_are_the_project_calendar() -> None:
    sessions = nyse_sessions()
    assert list(sessions.dates) == sessions_between(dt.date(1990, 1, 1), dt.date(2035, 12, 31))
    assert sessions.days[0] == 19900102 and sessions.days[-1] == 20351231
    assert [from_yyyymmdd(day) for day in sessions.days] == list(sessions.dates)
    assert all(sessions.positions[day] == i for i, day in enumerate(sessions.days))
    for i in (0, 5000, len(sessions.days) - 1):
        assert local_to_utc(sessions.closes[i]) == session_close_utc(sessions.dates[i])
        assert sessions.close_epoch(i) == session_close_utc(sessions.dates[i]).timestamp()
        assert sessions.opens[i].time() == dt.time(9, 30)


def test_holidays_and_early_closes() -> None:
    sessions = nyse_sessions()
    assert 20190704 not in sessions.positions  # Independence Day
    assert sessions.index_of(20190704) == sessions.positions[20190705]
    assert sessions.closes[sessions.positions[20190703]] == dt.datetime(2019, 7, 3, 13, 0)
    assert sessions.closes[sessions.positions[20190705]] == dt.datetime(2019, 7, 5, 16, 0)


def test_market_hours_and_next_close() -> None:
    sessions = nyse_sessions()
    assert sessions.is_open_at(dt.datetime(2019, 7, 3, 12, 59))
    assert not sessions.is_open_at(dt.datetime(2019, 7, 3, 13, 0))  # the early close ends the session
    assert not sessions.is_open_at(dt.datetime(2019, 7, 6, 12, 0))  # Saturday
    assert not sessions.is_open_at(dt.datetime(2019, 7, 5, 9, 29))
    assert sessions.next_close_after(dt.datetime(2019, 7, 3, 10, 0)) == dt.datetime(2019, 7, 3, 13, 0)
    assert sessions.next_close_after(dt.datetime(2019, 7, 3, 13, 0)) == dt.datetime(2019, 7, 5, 16, 0)
    assert sessions.next_close_after(dt.datetime(2019, 7, 6, 0, 0)) == dt.datetime(2019, 7, 8, 16, 0)
    assert sessions.next_close_after(dt.datetime(2036, 1, 2)) == dt.datetime.max  # past the calendar


def test_time_conversions() -> None:
    assert yyyymmdd(dt.date(2021, 3, 1)) == 20210301 and from_yyyymmdd(20210301) == dt.date(2021, 3, 1)
    winter, summer = dt.datetime(2021, 1, 4, 16, 0), dt.datetime(2021, 7, 6, 16, 0)
    assert local_to_utc(winter) == dt.datetime(2021, 1, 4, 21, 0, tzinfo=dt.UTC)
    assert local_to_utc(summer) == dt.datetime(2021, 7, 6, 20, 0, tzinfo=dt.UTC)
    assert utc_to_local(local_to_utc(summer)) == summer
