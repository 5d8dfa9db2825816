from __future__ import annotations

import json
import shutil
from pathlib import Path

from include.audit.parity import compare_runs

FIXTURES = Path(__file__).with_name("fixtures")


def _orders_json(folder: Path, algorithm_id: str, order_type: int, adjustment: int) -> None:
    orders = {"1": {"type": order_type, "id": 1, "priceAdjustmentMode": adjustment, "quantity": 75.0, "status": 3}}
    (folder / f"{algorithm_id}.json").write_text(json.dumps({"orders": orders, "statistics": {}}), encoding="utf-8")


def test_backtest_vs_live_differences_have_causes(tmp_path: Path) -> None:
    backtest = tmp_path / "bt"
    shutil.copytree(FIXTURES / "legacy", backtest)
    live = tmp_path / "live"
    shutil.copytree(FIXTURES / "live" / "results", live)
    _orders_json(backtest, "1234567891", order_type=4, adjustment=1)
    _orders_json(live, "L-3123456789", order_type=0, adjustment=0)
    report = compare_runs(backtest, live)
    assert report.verdict == "equivalent"
    (diff,) = report.orders
    assert diff.symbol == "SPY" and diff.status == "differs"
    assert diff.backtest_order_type == "MarketOnOpen" and diff.live_order_type == "Market"
    assert set(diff.causes) == {"fill_timing", "price_adjustment"}
    assert diff.backtest_quantity == diff.live_quantity == 75


def test_missing_order_is_a_mismatch(tmp_path: Path) -> None:
    report = compare_runs(FIXTURES / "backtest" / "results", FIXTURES / "live" / "results")
    assert report.verdict == "mismatch"
    statuses = {(d.symbol, d.status) for d in report.orders}
    assert ("AAPL", "only_backtest") in statuses and ("QQQ", "only_backtest") in statuses


def test_same_run_is_identical() -> None:
    report = compare_runs(FIXTURES / "backtest", FIXTURES / "backtest")
    assert report.verdict == "identical" and report.summary == {"match": 3}
