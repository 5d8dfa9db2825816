"""Dividends and splits: their midnight slices, as Lean times them, and what they do to a portfolio per mode."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from include.lean_local.corporate import corporate_events, dividend_distribution
from include.lean_local.data import DataProvider
from include.lean_local.enums import SplitType
from include.lean_local.market_data import Dividend, Split
from include.lean_local.sessions import nyse_sessions
from tests.include.lean_local.helpers import algo_log, events, run_inprocess, summary, write_run
from tests.lean_data_factory import write_daily_zip

# CORP: raw 200 through 2020-01-16, then a 1:2 reverse split (raw 400 from 2020-01-17).
# Factor rows: a price factor change after 2020-01-09 is a 2.00 dividend on 2020-01-10 (200 - 200 x 0.99);
# a split factor change after 2020-01-16 is the split on 2020-01-17 (factor 2 / 1 = 2).
FACTORS = "20200109,0.99,2,200\n20200116,1,2,200\n20501231,1,1,0\n"


def _sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    return [d for d in nyse_sessions().dates if start <= d <= end]


def _corp_data(root: Path, factors: str = FACTORS) -> Path:
    bars = [
        (d, p, p, p, p, 1000)
        for d in _sessions(dt.date(2020, 1, 2), dt.date(2020, 1, 31))
        for p in [200.0 if d <= dt.date(2020, 1, 16) else 400.0]
    ]
    write_daily_zip(root, "CORP", bars)
    usa = root / "equity" / "usa"
    (usa / "factor_files").mkdir(parents=True, exist_ok=True)
    (usa / "map_files").mkdir(parents=True, exist_ok=True)
    (usa / "factor_files" / "corp.csv").write_text(factors)
    (usa / "map_files" / "corp.csv").write_text("20200102,corp\n20501231,corp\n")
    return root


RECORDER = """
from AlgorithmImports import *
class Recorder(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2020, 1, 2); self.set_end_date(2020, 1, 31); self.set_cash(10000)
        self.sym = self.add_equity("CORP", Resolution.DAILY, data_normalization_mode=MODE).symbol
        self.rec = []
        self.handlers = []
    def on_dividends(self, dividends: Dividends):
        self.handlers.append(["dividends", str(self.time), [str(k) for k in dividends.keys()]])
    def on_splits(self, splits: Splits):
        self.handlers.append(["splits", str(self.time), [str(k) for k in splits.keys()]])
    def on_data(self, data: Slice):
        sym = self.sym
        row = {"time": str(self.time), "bar": data[sym] is not None, "in": sym in data,
               "price": self.securities[sym].price, "cash": self.portfolio.cash,
               "qty": self.portfolio[sym].quantity, "avg": self.portfolio[sym].average_price,
               "tpv": self.portfolio.total_portfolio_value}
        if data.dividends.contains_key(sym):
            d = data.dividends[sym]
            row["dividend"] = [d.distribution, d.reference_price]
        if data.splits.contains_key(sym):
            s = data.splits[sym]
            row["split"] = [int(s.type), s.split_factor, s.reference_price]
        self.rec.append(row)
        if not self.portfolio.invested and not self.transactions.get_open_orders():
            self.market_order(sym, 11)
    def on_end_of_algorithm(self):
        self.object_store.save("rec", json.dumps({"rows": self.rec, "handlers": self.handlers,
            "dividends": self.portfolio[self.sym].total_dividends}))
"""


def _record(tmp_path: Path, mode: str) -> dict[str, Any]:
    data = _corp_data(tmp_path / "data")
    config = write_run(tmp_path, RECORDER.replace("MODE", mode), data=data)
    assert run_inprocess(config) == 0, algo_log(tmp_path)
    result: dict[str, Any] = json.loads((tmp_path / "storage" / "rec").read_text())
    return result


def _midnights(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["time"]: r for r in rows if r["time"].endswith("00:00:00")}


def test_events_arrive_in_midnight_slices_without_bars(tmp_path: Path) -> None:
    rec = _record(tmp_path, "DataNormalizationMode.ADJUSTED")
    aux = _midnights(rec["rows"])
    assert sorted(aux) == ["2020-01-10 00:00:00", "2020-01-16 00:00:00", "2020-01-17 00:00:00"]
    # the symbol is in the slice, but there is no bar to read: data[symbol] is None, as in Lean
    assert all(r["in"] and not r["bar"] for r in aux.values())
    assert aux["2020-01-10 00:00:00"]["dividend"] == [2.0, 200.0]
    assert aux["2020-01-16 00:00:00"]["split"] == [int(SplitType.WARNING), 2.0, 200.0]  # last raw close
    assert aux["2020-01-17 00:00:00"]["split"] == [int(SplitType.SPLIT_OCCURRED), 2.0, 200.0]  # reference price
    assert rec["handlers"] == [
        ["dividends", "2020-01-10 00:00:00", ["CORP"]],
        ["splits", "2020-01-16 00:00:00", ["CORP"]],
        ["splits", "2020-01-17 00:00:00", ["CORP"]],
    ]
    # adjusted prices already carry both events: no cash, no quantity change
    assert rec["dividends"] == 0
    before, after = aux["2020-01-17 00:00:00"], rec["rows"][-1]
    assert before["qty"] == after["qty"] == 11 and before["cash"] == after["cash"]


def test_raw_mode_pays_dividend_cash_and_splits_holdings(tmp_path: Path) -> None:
    rec = _record(tmp_path, "DataNormalizationMode.RAW")
    rows = rec["rows"]
    aux = _midnights(rows)
    # bought 11 at 200 (fee $1): the dividend pays 11 x 2.00 at midnight of the ex-date
    before_dividend = next(r for r in rows if r["time"] == "2020-01-09 16:00:00")
    assert aux["2020-01-10 00:00:00"]["cash"] == pytest.approx(before_dividend["cash"] + 22.0)
    assert rec["dividends"] == pytest.approx(22.0)
    # 1:2 reverse split: 11 shares -> 5, average price x 2, half a share (at the post-split price 400) in cash
    pre = next(r for r in rows if r["time"] == "2020-01-16 16:00:00")
    split = aux["2020-01-17 00:00:00"]
    assert (pre["qty"], split["qty"]) == (11, 5)
    assert split["avg"] == pytest.approx(pre["avg"] * 2)
    assert split["price"] == pytest.approx(400.0)
    assert split["cash"] == pytest.approx(pre["cash"] + 0.5 * 400.0)
    assert split["tpv"] == pytest.approx(pre["tpv"])  # a split moves no value
    assert rows[-1]["tpv"] == pytest.approx(pre["tpv"])  # raw 400 after the split: flat from there
    stats = summary(tmp_path)["statistics"]
    assert stats["Total Orders"] == "1"


def test_split_adjusted_mode_scales_by_splits_only_and_pays_dividends(tmp_path: Path) -> None:
    rec = _record(tmp_path, "DataNormalizationMode.SPLIT_ADJUSTED")
    first = rec["rows"][0]
    assert first["price"] == pytest.approx(400.0)  # 200 x split factor 2, no dividend factor
    assert rec["dividends"] == pytest.approx(22.0)
    assert rec["rows"][-1]["qty"] == 11  # no holdings change: prices are split-adjusted


def test_total_return_mode_is_refused_by_name(tmp_path: Path) -> None:
    data = _corp_data(tmp_path / "data")
    config = write_run(tmp_path, RECORDER.replace("MODE", "DataNormalizationMode.TOTAL_RETURN"), data=data)
    assert run_inprocess(config) == 1
    assert "not supported by the local runtime: DataNormalizationMode.TOTAL_RETURN" in algo_log(tmp_path)


def test_zero_reference_price_is_a_named_data_error(tmp_path: Path) -> None:
    data = _corp_data(tmp_path / "data", factors="20200109,0.99,1,0\n20501231,1,1,0\n")
    config = write_run(tmp_path, RECORDER.replace("MODE", "DataNormalizationMode.ADJUSTED"), data=data)
    assert run_inprocess(config) == 1
    assert "factor file of CORP: row 20200109 starts a dividend or split but has no reference price" in algo_log(
        tmp_path
    )


LIQUIDATE_BEFORE_DIVIDEND = """
from AlgorithmImports import *
class LiquidateTwice(QCAlgorithm):
    # MACDTrendAlgorithm's shape: once per calendar day, liquidate while the signal says so
    def initialize(self):
        self.set_start_date(2020, 1, 2); self.set_end_date(2020, 1, 14); self.set_cash(10000)
        self.sym = self.add_equity("CORP", Resolution.DAILY).symbol
        self.previous = datetime.min
    def on_data(self, data):
        if self.previous.date() == self.time.date():
            return
        if self.time.date() <= date(2020, 1, 3):
            if not self.portfolio.invested and not self.transactions.get_open_orders():
                self.set_holdings(self.sym, 0.5)
        elif self.time.date() >= date(2020, 1, 9):
            self.liquidate(self.sym)
        self.previous = self.time
"""


def test_liquidate_in_the_dividend_slice_cancels_and_resubmits_the_open_order(tmp_path: Path) -> None:
    # The 2020-01-09 liquidation is a market-on-open order still open at 2020-01-10 00:00 (the dividend's
    # slice): liquidate() cancels it and submits it again, so Lean counts one order more, with the same fill.
    config = write_run(tmp_path, LIQUIDATE_BEFORE_DIVIDEND, data=_corp_data(tmp_path / "data"))
    assert run_inprocess(config) == 0, algo_log(tmp_path)
    sells = [e for e in events(tmp_path) if e["direction"] == "sell"]
    by_order: dict[int, list[str]] = {}
    for event in sells:
        by_order.setdefault(event["orderId"], []).append(event["status"])
    assert list(by_order.values()) == [["submitted", "canceled"], ["submitted", "filled"]]
    assert summary(tmp_path)["statistics"]["Total Orders"] == "3"


def test_dividend_distribution_rounds_half_to_even_like_csharp_decimal() -> None:
    assert dividend_distribution(1.0, Decimal("0.995")) == 0.0  # 0.005 -> 0.00
    assert dividend_distribution(1.0, Decimal("0.985")) == 0.02  # 0.015 -> 0.02
    assert dividend_distribution(206.84, Decimal("0.8774268") / Decimal("0.8815326")) == 0.96


def test_events_only_on_trading_days_inside_the_map_file(tmp_path: Path) -> None:
    data = _corp_data(tmp_path / "data", factors="20200104,0.99,1,200\n20200109,1,1,200\n20501231,1,1,0\n")
    provider = DataProvider(data)
    factors = provider.factor_file("CORP")
    assert factors is not None
    days = nyse_sessions().days
    symbol = provider.symbol_for("CORP")
    # 2020-01-04 is a Saturday: Lean matches row dates against trading days, so no event for that row
    found = corporate_events(symbol, factors, days, data_range=None, raw_close_before=lambda k: 1.0)
    assert found == {}
    # a split after 2020-01-09 falls on 2020-01-10, outside a map file that ends on 2020-01-09
    split = _corp_data(tmp_path / "data2", factors="20200109,1,2,200\n20501231,1,1,0\n")
    factors = DataProvider(split).factor_file("CORP")
    assert factors is not None
    found = corporate_events(symbol, factors, days, data_range=(20200102, 20200109), raw_close_before=lambda k: 7.0)
    ((k, [warning]),) = found.items()
    assert isinstance(warning, Split) and warning.type == SplitType.WARNING and warning.price == 7.0
    assert days[k] == 20200109
    assert not any(isinstance(e, Dividend) for items in found.values() for e in items)
    assert all(days[step] == 20200109 for step in found)
