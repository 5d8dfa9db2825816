"""Lean's algorithm framework in the local runtime: insight close times, the insight collection, portfolio
construction (rebalancing, weights), execution ordering and the optimizers, each checked against values
computed from Lean's formulas (Insight.ComputeCloseTime, PortfolioConstructionModel.IsRebalanceDue, ...)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from include.lean_local.enums import DayOfWeek, Resolution
from include.lean_local.framework import InsightCollection
from include.lean_local.framework_models import (
    ConstantAlphaModel,
    EqualWeightingPortfolioConstructionModel,
    InsightWeightingPortfolioConstructionModel,
    OrderSizing,
    PortfolioBias,
    RiskParityPortfolioOptimizer,
    _covariance,
    _date_rule_func,
    form_returns_matrix,
    simplex_projection,
)
from include.lean_local.insights import (
    Insight,
    InsightDirection,
    InsightType,
    compute_close_time_bars,
    compute_close_time_period,
)
from include.lean_local.scheduling import DateRules
from include.lean_local.symbols import SecurityIdentifier, Symbol
from tests.include.lean_local.helpers import run_inprocess, run_subprocess, write_run

UTC_OFFSET = dt.timedelta(hours=4)  # New York in October 2013 (EDT)


def _sym(ticker: str) -> Symbol:
    return Symbol(SecurityIdentifier(ticker, None), ticker)


def _utc(local: dt.datetime) -> dt.datetime:
    return local + UTC_OFFSET


def test_close_time_of_daily_bars_counts_trading_days() -> None:
    # Friday 2013-10-11 16:00 + 1 daily bar: the next trading date, Monday 10-14, at the same time of day
    friday = _utc(dt.datetime(2013, 10, 11, 16))
    assert compute_close_time_bars(friday, Resolution.DAILY, 1) == _utc(dt.datetime(2013, 10, 14, 16))
    # a timedelta of one day is the same (ToHigherResolutionEquivalent: Daily, one bar)
    assert compute_close_time_period(friday, dt.timedelta(days=1)) == _utc(dt.datetime(2013, 10, 14, 16))


def test_close_time_of_minutes_counts_open_market_minutes() -> None:
    # 20 minutes from the close: the next session's first 20 minutes (09:30 -> 09:50)
    close = _utc(dt.datetime(2013, 10, 7, 16))
    assert compute_close_time_period(close, dt.timedelta(minutes=20)) == _utc(dt.datetime(2013, 10, 8, 9, 50))
    # an hour from 15:30: 30 minutes today, 30 tomorrow (hours step as 60 minutes)
    assert compute_close_time_bars(_utc(dt.datetime(2013, 10, 7, 15, 30)), Resolution.HOUR, 1) == _utc(
        dt.datetime(2013, 10, 8, 10)
    )
    # 1.5 days: one trading day, then half a regular session (3h15m) of minutes
    start = _utc(dt.datetime(2013, 10, 7, 10))
    assert compute_close_time_period(start, dt.timedelta(days=1.5)) == _utc(dt.datetime(2013, 10, 8, 13, 15))


def test_insight_is_active_through_its_close_time_and_expires_one_second_before() -> None:
    insight = Insight.price(_sym("SPY"), Resolution.DAILY, 1, InsightDirection.DOWN)
    insight.generated_time_utc = _utc(dt.datetime(2013, 10, 7, 16))
    insight.set_period_and_close_time()
    close = _utc(dt.datetime(2013, 10, 8, 16))
    assert insight.close_time_utc == close and insight.period == dt.timedelta(days=1)
    assert insight.is_active(close) and insight.is_expired(close + dt.timedelta(seconds=1))
    insight.expire(close - dt.timedelta(hours=1))
    assert insight.close_time_utc == close - dt.timedelta(hours=1, seconds=1)


def _insight(ticker: str, direction: InsightDirection, weight: float | None = None, hour: int = 16) -> Insight:
    insight = Insight(_sym(ticker), dt.timedelta(days=1), InsightType.PRICE, direction, weight=weight)
    insight.generated_time_utc = _utc(dt.datetime(2013, 10, 7, hour))
    insight.set_period_and_close_time()
    return insight


def test_insight_collection_reuses_a_removed_symbols_slot_like_a_dotnet_dictionary() -> None:
    collection = InsightCollection()
    a, b, c = (_insight(t, InsightDirection.UP) for t in ("A", "B", "C"))
    for item in (a, b, c):
        collection.add(item)
    collection.remove(a)
    d = _insight("D", InsightDirection.UP)
    collection.add(d)
    assert [i.symbol.value for i in collection] == ["D", "B", "C"]
    assert collection.total_count == 4 and collection.count == 3
    assert collection.get_next_expiry_time() == _utc(dt.datetime(2013, 10, 8, 16))
    assert collection.remove_expired_insights(_utc(dt.datetime(2013, 10, 9))) == [d, b, c]


def test_equal_weighting_and_insight_weighting_targets() -> None:
    up, down, flat = (
        _insight("A", InsightDirection.UP, 0.5),
        _insight("B", InsightDirection.DOWN, 0.75),
        _insight("C", InsightDirection.FLAT, 0.2),
    )
    equal = EqualWeightingPortfolioConstructionModel()
    assert equal.determine_target_percent([up, down, flat]) == {up: 0.5, down: -0.5, flat: 0.0}
    long_only = EqualWeightingPortfolioConstructionModel(portfolio_bias=PortfolioBias.LONG)
    assert long_only.determine_target_percent([up, down]) == {up: 1.0, down: 0.0}
    weighted = InsightWeightingPortfolioConstructionModel()
    # |weights| sum to 1.45 > 1: each scaled by 1 / 1.45
    percents = weighted.determine_target_percent([up, down, flat])
    assert percents[up] == pytest.approx(0.5 / 1.45) and percents[down] == pytest.approx(-0.75 / 1.45)
    assert percents[flat] == 0.0
    assert not weighted.should_create_target_for_insight(_insight("D", InsightDirection.UP))


class _Insights:
    def __init__(self, expiry: dt.datetime | None) -> None:
        self.expiry = expiry

    def get_next_expiry_time(self) -> dt.datetime | None:
        return self.expiry


def _pcm(model: Any, expiry: dt.datetime | None = None) -> Any:
    model.algorithm = SimpleNamespace(insights=_Insights(expiry))
    return model


def test_rebalance_is_due_on_its_time_on_new_insights_and_on_security_changes() -> None:
    model = _pcm(EqualWeightingPortfolioConstructionModel(dt.timedelta(days=1)))
    model.rebalance_on_insight_changes = False
    model.rebalance_on_security_changes = False
    t0 = dt.datetime(2013, 10, 7, 20)
    assert not model.is_rebalance_due([], t0)  # first call: the next rebalance is t0 + 1 day
    assert not model.is_rebalance_due([], t0 + dt.timedelta(hours=23))
    assert model.is_rebalance_due([], t0 + dt.timedelta(days=1))  # due; the next is a day later
    assert not model.is_rebalance_due([], t0 + dt.timedelta(days=1, hours=1))
    model.rebalance_on_insight_changes = True
    assert model.is_rebalance_due([_insight("A", InsightDirection.UP)], t0 + dt.timedelta(days=1, hours=2))
    expiring = _pcm(EqualWeightingPortfolioConstructionModel(), expiry=t0)
    expiring.is_rebalance_due([], t0)  # sets the next rebalance
    assert expiring.is_rebalance_due([], t0 + dt.timedelta(seconds=1))  # an insight expired before now
    model._security_changes = True
    model.rebalance_on_security_changes = True
    assert model.is_rebalance_due([], t0 + dt.timedelta(days=1, hours=3))


def test_date_rule_rebalancing_returns_the_next_rule_date_once_reached() -> None:
    func = _date_rule_func(DateRules().every(DayOfWeek.WEDNESDAY))
    first = func(dt.datetime(2015, 1, 2, 21))  # Friday: the next Wednesday's midnight
    assert first == dt.datetime(2015, 1, 7)
    assert func(first - dt.timedelta(hours=1)) == first
    second = func(first + dt.timedelta(hours=21))
    assert second - first == dt.timedelta(days=7)


def test_constant_alpha_emits_again_once_the_period_passed() -> None:
    alpha = ConstantAlphaModel(InsightType.PRICE, InsightDirection.UP, dt.timedelta(minutes=20), 0.025)
    assert alpha.name == "ConstantAlphaModel(Price,Up,0:20:00,0.025)"
    t = dt.datetime(2015, 1, 2, 21)
    spy = _sym("SPY")
    assert alpha.should_emit_insight(t, spy)
    assert not alpha.should_emit_insight(t + dt.timedelta(minutes=19), spy)
    assert alpha.should_emit_insight(t + dt.timedelta(minutes=20), spy)


def test_lot_size_adjustment_rounds_up_a_floating_point_near_miss() -> None:
    security = SimpleNamespace(symbol_properties=SimpleNamespace(lot_size=1.0))
    assert OrderSizing.adjust_by_lot_size(security, 10.7) == 10
    assert OrderSizing.adjust_by_lot_size(security, -10.7) == -10
    assert OrderSizing.adjust_by_lot_size(security, 10.9999999999) == 11


def test_simplex_projection_is_the_euclidean_projection_onto_the_simplex() -> None:
    assert simplex_projection([0.5, 0.5]) == [0.5, 0.5]
    # v = (1.2, 0.1): theta = (1.2 - 1) / 1 = 0.2 -> (1.0, 0)
    assert simplex_projection([1.2, 0.1]) == pytest.approx([1.0, 0.0])
    # v = (0.6, 0.6, 0.3): rho = 2, theta = (1.5 - 1) / 3 -> each minus 1/6
    assert simplex_projection([0.6, 0.6, 0.3]) == pytest.approx([0.6 - 1 / 6, 0.6 - 1 / 6, 0.3 - 1 / 6])


def test_risk_parity_weights_are_inverse_volatility_for_uncorrelated_assets() -> None:
    # with a diagonal covariance, equal risk budgets give w_i proportional to 1 / sigma_i
    weights = RiskParityPortfolioOptimizer().optimize(None, covariance=[[0.04, 0.0], [0.0, 0.01]])
    assert weights == pytest.approx([1 / 3, 2 / 3], rel=1e-9)
    assert RiskParityPortfolioOptimizer().optimize(None, covariance=[[0.04]]) == [1.0]


def test_sample_covariance_and_the_returns_matrix() -> None:
    rows = [[0.01, 0.02], [0.03, -0.01], [-0.02, 0.0]]
    cov = _covariance(rows)
    xs, ys = [r[0] for r in rows], [r[1] for r in rows]
    mx, my = sum(xs) / 3, sum(ys) / 3
    assert cov[0][1] == pytest.approx(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / 2)
    assert cov[0][0] == pytest.approx(sum((x - mx) ** 2 for x in xs) / 2)
    t1, t2 = dt.datetime(2021, 2, 19, 16), dt.datetime(2021, 2, 22, 16)
    a = SimpleNamespace(returns={t2: 0.01, t1: 0.0})
    b = SimpleNamespace(returns={t2: 0.02, t1: 0.0})
    # newest first; the all-zero row is left out
    assert form_returns_matrix({"A": a, "B": b}, ["A", "B"]) == [[0.01, 0.02]]  # type: ignore[dict-item]


PASCAL = """
from AlgorithmImports import *
class Pascal(QCAlgorithm):
    def Initialize(self):
        self.set_start_date(2019, 3, 1); self.set_end_date(2019, 3, 5)
"""


def test_a_pascal_case_event_handler_is_refused_by_name(tmp_path: Path) -> None:
    done = run_subprocess(write_run(tmp_path, PASCAL, name="pascal"))
    assert done.returncode == 1
    assert "PascalCase event handler Initialize" in done.stderr.splitlines()[-1]


FRAMEWORK = """
from AlgorithmImports import *
class Framework(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 1); self.set_end_date(2019, 3, 6)
        self.universe_settings.resolution = Resolution.DAILY
        zzsg = Symbol.create("ZZSG", SecurityType.EQUITY, Market.USA)
        self.set_universe_selection(ManualUniverseSelectionModel([zzsg]))
        self.set_alpha(ConstantAlphaModel(InsightType.PRICE, InsightDirection.UP, timedelta(days=1)))
        self.set_portfolio_construction(EqualWeightingPortfolioConstructionModel())
        self.seen = []
        self.insights_generated += lambda algorithm, data: self.seen.append(
            [str(self.time), [str(i.close_time_utc) for i in data.insights]])
    def on_securities_changed(self, changes):
        self.seen.append([str(self.time), [s.symbol.value for s in changes.added_securities]])
    def on_end_of_algorithm(self):
        self.seen.append(len(self.transactions.get_orders()))
        self.object_store.save("seen", json.dumps(self.seen))
"""


def test_a_framework_algorithm_gets_its_universe_then_insights_then_orders(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, FRAMEWORK, name="framework")) == 0
    seen = json.loads((tmp_path / "storage" / "seen").read_text())
    # the universe's security at the first midnight, then one 1-day insight a session at the close (16:00 EST =
    # 21:00 UTC), closing at the next session's close
    assert seen[0] == ["2019-03-01 00:00:00", ["ZZSG"]]
    assert seen[1] == ["2019-03-01 16:00:00", ["2019-03-04 21:00:00"]]
    assert seen[-1] >= 1  # the target's market-on-open order


class _Cancelled:
    def __init__(self) -> None:
        self.cancelled: list[Any] = []

    def cancel(self, symbols: list[Any]) -> None:
        self.cancelled.extend(symbols)


def test_maximum_drawdown_liquidates_a_holding_past_the_loss_and_a_composite_prefers_later_models() -> None:
    from include.lean_local.framework_models import CompositeRiskManagementModel, MaximumDrawdownPercentPerSecurity
    from include.lean_local.portfolio import PortfolioTarget

    def security(ticker: str, invested: bool, pnl: float) -> Any:
        return SimpleNamespace(
            symbol=_sym(ticker), invested=invested, holdings=SimpleNamespace(unrealized_profit_percent=pnl)
        )

    insights = _Cancelled()
    securities = {"A": security("A", True, -0.06), "B": security("B", True, -0.04), "C": security("C", False, -0.5)}
    algorithm = SimpleNamespace(securities=securities, insights=insights)
    risk = MaximumDrawdownPercentPerSecurity(0.05)
    out = risk.manage_risk(algorithm, [])  # type: ignore[arg-type]
    assert [(t.symbol.value, t.quantity) for t in out] == [("A", 0.0)]
    assert [s.value for s in insights.cancelled] == ["A"]
    composite = CompositeRiskManagementModel(MaximumDrawdownPercentPerSecurity(0.05))
    targets = [PortfolioTarget(_sym("A"), 10), PortfolioTarget(_sym("B"), 5)]
    merged = composite.manage_risk(algorithm, targets)  # type: ignore[arg-type]
    assert [(t.symbol.value, t.quantity) for t in merged] == [("A", 0.0), ("B", 5.0)]
