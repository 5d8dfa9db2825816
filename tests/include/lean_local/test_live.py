"""The local runtime's live mode behaves as Lean live does: the clock, MarketOnClose at the close, market orders
after the close becoming MarketOnOpen, the paper brokerage's account from ``live-cash-balance``/``live-holdings``,
no exit but ``quit()``, SIGINT or a stop command, Lean's live result files, and Lean's refusals."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from include.launch.brokers import LOCAL_DATA_QUEUE_HANDLER
from include.lean_local.data import DataProvider
from include.lean_local.live import BAR_WAIT_ENV
from tests.conftest import REPO_ROOT
from tests.include.lean_local.helpers import SAMPLE_DATA, algo_log, run_inprocess, write_run

LIVE_ENV = {
    "live-mode": True,
    "live-mode-brokerage": "PaperBrokerage",
    "data-queue-handler": [LOCAL_DATA_QUEUE_HANDLER],
}
# 2021-06-01 is a full session: 15:10 EDT is 19:10 UTC, the close 16:00 EDT is 20:00 UTC.
BEFORE_CLOSE = "2021-06-01T19:10:00+00:00"
AFTER_CLOSE = "2021-06-01T21:30:00+00:00"

MOC = """
from AlgorithmImports import *
class Moc(QCAlgorithm):
    def initialize(self):
        self.set_cash(100000)
        self.settings.seed_initial_prices = True
        self.sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        self.schedule.on(self.date_rules.today, self.time_rules.now, self.submit)
    def submit(self):
        self.log(f"now {self.time:%Y-%m-%d %H:%M} open={self.securities[self.sym].exchange.exchange_open}")
        self.ticket = self.market_on_close_order(self.sym, 10, tag="moc")
    def on_order_event(self, e):
        if e.status == OrderStatus.FILLED:
            self.quit("filled")
    def on_end_of_algorithm(self):
        self.log("end of algorithm")
"""

MARKET_AFTER_CLOSE = """
from AlgorithmImports import *
class AfterClose(QCAlgorithm):
    def initialize(self):
        self.settings.seed_initial_prices = True
        self.sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        self.schedule.on(self.date_rules.today, self.time_rules.now, self.submit)
    def submit(self):
        self.market_order(self.sym, 10, tag="after close")
    def on_order_event(self, e):
        if e.status == OrderStatus.FILLED:
            self.quit("filled")
"""

FOREVER = """
from AlgorithmImports import *
class Forever(QCAlgorithm):
    def initialize(self):
        self.add_equity("ZZSA", Resolution.DAILY)
        self.log("initialized")
        self.schedule.on(self.date_rules.today, self.time_rules.now, lambda: self.object_store.save("running", "1"))
    def on_end_of_algorithm(self):
        self.log("end of algorithm")
"""


@pytest.fixture(autouse=True)
def _no_wait_for_missing_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample data has every bar these runs need: a missing one is a bug here, not a late file."""
    monkeypatch.setenv(BAR_WAIT_ENV, "0")


def _config(tmp: Path, source: str, *, now: str = BEFORE_CLOSE, **extra: Any) -> Path:
    settings: dict[str, Any] = {
        "environment": "live-paper",
        "local-runtime-now": now,
        "live-cash-balance": [{"amount": 50000, "currency": "USD"}],
        "environments": {"backtesting": {"live-mode": False}, "live-paper": dict(LIVE_ENV)},
    }
    settings.update(extra)
    return write_run(tmp, source, name="algo", extra=settings)


def _raw_bar(ticker: str, day: dt.date) -> tuple[float, float]:
    bars = DataProvider(SAMPLE_DATA).load_daily(ticker, adjusted=False)
    assert bars is not None
    row = bars.days.index(int(day.strftime("%Y%m%d")))
    return bars.open[row], bars.close[row]


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _wait_for(path: Path, process: subprocess.Popen[str], what: str) -> None:
    """Until ``path`` exists (the algorithm's sign that it got somewhere; its log is only written at exit)."""
    deadline = time.monotonic() + 60
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), what


def _wait_until_running(tmp: Path, process: subprocess.Popen[str]) -> None:
    """Until the algorithm's first scheduled event ran: its loop is on."""
    _wait_for(tmp / "storage" / "running", process, "the algorithm's loop never started")


def _run_live(config: Path, cwd: Path, act: Callable[[subprocess.Popen[str]], None]) -> tuple[int, str]:
    """The local runtime in a subprocess: ``act`` on it while it runs, then its exit code and stderr once it
    ends (killed if anything fails first, so no engine outlives the test)."""
    process = _subprocess(config, cwd)
    try:
        act(process)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stderr


def _subprocess(config: Path, cwd: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "include.lean_local", "--config", str(config)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_market_on_close_fills_at_the_close_and_quit_ends_the_run(tmp_path: Path) -> None:
    assert run_inprocess(_config(tmp_path, MOC)) == 0
    results = tmp_path / "results"
    events = _json(results / "t1-2021-06-01-order-events.json")
    assert [e["status"] for e in events] == ["submitted", "filled"]
    _, close = _raw_bar("ZZSA", dt.date(2021, 6, 1))
    assert events[1]["fillPrice"] == pytest.approx(close) and events[1]["fillQuantity"] == 10
    assert events[0]["time"] == dt.datetime(2021, 6, 1, 19, 10, tzinfo=dt.UTC).timestamp()
    assert events[1]["time"] == dt.datetime(2021, 6, 1, 20, 0, tzinfo=dt.UTC).timestamp()
    log = algo_log(tmp_path)
    assert "now 2021-06-01 15:10 open=True" in log and "Quit(): filled" in log and "end of algorithm" in log
    # Lean's live results: a LiveResult, no summary, no backtest-style events file
    assert not (results / "t1-summary.json").exists() and not (results / "t1-order-events.json").exists()
    result = _json(results / "t1.json")
    assert result["state"]["Status"] == "Completed" and result["state"]["OrderCount"] == "1"
    assert result["orders"]["1"]["type"] == 5  # MarketOnClose
    assert result["orders"]["1"]["priceAdjustmentMode"] == 0  # live prices are raw
    holding = next(iter(result["holdings"].values()))
    assert holding["quantity"] == 10 and holding["symbol"]["value"] == "ZZSA"
    assert result["cash"]["USD"]["amount"] == pytest.approx(50000 - 10 * close - 1.0)  # the default $1 fee
    assert {"accountCurrency", "runtimeStatistics", "statistics", "charts"} <= set(result)


def test_moc_after_the_cutoff_is_invalid(tmp_path: Path) -> None:
    """Lean refuses a MarketOnClose order within 15.5 minutes of the close (MarketOnCloseOrder.SubmissionTimeBuffer):
    the ticket is invalid at once, no order reaches the brokerage."""
    source = MOC.replace(
        '        self.ticket = self.market_on_close_order(self.sym, 10, tag="moc")',
        '        self.ticket = self.market_on_close_order(self.sym, 10, tag="moc")\n'
        "        if self.ticket.status == OrderStatus.INVALID:\n"
        '            self.quit("invalid")',
    )
    assert run_inprocess(_config(tmp_path, source, now="2021-06-01T19:50:00+00:00")) == 0
    log = algo_log(tmp_path)
    assert "00:15:30 before market close" in log and "Quit(): invalid" in log
    assert not list((tmp_path / "results").glob("*order-events*"))


def test_a_market_order_after_the_close_becomes_market_on_open_across_two_utc_days(tmp_path: Path) -> None:
    """Lean turns a market order sent while the market is closed into MarketOnOpen (live and backtest): it fills
    at the next session's open, when that session's bar arrives; the submission and the fill land in the
    files of two UTC days."""
    assert run_inprocess(_config(tmp_path, MARKET_AFTER_CLOSE, now=AFTER_CLOSE)) == 0
    results = tmp_path / "results"
    first = _json(results / "t1-2021-06-01-order-events.json")
    second = _json(results / "t1-2021-06-02-order-events.json")
    assert [e["status"] for e in first] == ["submitted"] and [e["status"] for e in second] == ["filled"]
    assert first[0]["orderId"] == second[0]["orderId"] == 1
    open_price, _ = _raw_bar("ZZSA", dt.date(2021, 6, 2))
    assert second[0]["fillPrice"] == pytest.approx(open_price)
    assert _json(results / "t1.json")["orders"]["1"]["type"] == 4  # MarketOnOpen


def test_no_data_queue_handler_is_a_runtime_error_as_in_lean(tmp_path: Path) -> None:
    env = {"live-paper": {"live-mode": True, "live-mode-brokerage": "PaperBrokerage"}}
    done = subprocess.run(
        [sys.executable, "-m", "include.lean_local", "--config", str(_config(tmp_path, MOC, environments=env))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "LiveDataQueue has not implemented live data" in done.stderr and "'data-queue-handler'" in done.stderr
    assert not list((tmp_path / "results").glob("*order-events*"))


def test_a_real_brokerage_is_refused_by_name(tmp_path: Path) -> None:
    env = {"live-paper": dict(LIVE_ENV, **{"live-mode-brokerage": "InteractiveBrokersBrokerage"})}
    assert run_inprocess(_config(tmp_path, MOC, environments=env)) == 1
    assert "InteractiveBrokersBrokerage" in (tmp_path / "results" / "log.txt").read_text()


def test_the_paper_account_comes_from_live_cash_balance_and_live_holdings(tmp_path: Path) -> None:
    source = FOREVER.replace(
        'self.log("initialized")',
        "self.schedule.on(self.date_rules.today, self.time_rules.now, self.show)",
    ).replace(
        "    def on_end_of_algorithm(self):",
        "    def show(self):\n"
        '        h = self.portfolio["ZZSB"]\n'
        '        self.log(f"cash={self.portfolio.cash} ZZSB={h.quantity}@{h.average_price} '
        "price={self.securities['ZZSB'].price}\")\n"
        "        self.quit()\n"
        "    def on_end_of_algorithm(self):",
    )
    holdings = [{"Symbol": {"Value": "ZZSB", "ID": "ZZSB 2T"}, "Quantity": 12, "AveragePrice": 40.5}]
    assert run_inprocess(_config(tmp_path, source, **{"live-holdings": holdings})) == 0
    _, previous_close = _raw_bar("ZZSB", dt.date(2021, 5, 28))
    assert f"cash=50000.0 ZZSB=12.0@40.5 price={previous_close}" in algo_log(tmp_path)


def test_it_never_ends_by_itself_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    now = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).isoformat()

    def interrupt(process: subprocess.Popen[str]) -> None:
        _wait_until_running(tmp_path, process)
        time.sleep(2)
        assert process.poll() is None, "Lean live never ends by itself"
        process.send_signal(signal.SIGINT)

    code, stderr = _run_live(_config(tmp_path, FOREVER, now=now), tmp_path, interrupt)
    assert code == 0, stderr
    assert "end of algorithm" in algo_log(tmp_path)
    assert "SIGINT: stopping the algorithm" in (tmp_path / "results" / "log.txt").read_text()


def test_a_stop_command_file_stops_it_and_is_acknowledged(tmp_path: Path) -> None:
    now = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).isoformat()
    work = tmp_path / "work"
    work.mkdir()

    def command_stop(process: subprocess.Popen[str]) -> None:
        _wait_until_running(tmp_path, process)
        assert process.poll() is None
        command = {"$type": "QuantConnect.Commands.AlgorithmStatusCommand, QuantConnect.Common", "Status": "Stopped"}
        (work / "command-1.json").write_text(json.dumps(dict(command, Id="1")))

    code, stderr = _run_live(_config(tmp_path, FOREVER, now=now), work, command_stop)
    assert code == 0, stderr
    assert _json(work / "result-command-1.json")["Success"] is True
    assert not (work / "command-1.json").exists()
    assert "stop command: stopping the algorithm" in (tmp_path / "results" / "log.txt").read_text()


def test_sigint_during_initialize_stops_it_cleanly(tmp_path: Path) -> None:
    """Lean sets its SIGINT handler before the job runs: a SIGINT while Initialize runs stops the algorithm at
    the loop's first step, and Lean still ends the algorithm and exits 0."""
    marker = tmp_path / "in-initialize"
    slow = FOREVER.replace(
        '        self.log("initialized")',
        f"        import pathlib, time\n        pathlib.Path({str(marker)!r}).touch()\n        time.sleep(4)",
    )

    def interrupt_initialize(process: subprocess.Popen[str]) -> None:
        _wait_for(marker, process, "the algorithm never reached Initialize")
        process.send_signal(signal.SIGINT)

    code, stderr = _run_live(_config(tmp_path, slow), tmp_path, interrupt_initialize)
    assert code == 0, stderr
    assert "end of algorithm" in algo_log(tmp_path)
