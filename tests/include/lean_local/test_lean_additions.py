"""Lean API the local runtime gained for Lean's regression algorithms (issue #16): subscriptions, stop-limit
orders, indicators and slippage models, each checked against values computed from Lean's formulas."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from include.lean_local import indicator_history
from include.lean_local.consolidators import ClassicRenkoConsolidator, RangeBar, RangeConsolidator
from include.lean_local.data import DataProvider
from include.lean_local.indicators import (
    BollingerBands,
    ConstantIndicator,
    IndicatorExtensions,
    RollingWindow,
    SimpleMovingAverage,
    StandardDeviation,
    Variance,
)
from include.lean_local.lean_util import CircularQueue
from include.lean_local.market_data import TradeBar
from include.lean_local.order_models import ConstantSlippageModel
from include.lean_local.orders import Order, OrderType
from include.lean_local.risk_free import FuncRiskFreeRateInterestRateModel
from include.lean_local.symbols import Symbol
from include.lean_local.transactions import _limit_fill, _stop_limit_fill, _stop_market_fill, _trailing_stop_fill
from tests.include.lean_local.helpers import SAMPLE_DATA, events, run_inprocess, run_subprocess, write_run

SUBSCRIPTIONS = """
from AlgorithmImports import *
class Subs(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 1); self.set_end_date(2019, 3, 5)
        sym = self.add_equity("ZZSG", Resolution.DAILY, data_normalization_mode=DataNormalizationMode.RAW).symbol
        service = self.subscription_manager.subscription_data_config_service
        configs = service.get_subscription_data_configs(sym)
        everything = service.get_subscription_data_configs()
        unknown = service.get_subscription_data_configs(Symbol.create("ZZZZ", SecurityType.EQUITY, Market.USA))
        c = configs[0]
        self.object_store.save("configs", json.dumps([
            len(configs), len(everything), len(unknown), self.subscription_manager.count,
            int(c.resolution), int(c.data_normalization_mode), c.symbol == sym, c.extended_market_hours,
            c.is_internal_feed, c.type.__name__, str(c),
        ]))
"""


def test_subscription_manager_lists_each_securitys_daily_config(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, SUBSCRIPTIONS, name="subs")) == 0
    saved = json.loads((tmp_path / "storage" / "configs").read_text())
    assert saved == [
        1,
        1,
        0,
        1,
        4,
        0,
        True,
        False,
        False,
        "TradeBar",
        "ZZSG,#0,ZZSG,Daily,TradeBar,Trade,Raw,OpenInterest",
    ]


# --- stop-limit, stop-market and limit fills (Lean's EquityFillModel) ------------------------------------------


def _bar(o: float, h: float, low: float, c: float) -> TradeBar:
    start = dt.datetime(2019, 3, 4, 9, 30)
    return TradeBar(start, None, o, h, low, c, 1000, end_time=dt.datetime(2019, 3, 4, 16))


def _order(kind: OrderType, quantity: float, *, limit: float | None = None, stop: float | None = None) -> Order:
    return Order(1, Symbol.create("SPY"), quantity, kind, dt.datetime(2019, 3, 1, 21, tzinfo=dt.UTC), "", limit, stop)


class _Security:
    slippage_model = ConstantSlippageModel(0.01)
    price = 10.0


def test_stop_limit_buy_triggers_above_the_stop_then_fills_when_the_close_is_under_the_limit() -> None:
    order = _order(OrderType.STOP_LIMIT, 100, stop=10.0, limit=10.5)
    assert _stop_limit_fill(order, _bar(9.8, 10.0, 9.7, 9.9)) is None  # high == stop: not above it
    assert not order.stop_triggered
    # high 10.6 > stop: triggered; close 10.55 >= limit: no fill yet
    assert _stop_limit_fill(order, _bar(9.9, 10.6, 9.8, 10.55)) is None
    assert order.stop_triggered
    # triggered: the next bar's close 10.2 < limit fills at min(high 10.7, limit 10.5)
    assert _stop_limit_fill(order, _bar(10.4, 10.7, 10.1, 10.2)) == (10.5, "")
    # and at the high when it is under the limit: min(10.3, 10.5)
    assert _stop_limit_fill(order, _bar(10.0, 10.3, 9.9, 10.1)) == (10.3, "")


def test_stop_limit_sell_triggers_below_the_stop_and_fills_at_the_higher_of_low_and_limit() -> None:
    order = _order(OrderType.STOP_LIMIT, -100, stop=10.0, limit=9.5)
    assert _stop_limit_fill(order, _bar(10.2, 10.4, 10.0, 10.1)) is None  # low == stop: not below it
    assert _stop_limit_fill(order, _bar(10.1, 10.2, 9.4, 9.45)) is None  # triggered, close <= limit
    assert order.stop_triggered
    assert _stop_limit_fill(order, _bar(9.6, 9.9, 9.55, 9.8)) == (max(9.55, 9.5), "")
    assert _stop_limit_fill(order, _bar(9.6, 9.9, 9.3, 9.8)) == (9.5, "")


def test_limit_fill_is_the_limit_or_the_open_on_a_favorable_gap() -> None:
    buy = _order(OrderType.LIMIT, 10, limit=10.0)
    assert _limit_fill(buy, _bar(10.2, 10.5, 10.0, 10.3)) is None  # low == limit: not through it
    assert _limit_fill(buy, _bar(10.2, 10.5, 9.9, 10.3)) == (10.0, "")
    price, message = _limit_fill(buy, _bar(9.8, 10.5, 9.7, 10.3)) or (0.0, "")
    assert price == 9.8 and message.startswith("Due to a favorable gap at 03/04/2019 16:00:00 America/New_York")
    sell = _order(OrderType.LIMIT, -10, limit=10.0)
    assert _limit_fill(sell, _bar(9.8, 10.0, 9.5, 9.9)) is None
    assert _limit_fill(sell, _bar(9.8, 10.1, 9.5, 9.9)) == (10.0, "")
    assert (_limit_fill(sell, _bar(10.2, 10.4, 9.5, 9.9)) or (0.0,))[0] == 10.2


def test_stop_market_fill_is_the_stop_or_the_open_on_an_unfavorable_gap_with_slippage() -> None:
    security: Any = _Security()
    slip = 10.0 * 0.01  # ConstantSlippageModel: price x percent
    sell = _order(OrderType.STOP_MARKET, -10, stop=10.0)
    assert _stop_market_fill(sell, _bar(10.2, 10.4, 10.01, 10.3), security) is None
    assert _stop_market_fill(sell, _bar(10.2, 10.4, 10.0, 10.3), security) == (10.0 - slip, "")  # low <= stop
    assert (_stop_market_fill(sell, _bar(9.9, 10.4, 9.5, 10.3), security) or (0.0,))[0] == 9.9 - slip
    buy = _order(OrderType.STOP_MARKET, 10, stop=10.0)
    assert _stop_market_fill(buy, _bar(9.5, 10.0, 9.4, 9.8), security) == (10.0 + slip, "")
    assert (_stop_market_fill(buy, _bar(10.3, 10.5, 10.2, 10.4), security) or (0.0,))[0] == 10.3 + slip


def test_order_value_uses_the_less_favourable_of_limit_and_price() -> None:
    security: Any = _Security()  # price 10
    assert _order(OrderType.LIMIT, 10, limit=9.0).get_value(security) == 90.0
    assert _order(OrderType.LIMIT, 10, limit=11.0).get_value(security) == 100.0
    assert _order(OrderType.STOP_LIMIT, -10, stop=9.0, limit=11.0).get_value(security) == -110.0
    assert _order(OrderType.STOP_MARKET, -10, stop=9.0).get_value(security) == -100.0


STOP_LIMIT = """
from AlgorithmImports import *
class StopLimit(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 1, 2); self.set_end_date(2019, 6, 28); self.set_cash(100000)
        self.sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        self.ticket = None
        self.bars = []
        self.seen = {}
    def on_data(self, data):
        bar = data.bars[self.sym]
        self.bars.append([str(bar.end_time), bar.open, bar.high, bar.low, bar.close])
        if self.ticket is None:
            self.ticket = self.stop_limit_order(self.sym, 10, bar.close * 1.02, bar.close * 1.03, tag="sl")
            self.seen = {"limit": self.ticket.get(OrderField.LIMIT_PRICE),
                         "stop": self.ticket.get(OrderField.STOP_PRICE),
                         "async": self.ticket.submit_request.asynchronous}
            try:
                self.ticket.get(OrderField.TRIGGER_PRICE)
            except Exception as exc:
                self.seen["trigger"] = type(exc).__name__
            try:
                self.market_order(self.sym, 1).get(OrderField.LIMIT_PRICE)
            except ValueError as exc:
                self.seen["market"] = str(exc)
    def on_order_event(self, event):
        if event.status == OrderStatus.FILLED and event.order_id == self.ticket.order_id:
            order = self.transactions.get_order_by_id(event.order_id)
            self.seen["fill"] = [str(self.time), event.fill_price, order.stop_triggered, event.stop_price,
                                 event.limit_price]
    def on_end_of_algorithm(self):
        self.object_store.save("run", json.dumps({"bars": self.bars, "seen": self.seen}))
"""


def test_stop_limit_order_fills_as_lean_on_the_bars_after_it(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, STOP_LIMIT, name="stop_limit")) == 0
    run = json.loads((tmp_path / "storage" / "run").read_text())
    bars, seen = run["bars"], run["seen"]
    stop, limit = bars[0][4] * 1.02, bars[0][4] * 1.03
    assert (seen["stop"], seen["limit"], seen["async"]) == (pytest.approx(stop), pytest.approx(limit), False)
    assert seen["trigger"] == "NotSupportedByLocalRuntime"
    assert seen["market"] == "Unable to get field LimitPrice on order of type MarketOnOpen"
    triggered, expected, waited = False, None, False
    for end_time, _, high, _, close in bars[1:]:  # Lean's StopLimitFill on each later bar
        triggered = triggered or high > stop
        waited = waited or (triggered and close >= limit)
        if triggered and close < limit:
            expected = [end_time, min(high, limit), True, stop, limit]
            break
    assert expected is not None and waited, "the sample data should trigger the order, then fill it later"
    assert seen["fill"][0] == expected[0]
    assert seen["fill"][1:] == [pytest.approx(expected[1]), True, pytest.approx(stop), pytest.approx(limit)]
    orders = {e["orderId"]: e for e in events(tmp_path) if e["status"] == "filled"}
    assert orders[1]["stopPrice"] == pytest.approx(stop) and orders[1]["limitPrice"] == pytest.approx(limit)


TRAIN = """
from AlgorithmImports import *
class Train(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 12)
        self.add_equity("ZZSA", Resolution.DAILY)
        self.times = []
        self.train(lambda: self.times.append(["now", str(self.time)]))
        self.train(self.date_rules.every(DayOfWeek.SUNDAY), self.time_rules.at(8, 0),
                   lambda: self.times.append(["sunday", str(self.time)]))
        self.train(training_code=lambda: self.times.append(["keyword", str(self.time)]))
    def on_end_of_algorithm(self):
        self.object_store.save("times", json.dumps(self.times))
"""


def test_train_schedules_now_and_on_rules(tmp_path: Path) -> None:
    """Lean's Train: Schedule.TrainingNow (today, now) and Schedule.Training (the rules' times)."""
    assert run_inprocess(write_run(tmp_path, TRAIN, name="train")) == 0
    times = json.loads((tmp_path / "storage" / "times").read_text())
    assert times == [
        ["now", "2019-03-04 00:00:00"],
        ["keyword", "2019-03-04 00:00:00"],
        ["sunday", "2019-03-10 08:00:00"],
    ]


def test_func_risk_free_rate_model_returns_the_functions_rate() -> None:
    model = FuncRiskFreeRateInterestRateModel(lambda when: 0.02 if when.year == 2020 else 0.01)
    assert model.get_interest_rate(dt.datetime(2020, 5, 28)) == 0.02
    assert model.get_interest_rate(dt.datetime(2021, 1, 4)) == 0.01
    with pytest.raises(TypeError):
        FuncRiskFreeRateInterestRateModel(0.01)  # type: ignore[arg-type]


SHORTABLE = """
from AlgorithmImports import *
class Limited(NullShortableProvider):
    def shortable_quantity(self, symbol, local_time):
        return 100
class Shorts(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 8); self.set_cash(100000)
        a = self.add_security(SecurityType.EQUITY, "ZZSA", Resolution.DAILY)
        b = self.add_security(SecurityType.EQUITY, "ZZSB", Resolution.DAILY, Market.USA, True, 1.0, False)
        c = self.add_security(Symbol.create("ZZSC", SecurityType.EQUITY, Market.USA), Resolution.DAILY, leverage=3)
        a.set_shortable_provider(Limited())
        self.seen = {"leverage": [a.leverage, b.leverage, c.leverage], "default": self.shortable_quantity("ZZSB")}
        self.done = False
    def on_data(self, data):
        if self.done:
            return
        self.done = True
        self.seen["checks"] = [self.shortable("ZZSA", 100), self.shortable("ZZSA", 101), self.shortable("ZZSB", 10**9)]
        first = self.sell("ZZSA", 60)    # 60 of 100: accepted (an open market-on-open order)
        second = self.sell("ZZSA", 50)   # 60 open + 50 > 100: invalid
        third = self.buy("ZZSA", -5)     # buy() takes |quantity|
        self.seen["orders"] = [[t.quantity, int(t.status)] for t in (first, second, third)]
        self.seen["tag"] = self.transactions.get_order_by_id(second.order_id).tag
    def on_end_of_algorithm(self):
        self.object_store.save("seen", json.dumps(self.seen))
"""


def test_shortable_provider_limits_short_orders_as_lean(tmp_path: Path) -> None:
    """QCAlgorithm.Shortable: holding + open orders - |short| >= -shortable quantity; an order beyond it is
    invalid and counted (BrokerageTransactionHandler.AddOrder); add_security's positional forms."""
    assert run_inprocess(write_run(tmp_path, SHORTABLE, name="shorts")) == 0
    seen = json.loads((tmp_path / "storage" / "seen").read_text())
    assert seen["leverage"] == [2.0, 1.0, 3.0]
    assert seen["default"] == 0  # NullShortableProvider: no limit (None), reported as 0
    assert seen["checks"] == [True, False, True]
    assert seen["orders"] == [[-60, 1], [-50, 7], [5, 1]]  # submitted, invalid, submitted
    assert seen["tag"] == "Order exceeds shortable quantity 100 for Symbol ZZSA requested -50)"


# --- RollingWindow, composite indicators, variance, Bollinger Bands, indicator history ---------------------------

PRICES = [10.0, 11.0, 12.5, 11.5, 13.0, 12.0, 14.0, 13.5, 15.0, 14.0]


def _population_std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _day(i: int) -> dt.datetime:
    return dt.datetime(2019, 3, 1, 16) + dt.timedelta(days=i)


def test_rolling_window_is_newest_first_and_ready_after_size_samples() -> None:
    window = RollingWindow[float](3)
    for value in (1.0, 2.0):
        window.add(value)
    assert (window.count, window.is_ready, window[0], window[1], window[2]) == (2, False, 2.0, 1.0, None)
    window.add(3.0)
    window.add(4.0)
    assert list(window) == [4.0, 3.0, 2.0] and window.is_ready and window.most_recently_removed == 1.0
    assert window[-1] == 2.0
    window.size = 2  # Lean's Resize: drops the oldest
    assert list(window) == [4.0, 3.0]
    assert window[5] is None and window.size == 6  # reading past the size grows the window


def test_indicator_window_starts_with_leans_placeholder_point() -> None:
    sma = SimpleMovingAverage(2)
    assert sma.window.count == 1 and sma[0].value == 0.0 and not sma.window.is_ready
    sma.update(_day(0), 4.0)
    sma.update(_day(1), 6.0)
    assert [p.value for p in sma] == [5.0, 4.0] and sma.previous.value == 4.0
    sma.window.size = 5
    sma.update(_day(2), 8.0)
    assert [p.value for p in sma] == [7.0, 5.0, 4.0]  # the placeholder fell off the size-2 window


def test_variance_and_standard_deviation_are_the_populations_over_the_period() -> None:
    var, std = Variance(4), StandardDeviation("s", 4)
    for i, price in enumerate(PRICES):
        var.update(_day(i), price)
        std.update(_day(i), price)
        window = PRICES[max(0, i - 3) : i + 1]
        expected = 0.0 if i == 0 else _population_std(window) ** 2
        assert var.current.value == pytest.approx(expected, abs=1e-9)
        assert std.current.value == pytest.approx(math.sqrt(expected), abs=1e-9)
        assert var.is_ready == (i >= 3)
    assert std.name == "s" and var.name == "VAR(4)"


def test_composite_indicators_update_when_both_sides_have_new_points() -> None:
    fast, slow = SimpleMovingAverage(2), SimpleMovingAverage(3)
    diff = IndicatorExtensions.minus(fast, slow, "diff")
    ratio = IndicatorExtensions.over(fast, slow)
    scaled = IndicatorExtensions.times(fast, constant=10)
    for i, price in enumerate(PRICES[:5]):
        fast.update(_day(i), price)
        slow.update(_day(i), price)
        assert diff.current.value == pytest.approx(fast.current.value - slow.current.value)
        assert ratio.current.value == pytest.approx(fast.current.value / slow.current.value)
        assert scaled.current.value == pytest.approx(fast.current.value * 10)
    assert diff.samples == 5 and diff.is_ready and diff.name == "diff"
    zero = ConstantIndicator("zero", 0)
    broken = IndicatorExtensions.over(fast, zero)
    fast.update(_day(9), 1.0)
    assert broken.samples == 1 and broken.current.value == 0.0  # a math error: no new point


def test_bollinger_bands_follow_leans_formulas() -> None:
    bb = BollingerBands(4, 2.0)
    assert bb.name == "BB(4,2)"
    for i, price in enumerate(PRICES):
        bb.update(_day(i), price)
    window = PRICES[-4:]
    mean, sd = sum(window) / 4, _population_std(window)
    upper, lower = mean + 2 * sd, mean - 2 * sd
    assert bb.current.value == PRICES[-1] and bb.is_ready
    assert bb.middle_band.current.value == pytest.approx(mean)
    assert bb.standard_deviation.current.value == pytest.approx(sd)
    assert bb.upper_band.current.value == pytest.approx(upper)
    assert bb.lower_band.current.value == pytest.approx(lower)
    assert bb.band_width.current.value == pytest.approx((upper - lower) / mean * 100)
    assert bb.percent_b.current.value == pytest.approx((PRICES[-1] - lower) / (upper - lower))
    flat = BollingerBands("flat", 3, 2)
    for i in range(5):
        flat.update(_day(i), 5.0)
    assert flat.samples == 5 and flat.current.time == _day(1)  # ready with a zero deviation: Lean's MathError


def test_indicator_history_collects_the_points_once_ready() -> None:
    bars = [
        TradeBar(_day(i) - dt.timedelta(hours=6, minutes=30), None, p, p, p, p, 100, end_time=_day(i))
        for i, p in enumerate(PRICES)
    ]
    bb = BollingerBands(4, 2.0)
    bb.update(_day(0), 99.0)  # reset by the history run
    history = indicator_history.run(bb, bars)
    assert history.count == len(PRICES) - 3  # ready from the 4th price
    assert [p.value for p in history.current] == PRICES[3:]
    middle = history["middle_band"] or []
    assert [p.value for p in middle] == pytest.approx([sum(PRICES[i - 3 : i + 1]) / 4 for i in range(3, 10)])
    first = next(iter(history))
    assert first.end_time == _day(3) and first["upper_band"] is not None
    assert first.upper_band.value == pytest.approx(first.middle_band.value + 2 * first.standard_deviation.value)
    frame = history.data_frame
    assert list(frame.columns) == sorted(frame.columns)
    assert {"current", "middleband", "upperband", "lowerband", "percentb", "movingaveragetype"} <= set(frame.columns)
    assert len(frame) == history.count


def test_classic_renko_bricks_follow_leans_rules() -> None:
    """ClassicRenkoConsolidator: the first brick opens at the first value rounded up to a brick multiple, a brick
    closes when the value reaches open +/- size (its close clamped there), the next opens at that close."""
    closes = [101.2, 102.0, 103.9, 104.1, 103.0, 99.5, 101.0, 96.0]
    bars = [
        TradeBar(_day(i), "X", c, c, c, c, 10, end_time=_day(i) + dt.timedelta(hours=6)) for i, c in enumerate(closes)
    ]
    renko = ClassicRenkoConsolidator(2.5)
    made: list[tuple[float, float, float, float]] = []
    renko.data_consolidated += lambda sender, bar: made.append((bar.open, bar.close, bar.high, bar.low, bar.volume))
    for bar in bars:
        renko.update(bar)
    expected = []
    open_, volume = math.ceil(101.2 / 2.5) * 2.5, 10.0
    high = low = open_
    for c in closes[1:]:
        volume += 10
        close = min(open_ + 2.5, max(open_ - 2.5, c))
        high, low = max(high, close), min(low, close)
        if c >= open_ + 2.5 or c <= open_ - 2.5:
            expected.append((open_, close, high, low, volume))
            open_, volume = close, 10.0
            high = low = open_
    assert [m[:4] for m in made] == [e[:4] for e in expected] and len(made) == 2
    assert [m[4] for m in made] == [e[4] for e in expected]
    even = ClassicRenkoConsolidator(2.5, False)
    even.update(bars[0])
    assert even.working_data is not None and even.working_data.open == 101.2


def test_range_bars_close_at_the_range_and_emit_the_intermediate_bars() -> None:
    """RangeConsolidator(100) on a $0.01 equity: range 1.00; the first bar opens at the value rounded up to it;
    a bar closes when high - low would pass the range (at high - 1 falling), the next opens a cent past it."""
    closes = [100.3, 100.8, 101.5, 99.0]
    bars = [
        TradeBar(_day(i), "X", c, c, c, c, 10, end_time=_day(i) + dt.timedelta(hours=6)) for i, c in enumerate(closes)
    ]
    consolidator = RangeConsolidator(100)
    made: list[RangeBar] = []
    consolidator.data_consolidated += lambda sender, bar: made.append(bar)
    for bar in bars:
        consolidator.update(bar)
    assert consolidator.range_size == pytest.approx(1.0)
    got = [v for b in made for v in (b.open, b.high, b.low, b.close)]
    assert got == pytest.approx([101.0, 101.5, 100.5, 100.5, 100.49, 100.49, 99.49, 99.49])
    assert [b.volume for b in made] == [30.0, 0.0]  # the intermediate bar has no volume
    working = consolidator.working_data
    assert working is not None and (working.open, working.low) == pytest.approx((99.48, 99.0))


INSIGHTS = """
from AlgorithmImports import *
class Insights(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 6)
        self.sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        self.fast, self.slow = self.sma(self.sym, 1), self.sma(self.sym, 2)
        self.seen = []
    def on_data(self, data):
        insight = Insight.price(self.sym, timedelta(5), InsightDirection.UP, tag="t")
        self.emit_insights(insight)
        self.seen.append([insight.direction == InsightDirection.UP, str(insight.generated_time_utc), insight.tag,
                          insight.period.days, len(self.transactions.get_orders())])
        self.plot("Both", self.fast, self.slow)
        try:
            Insight.price(self.sym, lambda t: t, InsightDirection.UP)
        except Exception as exc:
            self.seen.append(str(exc))
    def on_end_of_algorithm(self):
        self.object_store.save("seen", json.dumps(self.seen))
"""


def test_emitted_insights_are_recorded_and_make_no_order(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, INSIGHTS, name="insights")) == 0
    seen = json.loads((tmp_path / "storage" / "seen").read_text())
    assert seen[0] == [True, "2019-03-04 21:00:00+00:00", "t", 5, 0]
    assert "Insight.price" in seen[1]
    charts = json.loads((tmp_path / "results" / "t1.json").read_text())["charts"]
    assert set(charts["Both"]["series"]) == {"SMA(1)", "SMA(2)"}  # plot(chart, *indicators): by their names


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"algorithm-manager-time-loop-maximum": 20}, 0),  # Lean's default: nothing to enforce
        ({"algorithm-manager-time-loop-maximum": "1.5"}, 1),
        ({"scheduled-event-leaky-bucket-capacity": "1"}, 1),
    ],
)
def test_isolator_limits_other_than_leans_defaults_are_refused(
    tmp_path: Path, extra: dict[str, Any], code: int
) -> None:
    """Lean stops an algorithm whose time step runs past its isolator limits; the runtime enforces none, so a
    config that tightens them is refused by name (TrainingInitializeRegressionAlgorithm's harness sets them)."""
    done = run_subprocess(write_run(tmp_path, TRAIN, name="train", extra=extra))
    assert done.returncode == code, done.stderr[-2000:]
    if code:
        key = next(iter(extra))
        assert f"not supported by the local runtime: config {key}=" in done.stderr


# --- trailing stops, add_order, updates and cancels (Lean's FillModel.TrailingStopFill, BrokerageTransactionHandler)


def test_trailing_stop_fills_past_its_stop_and_otherwise_trails_the_market() -> None:
    security: Any = _Security()  # slippage: 1% of the price 10 = 0.1
    sell = _order(OrderType.TRAILING_STOP, -10, stop=9.0)
    sell.trailing_amount, sell.trailing_as_percentage = 0.05, True
    assert _trailing_stop_fill(sell, _bar(9.5, 9.6, 9.2, 9.4), security) is None
    assert sell.stop_price == pytest.approx(9.6 * 0.95)  # high 9.6: 9.6 - 9 = 0.6 > 9.6 x 5% = 0.48: trails
    assert _trailing_stop_fill(sell, _bar(9.5, 10.0, 9.6, 9.9), security) is None
    assert sell.stop_price == pytest.approx(10.0 * 0.95)  # 10 - 9.12 = 0.88 > 0.5: the stop follows the high
    assert _trailing_stop_fill(sell, _bar(9.6, 9.7, 9.4, 9.45), security) == (min(9.5, 9.45 - 0.1), "")
    buy = _order(OrderType.TRAILING_STOP, 10, stop=11.0)
    buy.trailing_amount = 0.5  # an amount, not a percentage
    assert _trailing_stop_fill(buy, _bar(10.2, 10.4, 10.1, 10.3), security) is None
    assert buy.stop_price == pytest.approx(10.1 + 0.5)  # 11 - 10.1 = 0.9 > 0.5: follows the low
    assert _trailing_stop_fill(buy, _bar(10.5, 10.7, 10.4, 10.55), security) == (max(10.6, 10.55 + 0.1), "")


def test_circular_queue_raises_circle_completed_when_it_dequeues_its_head() -> None:
    queue = CircularQueue[int]([1, 2, 3])
    laps: list[int] = []
    queue.circle_completed += lambda sender, args: laps.append(1)
    assert [queue.dequeue() for _ in range(7)] == [1, 2, 3, 1, 2, 3, 1]
    assert len(laps) == 3  # the very first dequeue too


UPDATES = """
from AlgorithmImports import *
class Updates(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 12); self.set_cash(100000)
        self.sym = self.add_equity("ZZSA", Resolution.DAILY).symbol
        self.ticket = None
        self.seen = []
    def on_data(self, data):
        bar = data.bars[self.sym]
        if self.ticket is None:
            request = SubmitOrderRequest(OrderType.LIMIT, SecurityType.EQUITY, self.sym, 10, 0, bar.low * 0.5,
                                         self.utc_time, "far")
            self.ticket = self.transactions.add_order(request)
            fields = UpdateOrderFields()
            fields.quantity = 20
            fields.tag = "bigger"
            response = self.ticket.update(fields)
            order = self.transactions.get_order_by_id(self.ticket.order_id)
            self.seen.append([response.is_success, self.ticket.quantity, order.quantity, order.tag,
                              int(self.ticket.status), str(order.last_update_time)])
            market = self.transactions.add_order(SubmitOrderRequest(OrderType.MARKET, SecurityType.EQUITY, self.sym,
                                                                    5, 0, 0, self.utc_time, "now"))
            self.seen.append([int(market.status), market.average_fill_price == bar.close])
            late = market.update_quantity(7)
            self.seen.append([late.is_error, late.error_message, len(market.update_requests)])
        elif not self.ticket.cancel_request:
            response = self.ticket.cancel("done")
            again = self.ticket.cancel("again")
            self.seen.append([response.is_success, again.is_error, int(self.ticket.status),
                              self.ticket.cancel_request.tag])
    def on_end_of_algorithm(self):
        self.object_store.save("seen", json.dumps(self.seen))
"""


def test_add_order_update_and_cancel_follow_leans_transaction_handler(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, UPDATES, name="updates")) == 0
    seen = json.loads((tmp_path / "storage" / "seen").read_text())
    updated, market, late, canceled = seen
    assert updated[:4] == [True, 20.0, 20.0, "bigger"] and updated[4] == 9  # UpdateSubmitted
    assert updated[5] != "None"  # LastUpdateTime set by the update
    assert market == [3, True]  # add_order's market order at the close fills at once (no market-on-open)
    assert late == [True, "Unable to update order with id 2 that is already filled.", 1]
    assert canceled == [True, True, 5, "again"]
    statuses = [e["status"] for e in events(tmp_path) if e["orderId"] == 1]
    assert statuses == ["submitted", "updateSubmitted", "canceled"]


# --- universe settings' defaults, renamed tickers, exact raw prices ---------------------------------------------


def _zip(path: Path, rows: list[str]) -> None:
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(path.with_suffix(".csv").name, "\n".join(rows) + "\n")


def test_a_renamed_tickers_days_come_from_the_file_of_its_ticker_that_day(tmp_path: Path) -> None:
    """Lean reads each date's bar from the file of the ticker the map file gives that date: OLD through
    2014-04-02, NEW after (OLD's later rows belong to another security); prices are the stored integers / 10000."""
    usa = tmp_path / "equity" / "usa"
    (usa / "map_files").mkdir(parents=True)
    (usa / "map_files" / "new.csv").write_text("20140101,old,Q\n20140402,old,Q\n20501231,new,Q\n")
    _zip(usa / "daily" / "old.zip", [f"201404{d:02d} 00:00,11351000,11351000,11351000,11351000,100" for d in (1, 2, 3)])
    _zip(usa / "daily" / "new.zip", [f"201404{d:02d} 00:00,5715000,5715000,5715000,5715000,200" for d in (2, 3, 4)])
    bars = DataProvider(tmp_path).load_daily("NEW", adjusted=False, start_day=20140401)
    assert bars is not None
    assert bars.days == [20140401, 20140402, 20140403, 20140404]
    assert bars.close == [1135.1, 1135.1, 571.5, 571.5]  # exactly: 11351000 / 10000
    assert bars.volume == [100.0, 100.0, 200.0, 200.0]


SETTINGS = """
from AlgorithmImports import *
class Settings(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 6)
        defaults = [int(self.universe_settings.resolution), int(self.universe_settings.data_normalization_mode)]
        self.universe_settings.resolution = Resolution.DAILY
        self.universe_settings.data_normalization_mode = DataNormalizationMode.RAW
        a = self.add_equity("ZZSA")  # no resolution, no mode: the universe settings'
        b = self.add_equity("ZZSB", data_normalization_mode=DataNormalizationMode.ADJUSTED)
        self.object_store.save("seen", json.dumps(defaults + [int(a.resolution), int(a.data_normalization_mode),
                                                              int(b.data_normalization_mode)]))
"""


def test_add_equity_takes_the_universe_settings_resolution_and_normalization(tmp_path: Path) -> None:
    assert run_inprocess(write_run(tmp_path, SETTINGS, name="settings")) == 0
    assert json.loads((tmp_path / "storage" / "seen").read_text()) == [2, 1, 4, 0, 1]


RENAMED = """
from AlgorithmImports import *
class Renamed(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 8)
        self.add_equity("NEW", Resolution.DAILY)
"""


HANDLER = """
    def on_symbol_changed_events(self, changes):
        self.object_store.save("changes", json.dumps(
            [[k.value, str(v.time), v.old_symbol, v.new_symbol, str(changes[k].symbol)] for k, v in changes.items()]))
"""
ON_DATA = """
    def on_data(self, data):
        pass
"""


@pytest.mark.parametrize("case", ["no handler", "handler", "handler and on_data"])
def test_a_rename_in_the_run_delivers_symbol_changed_events_or_is_refused(tmp_path: Path, case: str) -> None:
    """Lean's SymbolChangedEvent at the midnight of the new ticker's first day (old and new tickers upper-case);
    the runtime does not rename the Symbol, so an algorithm handling the events with on_data (or scheduled
    events, or orders) is refused by name."""
    data = tmp_path / "data"
    for folder in ("market-hours", "symbol-properties"):
        shutil.copytree(SAMPLE_DATA / folder, data / folder)
    usa = data / "equity" / "usa"
    (usa / "map_files").mkdir(parents=True)
    (usa / "map_files" / "new.csv").write_text("20190101,old,Q\n20190305,old,Q\n20501231,new,Q\n")
    rows = [f"201903{d:02d} 00:00,100000,100000,100000,100000,10" for d in range(4, 9)]
    _zip(usa / "daily" / "old.zip", rows)
    _zip(usa / "daily" / "new.zip", rows)
    source = RENAMED + {"no handler": "", "handler": HANDLER, "handler and on_data": HANDLER + ON_DATA}[case]
    done = run_subprocess(write_run(tmp_path, source, name="renamed", data=data))
    refused = case == "handler and on_data"
    assert done.returncode == (1 if refused else 0), done.stderr[-2000:]
    if refused:
        assert "not supported by the local runtime: SymbolChangedEvents (OLD renamed NEW; on_symbol_changed" in (
            done.stderr
        )
    elif case == "handler":
        changes = json.loads((tmp_path / "storage" / "changes").read_text())
        assert changes == [["NEW", "2019-03-06 00:00:00", "OLD", "NEW", "NEW"]]


MODE = """
from AlgorithmImports import *
class Mode(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 3, 4); self.set_end_date(2019, 3, 8)
        self.object_store.save("mode", f"{self.algorithm_mode}|{self.deployment_target}|{int(self.algorithm_mode)}")
        self.quit()
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [({}, "Backtesting|LocalPlatform|2"), ({"optimization-id": "o1"}, "Optimization|LocalPlatform|1")],
)
def test_algorithm_mode_and_deployment_target_are_the_local_job_packets(
    tmp_path: Path, extra: dict[str, str], expected: str
) -> None:
    """BacktestNodePacket.AlgorithmMode (Optimization with an optimization-id) and the local JobQueue's
    DeploymentTarget.LocalPlatform, printed as .NET prints the enum members (Common/Global.cs values)."""
    assert run_inprocess(write_run(tmp_path, MODE, name="mode", extra=extra)) == 0
    assert (tmp_path / "storage" / "mode").read_text() == expected
