"""Lean's framework models (``Algorithm/Alphas``, ``Algorithm/Portfolio``, ``Algorithm/Execution``,
``Algorithm/Risk``, ``Algorithm/Selection`` and ``Algorithm.Framework``), each a port of Lean's C# (or Python)
model: the base classes an algorithm subclasses and the models it names.

Orders come from the execution model (market orders, which the runtime turns into Lean's market-on-open orders
on daily data as ``market_order`` does); targets are ``PortfolioTarget.percent`` (Lean's buying-power sizing).
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from enum import IntEnum
from typing import Any

from include.lean_local.enums import Resolution
from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.insights import Insight, InsightDirection, InsightType, _naive_utc
from include.lean_local.portfolio import PortfolioTarget
from include.lean_local.security_changes import SecurityChanges

END_OF_TIME = dt.datetime(9999, 12, 31)

_RESOLUTION_SPANS = {
    Resolution.SECOND: dt.timedelta(seconds=1),
    Resolution.MINUTE: dt.timedelta(minutes=1),
    Resolution.HOUR: dt.timedelta(hours=1),
    Resolution.DAILY: dt.timedelta(days=1),
}


def _one(method: str, **named: Any) -> Any:
    """The one argument given under one of Lean's overloads' names."""
    given = [value for value in named.values() if value is not None]
    if len(given) != 1:
        raise TypeError(f"{method}() takes one of {', '.join(named)}")
    return given[0]


def _rebalance(default: Any, **named: Any) -> Any:
    """A PCM's rebalance parameter, under any of its overloads' names (None given: the default)."""
    given = [value for value in named.values() if value is not None]
    if len(given) > 1:
        raise TypeError(f"a rebalance parameter is one of {', '.join(named)}")
    return given[0] if given else default


def _model_name(model: Any) -> str:
    name = getattr(model, "name", None)
    return name if isinstance(name, str) and name else type(model).__name__


def _update_collection(securities: list[Any], changes: SecurityChanges) -> None:
    """Lean's ``NotifiedSecurityChanges.UpdateCollection``: removals then additions, insertion order kept."""
    for removed in changes.removed_securities:
        if removed in securities:
            securities.remove(removed)
    for added in changes.added_securities:
        if added not in securities:
            securities.append(added)


# ------------------------------------------------------------------------------------------------- alphas
class AlphaModel:
    """Lean's ``AlphaModel``: ``update(algorithm, data)`` returns insights."""

    def __init__(self) -> None:
        self.name = type(self).__name__

    def update(self, algorithm: Any, data: Any) -> list[Insight]:
        raise NotImplementedError("Types deriving from 'AlphaModel' must implement the 'update' method.")

    def on_securities_changed(self, algorithm: Any, changes: SecurityChanges) -> None:
        pass


class NullAlphaModel(AlphaModel):
    def update(self, algorithm: Any, data: Any) -> list[Insight]:
        return []


class CompositeAlphaModel(AlphaModel):
    """Lean's ``CompositeAlphaModel``: each model's insights in turn, their source model set to its name."""

    def __init__(self, *alpha_models: Any) -> None:
        super().__init__()
        self._models: list[Any] = []
        for model in alpha_models:
            self.add_alpha(model)

    def add_alpha(self, alpha_model: Any = None, *, py_alpha_model: Any = None) -> None:
        self._models.append(_one("add_alpha", alpha_model=alpha_model, py_alpha_model=py_alpha_model))

    def update(self, algorithm: Any, data: Any) -> list[Insight]:
        out: list[Insight] = []
        for model in self._models:
            name = _model_name(model)
            for insight in model.update(algorithm, data) or []:
                if not insight.source_model:
                    insight.source_model = name
                out.append(insight)
        return out

    def on_securities_changed(self, algorithm: Any, changes: SecurityChanges) -> None:
        for model in self._models:
            model.on_securities_changed(algorithm, changes)


class ConstantAlphaModel(AlphaModel):
    """Lean's ``ConstantAlphaModel``: for each security with a price, an insight of the given type, direction
    and period, again once the previous one's period has passed."""

    def __init__(
        self,
        type: Any,
        direction: Any,
        period: dt.timedelta,
        magnitude: float | None = None,
        confidence: float | None = None,
        weight: float | None = None,
    ) -> None:
        super().__init__()
        self._type = InsightType(int(type))
        self._direction = InsightDirection(int(direction))
        self._period = period
        self._magnitude = magnitude
        self._confidence = confidence
        self._weight = weight
        self._securities: list[Any] = []
        self._insights_time_by_symbol: dict[Any, dt.datetime] = {}
        name = f"ConstantAlphaModel({self._type.name.title()},{self._direction.name.title()},{period}"
        if magnitude is not None:
            name += f",{magnitude}"
        if confidence is not None:
            name += f",{confidence}"
        self.name = name + ")"

    def update(self, algorithm: Any, data: Any) -> list[Insight]:
        out = []
        for security in self._securities:
            if security.price != 0 and self.should_emit_insight(algorithm.utc_time, security.symbol):
                out.append(
                    Insight(
                        security.symbol,
                        self._period,
                        self._type,
                        self._direction,
                        self._magnitude,
                        self._confidence,
                        weight=self._weight,
                    )
                )
        return out

    def on_securities_changed(self, algorithm: Any, changes: SecurityChanges) -> None:
        _update_collection(self._securities, changes)
        for removed in changes.removed_securities:
            self._insights_time_by_symbol.pop(removed.symbol, None)

    def should_emit_insight(self, utc_time: dt.datetime, symbol: Any) -> bool:
        utc = _naive_utc(utc_time)
        generated = self._insights_time_by_symbol.get(symbol)
        if generated is not None and utc - generated < self._period:
            return False
        self._insights_time_by_symbol[symbol] = utc
        return True


# ---------------------------------------------------------------------------------------------- portfolio
class PortfolioBias(IntEnum):
    SHORT = -1
    LONG_SHORT = 0
    LONG = 1


def _rebalancing_func(rebalance: Any, algorithm_end: Any = None) -> Any:
    """Lean's ``SetRebalancingFunc``/constructor overloads: a Resolution or timedelta (time + span), date rules
    (``IDateRule.ToFunc``), or a function of the UTC time returning the next rebalance time or None."""
    from include.lean_local.scheduling import DateRule

    if rebalance is None:
        return None
    if isinstance(rebalance, Resolution):
        rebalance = _RESOLUTION_SPANS.get(rebalance)
        if rebalance is None:
            raise NotSupportedByLocalRuntime("rebalancing every tick")
    if isinstance(rebalance, dt.timedelta):
        span = rebalance
        return lambda time: _naive_utc(time) + span
    if isinstance(rebalance, DateRule):
        return _date_rule_func(rebalance)
    if callable(rebalance):
        return rebalance
    raise TypeError(f"a rebalance parameter must be a Resolution, timedelta, date rule or function: {rebalance!r}")


def _date_rule_func(rule: Any) -> Any:
    """Lean's ``IDateRule.ToFunc``: the rule's dates (midnights) from the first call's UTC time on; the next one
    once the time reaches the current one."""
    state: dict[str, Any] = {"dates": None, "i": 0}

    def func(time_utc: dt.datetime) -> dt.datetime:
        time_utc = _naive_utc(time_utc)
        if state["dates"] is None:
            start = time_utc.date()
            days = rule.get_dates(start, start + dt.timedelta(days=366 * 30))
            state["dates"] = [dt.datetime.combine(d, dt.time()) for d in days]
            if not state["dates"]:
                return END_OF_TIME
        dates: list[dt.datetime] = state["dates"]
        if state["i"] >= len(dates):
            return END_OF_TIME
        if time_utc >= dates[state["i"]]:
            state["i"] += 1
            if state["i"] >= len(dates):
                return END_OF_TIME
        return dates[state["i"]]

    return func


class PortfolioConstructionModel:
    """Lean's ``PortfolioConstructionModel``: when a rebalance is due, a target for the last active insight of
    each symbol (``determine_target_percent``), and a flat target for each symbol whose insights all expired."""

    def __init__(self, rebalancing_func: Any = None) -> None:
        self._rebalancing_func: Any = None
        self._rebalancing_time: dt.datetime | None = None
        self._security_changes = False
        self.rebalance_on_security_changes = True
        self.rebalance_on_insight_changes = True
        self.algorithm: Any = None
        if rebalancing_func is not None:
            self.set_rebalancing_func(rebalancing_func)

    def set_rebalancing_func(self, rebalance: Any) -> None:
        self._rebalancing_func = _rebalancing_func(rebalance)

    @property
    def insights(self) -> Any:
        return self.algorithm.insights

    def create_targets(self, algorithm: Any, insights: list[Insight]) -> list[PortfolioTarget]:
        self.algorithm = algorithm
        if not self.is_rebalance_due(insights, algorithm.utc_time):
            return []
        targets: list[PortfolioTarget] = []
        last_active = self.get_target_insights()
        error_symbols: set[Any] = set()
        percents = self.determine_target_percent(last_active)
        for insight in last_active:
            if insight not in percents:
                continue
            target = PortfolioTarget.percent(algorithm, insight.symbol, percents[insight])
            if target is not None:
                targets.append(target)
            else:
                error_symbols.add(insight.symbol)
        utc = _naive_utc(algorithm.utc_time)
        expired = algorithm.insights.remove_expired_insights(utc)
        seen: list[Any] = []
        for insight in expired:
            if insight.symbol not in seen:
                seen.append(insight.symbol)
        for symbol in seen:
            if not algorithm.insights.has_active_insights(symbol, utc) and symbol not in error_symbols:
                targets.append(PortfolioTarget(symbol, 0))
        return targets

    def on_securities_changed(self, algorithm: Any, changes: SecurityChanges) -> None:
        if self.algorithm is None:
            self.algorithm = algorithm
        self._security_changes = changes.count != 0
        algorithm.insights.expire([s.symbol for s in changes.removed_securities])

    def get_target_insights(self) -> list[Insight]:
        algorithm = self.algorithm
        active = [
            i
            for i in algorithm.insights.get_active_insights(algorithm.utc_time)
            if self.should_create_target_for_insight(i)
        ]
        last: dict[Any, Insight] = {}
        for insight in active:  # group by symbol (first appearance), the last generated of each
            best = last.get(insight.symbol)
            if best is None or not (insight.generated_time_utc < best.generated_time_utc):
                last[insight.symbol] = insight
        return list(last.values())

    def should_create_target_for_insight(self, insight: Insight) -> bool:
        return True

    def determine_target_percent(self, active_insights: list[Insight]) -> dict[Insight, float]:
        raise NotImplementedError(
            "Types deriving from 'PortfolioConstructionModel' must implement the 'determine_target_percent' method."
        )

    def is_rebalance_due(self, insights: list[Insight], algorithm_utc: dt.datetime) -> bool:
        utc = _naive_utc(algorithm_utc)
        if self._rebalancing_func is None:
            self.refresh_rebalance(utc)
            return True
        next_expiry = self.algorithm.insights.get_next_expiry_time()
        if self._rebalancing_time is None:
            self._rebalancing_time = self._call_func(algorithm_utc)
            if self._rebalancing_time is not None and self._rebalancing_time <= utc:
                self._rebalancing_time = None
                self._security_changes = False
                return True
        if (
            (self._rebalancing_time is not None and self._rebalancing_time <= utc)
            or (self.rebalance_on_security_changes and self._security_changes)
            or (
                self.rebalance_on_insight_changes
                and (len(insights) != 0 or (next_expiry is not None and next_expiry < utc))
            )
        ):
            self.refresh_rebalance(algorithm_utc)
            return True
        return False

    def _call_func(self, algorithm_utc: dt.datetime) -> dt.datetime | None:
        """The rebalancing function of the algorithm's UTC time (as the algorithm sees it: ``utc_time``)."""
        value = self._rebalancing_func(algorithm_utc)
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            if isinstance(value, dt.date):
                return dt.datetime.combine(value, dt.time())
            raise TypeError(f"a rebalancing function must return a datetime or None, not {type(value).__name__}")
        return _naive_utc(value)

    def refresh_rebalance(self, algorithm_utc: dt.datetime) -> None:
        if self._rebalancing_func is not None:
            self._rebalancing_time = self._call_func(algorithm_utc)
        self._security_changes = False


class NullPortfolioConstructionModel(PortfolioConstructionModel):
    def create_targets(self, algorithm: Any, insights: list[Insight]) -> list[PortfolioTarget]:
        return []

    def on_securities_changed(self, algorithm: Any, changes: SecurityChanges) -> None:
        pass


class EqualWeightingPortfolioConstructionModel(PortfolioConstructionModel):
    """Lean's ``EqualWeightingPortfolioConstructionModel``: 1/N of the portfolio to each of the N symbols with
    an active insight that is not flat (and respects the bias), in the insight's direction."""

    def __init__(
        self,
        rebalance: Any = None,
        portfolio_bias: Any = PortfolioBias.LONG_SHORT,
        *,
        rebalancing_date_rules: Any = None,
        rebalancing_func: Any = None,
        time_span: Any = None,
        resolution: Any = None,
    ) -> None:
        super().__init__()
        self.portfolio_bias = PortfolioBias(int(portfolio_bias))
        rebalance = _rebalance(
            Resolution.DAILY,
            rebalance=rebalance,
            rebalancing_date_rules=rebalancing_date_rules,
            rebalancing_func=rebalancing_func,
            time_span=time_span,
            resolution=resolution,
        )
        self.set_rebalancing_func(rebalance)

    def determine_target_percent(self, active_insights: list[Insight]) -> dict[Insight, float]:
        count = sum(
            1 for x in active_insights if x.direction != InsightDirection.FLAT and self.respect_portfolio_bias(x)
        )
        percent = 0.0 if count == 0 else 1.0 / count
        return {
            insight: (int(insight.direction) if self.respect_portfolio_bias(insight) else 0) * percent
            for insight in active_insights
        }

    def respect_portfolio_bias(self, insight: Insight) -> bool:
        return self.portfolio_bias == PortfolioBias.LONG_SHORT or int(insight.direction) == int(self.portfolio_bias)


class InsightWeightingPortfolioConstructionModel(EqualWeightingPortfolioConstructionModel):
    """Lean's ``InsightWeightingPortfolioConstructionModel``: each insight's |weight| (scaled down to sum to 1
    when the weights exceed 1), in its direction; insights without a weight make no target."""

    def should_create_target_for_insight(self, insight: Insight) -> bool:
        return insight.weight is not None

    def determine_target_percent(self, active_insights: list[Insight]) -> dict[Insight, float]:
        sums = sum(self.get_value(i) for i in active_insights if self.respect_portfolio_bias(i))
        factor = 1.0 / sums if sums > 1 else 1.0
        return {
            insight: (int(insight.direction) if self.respect_portfolio_bias(insight) else 0)
            * self.get_value(insight)
            * factor
            for insight in active_insights
        }

    def get_value(self, insight: Insight) -> float:
        return abs(insight.weight) if insight.weight is not None else 0.0


class MeanReversionPortfolioConstructionModel(PortfolioConstructionModel):
    """Lean's ``MeanReversionPortfolioConstructionModel`` (the C# model; OLMAR, Li and Hoi 2012): each rebalance
    moves the previous weights against each asset's price relative (1 + magnitude x direction, or price / SMA),
    projected onto the simplex (Duchi et al. 2008)."""

    def __init__(
        self,
        rebalance: Any = None,
        portfolio_bias: Any = PortfolioBias.LONG_SHORT,
        reversion_threshold: float = 1,
        window_size: int = 20,
        resolution: Any = Resolution.DAILY,
        *,
        rebalancing_date_rules: Any = None,
        rebalance_resolution: Any = None,
        time_span: Any = None,
        rebalancing_func: Any = None,
    ) -> None:
        super().__init__()
        rebalance = _rebalance(
            Resolution.DAILY,
            rebalance=rebalance,
            rebalancing_date_rules=rebalancing_date_rules,
            rebalance_resolution=rebalance_resolution,
            time_span=time_span,
            rebalancing_func=rebalancing_func,
        )
        if int(portfolio_bias) == PortfolioBias.SHORT:
            raise ValueError("Long position must be allowed in MeanReversionPortfolioConstructionModel.")
        self._reversion_threshold = float(reversion_threshold)
        self._window_size = int(window_size)
        self._resolution = resolution
        self._num_of_assets = 0
        self._weight_vector: list[float] = []
        self._symbol_data: dict[Any, tuple[Any, Any]] = {}
        if rebalance is not None:
            self.set_rebalancing_func(rebalance)

    def determine_target_percent(self, active_insights: list[Insight]) -> dict[Insight, float]:
        targets: dict[Insight, float] = {}
        if not active_insights or not all(self._is_ready(x.symbol) for x in active_insights):
            return targets
        n = len(active_insights)
        if self._num_of_assets != n:
            self._num_of_assets = n
            self._weight_vector = [1.0 / n] * n
        relatives = self.get_price_relatives(active_insights)
        prediction = sum(relatives) / len(relatives)  # LINQ Average: the double sum / count
        deviations = [x - prediction for x in relatives]
        second_norm = math.pow(_euclidean(deviations), 2)
        if second_norm == 0.0:
            step = 0.0
        else:
            inner = 0.0
            for w, x in zip(self._weight_vector, relatives, strict=True):
                inner += w * x
            step = max(0.0, (inner - self._reversion_threshold) / second_norm)
        next_portfolio = [w - deviations[i] * step for i, w in enumerate(self._weight_vector)]
        normalized = simplex_projection(next_portfolio)
        self._weight_vector = normalized
        for i in range(n):
            targets[active_insights[i]] = normalized[i]
        return targets

    def get_price_relatives(self, active_insights: list[Insight]) -> list[float]:
        out = []
        for insight in active_insights:
            identity, sma = self._symbol_data[insight.symbol]
            if insight.magnitude is not None:
                out.append(1 + float(insight.magnitude) * int(insight.direction))
            else:
                out.append(float(identity.current.value) / float(sma.current.value))
        return out

    def _is_ready(self, symbol: Any) -> bool:
        identity, sma = self._symbol_data[symbol]
        return bool(identity.is_ready and sma.is_ready)

    def on_securities_changed(self, algorithm: Any, changes: SecurityChanges) -> None:
        super().on_securities_changed(algorithm, changes)
        for removed in changes.removed_securities:
            data = self._symbol_data.pop(removed.symbol, None)
            if data is not None:
                for indicator in data:
                    indicator.reset()
        for added in changes.added_securities:
            symbol = added.symbol
            if symbol not in self._symbol_data:
                identity = algorithm.identity(symbol, self._resolution)
                sma = algorithm.sma(symbol, self._window_size, self._resolution)
                algorithm.warm_up_indicator(symbol, identity, self._resolution)
                algorithm.warm_up_indicator(symbol, sma, self._resolution)
                self._symbol_data[symbol] = (identity, sma)


def _euclidean(values: list[float]) -> float:
    """MathNet ``Distance.Euclidean``-style norm of one vector (``Euclidean()`` extension): sqrt of the sum of
    squares."""
    total = 0.0
    for v in values:
        total += v * v
    return math.sqrt(total)


def simplex_projection(vector: list[float], total: float = 1) -> list[float]:
    """``MeanReversionPortfolioConstructionModel.SimplexProjection``: the Euclidean projection onto the simplex."""
    if total <= 0:
        raise ValueError("Total must be > 0 for Euclidean Projection onto the Simplex.")
    mu = sorted(vector, reverse=True)
    sv: list[float] = []
    running = 0.0
    for x in mu:
        running += x
        sv.append(running)
    rho = [i for i in range(len(vector)) if mu[i] > (sv[i] - total) / (i + 1)][-1]
    theta = (sv[rho] - total) / (rho + 1)
    return [max(x - theta, 0.0) for x in vector]


class ReturnsSymbolData:
    """Lean's ``ReturnsSymbolData``: a RateOfChange(lookback) and a rolling window of its last ``period``
    values (newest first), skipping a repeated end time."""

    def __init__(self, symbol: Any, lookback: int, period: int) -> None:
        from include.lean_local.indicators import RateOfChange, RollingWindow

        self._symbol = symbol
        self.roc = RateOfChange(f"{getattr(symbol, 'value', symbol)}.ROC({lookback})", lookback)
        self._window: Any = RollingWindow(period)
        self.roc.updated += self._on_roc_updated

    def _on_roc_updated(self, sender: Any, updated: Any) -> None:
        if self.roc.is_ready:
            self._add_to_window(updated)

    def _add_to_window(self, point: Any) -> None:
        if self._window.samples > 0 and self._window[0].end_time == point.end_time:
            return
        self._window.add(point)

    @property
    def returns(self) -> dict[Any, float]:
        return {point.end_time: float(point.value) for point in self._window}

    def update(self, time: Any, value: float) -> bool:
        return bool(self.roc.update(time, value))


def form_returns_matrix(symbol_data: dict[Any, ReturnsSymbolData], symbols: list[Any]) -> list[list[float]]:
    """Lean's ``FormReturnsMatrix``: one row per date (newest first), one column per symbol; a row whose
    absolute sum is NaN or zero is left out."""
    by_date = [symbol_data[s].returns for s in symbols if s in symbol_data]
    all_dates: list[Any] = []
    for returns in by_date:
        for date in returns:
            if date not in all_dates:
                all_dates.append(date)
    maximum = max((len(d.returns) for d in symbol_data.values()), default=0)
    if maximum == len(all_dates):
        rows = [[r.get(date, math.nan) for r in by_date] for date in all_dates]
    else:
        by_index = [list(r.values()) for r in by_date]
        rows = [[v[d] if d < len(v) else math.nan for v in by_index] for d in range(maximum)]

    def kept(row: list[float]) -> bool:
        total = 0.0
        for v in row:
            total += abs(v)
        return not (math.isnan(total) or total == 0)

    return [row for row in rows if kept(row)]


def _covariance(rows: list[list[float]]) -> list[list[float]]:
    """Accord's ``Covariance`` (the sample covariance, divisor n - 1) of the columns."""
    n = len(rows)
    cols = len(rows[0]) if rows else 0
    means = []
    for j in range(cols):
        total = 0.0
        for k in range(n):
            total += rows[k][j]
        means.append(total / n)
    cov = [[0.0] * cols for _ in range(cols)]
    for i in range(cols):
        for j in range(i, cols):
            total = 0.0
            for k in range(n):
                total += (rows[k][j] - means[j]) * (rows[k][i] - means[i])
            total /= n - 1
            cov[i][j] = cov[j][i] = total
    return cov


class RiskParityPortfolioOptimizer:
    """Lean's ``RiskParityPortfolioOptimizer``: Newton's method on 1/2 x'Sx - b'log(x) (equal risk budgets),
    normalized and clamped to [lower, upper]. The runtime inverts the 2x2 Hessian in closed form; more than two
    assets (Accord's LU inverse) refuse by name."""

    def __init__(self, lower: float | None = None, upper: float | None = None) -> None:
        self._lower = 1e-05 if lower is None else float(lower)
        self._upper = sys.float_info.max if upper is None else float(upper)

    def optimize(self, historical_returns: Any, expected_returns: Any = None, covariance: Any = None) -> list[float]:
        cov = covariance if covariance is not None else _covariance(historical_returns)
        size = len(cov)
        budget = list(expected_returns) if expected_returns is not None else [1.0 / size] * size
        solution = self._newton(size, cov, budget)
        total = 0.0
        for x in solution:
            total += x
        solution = [x / total for x in solution]
        return [min(max(x, self._lower), self._upper) for x in solution]

    @staticmethod
    def _newton(
        n: int, cov: list[list[float]], budget: list[float], tolerance: float = 1e-11, maximum_iteration: int = 15000
    ) -> list[float]:
        if n < 1 or n > 1000:
            raise ValueError('Argument "numberOfVariables" must be a positive integer between 1 and 1000')
        if n == 1:
            return [1.0]
        if n > 2:
            raise NotSupportedByLocalRuntime("RiskParityPortfolioOptimizer with more than two assets")

        def objective(x: list[float]) -> float:
            xs = [cov[0][0] * x[0] + cov[1][0] * x[1], cov[0][1] * x[0] + cov[1][1] * x[1]]
            quad = xs[0] * x[0] + xs[1] * x[1]
            logs = budget[0] * math.log(x[0]) + budget[1] * math.log(x[1])
            return 0.5 * quad - logs

        weight = [1.0 / n] * n
        new_objective = -sys.float_info.max
        old_objective = sys.float_info.max
        iteration = 0
        while abs(new_objective - old_objective) > tolerance and iteration < maximum_iteration:
            old_objective = new_objective
            a = cov[0][0] + budget[0] / (weight[0] * weight[0])
            b = cov[0][1]
            c = cov[1][0]
            d = cov[1][1] + budget[1] / (weight[1] * weight[1])
            det = a * d - b * c
            m = 1 / det
            inv = [[d * m, -b * m], [-c * m, a * m]]
            grad = [
                cov[0][0] * weight[0] + cov[0][1] * weight[1] - budget[0] / weight[0],
                cov[1][0] * weight[0] + cov[1][1] * weight[1] - budget[1] / weight[1],
            ]
            step = [inv[0][0] * grad[0] + inv[0][1] * grad[1], inv[1][0] * grad[0] + inv[1][1] * grad[1]]
            weight = [weight[0] - step[0], weight[1] - step[1]]
            new_objective = objective(weight)
            iteration += 1
        return weight


class RiskParityPortfolioConstructionModel(PortfolioConstructionModel):
    """Lean's ``RiskParityPortfolioConstructionModel``: weights from a risk-parity optimizer over each symbol's
    last ``period`` returns over ``lookback`` bars (history-warmed)."""

    def __init__(
        self,
        rebalance: Any = None,
        portfolio_bias: Any = PortfolioBias.LONG_SHORT,
        lookback: int = 1,
        period: int = 252,
        resolution: Any = Resolution.DAILY,
        optimizer: Any = None,
        *,
        rebalancing_date_rules: Any = None,
        rebalance_resolution: Any = None,
        time_span: Any = None,
        rebalancing_func: Any = None,
    ) -> None:
        super().__init__()
        rebalance = _rebalance(
            Resolution.DAILY,
            rebalance=rebalance,
            rebalancing_date_rules=rebalancing_date_rules,
            rebalance_resolution=rebalance_resolution,
            time_span=time_span,
            rebalancing_func=rebalancing_func,
        )
        if int(portfolio_bias) == PortfolioBias.SHORT:
            raise ValueError("Long position must be allowed in RiskParityPortfolioConstructionModel.")
        self._lookback = int(lookback)
        self._period = int(period)
        self._resolution = resolution
        self._optimizer = optimizer if optimizer is not None else RiskParityPortfolioOptimizer()
        self._symbol_data: dict[Any, ReturnsSymbolData] = {}
        if rebalance is not None:
            self.set_rebalancing_func(rebalance)

    def determine_target_percent(self, active_insights: list[Insight]) -> dict[Insight, float]:
        targets: dict[Insight, float] = {}
        if not active_insights:
            return targets
        symbols = [x.symbol for x in active_insights]
        returns = form_returns_matrix(self._symbol_data, symbols)
        weights = list(self._optimizer.optimize(returns))
        if weights:
            for index, symbol in enumerate(symbols):
                first = next(i for i in active_insights if i.symbol == symbol)
                targets[first] = weights[index]
        return targets

    def on_securities_changed(self, algorithm: Any, changes: SecurityChanges) -> None:
        super().on_securities_changed(algorithm, changes)
        if changes.removed_securities:
            raise NotSupportedByLocalRuntime("RiskParityPortfolioConstructionModel with removed securities")
        added = changes.added_securities
        if not added:
            return
        for security in added:
            if security.symbol not in self._symbol_data:
                data = ReturnsSymbolData(security.symbol, self._lookback, self._period)
                self._symbol_data[security.symbol] = data
                algorithm.register_indicator(security.symbol, data.roc, self._resolution)
        engine = algorithm._engine
        bars = []
        for security in added:
            bars += engine.history_bars(security.symbol, self._lookback * self._period)
        bars.sort(key=lambda bar: bar.end_time)  # Lean's history slices: by time
        for bar in bars:
            returns = self._symbol_data.get(bar.symbol)
            if returns is not None:
                returns.update(bar.end_time, bar.close)


# ---------------------------------------------------------------------------------------------- execution
class PortfolioTargetCollection:
    """Lean's ``PortfolioTargetCollection``: the latest target per symbol (a re-added symbol keeps its place)."""

    def __init__(self) -> None:
        self._targets: dict[Any, PortfolioTarget] = {}

    def add(
        self, symbol: Any = None, target: Any = None, *, item: Any = None, key: Any = None, value: Any = None
    ) -> None:
        """``add(target)``, ``add(symbol, target)``, ``add(key, value)`` or ``add(item)`` (a target or a
        (symbol, target) pair)."""
        if key is not None or value is not None:
            symbol, target = key, value
        if item is not None:
            symbol, target = (item[0], item[1]) if isinstance(item, tuple) else (None, item)
        if target is None:
            symbol, target = None, symbol
        if target is not None:
            self._targets[target.symbol if symbol is None else symbol] = target

    def add_range(self, targets: Any) -> None:
        for target in targets or []:
            self.add(target)

    @property
    def is_empty(self) -> bool:
        return not self._targets

    @property
    def count(self) -> int:
        return len(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def __iter__(self) -> Any:
        return iter(list(self._targets.values()))

    def contains_key(self, symbol: Any = None, *, key: Any = None) -> bool:
        return (symbol if key is None else key) in self._targets

    def __getitem__(self, symbol: Any) -> PortfolioTarget:
        return self._targets[symbol]

    def remove(self, symbol: Any = None, target: Any = None, *, item: Any = None, key: Any = None) -> bool:
        """``remove(symbol)``, ``remove(key)``, ``remove(target)`` or ``remove(item)``."""
        if key is not None:
            symbol = key
        if item is not None:
            target = item[1] if isinstance(item, tuple) else item
        key = symbol if target is None else target.symbol
        if isinstance(key, PortfolioTarget):
            key = key.symbol
        return self._targets.pop(key, None) is not None

    def clear(self) -> None:
        self._targets.clear()

    def clear_fulfilled(self, algorithm: Any) -> None:
        for target in list(self._targets.values()):
            security = algorithm.securities[target.symbol]
            if abs(target.quantity - security.holdings.quantity) < security.symbol_properties.lot_size:
                self.remove(target.symbol)

    def order_by_margin_impact(self, algorithm: Any) -> list[PortfolioTarget]:
        """Lean's ``OrderTargetsByMarginImpact``: targets of tradable securities with data that need at least a
        lot, the reducing ones first, then by order value, descending (a stable sort)."""
        if self.is_empty or algorithm.is_warming_up:
            return []
        rows = []
        for target in self._targets.values():
            security = algorithm.securities[target.symbol]
            target_qty = OrderSizing.adjust_by_lot_size(security, target.quantity)
            existing = _projected_quantity(algorithm, security)
            if not (security.has_data and security.is_tradable):
                continue
            if abs(target_qty - existing) < security.symbol_properties.lot_size:
                continue
            value = abs((target_qty - existing) * security.price)
            reducing = existing != 0 and abs(target_qty) < abs(existing)
            rows.append((target, value, reducing))
        rows.sort(key=lambda r: r[1], reverse=True)
        rows.sort(key=lambda r: r[2], reverse=True)
        return [r[0] for r in rows]


def _projected_quantity(algorithm: Any, security: Any) -> float:
    """Lean's ``GetProjectedHoldings(security).ProjectedQuantity``: holdings plus open orders' remaining."""
    open_qty = algorithm.transactions.get_open_orders_remaining_quantity(security.symbol)
    return float(security.holdings.quantity + open_qty)


class OrderSizing:
    @staticmethod
    def adjust_by_lot_size(security: Any, quantity: float) -> float:
        lot = security.symbol_properties.lot_size
        abs_qty = abs(quantity)
        remainder = abs_qty % lot
        if lot - remainder < lot / 1_000_000:
            remainder -= lot
        abs_qty -= remainder
        return (1 if quantity >= 0 else -1) * abs_qty if abs_qty else 0.0

    @staticmethod
    def get_unordered_quantity(
        algorithm: Any, target: Any, security: Any = None, account_for_fees: bool = False
    ) -> float:
        security = security if security is not None else algorithm.securities[target.symbol]
        quantity = target.quantity - _projected_quantity(algorithm, security)
        return OrderSizing.adjust_by_lot_size(security, quantity)


def above_minimum_order_margin_portfolio_percentage(
    security: Any, quantity: float, algorithm: Any, minimum_order_margin_portfolio_percentage: float
) -> bool:
    """Lean's ``BuyingPowerModelExtensions.AboveMinimumOrderMarginPortfolioPercentage``."""
    if minimum_order_margin_portfolio_percentage == 0:
        return True
    margin = abs(quantity * security.price / security.leverage)
    portfolio = algorithm.portfolio
    tpv = portfolio.total_portfolio_value
    return not (tpv * minimum_order_margin_portfolio_percentage > margin and portfolio.margin_remaining > 0)


class ExecutionModel:
    def __init__(self, asynchronous: bool = True) -> None:
        self.asynchronous = asynchronous

    def execute(self, algorithm: Any, targets: list[PortfolioTarget]) -> None:
        raise NotImplementedError("Types deriving from 'ExecutionModel' must implement the 'execute' method.")

    def on_securities_changed(self, algorithm: Any, changes: SecurityChanges) -> None:
        pass

    def on_order_event(self, algorithm: Any, order_event: Any) -> None:
        pass


class NullExecutionModel(ExecutionModel):
    def execute(self, algorithm: Any, targets: list[PortfolioTarget]) -> None:
        pass


class ImmediateExecutionModel(ExecutionModel):
    """Lean's ``ImmediateExecutionModel``: a market order for each target's unordered quantity (above the
    minimum order margin), targets kept until fulfilled."""

    def __init__(self, asynchronous: bool = True) -> None:
        super().__init__(asynchronous)
        self.targets_collection = PortfolioTargetCollection()

    def execute(self, algorithm: Any, targets: list[PortfolioTarget]) -> None:
        self.targets_collection.add_range(targets)
        if self.targets_collection.is_empty:
            return
        minimum = algorithm.settings.minimum_order_margin_portfolio_percentage
        for target in self.targets_collection.order_by_margin_impact(algorithm):
            security = algorithm.securities[target.symbol]
            quantity = OrderSizing.get_unordered_quantity(algorithm, target, security, True)
            if quantity != 0 and above_minimum_order_margin_portfolio_percentage(
                security, quantity, algorithm, minimum
            ):
                algorithm.market_order(security.symbol, quantity, self.asynchronous, target.tag)
        self.targets_collection.clear_fulfilled(algorithm)


# ---------------------------------------------------------------------------------------------------- risk
class RiskManagementModel:
    def manage_risk(self, algorithm: Any, targets: list[PortfolioTarget]) -> list[PortfolioTarget]:
        raise NotImplementedError("Types deriving from 'RiskManagementModel' must implement 'manage_risk'.")

    def on_securities_changed(self, algorithm: Any, changes: SecurityChanges) -> None:
        pass


class NullRiskManagementModel(RiskManagementModel):
    def manage_risk(self, algorithm: Any, targets: list[PortfolioTarget]) -> list[PortfolioTarget]:
        return []


class CompositeRiskManagementModel(RiskManagementModel):
    """Lean's ``CompositeRiskManagementModel``: each model sees the targets as overridden by the previous ones."""

    def __init__(self, *risk_management_models: Any) -> None:
        self._models = list(risk_management_models)

    def add_risk_management(self, risk_management_model: Any) -> None:
        self._models.append(risk_management_model)

    def manage_risk(self, algorithm: Any, targets: list[PortfolioTarget]) -> list[PortfolioTarget]:
        """Each model in turn on the targets so far; its targets take precedence (one per symbol)."""
        current = list(targets)
        for model in self._models:
            adjusted = list(model.manage_risk(algorithm, current) or [])
            seen: set[Any] = set()
            merged = []
            for target in [*adjusted, *current]:
                if target.symbol not in seen:
                    seen.add(target.symbol)
                    merged.append(target)
            current = merged
        return current

    def on_securities_changed(self, algorithm: Any, changes: SecurityChanges) -> None:
        for model in self._models:
            model.on_securities_changed(algorithm, changes)


class MaximumDrawdownPercentPerSecurity(RiskManagementModel):
    """Lean's ``MaximumDrawdownPercentPerSecurity``: liquidate (and cancel the insights of) a holding whose
    unrealized loss exceeds the given fraction."""

    def __init__(self, maximum_drawdown_percent: float = 0.05) -> None:
        self._maximum_drawdown_percent = -abs(float(maximum_drawdown_percent))

    def manage_risk(self, algorithm: Any, targets: list[PortfolioTarget]) -> list[PortfolioTarget]:
        out = []
        for security in algorithm.securities.values():
            if not security.invested:
                continue
            if security.holdings.unrealized_profit_percent < self._maximum_drawdown_percent:
                algorithm.insights.cancel([security.symbol])
                out.append(PortfolioTarget(security.symbol, 0))
        return out


# ----------------------------------------------------------------------------------------------- selection
class _FixedUniverse:
    """A universe whose members never change: its securities are added (through the universe settings) when
    the run starts, and reported in the first ``on_securities_changed``."""

    def __init__(self, symbols: list[Any], universe_settings: Any = None) -> None:
        self.symbols = symbols
        self.universe_settings = universe_settings
        self.added: list[Any] = []  # the symbols of its securities

    def start(self, algorithm: Any) -> None:
        settings = self.universe_settings if self.universe_settings is not None else algorithm.universe_settings
        for symbol in self.symbols:
            ticker = getattr(symbol, "value", symbol)
            sec_type = getattr(symbol, "security_type", 1)
            market = str(getattr(getattr(symbol, "id", None), "market", "usa")).lower()
            if int(sec_type) != 1 or market != "usa":
                raise NotSupportedByLocalRuntime(f"a universe of {ticker} (only USA equities)")
            security = algorithm.add_equity(
                str(ticker),
                settings.resolution,
                fill_forward=getattr(settings, "fill_forward", True),
                leverage=float(getattr(settings, "leverage", 0.0) or 0.0),
            )
            self.added.append(security.symbol)

    def on_time_step(self, algorithm: Any) -> None:
        pass


class UniverseSelectionModel:
    def get_next_refresh_time_utc(self) -> dt.datetime | None:
        return None

    def create_universes(self, algorithm: Any) -> list[Any]:
        raise NotImplementedError("Types deriving from 'UniverseSelectionModel' must implement 'create_universes'.")


class NullUniverseSelectionModel(UniverseSelectionModel):
    def create_universes(self, algorithm: Any) -> list[Any]:
        return []


class ManualUniverseSelectionModel(UniverseSelectionModel):
    """Lean's ``ManualUniverseSelectionModel``: a fixed list of symbols (one universe per market and security
    type; the runtime's are USA equities)."""

    def __init__(self, symbols: Any = None, *more: Any, universe_settings: Any = None) -> None:
        """``(symbols)``, ``(*symbols)`` or ``(symbols, universe_settings)``."""
        from include.lean_local.universe_settings import UniverseSettings

        items = list(more)
        if len(items) == 1 and isinstance(items[0], UniverseSettings) and universe_settings is None:
            universe_settings = items.pop()
        flat: list[Any] = []
        for item in [symbols, *items]:
            if isinstance(item, (list, tuple)):
                flat.extend(item)
            elif item is not None:
                flat.append(item)
        self.symbols = flat
        self.universe_settings = universe_settings

    def create_universes(self, algorithm: Any) -> list[Any]:
        unique: list[Any] = []
        for symbol in self.symbols:
            if symbol not in unique:
                unique.append(symbol)
        return [_FixedUniverse(unique, self.universe_settings)] if unique else []


class CompositeUniverseSelectionModel(UniverseSelectionModel):
    def __init__(self, *universe_selection_models: Any) -> None:
        self._models = list(universe_selection_models)

    def add_universe_selection(self, universe_selection: Any) -> None:
        self._models.append(universe_selection)

    def get_next_refresh_time_utc(self) -> dt.datetime | None:
        times = [t for t in (m.get_next_refresh_time_utc() for m in self._models) if t is not None]
        return min(times) if times else None

    def create_universes(self, algorithm: Any) -> list[Any]:
        return [u for m in self._models for u in m.create_universes(algorithm)]


class _CustomUniverse(_FixedUniverse):
    """Lean's ``CustomUniverse`` of a selector of tickers, selected each day: the runtime adds the first day's
    tickers and refuses by name a selection that changes later (it would add or remove securities)."""

    def __init__(self, selector: Any, universe_settings: Any) -> None:
        super().__init__([], universe_settings)
        self._selector = selector
        self._selected: list[str] | None = None
        self._last_day: dt.date | None = None

    def _select(self, algorithm: Any) -> list[str]:
        return sorted({str(getattr(t, "value", t)).upper() for t in self._selector(algorithm.utc_time) or []})

    def start(self, algorithm: Any) -> None:
        self._selected = self._select(algorithm)
        self.symbols = list(self._selected)
        super().start(algorithm)

    def on_time_step(self, algorithm: Any) -> None:
        day = algorithm.time.date()
        if day == self._last_day:
            return
        self._last_day = day
        if self._select(algorithm) != self._selected:
            raise NotSupportedByLocalRuntime("a CustomUniverseSelectionModel whose selection changes during the run")


class CustomUniverseSelectionModel(UniverseSelectionModel):
    """Lean's ``CustomUniverseSelectionModel(name, selector)``: USA equities from a selector of tickers."""

    def __init__(
        self,
        security_type: Any = None,
        name: Any = None,
        market: Any = None,
        selector: Any = None,
        universe_settings: Any = None,
        interval: Any = None,
    ) -> None:
        """``(name, selector)`` (USA equities, daily); the six-argument form refuses by name unless it is that."""
        if isinstance(security_type, str) and callable(name) and market is None and selector is None:
            security_type, name, selector = None, security_type, name
        if security_type is not None or market is not None or interval is not None:
            raise NotSupportedByLocalRuntime("CustomUniverseSelectionModel (only (name, selector))")
        if not isinstance(name, str) or not callable(selector):
            raise TypeError("CustomUniverseSelectionModel(name, selector)")
        self.name = name
        self._selector = selector
        self.universe_settings = universe_settings

    def create_universes(self, algorithm: Any) -> list[Any]:
        return [_CustomUniverse(self._selector, self.universe_settings)]

    def select(self, algorithm: Any, date: dt.datetime) -> list[str]:
        return list(self._selector(date))
