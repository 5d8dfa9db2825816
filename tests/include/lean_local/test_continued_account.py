"""A continued account (issue #17): the statistics' Start Equity, as Lean takes it.

Lean's backtest takes ``StartingPortfolioValue`` as the portfolio's cash once Initialize is done
(Engine/Setup/BacktestingSetupHandler.cs, ``StartingPortfolioValue = algorithm.Portfolio.Cash``):
holdings set in Initialize are not in it. A warm-up re-captures it as the total portfolio value at
the warm-up's end (Engine/Results/BaseResultsHandler.cs ``OnWarmupFinished``), with the prices the
warm-up brought: that is how a continued account starts from cash plus its holdings' value.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any, Literal

import pytest

from include.pipeline import ChainRequest, resolve_run, run_chain
from include.run_folder import ALGORITHM_PATH, DEFAULT_DATA_FOLDER, RunFolder
from tests.include.lean_local.helpers import SAMPLE_DATA, algo_log, run_inprocess, summary, write_run

# ---------------------------------------------------------------------------- the runtime

HOLD_FROM_INITIALIZE = """
from AlgorithmImports import *
class HoldFromInitialize(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2021, 3, 2); self.set_end_date(2021, 3, 4); self.set_cash(10000)
        sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        if HOLD:
            self.portfolio[sym].set_holdings(50.0, 100)
        if WARM_UP:
            self.set_warm_up(1, Resolution.DAILY)
"""


def _close(ticker: str, day: int) -> float:
    """The sample data's raw daily close (no factor file for ZZSA: adjusted == raw)."""
    import zipfile

    with zipfile.ZipFile(SAMPLE_DATA / "equity" / "usa" / "daily" / f"{ticker.lower()}.zip") as archive:
        text = archive.read(archive.namelist()[0]).decode()
    for line in text.splitlines():
        parts = line.split(",")
        if parts[0].startswith(str(day)):
            return int(parts[4]) / 10000
    raise AssertionError(f"no {ticker} bar on {day}")


def _run_hold(tmp: Path, *, hold: bool, warm_up: bool) -> dict[str, Any]:
    source = f"HOLD = {hold}\nWARM_UP = {warm_up}\n" + textwrap.dedent(HOLD_FROM_INITIALIZE)
    assert not (SAMPLE_DATA / "equity" / "usa" / "factor_files" / "zzsa.csv").exists()
    assert run_inprocess(write_run(tmp, source, name="hold")) == 0
    return summary(tmp)


def test_holdings_set_in_initialize_count_from_the_warm_up_end(tmp_path: Path) -> None:
    """With a warm-up, Start Equity is cash + holdings at the close before the start date (the
    warm-up's last price), and every figure that divides by it follows (three sessions: Lean computes its
    portfolio statistics from two daily returns on)."""
    result = _run_hold(tmp_path, hold=True, warm_up=True)
    stats = result["statistics"]
    start = 10000 + 100 * _close("ZZSA", 20210301)
    end = 10000 + 100 * _close("ZZSA", 20210304)
    assert stats["Start Equity"] == f"{start:.2f}".rstrip("0").rstrip(".")
    assert stats["End Equity"] == f"{end:.2f}".rstrip("0").rstrip(".")
    assert stats["Net Profit"] == f"{(end / start - 1) * 100:.3f}%"
    assert result["totalPerformance"]["portfolioStatistics"]["startEquity"] == pytest.approx(start, abs=1e-9)
    assert result["runtimeStatistics"]["Return"] == f"{(end / start - 1) * 100:.2f} %"
    # Lean logs the re-capture (BaseResultsHandler.OnWarmupFinished)
    log = (tmp_path / "results" / "log.txt").read_text()
    assert f"Re-captured starting portfolio value after warm-up: {start}" in log
    assert "Runtime Error" not in algo_log(tmp_path)


def test_holdings_set_in_initialize_without_a_warm_up_start_from_cash(tmp_path: Path) -> None:
    """Without a warm-up Lean's Start Equity is the cash alone (no price is known after Initialize):
    the local runtime reports the same, however odd the return it makes."""
    stats = _run_hold(tmp_path, hold=True, warm_up=False)["statistics"]
    end = 10000 + 100 * _close("ZZSA", 20210304)
    assert stats["Start Equity"] == "10000"
    assert stats["End Equity"] == f"{end:.2f}".rstrip("0").rstrip(".")
    assert stats["Net Profit"] == f"{(end / 10000 - 1) * 100:.3f}%"


@pytest.mark.parametrize("warm_up", [False, True])
def test_a_fresh_account_starts_from_its_cash(tmp_path: Path, warm_up: bool) -> None:
    stats = _run_hold(tmp_path, hold=False, warm_up=warm_up)["statistics"]
    assert stats["Start Equity"] == stats["End Equity"] == "10000"
    assert stats["Net Profit"] == "0%"  # an exact decimal zero: Lean prints it without places
    assert "Re-captured" not in (tmp_path / "results" / "log.txt").read_text()


# ---------------------------------------------------------------------------- the chain

DAY1, DAY2 = dt.date(2021, 3, 1), dt.date(2021, 3, 2)
OPTIONS = {"top_n": 2, "lookback_days": 10}


def _run(
    root: Path, algorithm: Path, *, kind: Literal["daily", "range"], params: dict[str, str], continue_account: bool
) -> RunFolder:
    dag = "lean_backtest_daily" if kind == "daily" else "lean_backtest_range"
    ref, dates = resolve_run(dag_id=dag, kind=kind, run_type="manual", interval_session=None, params=params)
    request = ChainRequest(
        ref=ref,
        dates=tuple(dates),
        options=OPTIONS,
        continue_account=continue_account,
        data_folder=DEFAULT_DATA_FOLDER,
        root=root,
        launch_inputs={"algorithm_path": algorithm},
    )
    return run_chain(request, until="run_lean").folder


def _summary(folder: RunFolder) -> dict[str, Any]:
    (path,) = folder.results_dir.glob("*-summary.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _equity_on(result: dict[str, Any], day: dt.date) -> float:
    """The Strategy Equity point at ``day``'s close (UTC stamp of the close: the same date)."""
    values = result["charts"]["Strategy Equity"]["series"]["Equity"]["values"]
    (value,) = [v[1] for v in values if dt.datetime.fromtimestamp(v[0], dt.UTC).date() == day]
    return float(value)


def _pct(text: str) -> float:
    return float(text.rstrip("%")) / 100


def _chain(root: Path, algorithm: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    day1 = _run(root, algorithm, kind="daily", params={"as_of": DAY1.isoformat()}, continue_account=True)
    day2 = _run(root, algorithm, kind="daily", params={"as_of": DAY2.isoformat()}, continue_account=True)
    assert not day1.initial_state_path.exists()
    assert day2.initial_state_path.read_text() == day1.final_state_path.read_text()
    both = _run(
        root,
        algorithm,
        kind="range",
        params={"start_date": DAY1.isoformat(), "end_date": DAY2.isoformat()},
        continue_account=False,
    )
    return _summary(day1), _summary(day2), _summary(both)


def _check_continued(first: dict[str, Any], second: dict[str, Any], both: dict[str, Any]) -> None:
    after_day1 = _equity_on(both, DAY1)
    stats2, stats_both = second["statistics"], both["statistics"]
    # Day 2 starts where the range run stood after day 1 and ends where it ends, to the cent.
    assert float(stats2["Start Equity"]) == pytest.approx(after_day1, abs=0.005)
    assert float(stats2["End Equity"]) == float(stats_both["End Equity"])
    end = float(stats_both["End Equity"])
    # The return follows from those two values.
    assert float(second["runtimeStatistics"]["Return"].rstrip(" %")) == pytest.approx(
        (end / after_day1 - 1) * 100, abs=0.005
    )
    # A one-day backtest has fewer than two daily returns: Lean computes no portfolio statistics
    # (Common/Statistics/PortfolioStatistics.cs L231-237) and prints its decimal zeros.
    for key in ("Net Profit", "Drawdown", "Compounding Annual Return", "Probabilistic Sharpe Ratio"):
        assert stats2[key] == "0%", key
    assert stats2["Sharpe Ratio"] == stats2["Beta"] == "0"
    # Day 1 (a fresh account) is the first day of the range run.
    assert first["statistics"]["Start Equity"] == stats_both["Start Equity"] == "100000"
    assert float(first["statistics"]["End Equity"]) == _equity_on(both, DAY1)


@pytest.mark.slow
def test_a_continued_day_starts_from_the_previous_day_end(chain_env: Path) -> None:
    """Day 1 then day 2 continuing day 1's account, against one run over both days, with the
    project's algorithm (a continued backtest starts on its day after one warm-up bar)."""
    first, second, both = _chain(chain_env, ALGORITHM_PATH)
    _check_continued(first, second, both)
    # The fresh first day is as before: no warm-up, no re-capture.
    assert first["statistics"]["Start Equity"] == "100000"
    assert first["statistics"]["End Equity"] == "99980.38"
    assert first["statistics"]["Net Profit"] == "-0.020%"
    assert first["statistics"]["Total Orders"] == "2"
    assert second["statistics"]["Total Orders"] == "2"
