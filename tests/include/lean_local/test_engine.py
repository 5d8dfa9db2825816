from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from include.lean_local.algorithm import QCAlgorithm
from include.lean_local.errors import NotSupportedByLocalRuntime
from tests.conftest import REPO_ROOT
from tests.include.lean_local.helpers import (
    algo_log,
    events,
    run_inprocess,
    run_subprocess,
    summary,
    write_run,
)

FIXTURES = Path(__file__).parent / "fixtures"

BUY_ONCE = """
from AlgorithmImports import *
class BuyOnce(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 1); self.set_end_date(2019, 3, 15); self.set_cash(100000)
        self.sym = self.add_equity("ZZSG", Resolution.DAILY).symbol
        self.sizes = []
    def on_data(self, data):
        if not self.portfolio.invested and not self.transactions.get_open_orders():
            self.sizes.append((self.portfolio.total_portfolio_value, self.securities[self.sym].price,
                               self.calculate_order_quantity(self.sym, 1.0)))
            self.set_holdings(self.sym, 1.0)
        elif self.portfolio.invested:
            # a tiny change is below minimum_order_margin_portfolio_percentage: no order
            self.set_holdings(self.sym, 1.0001)
    def on_end_of_algorithm(self):
        self.object_store.save("sizes", json.dumps(self.sizes))
"""


def _ib_fee(q: float, p: float) -> float:
    fee = 0.005 * abs(q)
    return 1.0 if fee < 1.0 else min(fee, 0.005 * abs(q) * p)


def test_set_holdings_sizing_fee_and_minimum_margin_skip(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, BUY_ONCE, name="buy_once")) == 0
    tpv, price, qty = json.loads((tmp_path / "storage" / "sizes").read_text())[0]
    expected = math.floor(tpv * 0.9975 / price)
    while expected * price > (tpv - _ib_fee(expected, price)) * 0.9975:
        expected -= 1
    assert qty == expected
    evs = events(tmp_path)
    assert [e["status"] for e in evs] == ["submitted", "filled"]
    fill = evs[1]
    assert fill["fillQuantity"] == expected
    assert fill["orderFeeAmount"] == pytest.approx(_ib_fee(expected, fill["fillPrice"]))
    assert summary(tmp_path)["statistics"]["Total Orders"] == "1"
    assert "Portfolio rebalance result ignored" in algo_log(tmp_path)


def test_events_file_matches_golden(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, BUY_ONCE, name="buy_once_golden", algorithm_id="golden")) == 0
    produced = (tmp_path / "results" / "golden-order-events.json").read_bytes()
    assert produced == (FIXTURES / "golden-order-events.json").read_bytes()
    first = json.loads(produced)[0]
    assert list(first) == [
        "id",
        "algorithmId",
        "orderId",
        "orderEventId",
        "symbol",
        "symbolValue",
        "symbolPermtick",
        "time",
        "status",
        "fillPrice",
        "fillPriceCurrency",
        "fillQuantity",
        "direction",
        "isAssignment",
        "quantity",
    ]
    assert b" " not in produced.replace(b"ZZSG 2T", b"")


def test_runs_are_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert run_inprocess(write_run(d, BUY_ONCE, name="buy_once_det")) == 0
    first, second = (d / "results" / "t1-order-events.json" for d in (a, b))
    assert first.read_bytes() == second.read_bytes()


PRE_ORDER = """
from AlgorithmImports import *
class PreOrder(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 1); self.set_end_date(2019, 3, 6)
        self.sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        self.done = False
    def on_data(self, data):
        if self.done: return
        self.done = True
        t0 = self.market_order(self.sym, 0)
        t1 = self.market_order(self.sym, 0.5)
        assert t0.status == OrderStatus.INVALID and t1.status == OrderStatus.INVALID
        self.market_order(self.sym, 1_000_000)
"""


def test_pre_order_checks_and_insufficient_buying_power(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, PRE_ORDER, name="pre_order")) == 0
    log = algo_log(tmp_path)
    assert "Unable to submit order with id 0 that has zero quantity." in log
    assert "Unable to submit order with id 0 which quantity (0.5) is less than lot size (1)." in log
    evs = events(tmp_path)
    assert len(evs) == 1 and evs[0]["orderId"] == 1 and evs[0]["status"] == "invalid"
    assert evs[0]["message"].startswith("Order Error: ids: [1], Insufficient buying power to complete orders")
    assert "orderFeeAmount" not in evs[0]


def test_unsupported_api_raises_named_error() -> None:
    with pytest.raises(NotSupportedByLocalRuntime, match=r"not supported by the local runtime: QCAlgorithm\.add_forex"):
        QCAlgorithm().add_forex("EURUSD")  # type: ignore[operator]


def test_unsupported_resolution_is_an_algorithm_error(tmp_path: Path) -> None:
    src = """
    from AlgorithmImports import *
    class M(QCAlgorithm):
        def initialize(self):
            self.set_start_date(2019, 3, 1); self.set_end_date(2019, 3, 6)
            self.add_equity("ZZSA")
    """
    assert run_inprocess(write_run(tmp_path, src, name="minute_default")) == 1
    assert "not supported by the local runtime: add_equity resolution MINUTE" in algo_log(tmp_path)


def test_error_in_on_data_exits_1_with_traceback(tmp_path: Path) -> None:
    src = """
    from AlgorithmImports import *
    class Boom(QCAlgorithm):
        def initialize(self):
            self.set_start_date(2019, 3, 1); self.set_end_date(2019, 3, 6)
            self.add_equity("ZZSA", Resolution.DAILY)
        def on_data(self, data):
            raise ValueError("boom in on_data")
    """
    result = run_subprocess(write_run(tmp_path, src, name="boom"))
    assert result.returncode == 1
    engine_log = (tmp_path / "results" / "log.txt").read_text()
    assert "Traceback (most recent call last)" in engine_log and "ValueError: boom in on_data" in engine_log
    assert "boom in on_data" in algo_log(tmp_path)


def test_quit_exits_0(tmp_path: Path) -> None:
    src = """
    from AlgorithmImports import *
    class Q(QCAlgorithm):
        def initialize(self):
            self.set_start_date(2019, 3, 1); self.set_end_date(2019, 6, 6)
            self.add_equity("ZZSA", Resolution.DAILY)
            self.n = 0
        def on_data(self, data):
            self.n += 1
            if self.n == 2:
                self.quit("enough")
            assert self.n <= 2
    """
    result = run_subprocess(write_run(tmp_path, src, name="quitter"))
    assert result.returncode == 0, result.stderr
    assert "Analysis Complete." in (tmp_path / "results" / "log.txt").read_text()
    assert summary(tmp_path)["state"]["Status"] == "Completed"  # Lean ends a stopped algorithm Completed


def test_schedule_market_order_becomes_market_on_close(tmp_path: Path) -> None:
    src = """
    from AlgorithmImports import *
    class S(QCAlgorithm):
        def initialize(self):
            self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 8)
            self.sym = self.add_equity("ZZSB", Resolution.DAILY).symbol
            self.schedule.on(self.date_rules.every_day(self.sym), self.time_rules.after_market_open(self.sym, 30),
                             self.buy)
        def buy(self):
            if not self.portfolio.invested and not self.transactions.get_open_orders():
                self.market_order(self.sym, 10)
    """
    assert run_inprocess(write_run(tmp_path, src, name="sched")) == 0
    order = json.loads((tmp_path / "results" / "t1.json").read_text())["orders"]["1"]
    assert order["type"] == 5  # MarketOnClose
    evs = events(tmp_path)
    # 2019-03-04 10:00 has no price yet (the first daily bar ends 16:00): Lean rejects it in pre-order checks
    assert "does not have an accurate price" in algo_log(tmp_path)
    assert evs[0]["time"] == 1551798000.0  # 2019-03-05 10:00 New York
    assert evs[1]["time"] == 1551819600.0  # filled at that day's 16:00 close


def test_inprocess_run_leaves_no_user_module_behind(tmp_path: Path) -> None:
    # the algorithm above is named sched.py, like the standard library's sched: after the run, sys.path and
    # sys.modules must not hand that file to the next `import sched`
    import importlib
    import sys

    path_before = list(sys.path)
    test_schedule_market_order_becomes_market_on_close(tmp_path)
    assert sys.path == path_before
    assert "sched" not in sys.modules or tmp_path.resolve() not in Path(sys.modules["sched"].__file__ or "").parents
    assert hasattr(importlib.import_module("sched"), "scheduler")


def test_unknown_lean_name_is_reported_as_not_supported(tmp_path: Path) -> None:
    src = """
    from AlgorithmImports import *
    class Custom(PythonData):
        pass
    class A(QCAlgorithm):
        def initialize(self):
            self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 8)
    """
    assert run_inprocess(write_run(tmp_path, src)) == 1
    log = (tmp_path / "results" / "log.txt").read_text()
    assert "NotSupportedByLocalRuntime: not supported by the local runtime: PythonData" in log


def test_missing_data_file_is_logged(tmp_path: Path) -> None:
    src = """
    from AlgorithmImports import *
    class Missing(QCAlgorithm):
        def initialize(self):
            self.set_start_date(2019, 3, 1); self.set_end_date(2019, 3, 6)
            self.add_equity("NODATA", Resolution.DAILY)
    """
    assert run_inprocess(write_run(tmp_path, src, name="missing")) == 0
    assert "missing daily data file" in algo_log(tmp_path) and "nodata.zip" in algo_log(tmp_path)


HEAVY_MODULES = ("pandas", "numpy", "pyarrow", "exchange_calendars")


def test_a_run_loads_no_heavy_module(tmp_path: Path) -> None:
    # every DAG run pays the engine's startup: a run that does not ask for pandas must not import it
    config = write_run(tmp_path, BUY_ONCE, name="light")
    code = (
        "import json, sys\n"
        "from include.lean_local.runner import run\n"
        f"code = run({str(config)!r})\n"
        f"print(json.dumps([code, sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r})]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [0, []]


HISTORY = """
from AlgorithmImports import *
class H(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 8)
        self.sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        self.add_equity("ZZSB", Resolution.DAILY)
    def on_end_of_algorithm(self):
        frame = self.history(["ZZSA", "ZZSB"], 3, Resolution.DAILY)
        assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["close", "high", "low", "open", "volume"]
        assert list(frame.index.names) == ["symbol", "time"] and len(frame) == 6
        assert str(frame.index[-1][1]) == "2019-03-08 16:00:00"
        closes = frame.loc[self.sym]["close"]
        assert np.isclose(closes.iloc[-1], self.securities[self.sym].close)
        self.log(f"rows={len(frame)} empty={len(self.history('ZZSA', timedelta(days=0)))}")
"""


def test_history_is_a_dataframe_and_np_pd_are_available(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, HISTORY, name="history_frame")) == 0, algo_log(tmp_path)
    assert "rows=6 empty=0" in algo_log(tmp_path)
