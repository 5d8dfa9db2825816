"""Lean's statistics in the local runtime: C#'s number printing, Lean's sampling, the benchmark.

The figures of Lean's own regression algorithms are in test_fidelity.py (a Lean checkout); these tests need
only the bundled sample data, which has no SPY: the default benchmark then has no data, as it would in Lean.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import math
import shutil
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from include.lean_local.benchmark import smart_rounding
from include.lean_local.sessions import local_to_utc, utc_to_local
from include.lean_local.statistics import (
    InterestRates,
    LeanSeries,
    StatisticsInput,
    Step,
    compute,
    decimal_from_double,
    decimal_str,
    double_str,
    drawdown_metrics,
    resample_period,
    round_decimal,
    round_double,
    sample_backtest,
)
from tests.include.lean_local.helpers import SAMPLE_DATA, algo_log, run_inprocess, summary, write_run

NY = dt.datetime


# ---------------------------------------------------------------------------- C# numbers
def test_csharp_number_printing() -> None:
    # (decimal)double keeps 15 significant digits and drops trailing zeros
    assert decimal_from_double(0.1) == Decimal("0.1") and decimal_str(decimal_from_double(100.0)) == "100"
    assert decimal_str(decimal_from_double(1 / 3)) == "0.333333333333333"
    # Math.Round(decimal) rounds half to even and never adds places
    assert decimal_str(round_decimal(Decimal("0.008") * 100, 3)) == "0.800"
    assert decimal_str(round_decimal(Decimal(0) * 100, 3)) == "0"
    assert decimal_str(round_decimal(Decimal("0.0000004") * 100, 3)) == "0.000"
    assert decimal_str(round_decimal(Decimal("2.5"), 0)) == "2"
    # Math.Round(double) scales, rounds to even and scales back: 5.2855 * 1000 is 5285.5 in binary
    assert round_double(5.2855, 3) == 5.286 and round(5.2855, 3) == 5.285
    # double.ToString(): shortest text, -0 for a negative zero, E notation outside [1E-05, 1E+15)
    assert double_str(round_double(-0.0001, 3)) == "-0" and double_str(round_double(0.0001, 3)) == "0"
    assert double_str(-19.0) == "-19" and double_str(0.02) == "0.02" and double_str(17.304) == "17.304"
    assert (
        double_str(1e16) == "1E+16"
        and double_str(1.5e-6) == "1.5E-06"
        and double_str(123456789012345.0) == "123456789012345"
    )
    # SmartRounding: 7 significant digits below 1000, 4 places above
    assert smart_rounding(Decimal("143.07840976800")) == Decimal("143.0784")
    assert smart_rounding(Decimal("1234.567891")) == Decimal("1234.5679")


# ---------------------------------------------------------------------------- sampling
def _steps(values: list[tuple[dt.date, float]], volumes: list[float] | None = None) -> list[Step]:
    volumes = volumes or [0.0] * len(values)
    return [
        Step(NY.combine(day, dt.time(16)), value, volume) for (day, value), volume in zip(values, volumes, strict=True)
    ]


def test_samples_at_midnight_and_after_the_last_slice() -> None:
    """Lean samples at midnight of every calendar day (weekends too) and once after the last time slice; the
    Strategy Equity also gets a point at each time slice once the resample period (4 minutes here) passed."""
    days = [dt.date(2021, 3, 4), dt.date(2021, 3, 5), dt.date(2021, 3, 8)]  # Thu, Fri, Mon
    steps = _steps(list(zip(days, [101.0, 99.0, 103.0], strict=True)))
    hourly = [NY.combine(day, dt.time(hour)) for day in days for hour in range(10, 17)]

    def bench(local: dt.datetime) -> Decimal:
        return Decimal(sum(1 for t in hourly if t <= local))  # the number of bars that ended by then

    series = sample_backtest(NY(2021, 3, 4), NY(2021, 3, 8), 100.0, steps, bench, hourly)
    midnights = [local_to_utc(NY(2021, 3, d)) for d in (4, 5, 6, 7, 8)]
    assert [t for t, _, _ in series.samples] == [*midnights, local_to_utc(NY(2021, 3, 8, 16))]
    assert [v for _, v, _ in series.samples] == [100.0, 101.0, 99.0, 99.0, 99.0, 103.0]
    assert [b for _, _, b in series.samples] == [0, 7, 14, 14, 14, 21]
    assert series.performance[:3] == [0.0, 1.0, round(-2 / 101 * 100, 10)]
    # equity: the start, each hourly slice (the value of the last close until the next close), the midnights
    assert series.equity[0] == (midnights[0], 100.0)
    assert (local_to_utc(NY(2021, 3, 5, 15)), 101.0) in series.equity
    assert (local_to_utc(NY(2021, 3, 5, 16)), 99.0) in series.equity
    assert series.equity[-1] == (local_to_utc(NY(2021, 3, 8, 16)), 103.0)
    assert [d for _, d in series.drawdown] == [0.0, 0.0, round((99 / 101 - 1) * 100, 2), -1.98, -1.98, 0.0]


def test_the_resample_period_spaces_the_equity_points() -> None:
    """A year: an equity point after a slice only once a 4000th of the backtest (about 2.2 hours) has passed
    since the last such point; the midnight samples come on top."""
    start = NY(2021, 1, 4)
    days = [start.date() + dt.timedelta(days=i) for i in range(360) if (start + dt.timedelta(days=i)).weekday() < 5]
    steps = _steps([(d, 100.0 + i) for i, d in enumerate(days)])
    hourly = [NY.combine(day, dt.time(hour)) for day in days for hour in range(10, 17)]
    end = NY.combine(days[-1], dt.time())
    series = sample_backtest(start, end, 100.0, steps, lambda _t: Decimal(1), hourly)
    period = resample_period(start, end)
    assert dt.timedelta(hours=2) < period < dt.timedelta(hours=3)
    after_slices = [t for t, _ in series.equity if utc_to_local(t).time() != dt.time()]
    assert all(b - a >= period for a, b in itertools.pairwise(after_slices[:-1]))
    assert len(series.samples) == (days[-1] - days[0]).days + 2  # every midnight, then the last close


def test_drawdown_recovery_counts_days_from_the_peak_to_the_recovery() -> None:
    utc = [local_to_utc(NY(2021, 3, d, 16)) for d in range(1, 8)]
    points = list(zip(utc, [100.0, 110.0, 99.0, 105.0, 110.0, 108.0, 111.0], strict=True))
    drawdown, recovery = drawdown_metrics(points)
    assert drawdown == Decimal("0.100") and recovery == 3  # peak on the 2nd, back at it on the 5th
    assert drawdown_metrics([(utc[0], 100.0), (utc[1], 101.0)]) == (Decimal(0), 0)


# ---------------------------------------------------------------------------- statistics
def _series(values: list[float], benchmark: list[float] | None = None, turnover: float = 0.0) -> LeanSeries:
    days = [dt.date(2021, 3, 1) + dt.timedelta(days=i) for i in range(len(values))]
    bench = benchmark or [0.0] * len(values)
    series = LeanSeries()
    previous = values[0]
    for day, value, level in zip(days, values, bench, strict=True):
        when = local_to_utc(NY.combine(day, dt.time()))
        series.samples.append((when, value, Decimal(repr(level))))
        series.equity.append((when, value))
        series.performance.append(round((value - previous) * 100 / previous, 10))
        series.turnover.append(turnover)
        previous = value
    return series


def _stats(series: LeanSeries, trades: list[float] | None = None, tmp: Path | None = None) -> dict[str, str]:
    rates = InterestRates(tmp or Path("/nonexistent"))  # no file: Lean's 1% every day
    return compute(StatisticsInput(series.samples[0][1], series, 1, 1.0, trades or [], rates))


def test_exact_zeros_print_without_places() -> None:
    """Lean's decimals keep their scale: a statistic that is an exact zero prints 0%, a rounded one 0.000%."""
    flat = _stats(_series([100000.0] * 6))
    for key in ("Net Profit", "Compounding Annual Return", "Drawdown", "Average Win", "Portfolio Turnover"):
        assert flat[key] == "0%", key
    assert flat["Probabilistic Sharpe Ratio"] == "0%" and flat["Sharpe Ratio"] == "0" and flat["Expectancy"] == "0"
    tiny = _stats(_series([100000.0, 100000.0, 100010.0, 100009.99, 100011.0, 100012.0], turnover=0.00001))
    assert tiny["Drawdown"] == "0.000%" and tiny["Portfolio Turnover"] == "0.00%" and tiny["Net Profit"] == "0.012%"
    trades = _stats(_series([100000.0, 100000.0, 100300.0, 100200.0, 100600.0, 100900.0]), trades=[300.0, -100.0])
    assert trades["Average Win"] == "0.30%" and trades["Average Loss"] == "-0.10%"  # two places kept
    assert trades["Win Rate"] == trades["Loss Rate"] == "50%"


def test_fewer_than_two_daily_returns_compute_nothing() -> None:
    """PortfolioStatistics returns early below two daily returns (the first two samples carry none): a short
    backtest prints zeros for Net Profit and the rest, and its real Start and End Equity."""
    stats = _stats(_series([100000.0, 100000.0, 101000.0]))
    assert stats["Net Profit"] == stats["Drawdown"] == stats["Compounding Annual Return"] == "0%"
    assert stats["Sharpe Ratio"] == stats["Beta"] == stats["Drawdown Recovery"] == "0"
    assert stats["Start Equity"] == "100000" and stats["End Equity"] == "101000"


def test_a_benchmark_without_data_is_a_flat_line() -> None:
    """No benchmark data: Lean's benchmark is 0 every day, its daily changes are 0, so Beta, Alpha and Treynor
    are 0, the Tracking Error is the strategy's own volatility and the Information Ratio its annual return over
    it."""
    values = [100000.0, 100000.0, 100500.0, 99800.0, 101000.0, 100700.0, 101900.0]
    stats = _stats(_series(values))
    assert stats["Beta"] == stats["Alpha"] == stats["Treynor Ratio"] == "0"
    assert stats["Tracking Error"] == stats["Annual Standard Deviation"] != "0"
    performance = [v / w - 1 for v, w in zip(values[2:], values[1:-1], strict=True)]
    mean = sum(performance) / len(performance)
    sd = math.sqrt(sum((p - mean) ** 2 for p in performance) / (len(performance) - 1) * 252)
    assert stats["Information Ratio"] == double_str(round_double(((1 + mean) ** 252 - 1) / sd, 3))
    # with a benchmark that moves like the strategy, Beta is 1 and the Tracking Error 0
    same = _stats(_series(values, benchmark=[v / 1000 for v in values]))
    assert same["Beta"] == "1" and same["Tracking Error"] == "0"


def test_interest_rates_as_lean_reads_them(tmp_path: Path) -> None:
    folder = tmp_path / "alternative" / "interest-rate" / "usa"
    folder.mkdir(parents=True)
    (folder / "interest-rate.csv").write_text("DATE,PCREDIT8\n2003-01-09,2.25\n2003-06-26,2.00\n")
    rates = InterestRates(tmp_path)
    assert rates.rate_on(dt.date(1990, 1, 1)) == rates.rate_on(dt.date(2003, 1, 8)) == 0.0225
    assert rates.rate_on(dt.date(2003, 6, 26)) == rates.rate_on(dt.date(2030, 1, 1)) == 0.02
    assert InterestRates(tmp_path / "none").rate_on(dt.date(2021, 1, 1)) == 0.01


# ---------------------------------------------------------------------------- the runtime
BUY_AND_HOLD = """
from AlgorithmImports import *
class BuyAndHold(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2021, 2, 1); self.set_end_date(2021, 3, 31); self.set_cash(100000)
        self.sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        BENCHMARK
    def on_data(self, data):
        if not self.portfolio.invested:
            self.set_holdings(self.sym, 0.5)
        LATE
"""


def _run(tmp: Path, benchmark: str = "", late: str = "", data: Path | None = None) -> int:
    source = BUY_AND_HOLD.replace("BENCHMARK", benchmark or "pass").replace("LATE", late or "pass")
    return run_inprocess(write_run(tmp, source, name="bh", data=data))


def _result(tmp: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp / "results" / "t1.json").read_text())
    return data


def _values(result: dict[str, Any], chart: str, series: str) -> list[list[Any]]:
    values: list[list[Any]] = result["charts"][chart]["series"][series]["values"]
    return values


def test_the_default_benchmark_spy_without_data(tmp_path: Path) -> None:
    """The sample data has no SPY: Lean's default benchmark then reads 0 all along, and the runtime says so."""
    assert _run(tmp_path) == 0
    result = _result(tmp_path)
    stats = summary(tmp_path)["statistics"]
    assert stats == result["statistics"]
    benchmark = _values(result, "Benchmark", "Benchmark")
    assert len(benchmark) > 50 and {v for _, v in benchmark} == {0.0}
    assert result["charts"]["Benchmark"]["series"]["Benchmark"]["unit"] == "$"
    drawdown = result["charts"]["Drawdown"]["series"]["Equity Drawdown"]
    assert drawdown["unit"] == "%" and [t for t, _ in drawdown["values"]] == [t for t, _ in benchmark]
    assert min(v for _, v in drawdown["values"]) < 0
    assert stats["Beta"] == stats["Alpha"] == stats["Treynor Ratio"] == "0"
    assert stats["Tracking Error"] == stats["Annual Standard Deviation"]
    assert stats["Information Ratio"] not in ("0", "-0")
    assert stats["Probabilistic Sharpe Ratio"].endswith("%") and stats["Drawdown Recovery"].isdigit()
    assert list(stats)[:3] == ["Total Orders", "Average Win", "Average Loss"]  # Lean's order
    assert "Estimated Strategy Capacity" not in stats
    runtime = result["runtimeStatistics"]
    assert runtime["Probabilistic Sharpe Ratio"] == stats["Probabilistic Sharpe Ratio"] and list(runtime) == sorted(
        runtime
    )
    log = (tmp_path / "results" / "log.txt").read_text()
    assert "Benchmark: no hourly data for SPY" in log and "hour/spy.zip" in log
    assert "no interest rates" in log  # the sample data has none: Lean's 1%


def _with_hourly(tmp: Path, ticker: str) -> Path:
    """The sample data plus an hourly file for ``ticker``: each session's bars end 10:00..16:00, the last
    one closing at the daily close."""
    data = tmp / "data"
    shutil.copytree(SAMPLE_DATA, data)
    with zipfile.ZipFile(SAMPLE_DATA / "equity" / "usa" / "daily" / f"{ticker.lower()}.zip") as archive:
        daily = archive.read(archive.namelist()[0]).decode().splitlines()
    out = io.StringIO()
    for line in daily:
        stamp, o, h, lo, c, v = line.split(",")
        for hour in range(9, 16):
            close = c if hour == 15 else o
            out.write(f"{stamp[:8]} {hour:02d}:00,{o},{h},{lo},{close},{int(v) // 7}\n")
    hour_dir = data / "equity" / "usa" / "hour"
    hour_dir.mkdir()
    with zipfile.ZipFile(hour_dir / f"{ticker.lower()}.zip", "w") as archive:
        archive.writestr(f"{ticker.lower()}.csv", out.getvalue())
    return data


def _daily_closes(ticker: str) -> dict[dt.date, float]:
    with zipfile.ZipFile(SAMPLE_DATA / "equity" / "usa" / "daily" / f"{ticker.lower()}.zip") as archive:
        rows = archive.read(archive.namelist()[0]).decode().splitlines()
    return {dt.datetime.strptime(r[:8], "%Y%m%d").date(): int(r.split(",")[4]) / 10000 for r in rows}


@pytest.mark.parametrize(
    "call",
    [
        'self.set_benchmark("ZZSB")',
        'self.set_benchmark(ticker="ZZSB")',
        'self.set_benchmark(Symbol.create("ZZSB", SecurityType.EQUITY, Market.USA))',
        'self.set_benchmark(symbol=Symbol.create("ZZSB", SecurityType.EQUITY, Market.USA))',
        'self.set_benchmark(SecurityType.EQUITY, "ZZSB")',
        'self.set_benchmark(security_type=SecurityType.EQUITY, symbol="ZZSB")',
    ],
)
def test_set_benchmark_to_a_security_with_hourly_data(tmp_path: Path, call: str) -> None:
    """The benchmark is its own hourly feed: at each midnight sample, the close of the last hourly bar."""
    data = _with_hourly(tmp_path, "ZZSB")
    assert _run(tmp_path, call, data=data) == 0
    benchmark = _values(_result(tmp_path), "Benchmark", "Benchmark")
    closes = _daily_closes("ZZSB")
    assert len(benchmark) > 50
    for stamp, value in benchmark:
        local = utc_to_local(dt.datetime.fromtimestamp(stamp, dt.UTC))
        # a midnight sample sees the sessions before that day, the last sample (16:00) its own session too
        seen = [d for d in closes if d < local.date() or (local.hour == 16 and d == local.date())]
        assert value == float(smart_rounding(Decimal(repr(closes[max(seen)])))), local
    stats = summary(tmp_path)["statistics"]
    assert stats["Beta"] not in ("0", "-0") and stats["Tracking Error"] != stats["Annual Standard Deviation"]
    if "ticker" in call or call == 'self.set_benchmark("ZZSB")':
        assert "Warning: SetBenchmark(ZZSB): no existing symbol found" in algo_log(tmp_path)


def test_set_benchmark_to_a_function_of_the_utc_time(tmp_path: Path) -> None:
    assert _run(tmp_path, "self.set_benchmark(lambda t: 100 + t.day + t.hour / 100)") == 0
    benchmark = _values(_result(tmp_path), "Benchmark", "Benchmark")
    for stamp, value in benchmark:
        utc = dt.datetime.fromtimestamp(stamp, dt.UTC)
        assert value == pytest.approx(100 + utc.day + utc.hour / 100)
    stats = summary(tmp_path)["statistics"]
    assert stats["Beta"] not in ("0", "-0")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("self.set_benchmark(42)", "Unable to set the benchmark from 42"),
        ('self.set_benchmark("ZZSB", ticker="ZZSB", symbol="ZZSB")', "set_benchmark() takes"),
    ],
)
def test_set_benchmark_refuses_what_lean_refuses(tmp_path: Path, call: str, message: str) -> None:
    assert _run(tmp_path, call) == 1
    assert message in algo_log(tmp_path)


def test_set_benchmark_after_initialize_is_an_error(tmp_path: Path) -> None:
    assert _run(tmp_path, late='self.set_benchmark("ZZSB")') == 1
    assert "self.set_benchmark(): Cannot change Benchmark after algorithm initialized." in algo_log(tmp_path)
