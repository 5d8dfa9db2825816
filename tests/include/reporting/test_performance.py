"""The tearsheet's own numbers (issue #17): drawdown, monthly returns, exposure and the rebased
benchmark, on curves whose answers are known."""

from __future__ import annotations

import datetime as dt

import pytest

from include.reporting.performance import (
    deepest,
    drawdown,
    exposure_from_weights,
    monthly_returns,
    ny_date,
    rebased,
)
from include.trading_calendar import NEW_YORK


def _at(day: str, hour: int = 16) -> float:
    """Unix seconds of a New York time (Lean's chart times are UTC seconds)."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), NEW_YORK).timestamp()


def test_drawdown_is_the_distance_below_the_running_peak() -> None:
    curve = [(float(i), v) for i, v in enumerate([100.0, 120.0, 90.0, 130.0, 117.0])]
    assert [v for _, v in drawdown(curve)] == pytest.approx([0.0, 0.0, -0.25, 0.0, -0.1])
    assert deepest(drawdown(curve)) == (2.0, pytest.approx(-0.25))
    assert deepest([]) is None and drawdown([]) == []


def test_monthly_returns_are_month_end_over_the_previous_month_end() -> None:
    curve = [
        (_at("2020-12-30"), 100.0),  # the start
        (_at("2020-12-31"), 100.0),
        (_at("2021-01-04"), 105.0),
        (_at("2021-01-29"), 110.0),  # January's end: +10%
        (_at("2021-02-10"), 130.0),  # inside the month: no effect
        (_at("2021-02-26"), 99.0),  # February: -10%
        (_at("2021-03-31"), 108.9),  # March: +10%
    ]
    returns = monthly_returns(curve)
    assert returns.months == {
        (2020, 12): pytest.approx(0.0),
        (2021, 1): pytest.approx(0.10),
        (2021, 2): pytest.approx(-0.10),
        (2021, 3): pytest.approx(0.10),
    }
    # A year compounds its months: over the previous year-end (the first year: over the start).
    assert returns.years == {2020: pytest.approx(0.0), 2021: pytest.approx(0.089)}


def test_a_point_belongs_to_its_new_york_date() -> None:
    # 2021-01-31 22:00 New York is already February in UTC: it still closes January.
    late = _at("2021-01-31", 22)
    assert dt.datetime.fromtimestamp(late, dt.UTC).month == 2 and ny_date(late) == dt.date(2021, 1, 31)
    returns = monthly_returns([(_at("2021-01-04"), 100.0), (late, 120.0), (_at("2021-02-26"), 108.0)])
    assert returns.months == {(2021, 1): pytest.approx(0.2), (2021, 2): pytest.approx(-0.1)}


def test_too_short_a_curve_has_no_monthly_returns() -> None:
    assert monthly_returns([(_at("2021-01-04"), 100.0)]).months == {}


def test_exposure_sums_the_achieved_long_and_short_weights_per_rebalance() -> None:
    rows = [
        {"rebalance_date": "2021-02-01", "achieved_weight": 0.49},
        {"rebalance_date": "2021-02-01", "achieved_weight": 0.48},
        {"rebalance_date": "2021-02-01", "achieved_weight": -0.2},
        {"rebalance_date": "2021-02-02", "achieved_weight": 0.0},
        {"rebalance_date": "2021-02-02", "achieved_weight": None},  # not checked: left out
        {"rebalance_date": None, "achieved_weight": 0.3},
    ]
    assert exposure_from_weights(rows) == [
        (dt.date(2021, 2, 1), pytest.approx(0.97), pytest.approx(-0.2)),
        (dt.date(2021, 2, 2), 0.0, 0.0),
    ]


def test_the_benchmark_is_rebased_to_the_start_equity() -> None:
    equity = [(1.0, 100_000.0), (2.0, 101_000.0)]
    benchmark = [(0.5, 0.0), (1.0, 400.0), (2.0, 404.0)]  # a leading 0: no price yet
    assert rebased(benchmark, equity) == [(1.0, pytest.approx(100_000.0)), (2.0, pytest.approx(101_000.0))]
    assert rebased([], equity) == [] and rebased(benchmark, []) == []
