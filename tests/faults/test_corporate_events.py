"""Corporate events in the check and in a carried account (issue #17), on the sample data's ZZSC, which
splits 2:1 on 2020-06-15 (raw closes 111.02 on 06-12 -> 55.54 on 06-15; adjusted prices halve before it).

* The check judges every fill, bar and quantity on the prices its order was filled on (the order's
  ``priceAdjustmentMode`` in Lean's ``<id>.json``): a backtest's on Adjusted prices, a live run's and a
  Raw-normalised backtest's on raw ones; a finding is dated on its order's day and colours that row only.
* A live account carried over the split takes it as a broker would (and the check fails one that did not).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from include.audit.ingest import NEW_YORK
from include.contracts.report import ConsistencyReport
from include.launch.local import run_lean_local
from include.market_data import read_daily_bars
from include.pipeline import ChainRequest, ChainResult, lean_job, run_chain, step_check, step_ingest
from include.run_folder import DEFAULT_DATA_FOLDER, RunFolder, RunRef
from tests.conftest import manual_chain_request
from tests.faults.helpers import write_algorithm

SPLIT_DAY = dt.date(2020, 6, 15)
BEFORE_SPLIT = dt.date(2020, 6, 12)
LIVE_DAG = "lean_live_rebalance"
LIVE_OPTIONS: dict[str, Any] = {"universe": ["ZZSC", "ZZSA"], "top_n": 2}
# The project's algorithm with every security on Raw prices: Lean then applies the split to the
# holdings itself (SecurityPortfolioManager.ApplySplit) and fills on raw prices in a backtest.
RAW_ALGORITHM = """
from AlgorithmImports import *

from algorithms.lean_trend_rotation import LeanTrendRotation


class RawPrices(LeanTrendRotation):
    def add_equity(self, ticker, resolution=None, *args, **kwargs):
        kwargs["data_normalization_mode"] = DataNormalizationMode.RAW
        return super().add_equity(ticker, resolution, *args, **kwargs)
"""


def _range(start: str, end: str, **launch: Any) -> ChainRequest:
    """A ``lean_backtest_range`` request as the CLI's ``backtest`` makes it (the contract's defaults)."""
    return manual_chain_request(
        "lean_backtest_range", {"start_date": start, "end_date": end}, policy="warn", launch_inputs=launch
    )


def _live(day: dt.date, *, continue_account: bool = True) -> ChainRequest:
    return ChainRequest(
        ref=RunRef.for_date(LIVE_DAG, day),
        dates=(day,),
        mode="live",
        options=LIVE_OPTIONS,
        continue_account=continue_account,
        data_folder=DEFAULT_DATA_FOLDER,
    )


def _report(folder: RunFolder) -> ConsistencyReport:
    return ConsistencyReport.model_validate_json(folder.report_json_path.read_text(encoding="utf-8"))


def _failures(report: ConsistencyReport) -> list[tuple[str, str | None, dt.date | None]]:
    return sorted(((c.check, c.symbol, c.date) for c in report.checks if c.verdict == "fail"), key=str)


def _zzsc_position(report: ConsistencyReport) -> dict[dt.date, float]:
    """ZZSC shares held after each rebalance (adjusted units: continuous across the split)."""
    held, position = 0.0, {}
    for row in report.symbols:
        if row.symbol == "ZZSC" and row.rebalance_date is not None:
            held += row.filled_quantity
            position[row.rebalance_date] = held
    return position


def _stop_after_lean(request: ChainRequest) -> ChainResult:
    return run_chain(request, until="run_lean")


def _check(folder: RunFolder) -> ConsistencyReport:
    step_ingest(folder)
    step_check(folder, policy="warn")
    return _report(folder)


# ---------------------------------------------------------------- the basis of the fills


def test_a_june_2020_backtest_holding_zzsc_over_the_split_passes(chain_env: Path) -> None:
    """Guard: the backtest fills on Adjusted prices and the check reads adjusted bars."""
    result = run_chain(_range("2020-06-01", "2020-06-30"))
    report = _report(result.folder)
    assert report.verdict == "pass", report.failures
    position = _zzsc_position(report)
    assert all(position[day] > 0 for day in (BEFORE_SPLIT, SPLIT_DAY, dt.date(2020, 6, 16)))
    traded = {row.rebalance_date for row in report.symbols if row.symbol == "ZZSC" and row.orders}
    assert {BEFORE_SPLIT, SPLIT_DAY, dt.date(2020, 6, 16)} <= traded
    orders = json.loads((result.folder.results_dir / f"{result.folder.algorithm_id}.json").read_text())["orders"]
    assert {o["priceAdjustmentMode"] for o in orders.values()} == {1}  # Adjusted
    fills = {c.check: c.verdict for c in report.checks if c.check in ("fees", "slippage")}
    assert fills == {"fees": "pass", "slippage": "pass"}


def test_a_raw_price_backtest_over_the_split_passes(chain_env: Path, tmp_path: Path) -> None:
    """A backtest on Raw prices: fills at ~111 before the split and ~55 after, the holding doubled by
    Lean on 06-15. Fails on the code that judged every backtest on adjusted bars."""
    algorithm = write_algorithm(tmp_path / "algo", "raw_prices", RAW_ALGORITHM)
    result = run_chain(_range("2020-06-01", "2020-06-30", algorithm_path=algorithm))
    report = _report(result.folder)
    assert report.verdict == "pass", report.failures
    prices = {
        day: price
        for day, symbol, price in zip(
            report.order_table.rebalance_date,
            report.order_table.symbol,
            report.order_table.average_fill_price,
            strict=True,
        )
        if symbol == "ZZSC"
    }
    assert prices[BEFORE_SPLIT] == pytest.approx(111.0, rel=0.01) and prices[SPLIT_DAY] == pytest.approx(55.5, rel=0.01)
    row = next(r for r in report.symbols if (r.rebalance_date, r.symbol) == (SPLIT_DAY, "ZZSC"))
    assert row.verdict == "pass" and row.reference_price == pytest.approx(111.0239 * 0.5, rel=1e-3)


def test_a_fill_re_priced_to_raw_fails_on_its_own_day_only(chain_env: Path) -> None:
    """A backtest's 06-12 ZZSC fill re-priced to the raw price (2x the adjusted one): ``slippage`` and
    ``fees`` fail, dated 06-12, and only the (06-12, ZZSC) row fails. Fails on the code that kept fill
    findings undated and painted them on every ZZSC row."""
    result = _stop_after_lean(_range("2020-06-01", "2020-06-12"))
    (path,) = result.folder.order_event_files()
    events = json.loads(path.read_bytes())
    repriced = 0
    for event in events:
        day = dt.datetime.fromtimestamp(event["time"], NEW_YORK).date()
        if event["symbolValue"] == "ZZSC" and event["fillQuantity"] and day == BEFORE_SPLIT:
            event["fillPrice"] /= 0.5  # the raw price: the adjusted one divided by the split factor
            repriced += 1
    assert repriced == 1
    path.write_text(json.dumps(events), encoding="utf-8")
    report = _check(result.folder)
    failed_rows = [(r.rebalance_date, r.symbol) for r in report.symbols if r.verdict != "pass"]
    assert failed_rows == [(BEFORE_SPLIT, "ZZSC")]
    assert len([r for r in report.symbols if r.symbol == "ZZSC"]) > 5  # the other ZZSC rows pass
    # Only the fill price was changed: the fee, charged on the security's price (the session's close),
    # still matches it, so only the slippage check fails.
    assert _failures(report) == [("slippage", "ZZSC", BEFORE_SPLIT)]


def test_an_order_filled_on_raw_prices_is_judged_against_raw_bars(chain_env: Path) -> None:
    """The 06-12 ZZSC order of the June backtest relabelled Raw in Lean's ``<id>.json`` (its fill price
    stays the adjusted one): judged against the raw bar, it fails on 06-12 only. Fails on the code that
    ignored the orders' price adjustment mode."""
    result = _stop_after_lean(_range("2020-06-01", "2020-06-30"))
    (path,) = result.folder.order_event_files()
    events = json.loads(path.read_bytes())
    (order_id,) = {
        e["orderId"]
        for e in events
        if e["symbolValue"] == "ZZSC" and dt.datetime.fromtimestamp(e["time"], NEW_YORK).date() == BEFORE_SPLIT
    }
    results = result.folder.results_dir / f"{result.folder.algorithm_id}.json"
    document = json.loads(results.read_text(encoding="utf-8"))
    document["orders"][str(order_id)]["priceAdjustmentMode"] = 0  # Raw
    results.write_text(json.dumps(document), encoding="utf-8")
    report = _check(result.folder)
    # On the raw bar, both the fill price and the fee (charged on the adjusted close, not the raw one) fail.
    assert _failures(report) == [("fees", "ZZSC", BEFORE_SPLIT), ("slippage", "ZZSC", BEFORE_SPLIT)]
    (slippage,) = [c for c in report.checks if c.verdict == "fail" and c.check == "slippage"]
    assert slippage.details["price_basis"] == "Raw" and slippage.details["order_ids"] == [order_id]
    assert [(r.rebalance_date, r.symbol) for r in report.symbols if r.verdict != "pass"] == [(BEFORE_SPLIT, "ZZSC")]


@pytest.mark.parametrize("day", [BEFORE_SPLIT, SPLIT_DAY])
def test_a_live_run_around_the_split_is_judged_on_raw_prices(chain_env: Path, day: dt.date) -> None:
    """Guard: a live run fills on Raw prices (~111 on 06-12, ~55.5 on 06-15) and passes against raw bars."""
    result = run_chain(_live(day, continue_account=False))
    report = _report(result.folder)
    assert report.verdict == "pass", report.failures
    raw_close = float(read_daily_bars(DEFAULT_DATA_FOLDER, "ZZSC", adjusted=False).loc[str(day), "close"])
    (price,) = [
        p for s, p in zip(report.order_table.symbol, report.order_table.average_fill_price, strict=True) if s == "ZZSC"
    ]
    assert price == pytest.approx(raw_close, rel=1e-3)
    orders = json.loads((result.folder.results_dir / f"{result.folder.algorithm_id}.json").read_text())["orders"]
    assert {o["priceAdjustmentMode"] for o in orders.values()} == {0}  # Raw


# ---------------------------------------------------------------- a live account carried over the split


def _value(state: dict[str, Any], day: dt.date) -> float:
    """Cash + holdings at ``day``'s raw close."""
    return float(state["cash"]) + sum(
        float(h["quantity"]) * float(read_daily_bars(DEFAULT_DATA_FOLDER, s, adjusted=False).loc[str(day), "close"])
        for s, h in state["holdings"].items()
    )


def _value_revalued(state: dict[str, Any], held_on: dt.date, day: dt.date) -> float:
    """A state held at ``held_on``'s close, valued at ``day``'s prices: each share is worth what the
    adjusted prices (continuous across splits) say it became."""
    total = float(state["cash"])
    for symbol, holding in state["holdings"].items():
        raw = read_daily_bars(DEFAULT_DATA_FOLDER, symbol, adjusted=False)["close"]
        adjusted = read_daily_bars(DEFAULT_DATA_FOLDER, symbol, adjusted=True)["close"]
        shares_today = float(holding["quantity"]) * raw[str(held_on)] / adjusted[str(held_on)]
        total += shares_today * adjusted[str(day)]
    return total


def test_a_live_account_carried_over_the_split_keeps_its_value(chain_env: Path) -> None:
    """Live 06-12 then live 06-15: the carried account takes the 2:1 split (935 -> 1870 shares, average
    price halved), so it starts 06-15 worth what it ended 06-12 with, at 06-15's prices, and does not buy
    ZZSC back. Fails on the code that copied the final state as it was (half the value)."""
    first = run_chain(_live(BEFORE_SPLIT)).folder
    ended = json.loads(first.final_state_path.read_text(encoding="utf-8"))
    assert ended["holdings"]["ZZSC"]["quantity"] > 0
    second = run_chain(_live(SPLIT_DAY)).folder
    started = json.loads(second.initial_state_path.read_text(encoding="utf-8"))
    assert _value(started, SPLIT_DAY) == pytest.approx(_value_revalued(ended, BEFORE_SPLIT, SPLIT_DAY), rel=1e-9)
    held = ended["holdings"]["ZZSC"]
    assert started["holdings"]["ZZSC"]["quantity"] == 2 * held["quantity"]
    assert started["holdings"]["ZZSC"]["average_price"] == pytest.approx(held["average_price"] / 2)
    (applied,) = started["carried_over"]["corporate_actions"]
    assert (applied["symbol"], applied["kind"], applied["date"], applied["split_factor"]) == (
        "ZZSC",
        "split",
        "2020-06-15",
        0.5,
    )
    assert started["carried_over"]["from_session"] == BEFORE_SPLIT.isoformat()
    report = _report(second)
    assert report.verdict == "pass", report.failures
    ordered = sum(q for s, q in zip(report.order_table.symbol, report.order_table.quantity, strict=True) if s == "ZZSC")
    assert abs(ordered) < 0.02 * started["holdings"]["ZZSC"]["quantity"]  # no buy-back
    (carried,) = [c for c in report.checks if c.check == "corporate_actions"]
    assert (carried.verdict, carried.symbol, carried.date) == ("pass", "ZZSC", SPLIT_DAY)


def test_an_account_carried_over_the_split_without_it_fails_the_check_on_the_split_day(chain_env: Path) -> None:
    """The carried state as the old copy left it (pre-split shares): the check fails
    ``corporate_actions`` for ZZSC, dated 06-15, and only that row. Fails on the code without the check."""
    first = run_chain(_live(BEFORE_SPLIT)).folder
    held = json.loads(first.final_state_path.read_text(encoding="utf-8"))["holdings"]["ZZSC"]["quantity"]
    folder = run_chain(_live(SPLIT_DAY), until="write_params").folder
    folder.initial_state_path.write_text(first.final_state_path.read_text(encoding="utf-8"), encoding="utf-8")
    job = lean_job(folder, mode="live", parameters={"starting-cash": 100_000.0}, data_folder=DEFAULT_DATA_FOLDER)
    run_lean_local(job, timeout_s=300, on_line=lambda _line: None)
    report = _check(folder)
    assert ("corporate_actions", "ZZSC", SPLIT_DAY) in _failures(report)
    (missing,) = [c for c in report.checks if c.check == "corporate_actions"]
    assert f"starts with {held:g} shares, a broker holds {2 * held:g}" in missing.message
    assert {(r.rebalance_date, r.symbol) for r in report.symbols if r.verdict == "fail"} == {(SPLIT_DAY, "ZZSC")}


def test_a_daily_backtest_carried_over_the_split_is_left_as_it_is(chain_env: Path) -> None:
    """Guard: continued daily backtests fill on Adjusted prices, where a holding's quantity is already in
    post-split units on both sides of the split and Lean applies no split (ApplySplit: live or Raw only):
    the final state is carried byte for byte and the 06-15 run passes without trading ZZSC back."""

    def daily(day: dt.date) -> RunFolder:
        request = manual_chain_request(
            "lean_backtest_daily", {"as_of": day.isoformat()}, options=LIVE_OPTIONS, continue_account=True
        )
        return run_chain(request).folder

    first = daily(BEFORE_SPLIT)
    second = daily(SPLIT_DAY)
    assert second.initial_state_path.read_bytes() == first.final_state_path.read_bytes()
    held = json.loads(first.final_state_path.read_text(encoding="utf-8"))["holdings"]["ZZSC"]["quantity"]
    report = _report(second)
    assert report.verdict == "pass", report.failures
    ordered = sum(q for s, q in zip(report.order_table.symbol, report.order_table.quantity, strict=True) if s == "ZZSC")
    assert abs(ordered) < 0.02 * held
    assert not [c for c in report.checks if c.check == "corporate_actions"]
