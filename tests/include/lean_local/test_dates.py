"""Lean's date rules in the local runtime (Lean ``Algorithm/QCAlgorithm.cs`` SetStartDate/SetEndDate):
a backtest ends yesterday in the algorithm's time zone at the latest, a start after today is refused,
and both are ignored live. The clock is the machine's, or the config key ``local-runtime-now``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.lean_local.config import load_config
from include.lean_local.errors import LocalConfigError
from tests.include.lean_local.helpers import run_inprocess, write_run

ENDS_MARCH_5 = """
from AlgorithmImports import *
class A(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2021, 3, 1)
        self.set_end_date(2021, 3, 5)
        self.set_cash(100000)
        self.sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        self.days = []
    def on_data(self, data):
        self.days.append(self.time.date().isoformat())
        if not self.portfolio.invested:
            self.set_holdings(self.sym, 0.5)
    def on_end_of_algorithm(self):
        self.log("days " + ",".join(self.days) + " end " + self.end_date.date().isoformat())
"""


def _days_and_end(tmp_path: Path) -> tuple[list[str], str]:
    line = next(line for line in (tmp_path / "results" / "t1-log.txt").read_text().splitlines() if " days " in line)
    days, end = line.split(" days ", 1)[1].split(" end ")
    return days.split(","), end


def test_a_backtest_ends_yesterday_in_new_york_at_the_latest(tmp_path: Path) -> None:
    # 2021-03-04 15:00 New York: Lean's "yesterday" is 2021-03-03, so March 4 and 5 are cut.
    config = write_run(tmp_path, ENDS_MARCH_5, extra={"local-runtime-now": "2021-03-04T20:00:00+00:00"})
    assert run_inprocess(config) == 0
    days, end = _days_and_end(tmp_path)
    assert end == "2021-03-03"
    assert days[-1] == "2021-03-03" and "2021-03-04" not in days
    summary = json.loads((tmp_path / "results" / "t1.json").read_text())
    assert str(summary).count("2021-03-05") == 0


def test_after_midnight_new_york_the_previous_day_is_kept(tmp_path: Path) -> None:
    # 2021-03-06 06:00 New York (11:00 UTC): yesterday is March 5, the requested end.
    config = write_run(tmp_path, ENDS_MARCH_5, extra={"local-runtime-now": "2021-03-06T11:00:00+00:00"})
    assert run_inprocess(config) == 0
    days, end = _days_and_end(tmp_path)
    assert end == "2021-03-05" and days[-1] == "2021-03-05"


def test_utc_midnight_is_not_new_york_midnight(tmp_path: Path) -> None:
    # 2021-03-06 02:00 UTC is still March 5 in New York: yesterday is March 4.
    config = write_run(tmp_path, ENDS_MARCH_5, extra={"local-runtime-now": "2021-03-06T02:00:00+00:00"})
    assert run_inprocess(config) == 0
    assert _days_and_end(tmp_path)[1] == "2021-03-04"


def test_a_start_after_today_is_refused_as_lean_refuses_it(tmp_path: Path) -> None:
    config = write_run(tmp_path, ENDS_MARCH_5, extra={"local-runtime-now": "2021-02-26T15:00:00+00:00"})
    assert run_inprocess(config) == 1
    log = (tmp_path / "results" / "log.txt").read_text()
    assert "Please select start date less than today" in log


def test_a_start_before_1900_is_refused(tmp_path: Path) -> None:
    source = ENDS_MARCH_5.replace("set_start_date(2021, 3, 1)", "set_start_date(1899, 12, 31)")
    assert run_inprocess(write_run(tmp_path, source)) == 1
    assert "Please select a start date after January 1st, 1900." in (tmp_path / "results" / "log.txt").read_text()


@pytest.mark.parametrize("value", ["yesterday", "2021-03-04T20:00:00"])
def test_the_clock_key_must_be_an_aware_instant(tmp_path: Path, value: str) -> None:
    with pytest.raises(LocalConfigError, match="local-runtime-now"):
        load_config(write_run(tmp_path, ENDS_MARCH_5, extra={"local-runtime-now": value}))
