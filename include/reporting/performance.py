"""The tearsheet's numbers that Lean's results do not hold ready-made: the drawdown curve, monthly
returns and exposure, computed from the equity curve and the report. Pure functions.

Times are Lean's chart times (unix seconds); a point belongs to the New York date it falls on
(Lean's algorithms, and this project's sessions, keep New York time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from include.trading_calendar import NEW_YORK

Point = tuple[float, float]


def ny_date(time: float) -> dt.date:
    return dt.datetime.fromtimestamp(time, NEW_YORK).date()


def drawdown(points: Sequence[Point]) -> list[Point]:
    """Each point's distance below the highest equity so far, as a fraction (0 at a new high, -0.1
    ten percent below it)."""
    out: list[Point] = []
    peak = 0.0
    for time, value in points:
        peak = max(peak, value)
        out.append((time, value / peak - 1.0 if peak > 0 else 0.0))
    return out


def deepest(points: Sequence[Point]) -> Point | None:
    """The lowest point (the maximum drawdown and when it was reached); None for no points."""
    return min(points, key=lambda p: p[1]) if points else None


@dataclass(frozen=True)
class MonthlyReturns:
    """Month-end equity over the previous month-end (the first month: over the first point), and
    the same by year. A month without a point, or after an equity of 0, has no entry."""

    months: dict[tuple[int, int], float] = field(default_factory=dict)
    years: dict[int, float] = field(default_factory=dict)


def _period_returns(ends: Mapping[Any, float], base: float) -> dict[Any, float]:
    out: dict[Any, float] = {}
    previous = base
    for key, end in ends.items():
        if previous > 0:
            out[key] = end / previous - 1.0
        previous = end
    return out


def monthly_returns(points: Sequence[Point]) -> MonthlyReturns:
    if len(points) < 2:
        return MonthlyReturns()
    month_ends: dict[tuple[int, int], float] = {}
    year_ends: dict[int, float] = {}
    for time, value in sorted(points):
        day = ny_date(time)
        month_ends[(day.year, day.month)] = value  # sorted: the last point of the month wins
        year_ends[day.year] = value
    base = min(points)[1]
    return MonthlyReturns(months=_period_returns(month_ends, base), years=_period_returns(year_ends, base))


def rebased(benchmark: Sequence[Point], equity: Sequence[Point]) -> list[Point]:
    """The benchmark scaled to start at the equity's first value, so both lines start together
    (Lean's benchmark series is the benchmark's price). Leading zero prices (no data yet) are dropped."""
    prices = [(t, v) for t, v in benchmark if v > 0]
    if not prices or not equity:
        return []
    start = sorted(equity)[0][1]
    factor = start / prices[0][1]
    return [(t, v * factor) for t, v in prices]


def exposure_from_weights(symbols: Iterable[Mapping[str, Any]]) -> list[tuple[dt.date, float, float]]:
    """Per rebalance date, the sums of the achieved long weights and of the achieved short weights
    (negative) the consistency check computed: the exposure right after each rebalance."""
    totals: dict[dt.date, list[float]] = {}
    for row in symbols:
        weight, day = row.get("achieved_weight"), row.get("rebalance_date")
        if not isinstance(weight, int | float) or not day:
            continue
        try:
            date = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        except ValueError:  # a report edited by hand: its row has no date to chart
            continue
        pair = totals.setdefault(date, [0.0, 0.0])
        pair[0 if weight >= 0 else 1] += float(weight)
    return [(day, long, short) for day, (long, short) in sorted(totals.items())]
