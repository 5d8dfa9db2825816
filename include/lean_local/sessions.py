"""NYSE sessions as the engine indexes them, and the engine's time conversions.

The sessions are the project's one calendar, ``include.trading_calendar`` (XNYS, 1990-01-02..2035-12-31,
standard library only). The engine keys a day as the int ``yyyymmdd`` and a session by its index in this
table; times are naive New York datetimes (the algorithm time zone of US equities) unless named UTC.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import overload

from include.trading_calendar import NEW_YORK, OPEN_TIME, session_table

UTC = dt.UTC


def yyyymmdd(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def from_yyyymmdd(value: int) -> dt.date:
    return dt.date(value // 10000, (value // 100) % 100, value % 100)


def local_to_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=NEW_YORK).astimezone(UTC)


def utc_to_local(value: dt.datetime) -> dt.datetime:
    return value.astimezone(NEW_YORK).replace(tzinfo=None)


class _SessionTimes(Sequence[dt.datetime]):
    """Each session's open or close as a New York time, made when asked for: a run reads a few hundred
    of the table's ~11,600 sessions, and building them all costs a one-day run a fifth of its time."""

    def __init__(self, dates: tuple[dt.date, ...], time_of: Callable[[dt.date], dt.time]) -> None:
        self._dates = dates
        self._time_of = time_of

    def __len__(self) -> int:
        return len(self._dates)

    @overload
    def __getitem__(self, index: int) -> dt.datetime: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[dt.datetime]: ...

    def __getitem__(self, index: int | slice) -> dt.datetime | Sequence[dt.datetime]:
        if isinstance(index, slice):
            return [dt.datetime.combine(day, self._time_of(day)) for day in self._dates[index]]
        day = self._dates[index]
        return dt.datetime.combine(day, self._time_of(day))


@dataclass(frozen=True)
class Sessions:
    """Every NYSE session in order: its date, day key (yyyymmdd), and open and close as New York times."""

    dates: tuple[dt.date, ...]
    days: tuple[int, ...]
    opens: Sequence[dt.datetime]
    closes: Sequence[dt.datetime]
    positions: dict[int, int]  # day key -> index, for the days that are sessions

    def index_of(self, day: int) -> int:
        """Index of the first session on or after ``day``."""
        return bisect.bisect_left(self.days, day)

    def close_epoch(self, index: int) -> float:
        """The session's close in UTC epoch seconds."""
        return local_to_utc(self.closes[index]).timestamp()

    def is_open_at(self, local: dt.datetime) -> bool:
        index = self.positions.get(yyyymmdd(local.date()))
        return index is not None and self.opens[index] <= local < self.closes[index]

    def next_close_after(self, local: dt.datetime) -> dt.datetime:
        """The first session close after ``local``; ``datetime.max`` past the table's end."""
        for index in range(self.index_of(yyyymmdd(local.date())), len(self.days)):
            if self.closes[index] > local:
                return self.closes[index]
        return dt.datetime.max


@lru_cache(maxsize=1)
def nyse_sessions() -> Sessions:
    table = session_table()
    dates = table.days
    days = tuple([day.year * 10000 + day.month * 100 + day.day for day in dates])
    return Sessions(
        dates=dates,
        days=days,
        opens=_SessionTimes(dates, lambda _day: OPEN_TIME),
        closes=_SessionTimes(dates, table.close_time),
        positions=dict(zip(days, range(len(days)), strict=True)),
    )
