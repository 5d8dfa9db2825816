"""NYSE trading sessions: the one calendar of the DAGs, the pipeline and the local runtime.

The sessions are ``exchange_calendars``' XNYS calendar, stored compactly in
``include/xnys_calendar.json`` (weekday holidays and early closes, 1990-2035) and read with the
standard library only: importing ``exchange_calendars`` costs about half a second (it loads
pandas), which every Lean subprocess and every task would pay. A test regenerates the file from
``exchange_calendars`` and fails when it differs; ``python -m include.trading_calendar`` rewrites it.

Every session opens at 09:30 New York time and closes at 16:00, or at its early close.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

CALENDAR_NAME = "XNYS"
CALENDAR_FILE = Path(__file__).with_name("xnys_calendar.json")
NEW_YORK = ZoneInfo("America/New_York")
OPEN_TIME = dt.time(9, 30)
CLOSE_TIME = dt.time(16, 0)
# The range the stored calendar covers; regenerate with a later end when it nears.
GENERATED_START = dt.date(1990, 1, 2)
GENERATED_END = dt.date(2035, 12, 31)


@dataclass(frozen=True)
class SessionTable:
    """Every session of the calendar, in order, with its New York close time."""

    days: tuple[dt.date, ...]
    ordinals: tuple[int, ...]
    early_closes: dict[dt.date, dt.time]

    @property
    def first(self) -> dt.date:
        return self.days[0]

    @property
    def last(self) -> dt.date:
        return self.days[-1]

    def close_time(self, day: dt.date) -> dt.time:
        return self.early_closes.get(day, CLOSE_TIME)

    def index_on_or_after(self, day: dt.date) -> int:
        return bisect.bisect_left(self.ordinals, day.toordinal())


@lru_cache(maxsize=1)
def session_table() -> SessionTable:
    raw = json.loads(CALENDAR_FILE.read_text(encoding="utf-8"))
    first = dt.date.fromisoformat(raw["first"])
    last = dt.date.fromisoformat(raw["last"])
    holidays = {dt.date.fromisoformat(d).toordinal() for d in raw["holidays"]}
    ordinals = tuple(
        o for o in range(first.toordinal(), last.toordinal() + 1) if o % 7 not in (0, 6) and o not in holidays
    )  # date.toordinal() % 7: 0 is Sunday, 6 is Saturday
    early = {dt.date.fromisoformat(d): dt.time.fromisoformat(t) for d, t in raw["early_closes"].items()}
    return SessionTable(days=tuple(dt.date.fromordinal(o) for o in ordinals), ordinals=ordinals, early_closes=early)


def is_session(day: dt.date) -> bool:
    table = session_table()
    index = table.index_on_or_after(day)
    return index < len(table.days) and table.days[index] == day


def sessions_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """Sessions with start <= session <= end (both inclusive)."""
    table = session_table()
    if end < start:
        return []
    return list(table.days[table.index_on_or_after(start) : bisect.bisect_right(table.ordinals, end.toordinal())])


def session_close_utc(day: dt.date) -> dt.datetime:
    """The session's close as an aware UTC datetime (13:00 ET on half days)."""
    close = dt.datetime.combine(day, session_table().close_time(day), tzinfo=NEW_YORK)
    return close.astimezone(dt.UTC)


def next_session(after: dt.date) -> dt.date | None:
    """The first session strictly after ``after``, or None past the calendar's end."""
    table = session_table()
    index = bisect.bisect_right(table.ordinals, after.toordinal())
    return table.days[index] if index < len(table.days) else None


def previous_session(before: dt.date) -> dt.date | None:
    """The last session strictly before ``before``, or None before the calendar's start."""
    table = session_table()
    index = table.index_on_or_after(before) - 1
    return table.days[index] if index >= 0 else None


def generate_calendar(start: dt.date = GENERATED_START, end: dt.date = GENERATED_END) -> dict[str, Any]:
    """The calendar file's content, from ``exchange_calendars`` (a test and the regeneration use it)."""
    import exchange_calendars
    import pandas as pd

    calendar = exchange_calendars.get_calendar(CALENDAR_NAME, start=start.isoformat(), end=end.isoformat())
    schedule = calendar.schedule
    sessions = {ts.date() for ts in schedule.index}
    weekdays = pd.bdate_range(start, end)
    holidays = sorted(d.date().isoformat() for d in weekdays if d.date() not in sessions)
    early: dict[str, str] = {}
    for day, row in schedule.iterrows():
        opens = row["open"].tz_convert(str(NEW_YORK)).time()
        closes = row["close"].tz_convert(str(NEW_YORK)).time()
        if opens != OPEN_TIME:
            raise ValueError(f"{day.date()}: XNYS opens at {opens}, the stored calendar assumes {OPEN_TIME}")
        if closes != CLOSE_TIME:
            early[day.date().isoformat()] = closes.strftime("%H:%M")
    return {
        "source": f"exchange_calendars {exchange_calendars.__version__} {CALENDAR_NAME}",
        "first": min(sessions).isoformat(),
        "last": max(sessions).isoformat(),
        "holidays": holidays,
        "early_closes": early,
    }


def main() -> int:
    from include.atomic_io import atomic_write_json

    atomic_write_json(CALENDAR_FILE, generate_calendar())
    sys.stdout.write(f"wrote {CALENDAR_FILE.name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
