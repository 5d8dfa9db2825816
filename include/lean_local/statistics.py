"""Lean's backtest statistics and the series they are computed from.

Lines cited are Lean's at commit 24863901d:

* the series: ``BaseResultsHandler.Sample`` (Engine/Results/BaseResultsHandler.cs L708-733) samples the
  equity, the benchmark, the daily return and the drawdown at midnight every day (the "Daily Sampling"
  event, Engine/AlgorithmManager.cs L162-167) and once more after the last time slice (L657);
  ``BacktestingResultHandler.ProcessSynchronousEvents`` (Engine/Results/BacktestingResultHandler.cs
  L804-840) adds an equity point after a time slice whenever the resample period (L530-533) has passed.
  A series keeps a point only if it is later than its last one (L644-648). :func:`sample_backtest` replays that
  schedule on the runtime's time slices.
* the statistics: ``StatisticsBuilder.Generate`` (Common/Statistics/StatisticsBuilder.cs L51-149, L337-388),
  ``PortfolioStatistics`` (Common/Statistics/PortfolioStatistics.cs L211-320), ``Statistics``
  (Common/Statistics/Statistics.cs L38-317) and the summary's rounding and printing (StatisticsBuilder.cs
  L205-246), reproduced with C#'s number semantics (:func:`decimal_from_double`, :func:`round_double`,
  :func:`double_str`): a value of decimal type keeps its scale, so an exact zero prints ``0%`` where a
  rounded one prints ``0.000%``.

Estimated Strategy Capacity is not computed: Lean's capacity model (Common/Statistics/CapacityEstimate.cs)
needs the minute/second trade volumes of each fill, which daily data do not have.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

from include.lean_local.sessions import UTC, local_to_utc

TRADING_DAYS = 252  # AlgorithmSettings.TradingDaysPerYear for equities
DEFAULT_RISK_FREE_RATE = 0.01  # InterestRateProvider.DefaultRiskFreeRate (Common/Data/InterestRateProvider.cs L40)
FIRST_INTEREST_RATE_DATE = dt.date(1998, 1, 1)  # InterestRateProvider L32
RESAMPLE_SAMPLES = 4000.0  # BacktestingResultHandler.Samples (L41)
MINIMUM_SAMPLE_MINUTES = 4.0  # BacktestingResultHandler.MinimumSamplePeriod (L42)
_TICK = dt.timedelta(microseconds=1)  # the closest Python gets to a .NET tick (100 ns)

# The summary's keys in Lean's order (StatisticsBuilder.GetSummary, L216-245).
SUMMARY_KEYS = (
    "Total Orders",
    "Average Win",
    "Average Loss",
    "Compounding Annual Return",
    "Drawdown",
    "Expectancy",
    "Start Equity",
    "End Equity",
    "Net Profit",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Probabilistic Sharpe Ratio",
    "Loss Rate",
    "Win Rate",
    "Profit-Loss Ratio",
    "Alpha",
    "Beta",
    "Annual Standard Deviation",
    "Annual Variance",
    "Information Ratio",
    "Tracking Error",
    "Treynor Ratio",
    "Total Fees",
    "Estimated Strategy Capacity",
    "Lowest Capacity Asset",
    "Portfolio Turnover",
    "Drawdown Recovery",
)


# The statistics PortfolioStatistics computes past its early return, and those printed as percentages.
_NOT_PORTFOLIO = ("Total Orders", "Start Equity", "End Equity", "Total Fees", "Estimated Strategy Capacity")
_PORTFOLIO_KEYS = tuple(
    key for key in SUMMARY_KEYS if key not in (*_NOT_PORTFOLIO, "Lowest Capacity Asset", "Portfolio Turnover")
)
_PERCENT_KEYS = frozenset(
    {
        "Average Win",
        "Average Loss",
        "Compounding Annual Return",
        "Drawdown",
        "Net Profit",
        "Probabilistic Sharpe Ratio",
        "Loss Rate",
        "Win Rate",
    }
)


# ---------------------------------------------------------------------------------------------- C# numbers
def decimal_from_double(value: float) -> Decimal:
    """C#'s ``(decimal)double``: 15 significant digits, trailing zeros dropped (a decimal's scale is never
    negative)."""
    if value == 0 or not math.isfinite(value):
        return Decimal(0)
    text = Decimal(f"{value:.14e}").normalize()
    exponent = text.as_tuple().exponent
    return text.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else text


def round_decimal(value: Decimal, places: int) -> Decimal:
    """C#'s ``Math.Round(decimal, places)``: half to even, and only when the value has more places."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return value


def decimal_str(value: Decimal) -> str:
    """C#'s ``decimal.ToString(CultureInfo.InvariantCulture)``: every digit of its scale, no exponent."""
    text = format(value, "f")
    return text.lstrip("-") if value == 0 else text


def round_double(value: float, places: int) -> float:
    """C#'s ``Math.Round(double, places)`` (MidpointRounding.ToEven): scale, round to an integer, scale back."""
    if not math.isfinite(value) or abs(value) >= 1e16:
        return value
    power = 10.0**places
    rounded = float(round(value * power)) / power
    return rounded if rounded else math.copysign(0.0, value)  # Math.Round(-0.1) is -0


def double_str(value: float) -> str:
    """C#'s ``double.ToString(CultureInfo.InvariantCulture)`` (.NET Core 3.0+): the shortest round-trip text,
    ``-0`` for negative zero, E notation from 1E+15 and below 1E-05."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("∞" if value > 0 else "-∞")
    text = repr(value)
    exponent = math.floor(math.log10(abs(value)))
    if -5 <= exponent < 15:
        if "e" in text:  # Python switches to E notation from 1e16
            return format(Decimal(text), "f")
        return text[:-2] if text.endswith(".0") else text
    mantissa, _, power = f"{Decimal(text):E}".partition("E")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    sign = "-" if power.startswith("-") else "+"
    return f"{mantissa}E{sign}{power.lstrip('+-').zfill(2)}"


def _percent(value: Decimal, places: int) -> str:
    return decimal_str(round_decimal(value * 100, places)) + "%"


def _ratio(value: float) -> str:
    """A statistic of decimal type printed as ``Math.Round((double)value, 3)``."""
    return double_str(round_double(value, 3))


# ---------------------------------------------------------------------------------------------- risk-free rate
class InterestRates:
    """Lean's ``InterestRateProvider`` (Common/Data/InterestRateProvider.cs L30-139): the rate of the last row dated on
    or before a day, the first row's before it; 1% every day when the file is missing or has no rows."""

    def __init__(self, data_folder: Path) -> None:
        path = data_folder / "alternative" / "interest-rate" / "usa" / "interest-rate.csv"
        rows: dict[dt.date, float] = {}
        if path.is_file():
            for line in path.read_text().splitlines()[1:]:
                parts = line.split(",")
                if len(parts) < 2 or not line.strip():
                    continue
                try:
                    rows[dt.datetime.strptime(parts[0].strip(), "%Y-%m-%d").date()] = float(parts[1]) / 100.0
                except ValueError:
                    continue  # Lean logs the line and skips it (TryParse, L150-170)
        self.path = path
        self.loaded = bool(rows)
        self._dates = sorted(rows)
        self._rates = [rows[d] for d in self._dates]

    def rate_on(self, day: dt.date) -> float:
        if not self._dates:
            return DEFAULT_RISK_FREE_RATE
        i = bisect.bisect_right(self._dates, max(day, FIRST_INTEREST_RATE_DATE)) - 1
        return self._rates[max(i, 0)]

    def average(self, days: Sequence[dt.date]) -> float:
        """``GetAverageRiskFreeRate`` (Common/Data/IRiskFreeInterestRateModel.cs L58-62); 0 without days."""
        if not days:
            return 0.0
        return sum(self.rate_on(d) for d in days) / len(days)


# ---------------------------------------------------------------------------------------------- the series
@dataclass
class Step:
    """One session the engine ran (not warming up): its close (New York) and what the portfolio held after it."""

    close: dt.datetime
    value: float
    sales_volume: float


@dataclass
class LeanSeries:
    """The series the statistics read (UTC times): the Strategy Equity points, the daily samples of equity,
    benchmark and return (the "Benchmark" chart, the "Return" series), the drawdown samples and the
    portfolio turnover samples."""

    equity: list[tuple[dt.datetime, float]] = field(default_factory=list)
    samples: list[tuple[dt.datetime, float, Decimal]] = field(default_factory=list)
    performance: list[float] = field(default_factory=list)  # percent, as the "Return" series
    drawdown: list[tuple[dt.datetime, float]] = field(default_factory=list)  # percent
    turnover: list[float] = field(default_factory=list)


def resample_period(start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """``ResamplePeriod`` (BacktestingResultHandler.cs L530-533): a 4000th of the backtest, at least 4 minutes.
    Lean's end date is the last tick of the end day (QCAlgorithm.SetEndDate, Algorithm/QCAlgorithm.cs L1812)."""
    end_of_day = dt.datetime.combine(end.date(), dt.time()) + dt.timedelta(days=1) - _TICK
    minutes = (end_of_day - start).total_seconds() / 60.0
    return dt.timedelta(
        minutes=MINIMUM_SAMPLE_MINUTES
        if minutes < MINIMUM_SAMPLE_MINUTES * RESAMPLE_SAMPLES
        else minutes / RESAMPLE_SAMPLES
    )


def sample_backtest(
    start: dt.datetime,
    end: dt.datetime,
    start_equity: float,
    steps: Sequence[Step],
    benchmark: Callable[[dt.datetime], Decimal],
    extra_slices: Sequence[dt.datetime] = (),
    first_slice: dt.datetime | None = None,
    last_slice: dt.datetime | None = None,
) -> LeanSeries:
    """Replay Lean's sampling over the backtest's time slices (New York times).

    A slice happens at each session close (the daily bars), at each of ``extra_slices`` (the benchmark's hourly
    bars, midnight slices of dividends and splits) and at ``first_slice`` (the synchronizer's first frontier: the
    start, or the warm-up's start). Between a session's close and the next, the portfolio holds the close's value.
    """
    series = LeanSeries()
    if not steps:
        return series
    period = resample_period(start, end)
    first = first_slice if first_slice is not None and first_slice <= start else start
    last_close = steps[-1].close
    # (time, portfolio value after the slice): the closes, then the other slices between the first and the last
    slices: dict[dt.datetime, int] = {first: -1}
    closes = [step.close for step in steps]
    for when in extra_slices:
        if first <= when <= last_close:
            slices.setdefault(when, bisect.bisect_right(closes, when) - 1)
    for i, when in enumerate(closes):
        slices[when] = i

    def value_of(index: int) -> float:
        return steps[index].value if index >= 0 else start_equity

    next_sample = dt.datetime.min.replace(tzinfo=UTC)
    midnight = dt.datetime.combine(start.date(), dt.time())
    daily_value = start_equity  # DailyPortfolioValue: the previous sample's value (BaseResultsHandler.cs L533, L732)
    peak = start_equity  # CumulativeMaxPortfolioValue
    previous_volume = 0.0
    index_before = -1

    def add_equity(utc: dt.datetime, value: float) -> None:
        if not series.equity or utc > series.equity[-1][0]:
            series.equity.append((utc, round(value, 4)))

    def daily_sample(local: dt.datetime, index: int) -> None:
        nonlocal daily_value, peak, previous_volume
        utc = local_to_utc(local)
        value = value_of(index)
        if series.samples and utc <= series.samples[-1][0]:
            return
        add_equity(utc, value)
        series.samples.append((utc, value, benchmark(local)))
        performance = 0.0 if daily_value == 0 else round((value - daily_value) * 100 / daily_value, 10)
        series.performance.append(performance)
        peak = max(peak, value)
        if peak:
            series.drawdown.append((utc, round((value / peak - 1) * 100, 2)))
        if local != start and value:  # the first sample is the start: no turnover (BaseResultsHandler.cs L814-824)
            volume = steps[index].sales_volume if index >= 0 else 0.0
            series.turnover.append((volume - previous_volume) / value)
            previous_volume = volume
        daily_value = value

    for when in sorted(slices):
        # warm-up: no sample while warming up, but the resample clock runs (BacktestingResultHandler.cs L620-624)
        if when < start:
            utc = local_to_utc(when)
            if utc > next_sample:
                next_sample = utc + period
            index_before = slices[when]
            continue
        # ScanPastEvents fires the midnight samples before the slice (strictly earlier), SetTime the one at it
        while midnight <= when:
            daily_sample(midnight, index_before)
            midnight += dt.timedelta(days=1)
        index_before = slices[when]
        utc = local_to_utc(when)
        if utc > next_sample:
            next_sample = utc + period
            add_equity(utc, value_of(index_before))
    # the end: ProcessSynchronousEvents(forceProcess) and the final Sample at the last slice
    # (AlgorithmManager.cs L625, L657); a universe's last data may make a later slice (``last_slice``)
    final = last_slice if last_slice is not None and last_slice > last_close else last_close
    while midnight <= final and final != last_close:
        daily_sample(midnight, len(steps) - 1)
        midnight += dt.timedelta(days=1)
    add_equity(local_to_utc(final), steps[-1].value)
    daily_sample(final, len(steps) - 1)
    return series


# ---------------------------------------------------------------------------------------------- statistics
def _variance(values: Sequence[float]) -> float:
    """MathNet ``Variance`` (sample, n-1); NaN below two values."""
    n = len(values)
    if n < 2:
        return math.nan
    mean = sum(values) / n
    return sum((v - mean) ** 2 for v in values) / (n - 1)


def _covariance(a: Sequence[float], b: Sequence[float]) -> float:
    n = len(a)
    if n < 2 or n != len(b):
        return math.nan
    ma, mb = sum(a) / n, sum(b) / n
    return sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / (n - 1)


def _skewness(values: Sequence[float]) -> float:
    """MathNet ``Skewness`` (RunningStatistics: the bias-corrected sample skewness); NaN below three values."""
    n = len(values)
    if n < 3:
        return math.nan
    mean = sum(values) / n
    m2 = sum((v - mean) ** 2 for v in values)
    m3 = sum((v - mean) ** 3 for v in values)
    if m2 == 0:
        return math.nan
    return (math.sqrt(n - 1) * n / (n - 2)) * (m3 / m2**1.5)


def _kurtosis(values: Sequence[float]) -> float:
    """MathNet ``Kurtosis`` (RunningStatistics: the bias-corrected sample excess kurtosis); NaN below four."""
    n = len(values)
    if n < 4:
        return math.nan
    mean = sum(values) / n
    m2 = sum((v - mean) ** 2 for v in values)
    m4 = sum((v - mean) ** 4 for v in values)
    if m2 == 0:
        return math.nan
    return (n * n - 1.0) / ((n - 2) * (n - 3)) * (n * m4 / (m2 * m2) - 3 + 6.0 / (n + 1))


def _annual_variance(values: Sequence[float]) -> float:
    variance = _variance(values)
    return 0.0 if math.isnan(variance) or variance == 0 else variance * TRADING_DAYS


def _annual_performance(values: Sequence[float]) -> float:
    return (sum(values) / len(values) + 1) ** TRADING_DAYS - 1


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def probabilistic_sharpe_ratio(performance: Sequence[float], benchmark_sharpe: float, risk_free: float) -> float:
    """``Statistics.ProbabilisticSharpeRatio`` (Statistics.cs L200-237)."""
    variance = _variance(performance)
    sd = math.sqrt(variance) if not math.isnan(variance) else math.nan
    mean = sum(performance) / len(performance) - risk_free
    observed = 0.0 if math.isnan(sd) or sd == 0 else mean / sd
    skewness = _skewness(performance)
    kurtosis = _kurtosis(performance)
    operand_a = skewness * observed
    operand_b = ((kurtosis - 1) / 4) * observed**2
    radicand = (1 - operand_a + operand_b) / (len(performance) - 1)
    if math.isnan(radicand) or radicand < 0:
        return 0.0
    estimate_sd = math.sqrt(radicand)
    value = 0.0 if estimate_sd == 0 else (observed - benchmark_sharpe) / estimate_sd
    return _normal_cdf(value)


def _benchmark_differences(samples: Sequence[tuple[dt.datetime, float, Decimal]]) -> list[float]:
    """``CreateBenchmarkDifferences`` (StatisticsBuilder.cs L337-373): the daily change of the benchmark in
    decimal arithmetic (0 after a zero value), without the first one."""
    out: list[float] = []
    with localcontext() as context:
        context.prec = 28
        for i in range(1, len(samples)):
            previous, value = samples[i - 1][2], samples[i][2]
            change = 0.0 if previous == 0 else float((value - previous) / previous)
            if i > 1:
                out.append(change)
    return out


def drawdown_metrics(points: Sequence[tuple[dt.datetime, float]]) -> tuple[Decimal, int]:
    """``Statistics.CalculateDrawdownMetrics(equity, 3)`` (Statistics.cs L264-317): the largest drawdown,
    rounded to 3 places (an exact 0 without one), and the longest recovery in whole days, from the peak's last
    sample to the first sample back at it."""
    if len(points) < 2:
        return Decimal(0), 0
    max_drawdown = Decimal(0)
    max_recovery = 0.0
    peak_value = _dec(points[0][1])
    peak_time = points[0][0]
    drawdown_start: dt.datetime | None = None
    with localcontext() as context:
        context.prec = 28
        for when, raw in points:
            value = _dec(raw)
            if value >= peak_value:
                if drawdown_start is not None:
                    max_recovery = max(max_recovery, (when - drawdown_start).total_seconds() / 86400.0)
                    drawdown_start = None
                peak_value, peak_time = value, when
            if peak_value == 0:
                continue
            current = value / peak_value - 1
            if current < 0:
                max_drawdown = min(max_drawdown, current)
                if drawdown_start is None:
                    drawdown_start = peak_time
    return round_decimal(abs(max_drawdown), 3), int(max_recovery)


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


@dataclass
class StatisticsInput:
    """What the summary is computed from."""

    start_equity: float
    series: LeanSeries
    total_orders: int
    total_fees: float
    trades: Sequence[float]  # each closing fill's profit, as Lean's transaction record
    rates: InterestRates
    lowest_capacity_asset: str | None = None  # None: not known, the key is left out


def compute(data: StatisticsInput) -> dict[str, str]:
    """Lean's summary statistics (``StatisticsBuilder.GetSummary``) over the sampled series."""
    series = data.series
    start_equity = data.start_equity
    stats: dict[str, str] = {"Total Orders": str(data.total_orders)}
    equity = series.equity
    end_equity = equity[-1][1] if equity else start_equity
    # AlgorithmPerformance's PortfolioStatistics: performance and benchmark lists from the third sample on
    performance = [p / 100 for p in series.performance[2:]]
    benchmark = _benchmark_differences(series.samples)
    turnover_values = series.turnover
    portfolio_turnover = (
        Decimal(0) if not any(turnover_values) else decimal_from_double(sum(turnover_values) / len(turnover_values))
    )
    complete = bool(start_equity) and len(benchmark) >= 2 and len(performance) >= 2
    if complete:
        values = _portfolio_statistics(data, performance, benchmark, end_equity)
    else:  # PortfolioStatistics returns before computing anything but the equities and turnover (L231-237)
        values = {key: "0%" if key in _PERCENT_KEYS else "0" for key in _PORTFOLIO_KEYS}
    values["Start Equity"] = decimal_str(round_decimal(_dec(start_equity).normalize(), 2))
    values["End Equity"] = decimal_str(round_decimal(_dec(end_equity).normalize(), 2))
    # Lean sums the fees as decimals: 2.195 + 1.0 + ... is 17.925 there, 17.924999999999997 in floats (which would
    # print $17.92); the float sum rounded to 8 places gives back the decimal sum (fees have at most 4 decimals)
    total_fees = _dec(round(data.total_fees, 8))
    values["Total Fees"] = "$" + str(total_fees.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    if data.lowest_capacity_asset is not None:
        values["Lowest Capacity Asset"] = data.lowest_capacity_asset
    values["Portfolio Turnover"] = _percent(portfolio_turnover, 2)
    for key in SUMMARY_KEYS[1:]:
        if key in values:
            stats[key] = values[key]
    return stats


def _portfolio_statistics(
    data: StatisticsInput, performance: list[float], benchmark: list[float], end_equity: float
) -> dict[str, str]:
    """``PortfolioStatistics`` (PortfolioStatistics.cs L239-319) as the summary prints it."""
    out: dict[str, str] = {}
    start = _dec(data.start_equity)
    with localcontext() as context:
        context.prec = 28
        running = start
        total_profit = total_loss = Decimal(0)
        wins = losses = 0
        for trade in data.trades:
            pnl = _dec(trade)
            if pnl > 0:
                total_profit += pnl / running
                wins += 1
            else:
                total_loss += pnl / running
                losses += 1
            running += pnl
        average_win = Decimal(0) if wins == 0 else total_profit / wins
        average_loss = Decimal(0) if losses == 0 else total_loss / losses
        profit_loss_ratio = Decimal(0) if average_loss == 0 else average_win / abs(average_loss)
        total = wins + losses
        win_rate = Decimal(0) if total == 0 else Decimal(wins) / Decimal(total)
        loss_rate = Decimal(0) if total == 0 else Decimal(losses) / Decimal(total)
        expectancy = win_rate * profit_loss_ratio - loss_rate
        net_profit = _dec(end_equity) / start - 1
    equity = data.series.equity
    years = (equity[-1][0] - equity[0][0]).total_seconds() / 86400 / 365 if equity else 0.0
    car = 0.0
    if years and data.start_equity:
        try:
            car = (end_equity / data.start_equity) ** (1 / years) - 1
        except (OverflowError, ValueError, ZeroDivisionError):
            car = 0.0
        if isinstance(car, complex) or not math.isfinite(car):
            car = 0.0
    annual_variance = _annual_variance(performance)
    annual_sd = math.sqrt(annual_variance)
    benchmark_annual = _annual_performance(benchmark)
    annual_performance = _annual_performance(performance)
    rf = data.rates.average([when.date() for when, _ in equity])
    sharpe = 0.0 if annual_sd == 0 else (annual_performance - rf) / annual_sd
    downside = math.sqrt(_annual_variance([p for p in performance if p < 0]))
    sortino = 0.0 if downside == 0 else (annual_performance - rf) / downside
    benchmark_variance = _variance(benchmark)
    beta = (
        0.0
        if math.isnan(benchmark_variance) or benchmark_variance == 0
        else (_covariance(performance, benchmark) / benchmark_variance)
    )
    alpha = 0.0 if beta == 0 else annual_performance - (rf + beta * (benchmark_annual - rf))
    tracking_error = math.sqrt(_annual_variance([p - b for p, b in zip(performance, benchmark, strict=True)]))
    information_ratio = 0.0 if tracking_error == 0 else (annual_performance - benchmark_annual) / tracking_error
    treynor = 0.0 if beta == 0 else (annual_performance - rf) / beta
    psr = probabilistic_sharpe_ratio(performance, 1.0 / math.sqrt(TRADING_DAYS), rf / TRADING_DAYS)
    drawdown, recovery = drawdown_metrics(equity)

    out["Average Win"] = _percent(average_win, 2)
    out["Average Loss"] = _percent(average_loss, 2)
    out["Compounding Annual Return"] = _percent(decimal_from_double(car), 3)
    out["Drawdown"] = _percent(drawdown, 3)
    out["Expectancy"] = decimal_str(round_decimal(expectancy, 3))
    out["Net Profit"] = _percent(net_profit, 3)
    out["Sharpe Ratio"] = _ratio(sharpe)
    out["Sortino Ratio"] = _ratio(sortino)
    out["Probabilistic Sharpe Ratio"] = _percent(decimal_from_double(psr), 3)
    out["Loss Rate"] = _percent(loss_rate, 0)
    out["Win Rate"] = _percent(win_rate, 0)
    out["Profit-Loss Ratio"] = decimal_str(round_decimal(profit_loss_ratio, 2))
    out["Alpha"] = _ratio(alpha)
    out["Beta"] = _ratio(beta)
    out["Annual Standard Deviation"] = _ratio(annual_sd)
    out["Annual Variance"] = _ratio(annual_variance)
    out["Information Ratio"] = _ratio(information_ratio)
    out["Tracking Error"] = _ratio(tracking_error)
    out["Treynor Ratio"] = _ratio(treynor)
    out["Drawdown Recovery"] = str(recovery)
    return out
