"""The stored NYSE calendar (``include/xnys_calendar.json``, read with the standard library) is
``exchange_calendars``' XNYS: regenerated and compared, and every function checked against it."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
from typing import Any

import pytest

from include.atomic_io import dumps_canonical
from include.trading_calendar import (
    CALENDAR_FILE,
    GENERATED_END,
    GENERATED_START,
    NEW_YORK,
    generate_calendar,
    is_session,
    next_session,
    previous_session,
    session_close_utc,
    session_table,
    sessions_between,
)
from tests.conftest import REPO_ROOT

ONE_DAY = dt.timedelta(days=1)
FIRST, LAST = dt.date(1990, 1, 2), dt.date(2035, 12, 31)

# Days the rules of a calendar get wrong most easily.
NOTABLE = [
    dt.date(2025, 12, 25),  # Christmas
    dt.date(2024, 3, 29),  # Good Friday
    dt.date(2026, 7, 3),  # Independence Day observed (the 4th is a Saturday)
    dt.date(2021, 12, 31),  # New Year's Day 2022 falls on a Saturday: no Friday holiday
    dt.date(2022, 6, 20),  # Juneteenth, first observed
    dt.date(2001, 9, 11),  # closed after the attacks, through the 14th
    dt.date(2001, 9, 14),
    dt.date(2001, 9, 17),
    dt.date(2012, 10, 29),  # hurricane Sandy, two days
    dt.date(2012, 10, 30),
    dt.date(2004, 6, 11),  # national days of mourning
    dt.date(2018, 12, 5),
    dt.date(2025, 1, 9),
    dt.date(2025, 11, 28),  # early closes, 13:00
    dt.date(2025, 12, 24),
    dt.date(2024, 7, 3),
    dt.date(1990, 12, 24),  # a 14:00 early close
    dt.date(2024, 3, 9),  # a weekend
    dt.date(2024, 3, 10),
    dt.date(2024, 11, 4),  # the days around a DST change
    dt.date(2024, 3, 11),
    # the ends of the table
    dt.date(1989, 12, 29),
    dt.date(1990, 1, 1),
    FIRST,
    dt.date(1990, 1, 3),
    dt.date(2035, 12, 28),
    LAST,
    dt.date(2036, 1, 1),
    dt.date(2036, 1, 2),
]


@pytest.fixture(scope="module")
def xnys() -> Any:
    exchange_calendars = pytest.importorskip("exchange_calendars")
    return exchange_calendars.get_calendar("XNYS", start=FIRST.isoformat(), end=LAST.isoformat())


@pytest.fixture(scope="module")
def sample() -> list[dt.date]:
    rng = random.Random(20240305)
    span = (LAST - FIRST).days + 20
    return sorted({*NOTABLE, *(FIRST - 10 * ONE_DAY + rng.randrange(span) * ONE_DAY for _ in range(1500))})


def test_the_committed_file_is_regenerated_identically() -> None:
    generated = generate_calendar()
    committed = CALENDAR_FILE.read_text(encoding="utf-8")
    assert json.loads(committed) == generated, "stale: run python -m include.trading_calendar"
    assert committed == dumps_canonical(generated)  # the bytes `python -m include.trading_calendar` writes
    assert (generated["first"], generated["last"]) == (FIRST.isoformat(), LAST.isoformat())
    assert (GENERATED_START, GENERATED_END) == (FIRST, LAST)


def test_the_whole_table_is_xnys(xnys: Any) -> None:
    table = session_table()
    assert table.days == tuple(ts.date() for ts in xnys.sessions)
    closes = {ts.date(): close.to_pydatetime() for ts, close in xnys.schedule["close"].items()}
    early = {day for day, close in closes.items() if close.astimezone(NEW_YORK).time() != dt.time(16)}
    assert set(table.early_closes) == early and len(early) > 90
    for day, close in closes.items():
        assert dt.datetime.combine(day, table.close_time(day), tzinfo=NEW_YORK) == close, day


def test_every_function_agrees_with_xnys_on_a_sample(xnys: Any, sample: list[dt.date]) -> None:
    for day in sample:
        inside = FIRST <= day <= LAST
        assert is_session(day) == (inside and bool(xnys.is_session(day.isoformat()))), day
        after = day + ONE_DAY
        expected_next = (
            xnys.date_to_session(max(after, FIRST).isoformat(), direction="next").date() if after <= LAST else None
        )
        assert next_session(day) == expected_next, day
        before = day - ONE_DAY
        expected_previous = (
            xnys.date_to_session(min(before, LAST).isoformat(), direction="previous").date()
            if before >= FIRST
            else None
        )
        assert previous_session(day) == expected_previous, day
        if is_session(day):
            assert session_close_utc(day) == xnys.session_close(day.isoformat()).to_pydatetime(), day
            assert session_close_utc(day).tzinfo is not None and session_close_utc(day).utcoffset() == dt.timedelta(0)


def test_sessions_between_agrees_with_xnys(xnys: Any, sample: list[dt.date]) -> None:
    rng = random.Random(7)
    for _ in range(300):
        start = rng.choice(sample)
        end = start + rng.randrange(-5, 60) * ONE_DAY
        lo, hi = max(start, FIRST), min(end, LAST)
        expected = [ts.date() for ts in xnys.sessions_in_range(lo.isoformat(), hi.isoformat())] if lo <= hi else []
        assert sessions_between(start, end) == expected, (start, end)
    assert sessions_between(dt.date(1980, 1, 1), dt.date(2100, 1, 1)) == list(session_table().days)
    assert sessions_between(dt.date(2024, 3, 5), dt.date(2024, 3, 4)) == []


def test_closes_and_neighbours_by_hand() -> None:
    assert session_close_utc(dt.date(2025, 11, 26)) == dt.datetime(2025, 11, 26, 21, 0, tzinfo=dt.UTC)
    assert session_close_utc(dt.date(2025, 11, 28)) == dt.datetime(2025, 11, 28, 18, 0, tzinfo=dt.UTC)  # 13:00 ET
    assert session_close_utc(dt.date(2024, 7, 1)) == dt.datetime(2024, 7, 1, 20, 0, tzinfo=dt.UTC)  # summer time
    assert next_session(dt.date(2025, 12, 24)) == dt.date(2025, 12, 26)
    assert previous_session(dt.date(2025, 12, 26)) == dt.date(2025, 12, 24)
    assert next_session(LAST) is None and previous_session(FIRST) is None
    assert next_session(dt.date(1980, 1, 1)) == FIRST and previous_session(dt.date(2100, 1, 1)) == LAST
    assert not is_session(dt.date(1989, 12, 29)) and not is_session(dt.date(2036, 1, 2))


def test_the_module_needs_only_the_standard_library() -> None:
    """Importing the calendar and answering from it loads neither exchange_calendars nor pandas."""
    code = (
        "import sys, datetime as dt\n"
        "from include.trading_calendar import is_session, sessions_between\n"
        "assert is_session(dt.date(2024, 3, 5))\n"
        "assert len(sessions_between(dt.date(2024, 1, 1), dt.date(2024, 12, 31))) == 252\n"
        "print(sorted(m for m in ('exchange_calendars', 'pandas', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
