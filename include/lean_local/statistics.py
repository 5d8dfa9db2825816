"""Lean's backtest statistics (Common/Statistics/PortfolioStatistics.cs, Statistics.cs), the faithful subset."""

from __future__ import annotations

import datetime as dt
import math
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from include.lean_local.sessions import from_yyyymmdd

TRADING_DAYS = 252


def _strip(value: float, places: int) -> str:
    text = f"{round(value, places):.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _pct(value: float, places: int) -> str:
    return f"{round(value * 100, places):.{places}f}%"


def risk_free_rate(data_folder: Path, days: list[int]) -> float:
    """Average of Lean's interest-rate provider (``alternative/interest-rate/usa/interest-rate.csv``) over the
    equity dates; 0 when the file is absent."""
    path = data_folder / "alternative" / "interest-rate" / "usa" / "interest-rate.csv"
    if not path.is_file() or not days:
        return 0.0
    rows: list[tuple[int, float]] = []
    for line in path.read_text().splitlines()[1:]:
        parts = line.split(",")
        if len(parts) >= 2:
            try:
                rows.append((int(parts[0].replace("-", "")[:8]), float(parts[1]) / 100.0))
            except ValueError:
                continue
    rows.sort()
    if not rows:
        return 0.0
    import bisect

    keys = [r[0] for r in rows]
    total = 0.0
    for d in days:
        i = bisect.bisect_right(keys, d) - 1
        total += rows[max(i, 0)][1]
    return total / len(days)


def calendar_samples(
    start: dt.date, end: dt.date, daily: list[tuple[int, float]], start_equity: float, sales: list[tuple[int, float]]
) -> tuple[list[float], list[float]]:
    """Lean samples equity once per calendar day (midnight): the value and the sale volume at the end of each
    calendar day from the start date to the end date, carried over weekends and holidays."""
    values: list[float] = []
    turnover: list[float] = []
    i = 0
    value = start_equity
    volume = prev_volume = 0.0
    day = start
    while day <= end:
        key = day.year * 10000 + day.month * 100 + day.day
        while i < len(daily) and daily[i][0] <= key:
            value = daily[i][1]
            volume = sales[i][1]
            i += 1
        values.append(value)
        turnover.append((volume - prev_volume) / value if value else 0.0)
        prev_volume = volume
        day += dt.timedelta(days=1)
    return values, turnover


def compute(
    start_equity: float,
    daily: list[tuple[int, float]],
    total_orders: int,
    total_fees: float,
    daily_turnover: list[float],
    trades: list[float],
    rf: float,
    start: dt.date,
    lowest_capacity_asset: str = "",
    years: float | None = None,
    calendar_values: list[float] | None = None,
) -> dict[str, str]:
    end_equity = daily[-1][1] if daily else start_equity
    stats: dict[str, str] = {"Total Orders": str(total_orders)}
    values = [start_equity] + (calendar_values if calendar_values is not None else [v for _, v in daily])
    # the first daily sample (start of the first day) carries no performance: Lean's list starts after it
    perf = [values[i] / values[i - 1] - 1 for i in range(2, len(values))] if len(values) > 2 else []
    wins = [p for p in trades if p > 0]
    losses = [p for p in trades if p <= 0]
    running = start_equity
    tot_w = tot_l = 0.0
    for p in trades:
        if p > 0:
            tot_w += p / running
        else:
            tot_l += p / running
        running += p
    avg_win = tot_w / len(wins) if wins else 0.0
    avg_loss = tot_l / len(losses) if losses else 0.0
    pl_ratio = avg_win / abs(avg_loss) if avg_loss else 0.0
    n_trades = len(wins) + len(losses)
    win_rate = len(wins) / n_trades if n_trades else 0.0
    loss_rate = len(losses) / n_trades if n_trades else 0.0
    stats["Average Win"] = f"{_strip(avg_win * 100, 2)}%"
    stats["Average Loss"] = f"{_strip(avg_loss * 100, 2)}%"
    if years is None:
        years = ((from_yyyymmdd(daily[-1][0]) - start).days / 365) if daily else 0.0
    car = 0.0
    if years and start_equity:
        try:
            car = (end_equity / start_equity) ** (1 / years) - 1
        except (OverflowError, ValueError):
            car = 0.0
    stats["Compounding Annual Return"] = _pct(car, 3)
    peak = values[0] if values else 0.0
    max_dd = 0.0
    for v in values:
        peak = max(peak, v)
        if peak > 0:
            max_dd = max(max_dd, (peak - v) / peak)
    stats["Drawdown"] = _pct(round(max_dd, 3), 3)
    stats["Expectancy"] = _strip(win_rate * pl_ratio - loss_rate, 3)
    stats["Start Equity"] = _strip(start_equity, 2)
    stats["End Equity"] = _strip(end_equity, 2)
    stats["Net Profit"] = _pct(end_equity / start_equity - 1 if start_equity else 0.0, 3)
    if len(perf) >= 2:
        mean = sum(perf) / len(perf)
        var = sum((p - mean) ** 2 for p in perf) / (len(perf) - 1)
        annual_var = var * TRADING_DAYS
        annual_sd = math.sqrt(annual_var)
        annual_perf = (mean + 1) ** TRADING_DAYS - 1
        sharpe = 0.0 if annual_sd == 0 else (annual_perf - rf) / annual_sd
        downside = [p for p in perf if p < 0]
        if len(downside) >= 2:
            dmean = sum(downside) / len(downside)
            dvar = sum((p - dmean) ** 2 for p in downside) / (len(downside) - 1) * TRADING_DAYS
        else:
            dvar = 0.0
        sortino = 0.0 if dvar == 0 else (annual_perf - rf) / math.sqrt(dvar)
        stats["Sharpe Ratio"] = _strip(sharpe, 3)
        stats["Sortino Ratio"] = _strip(sortino, 3)
        stats["Annual Standard Deviation"] = _strip(annual_sd, 3)
        stats["Annual Variance"] = _strip(annual_var, 3)
    else:
        for key in ("Sharpe Ratio", "Sortino Ratio", "Annual Standard Deviation", "Annual Variance"):
            stats[key] = "0"
    stats["Loss Rate"] = f"{round(loss_rate * 100):d}%"
    stats["Win Rate"] = f"{round(win_rate * 100):d}%"
    stats["Profit-Loss Ratio"] = _strip(pl_ratio, 2)
    stats["Total Fees"] = "$" + str(Decimal(repr(total_fees)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    if lowest_capacity_asset:
        stats["Lowest Capacity Asset"] = lowest_capacity_asset
    stats["Portfolio Turnover"] = _pct(sum(daily_turnover) / len(daily_turnover) if daily_turnover else 0.0, 2)
    return stats
