"""The Lean data folder: the preflight (``include.launch.data_folder``), the databases the sample data ships
(an excerpt of Lean's, checked against Lean and against the project's trading calendar), and the local
runtime refusing what Lean refuses."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from include.errors import LeanConfigError
from include.launch import data_folder as preflight
from include.launch.data_folder import (
    EQUITY_DAILY_FOLDER,
    MARKET_HOURS_DATABASE,
    SYMBOL_PROPERTIES_DATABASE,
    US_EQUITY_ENTRY,
    check_lean_data_folder,
    check_lean_start_files,
    require_lean_data_folder,
)
from include.lean_local.config import load_config
from include.lean_local.errors import LocalConfigError
from include.trading_calendar import CLOSE_TIME, OPEN_TIME, is_session, session_table
from tests.include.lean_local.helpers import run_subprocess, write_run
from tests.lean_data_factory import SAMPLE_DATA_FOLDER, write_daily_zip, write_lean_databases
from tests.tools.extract_lean_sample_databases import render
from tests.tools.lean_checkout import LEAN_COMMIT, checkout_from_env

LEAN = checkout_from_env("LEAN_REPO_DIR")


@pytest.fixture
def complete(tmp_path: Path) -> Path:
    """A data folder Lean starts on: the two databases and an (empty) daily-bars folder."""
    folder = tmp_path / "data"
    write_lean_databases(folder)
    (folder / EQUITY_DAILY_FOLDER).mkdir(parents=True)
    assert check_lean_data_folder(folder) == []
    return folder


# ---------------------------------------------------------------------------- the sample data


def test_the_sample_data_folder_is_one_lean_starts_on() -> None:
    assert check_lean_data_folder(SAMPLE_DATA_FOLDER) == []
    assert require_lean_data_folder(SAMPLE_DATA_FOLDER) == SAMPLE_DATA_FOLDER


def test_the_sample_databases_hold_the_us_equity_entries_with_their_license() -> None:
    market_hours = json.loads((SAMPLE_DATA_FOLDER / MARKET_HOURS_DATABASE).read_text(encoding="utf-8"))
    assert list(market_hours) == ["entries"] and list(market_hours["entries"]) == [US_EQUITY_ENTRY]
    lines = (SAMPLE_DATA_FOLDER / SYMBOL_PROPERTIES_DATABASE).read_text(encoding="utf-8").splitlines()
    assert lines == [
        "market,symbol,type,description,quote_currency,contract_multiplier,minimum_price_variation,lot_size,"
        "market_ticker,minimum_order_size,price_magnifier,strike_multiplier",
        "usa,[*],equity,,USD,1,0.01,1",
    ]
    for database in (MARKET_HOURS_DATABASE, SYMBOL_PROPERTIES_DATABASE):
        folder = SAMPLE_DATA_FOLDER / database.parent
        assert (folder / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
        notice = (folder / "NOTICE").read_text(encoding="utf-8")
        assert LEAN_COMMIT in notice and f"Data/{database}" in notice and "Apache License" in notice


@pytest.mark.skipif(
    LEAN is None, reason="set LEAN_REPO_DIR to a Lean checkout (Data/market-hours, Data/symbol-properties)"
)
def test_the_sample_databases_are_what_the_extractor_cuts_from_lean() -> None:
    """Byte for byte: re-cut from the checkout, compared with the committed files (LICENSE when the checkout has it)."""
    assert LEAN is not None
    rendered = render(LEAN)
    assert {MARKET_HOURS_DATABASE, SYMBOL_PROPERTIES_DATABASE} <= set(rendered)
    for relative, text in rendered.items():
        assert (SAMPLE_DATA_FOLDER / relative).read_bytes() == text.encode("utf-8"), relative


# Dates on which Lean's MHDB and the project's calendar (exchange_calendars' XNYS) disagree. Both
# sides are kept as they are (the calendar is not changed); the test fails on any new disagreement.
KNOWN_DISAGREEMENTS: dict[dt.date, str] = {
    dt.date(1998, 11, 27): "close: Lean 16:00:00, calendar 13:00:00",  # day after Thanksgiving
    dt.date(1998, 12, 24): "close: Lean 16:00:00, calendar 13:00:00",  # Christmas Eve
    dt.date(1999, 12, 31): "close: Lean 16:00:00, calendar 13:00:00",  # New Year's Eve 1999
}


def _us_date(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%m/%d/%Y").date()


def test_the_sample_market_hours_agree_with_the_trading_calendar() -> None:
    """Every day both cover: open or closed, and the close (holidays as M/D/YYYY, early closes date -> time)."""
    entry = json.loads((SAMPLE_DATA_FOLDER / MARKET_HOURS_DATABASE).read_text(encoding="utf-8"))["entries"][
        US_EQUITY_ENTRY
    ]
    weekdays = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    regular: dict[int, tuple[dt.time, dt.time] | None] = {}
    for number, name in enumerate(weekdays):
        market = [s for s in entry[name] if s["state"] == "market"]
        assert len(market) <= 1, name
        regular[number] = (
            (dt.time.fromisoformat(market[0]["start"]), dt.time.fromisoformat(market[0]["end"])) if market else None
        )
    # The calendar: 09:30-16:00 every weekday, nothing on weekends.
    assert all(regular[d] == (OPEN_TIME, CLOSE_TIME) for d in range(5)) and regular[5] is regular[6] is None
    assert not entry.get("lateOpens"), "the calendar has no late opens"
    holidays = [_us_date(d) for d in entry["holidays"]]
    assert len(holidays) == len(set(holidays)), "a holiday listed twice"
    early = {_us_date(d): dt.time.fromisoformat(t) for d, t in entry["earlyCloses"].items()}
    years = sorted({d.year for d in [*holidays, *early]})
    table = session_table()
    start, end = max(dt.date(years[0], 1, 1), table.first), min(dt.date(years[-1], 12, 31), table.last)
    assert (start, end) == (dt.date(1998, 1, 1), dt.date(2028, 12, 31))  # the range compared, for the record
    closed = set(holidays)
    found: dict[dt.date, str] = {}
    day = start
    while day <= end:
        hours = None if day in closed else regular[day.weekday()]
        if (hours is not None) != is_session(day):
            found[day] = f"open: Lean {hours is not None}, calendar {is_session(day)}"
        elif hours is not None:
            lean_close, calendar_close = early.get(day, hours[1]), table.close_time(day)
            if lean_close != calendar_close:
                found[day] = f"close: Lean {lean_close}, calendar {calendar_close}"
        elif day in early and day.weekday() < 5:
            found[day] = f"close: Lean lists an early close {early[day]} on a holiday"
        day += dt.timedelta(days=1)
    assert found == KNOWN_DISAGREEMENTS
    # Inert in Lean (a weekend has no market hours to close early): an early close on Sunday 2017-12-24.
    assert sorted(d for d in early if d.weekday() >= 5) == [dt.date(2017, 12, 24)]


# ---------------------------------------------------------------------------- the preflight


def _remove(relative: object) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        path = folder / str(relative)
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return change


def _write_market_hours(data: bytes) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / MARKET_HOURS_DATABASE).write_bytes(data)

    return change


def _market_hours_is_a_folder(folder: Path) -> None:
    (folder / MARKET_HOURS_DATABASE).unlink()
    (folder / MARKET_HOURS_DATABASE).mkdir()


@pytest.mark.parametrize(
    ("change", "named", "reason"),
    [
        (_remove(MARKET_HOURS_DATABASE), MARKET_HOURS_DATABASE, "missing; Lean reads it at every start"),
        (_remove(SYMBOL_PROPERTIES_DATABASE), SYMBOL_PROPERTIES_DATABASE, "missing; Lean reads it at every start"),
        (_remove(EQUITY_DAILY_FOLDER), EQUITY_DAILY_FOLDER, "missing or not a folder"),
        (_market_hours_is_a_folder, MARKET_HOURS_DATABASE, "not a regular file"),
        (_write_market_hours(b'{"entries": {'), MARKET_HOURS_DATABASE, "not valid JSON"),
        (_write_market_hours(b'{"entries": "\xff"}'), MARKET_HOURS_DATABASE, "not UTF-8 text (byte offset 13)"),
        (_write_market_hours(b'{"entries": []}'), MARKET_HOURS_DATABASE, "no 'entries' object"),
        (_write_market_hours(b'{"entries": {"Forex-fxcm-[*]": {}}}'), MARKET_HOURS_DATABASE, "no 'Equity-usa-[*]'"),
    ],
)
def test_the_preflight_names_each_file_lean_cannot_start_without(
    complete: Path, change: Callable[[Path], None], named: object, reason: str
) -> None:
    change(complete)
    problems = check_lean_data_folder(complete)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{complete / str(named)}") and reason in problems[0], problems


def test_the_preflight_lists_every_problem_at_once(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    problems = check_lean_data_folder(tmp_path / "empty")
    assert [p.split(":", 1)[0] for p in problems] == [
        str(tmp_path / "empty" / MARKET_HOURS_DATABASE),
        str(tmp_path / "empty" / SYMBOL_PROPERTIES_DATABASE),
        f"{tmp_path / 'empty' / EQUITY_DAILY_FOLDER}/",
    ]
    assert check_lean_data_folder(tmp_path / "nope") == [
        f"{tmp_path / 'nope'}: not a folder (a Lean data folder holds market-hours/, symbol-properties/ and equity/)"
    ]
    with pytest.raises(LeanConfigError, match=r"data folder .*empty is not one Lean can start on: .*missing"):
        require_lean_data_folder(tmp_path / "empty")


def test_a_huge_database_is_refused_before_it_is_read(complete: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "MAX_DATABASE_BYTES", 1000)  # the sample's is about 10 KB, its CSV 200 bytes
    problems = check_lean_data_folder(complete)
    assert len(problems) == 1 and "over the 1000-byte limit" in problems[0]
    assert problems[0].startswith(str(complete / MARKET_HOURS_DATABASE))


def test_lean_starts_without_daily_bars_so_the_start_check_does_not_ask_for_them(complete: Path) -> None:
    shutil.rmtree(complete / EQUITY_DAILY_FOLDER)
    assert check_lean_start_files(complete) == []
    assert len(check_lean_data_folder(complete)) == 1


def test_the_command_line_exits_1_naming_the_missing_files(complete: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert preflight.main([str(complete)]) == 0
    assert capsys.readouterr().err == ""
    (complete / SYMBOL_PROPERTIES_DATABASE).unlink()
    assert preflight.main([str(complete)]) == 1
    assert f"Lean data folder: {complete / SYMBOL_PROPERTIES_DATABASE}: missing" in capsys.readouterr().err
    assert preflight.main([]) == 2


def test_the_test_data_factory_writes_complete_folders(tmp_path: Path) -> None:
    write_daily_zip(tmp_path, "AAA", [(dt.date(2021, 1, 4), 1.0, 1.0, 1.0, 1.0, 5)])
    assert check_lean_data_folder(tmp_path) == []
    for database in (MARKET_HOURS_DATABASE, SYMBOL_PROPERTIES_DATABASE):
        assert (tmp_path / database).read_bytes() == (SAMPLE_DATA_FOLDER / database).read_bytes()


# ---------------------------------------------------------------------------- the local runtime

ALGO = """
from AlgorithmImports import *
class A(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 1, 2); self.set_end_date(2019, 1, 10)
"""


@pytest.mark.parametrize("database", [MARKET_HOURS_DATABASE, SYMBOL_PROPERTIES_DATABASE])
def test_the_local_runtime_refuses_a_data_folder_lean_would_refuse(
    tmp_path: Path, complete: Path, database: object
) -> None:
    (complete / str(database)).unlink()
    config = write_run(tmp_path, ALGO, data=complete)
    with pytest.raises(LocalConfigError, match=rf"'data-folder': {complete} is not a data folder Lean can start on"):
        load_config(config)
    result = run_subprocess(config)
    assert result.returncode == 2
    assert f"{complete / str(database)}: missing" in result.stderr


def test_the_local_runtime_starts_where_lean_starts(tmp_path: Path, complete: Path) -> None:
    shutil.rmtree(complete / EQUITY_DAILY_FOLDER)  # Lean starts (and finds no bars)
    assert load_config(write_run(tmp_path, ALGO, data=complete)).data_folder == complete
