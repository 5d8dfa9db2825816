"""Lean's coarse universe selection in the local runtime (include/lean_local/universes.py): the times and the
changes computed from Lean's rules (UniverseSelection.ApplyUniverseSelection, PendingRemovalsManager,
Fundamental's EndTime), on a small data folder."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from pathlib import Path

from include.lean_local.universes import parse_sid, read_coarse, selection_time
from tests.include.lean_local.helpers import SAMPLE_DATA, run_inprocess, run_subprocess, write_run


def test_a_coarse_file_is_selected_at_the_midnight_after_its_day() -> None:
    """Fundamental's EndTime is its Time (the file's day) + 1 day: a Friday's file selects at Saturday 00:00."""
    assert selection_time(dt.date(2014, 3, 24)) == dt.datetime(2014, 3, 25)
    assert selection_time(dt.date(2014, 3, 28)) == dt.datetime(2014, 3, 29)


def test_security_identifiers_of_coarse_lines_keep_their_first_ticker_and_date() -> None:
    for text in ("AAPL R735QTJ8XC9X", "FB V6OIPNZEM8V9", "GOOCV VP83T1ZUHROL"):
        assert str(parse_sid(text)) == text
    assert parse_sid("SPY R735QTJ8XC9X").date == dt.date(1998, 1, 2)


def test_coarse_lines_are_read_as_lean_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "20140324.csv"
    path.write_text("AAPL R735QTJ8XC9X,AAPL,539.1,11628740,6269053734,True,0.8961764,0.0357143\nbad line\n")
    (row,) = read_coarse(path, dt.date(2014, 3, 24))
    assert (row.symbol.value, row.price, row.volume, row.dollar_volume, row.has_fundamental_data) == (
        "AAPL",
        539.1,
        11628740,
        6269053734.0,
        True,
    )
    assert row.adjusted_price == 539.1 * 0.8961764 * 0.0357143
    assert row.end_time == dt.datetime(2014, 3, 25)


UNIVERSE = """
from AlgorithmImports import *
class Top1(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 7); self.set_end_date(2019, 3, 12)
        self.universe_settings.resolution = Resolution.DAILY
        self.add_universe(lambda coarse: [c.symbol for c in sorted(coarse, key=lambda c: -c.dollar_volume)[:1]])
        self.seen = []
    def on_securities_changed(self, changes):
        self.seen.append([str(self.time), [s.symbol.value for s in changes.added_securities],
                          [s.symbol.value for s in changes.removed_securities]])
    def on_data(self, data):
        self.seen.append([str(self.time), sorted(k.value for k in data.keys())])
        if self.time.day == 8:
            self.market_order("AAA", 10)
    def on_end_of_algorithm(self):
        self.seen.append(["BBB price", self.securities["BBB"].price])
        self.seen.append(["active", sorted(k.value for k in self.active_securities.keys())])
        self.object_store.save("seen", json.dumps(self.seen))
"""


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    for folder in ("market-hours", "symbol-properties"):
        shutil.copytree(SAMPLE_DATA / folder, data / folder)
    usa = data / "equity" / "usa"
    coarse = usa / "fundamental" / "coarse"
    coarse.mkdir(parents=True)
    volumes = {7: (2000, 1000), 8: (1000, 2000), 11: (2000, 1000), 12: (2000, 1000)}  # (AAA, BBB) dollar volume
    for day, (a, b) in volumes.items():
        (coarse / f"201903{day:02d}.csv").write_text(
            f"AAA 2T,AAA,10,{a // 10},{a},True,1,1\nBBB 2T,BBB,10,{b // 10},{b},True,1,1\n"
        )
    for ticker in ("aaa", "bbb"):
        (usa / "daily").mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(usa / "daily" / f"{ticker}.zip", "w") as archive:
            rows = [f"201903{d:02d} 00:00,100000,100000,100000,100000,100" for d in (7, 8, 11, 12)]
            archive.writestr(f"{ticker}.csv", "\n".join(rows) + "\n")
    return data


def test_coarse_selection_times_additions_and_pending_removals(tmp_path: Path) -> None:
    """File 3/7 selects AAA at 3/8 00:00 (its first bar at 3/8's close); file 3/8 (a Friday) selects BBB at
    Saturday 00:00 and reports AAA removed, but AAA, held, stays (a pending removal) and keeps its data; file 3/11
    selects AAA again at 3/12 00:00: it is still a member, so not reported added, while BBB, not held, is
    removed: no data after, its price reset. File 3/12 selects nothing (3/13 is after the end)."""
    assert run_inprocess(write_run(tmp_path, UNIVERSE, name="top1", data=_data(tmp_path))) == 0
    seen = json.loads((tmp_path / "storage" / "seen").read_text())
    assert seen == [
        ["2019-03-08 00:00:00", ["AAA"], []],
        ["2019-03-08 16:00:00", ["AAA"]],
        ["2019-03-09 00:00:00", ["BBB"], ["AAA"]],
        ["2019-03-11 16:00:00", ["AAA", "BBB"]],
        ["2019-03-12 00:00:00", [], ["BBB"]],
        ["2019-03-12 16:00:00", ["AAA"]],
        ["BBB price", 0.0],
        ["active", ["AAA"]],
    ]


def test_a_universe_selecting_a_renamed_share_class_is_refused(tmp_path: Path) -> None:
    data = _data(tmp_path)
    (data / "equity" / "usa" / "map_files").mkdir(parents=True)
    (data / "equity" / "usa" / "map_files" / "aaa.csv").write_text("20100101,zzz,Q\n20501231,aaa,Q\n")
    done = run_subprocess(write_run(tmp_path, UNIVERSE, name="top1", data=data))
    assert done.returncode == 1
    assert "not supported by the local runtime: a universe selecting AAA (AAA 2T)" in done.stderr


def test_other_universes_are_refused_by_name(tmp_path: Path) -> None:
    source = UNIVERSE.replace("self.add_universe(lambda", "self.add_universe(self.fine, lambda").replace(
        "def on_securities_changed", "def fine(self, f):\n        return []\n    def on_securities_changed"
    )
    done = run_subprocess(write_run(tmp_path, source, name="top1", data=_data(tmp_path)))
    assert done.returncode == 1
    assert "not supported by the local runtime: add_universe with" in done.stderr


def test_total_fees_are_summed_as_leans_decimals(tmp_path: Path) -> None:
    """NoUniverseSelectorRegressionAlgorithm's fees sum to 17.925 in Lean's decimals ($17.93), to
    17.924999999999997 in floats."""
    from include.lean_local.statistics import InterestRates, LeanSeries, StatisticsInput, compute

    total = 0.0
    for fee in [2.195, 1.0, 2.52, 1.0, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.11, 1.0, 1.0]:
        total += fee
    assert total != 17.925
    data = StatisticsInput(100000.0, LeanSeries(), 15, total, [], InterestRates(tmp_path))
    assert compute(data)["Total Fees"] == "$17.93"


def test_the_tradable_day_before_the_start_is_selected_at_the_start(tmp_path: Path) -> None:
    """Lean starts a universe's subscription at the tradable day before the start (DataManager.cs): a Monday start
    selects Friday's file at Monday 00:00, not at Saturday's."""
    source = UNIVERSE.replace("self.set_start_date(2019, 3, 7)", "self.set_start_date(2019, 3, 11)")
    assert run_inprocess(write_run(tmp_path, source, name="top1", data=_data(tmp_path))) == 0
    seen = json.loads((tmp_path / "storage" / "seen").read_text())
    assert seen[:4] == [
        ["2019-03-11 00:00:00", ["BBB"], []],
        ["2019-03-11 16:00:00", ["BBB"]],
        ["2019-03-12 00:00:00", ["AAA"], ["BBB"]],
        ["2019-03-12 16:00:00", ["AAA"]],
    ]


SELECTED = """
from AlgorithmImports import *
class Selected(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 8); self.set_end_date(2019, 3, 12)
        self.universe_settings.resolution = Resolution.DAILY
        self.u = self.add_universe(lambda coarse: [c.symbol for c in sorted(coarse, key=lambda c: c.dollar_volume)])
    def on_end_of_algorithm(self):
        self.object_store.save("seen", json.dumps([[s.value for s in self.u.selected], self.u.selected.count,
                                                   sorted(s.value for s in self.u.members.keys())]))
"""


def test_a_universes_selection_keeps_the_selectors_order(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, SELECTED, name="selected", data=_data(tmp_path))) == 0
    assert json.loads((tmp_path / "storage" / "seen").read_text()) == [["BBB", "AAA"], 2, ["AAA", "BBB"]]


MODEL = """
from AlgorithmImports import *
class Model(FundamentalUniverseSelectionModel):
    def __init__(self, algorithm):
        super().__init__()
        self.algorithm = algorithm
    def select(self, algorithm, fundamental):
        fundamental = list(fundamental)
        self.algorithm.seen.append([str(algorithm.time), len(fundamental)])
        if len(self.algorithm.seen) == 1:
            return [Symbol.create("AAA", SecurityType.EQUITY, Market.USA)]
        return Universe.UNCHANGED
class Unchanged(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 7); self.set_end_date(2019, 3, 12)
        self.universe_settings.resolution = Resolution.DAILY
        self.seen = []
        self.set_universe_selection(Model(self))
    def on_securities_changed(self, changes):
        self.seen.append([str(self.time), [s.symbol.value for s in changes.added_securities]])
    def on_end_of_algorithm(self):
        self.object_store.save("seen", json.dumps(self.seen))
"""


def test_a_missing_file_selects_on_nothing_and_unchanged_keeps_the_selection(tmp_path: Path) -> None:
    """The tradable day before the start (3/6) has no file: Lean still emits its (empty) collection, selected at
    the start; Universe.UNCHANGED keeps the members (AAA is never removed)."""
    assert run_inprocess(write_run(tmp_path, MODEL, name="unchanged", data=_data(tmp_path))) == 0
    assert json.loads((tmp_path / "storage" / "seen").read_text()) == [
        ["2019-03-07 00:00:00", 0],
        ["2019-03-07 00:00:00", ["AAA"]],
        ["2019-03-08 00:00:00", 2],
        ["2019-03-09 00:00:00", 2],
        ["2019-03-12 00:00:00", 2],
    ]


SCHEDULED = """
from AlgorithmImports import *
class Scheduled(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 7); self.set_end_date(2019, 3, 12)
        self.universe_settings.resolution = Resolution.DAILY
        self.seen = []
        self.add_universe(self.date_rules.on(datetime(2019, 3, 11)), lambda f: self.record("a", f))
        settings = UniverseSettings(self.universe_settings)
        settings.schedule.on(self.date_rules.on(datetime(2019, 3, 1), datetime(2019, 3, 12)))
        self.add_universe(FundamentalUniverse.usa(lambda f: self.record("b", f), settings))
    def record(self, name, fundamental):
        self.seen.append([name, str(self.time), len(list(fundamental))])
        return []
    def on_end_of_algorithm(self):
        self.object_store.save("seen", json.dumps(self.seen))
"""


def test_scheduled_universes_select_at_their_dates(tmp_path: Path) -> None:
    """A schedule's last date by the start (3/1) selects at the start, on the file before it (2/28: missing, so
    empty); each later date at its midnight on the last file by then (3/11: Friday 3/8's; 3/12: 3/11's). A
    schedule without a date by the start (a) selects first at its date."""
    assert run_inprocess(write_run(tmp_path, SCHEDULED, name="scheduled", data=_data(tmp_path))) == 0
    assert json.loads((tmp_path / "storage" / "seen").read_text()) == [
        ["b", "2019-03-07 00:00:00", 0],
        ["a", "2019-03-11 00:00:00", 2],
        ["b", "2019-03-12 00:00:00", 2],
    ]


SEEDED = """
from AlgorithmImports import *
class Seeded(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 11); self.set_end_date(2019, 3, 12)
        seeder = FuncSecuritySeeder(self.get_last_known_prices)
        self.set_security_initializer(CompositeSecurityInitializer(
            FuncSecurityInitializer(lambda s: s.set_fee_model(ConstantFeeModel(0))),
            FuncSecurityInitializer(lambda s: seeder.seed_security(s))))
        a = self.add_equity("AAA", Resolution.DAILY)
        bars = self.get_last_known_prices(a)
        self.object_store.save("seen", json.dumps([a.price, [str(b.end_time) for b in bars]]))
"""


def test_a_func_security_seeder_prices_a_security_with_its_last_known_bar(tmp_path: Path) -> None:
    """At the start (3/11 00:00) the last bar that closed is Friday 3/8's (its close, 10)."""
    assert run_inprocess(write_run(tmp_path, SEEDED, name="seeded", data=_data(tmp_path))) == 0
    assert json.loads((tmp_path / "storage" / "seen").read_text()) == [10.0, ["2019-03-08 16:00:00"]]


def test_a_universe_of_tickers_by_time_is_refused_by_name(tmp_path: Path) -> None:
    source = UNIVERSE.replace(
        "self.add_universe(lambda coarse:", "self.add_universe('My', Resolution.DAILY, lambda t: ['AAA']) or (lambda c:"
    )
    done = run_subprocess(write_run(tmp_path, source, name="top1", data=_data(tmp_path)))
    assert done.returncode == 1
    assert "not supported by the local runtime: add_universe(name, resolution, selector)" in done.stderr
