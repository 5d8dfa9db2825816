"""NYSE trading sessions (``exchange_calendars`` XNYS), loaded lazily and cached.

Kept out of DAG parse time: only timetable methods and tasks call into it.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

CALENDAR_NAME = "XNYS"


@lru_cache(maxsize=4)
def _calendar(name: str = CALENDAR_NAME) -> Any:
    import exchange_calendars

    # Start early enough for backtests on long histories (the default is 20 years back).
    return exchange_calendars.get_calendar(name, start="1990-01-02")


def is_session(day: dt.date, name: str = CALENDAR_NAME) -> bool:
    cal = _calendar(name)
    if not cal.first_session.date() <= day <= cal.last_session.date():
        return False
    return bool(cal.is_session(day.isoformat()))


def sessions_between(start: dt.date, end: dt.date, name: str = CALENDAR_NAME) -> list[dt.date]:
    """Sessions with start <= session <= end (both inclusive)."""
    if end < start:
        return []
    cal = _calendar(name)
    lo = max(start, cal.first_session.date())
    hi = min(end, cal.last_session.date())
    if hi < lo:
        return []
    return [ts.date() for ts in cal.sessions_in_range(lo.isoformat(), hi.isoformat())]


def session_close_utc(day: dt.date, name: str = CALENDAR_NAME) -> dt.datetime:
    """The session's close as an aware UTC datetime (13:00 ET on half days)."""
    close = _calendar(name).session_close(day.isoformat())
    return close.to_pydatetime()


def next_session(after: dt.date, name: str = CALENDAR_NAME) -> dt.date | None:
    """The first session strictly after ``after``, or None past the calendar's end."""
    cal = _calendar(name)
    probe = after + dt.timedelta(days=1)
    if probe > cal.last_session.date():
        return None
    if probe < cal.first_session.date():
        return cal.first_session.date()
    return cal.date_to_session(probe.isoformat(), direction="next").date()


def previous_session(before: dt.date, name: str = CALENDAR_NAME) -> dt.date | None:
    cal = _calendar(name)
    probe = before - dt.timedelta(days=1)
    if probe < cal.first_session.date():
        return None
    if probe > cal.last_session.date():
        return cal.last_session.date()
    return cal.date_to_session(probe.isoformat(), direction="previous").date()
