"""The time loop, transactions (orders, fills, fees, buying power) and portfolio accounting."""

from __future__ import annotations

import bisect
import datetime as dt
import math
import traceback
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from include.lean_local.config import RuntimeConfig
from include.lean_local.corporate import CorporateEvent, corporate_events
from include.lean_local.data import (
    UTC,
    DailyBars,
    DataProvider,
    from_yyyymmdd,
    local_to_utc,
    nyse_sessions,
    yyyymmdd,
)
from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.indicators import IndicatorBase
from include.lean_local.model import (
    DataNormalizationMode,
    Delisting,
    Delistings,
    DelistingType,
    Dividend,
    Dividends,
    Order,
    OrderEvent,
    OrderFee,
    OrderFeeParameters,
    OrderStatus,
    OrderTicket,
    OrderType,
    Resolution,
    Security,
    Slice,
    Split,
    Splits,
    SplitType,
    TradeBar,
    round_lots,
)
from include.lean_local.symbols import Symbol

if TYPE_CHECKING:
    from include.lean_local.algorithm import QCAlgorithm

MOC_BUFFER = dt.timedelta(minutes=15, seconds=30)


class AlgorithmStopped(Exception):
    """Raised internally when the algorithm calls quit()."""


def smart_rounding(value: float) -> str:
    """Lean's decimal SmartRounding for messages: 2 decimals above 1, else 4 significant digits."""
    if value == 0:
        return "0"
    rounded = round(value, 2) if abs(value) > 1 else float(f"{value:.4g}")
    return _normalize(rounded)


def _normalize(value: float) -> str:
    """decimal.Normalize(): no exponent, no trailing zeros."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


class Engine:
    def __init__(self, config: RuntimeConfig, provider: DataProvider, algorithm: QCAlgorithm,
                 log_line: Callable[[str], None]) -> None:
        self.config = config
        self.provider = provider
        self.algorithm = algorithm
        self.live = config.live_mode
        self._log_line = log_line
        self.sessions = nyse_sessions()
        self._securities: dict[Symbol, Security] = {}
        self._by_ticker: dict[str, Security] = {}
        self._data: dict[Symbol, DailyBars | None] = {}
        self._rows: dict[Symbol, list[int]] = {}
        self._lists: dict[Symbol, tuple[list[float], ...]] = {}
        self._indicators: dict[Symbol, list[tuple[IndicatorBase, Callable[[TradeBar], float] | None]]] = {}
        self._corporate: dict[Symbol, dict[int, list[CorporateEvent]]] = {}
        self._corporate_by_step: dict[int, list[CorporateEvent]] | None = None
        self._invested: dict[Symbol, Security] = {}
        self.orders: dict[int, Order] = {}
        self.tickets: dict[int, OrderTicket] = {}
        self._pending: dict[int, Order] = {}
        self._event_counts: dict[int, int] = {}
        self.events: list[OrderEvent] = []
        self.start_date = dt.datetime(1998, 1, 1)
        self.end_date = dt.datetime.now().replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
        self.warmup_bars = 0
        self.warmup_days: dt.timedelta | None = None
        self.is_warming_up = False
        self.initialized = False
        self.running = False
        self.stopped = False
        self.quit_message = ""
        self.equity_points: list[tuple[int, float]] = []
        self.daily_values: list[tuple[int, float]] = []
        self.first_step_index = 0
        self.session_range: tuple[int, int] = (0, 0)
        self.sales_volume = 0.0
        self.now_utc: dt.datetime = local_to_utc(self.start_date)
        self._tpv_cache: float | None = None
        self.missing_data: list[str] = []
        self.live_now_index: int | None = None
        self._market_open = False
        self.trades: list[float] = []
        self.daily_turnover: list[float] = []
        self.daily_sales: list[tuple[int, float]] = []
        self._last_volume = 0.0

    # ------------------------------------------------------------------ lookups
    def to_symbol(self, key: Any) -> Symbol:
        if isinstance(key, Symbol):
            return key
        if isinstance(key, str):
            sec = self._by_ticker.get(key.upper())
            if sec is not None:
                return sec.symbol
            return self.provider.symbol_for(key)
        raise TypeError(f"expected a Symbol or ticker string, got {type(key).__name__}")

    def security(self, key: Any) -> Security:
        if isinstance(key, Symbol):
            sec = self._securities.get(key)
        elif isinstance(key, str):
            sec = self._by_ticker.get(key.upper())
        else:
            sec = None
        if sec is None:
            raise KeyError(f"This asset symbol ({key}) was not found in your security list. Please add this "
                           "security or check it exists before using it with 'Securities.ContainsKey(\"{key}\")'")
        return sec

    def has_security(self, key: Any) -> bool:
        if isinstance(key, Symbol):
            return key in self._securities
        return isinstance(key, str) and key.upper() in self._by_ticker

    def securities_list(self) -> list[Security]:
        return list(self._securities.values())

    def invested_securities(self) -> Iterable[Security]:
        return self._invested.values()

    # ------------------------------------------------------------------ setup
    def add_equity(self, ticker: str, resolution: Any = None, leverage: float | None = None,
                   fill_forward: bool = True, extended_market_hours: bool = False,
                   data_normalization_mode: Any = None) -> Security:
        res = Resolution.MINUTE if resolution is None else Resolution(int(resolution))
        if res != Resolution.DAILY:
            raise NotSupportedByLocalRuntime(
                f"add_equity resolution {res.name} (only Resolution.DAILY; Lean defaults to MINUTE)")
        symbol = self.provider.symbol_for(ticker)
        existing = self._securities.get(symbol)
        if existing is not None:
            return existing
        sec = Security(self, symbol, res, 2.0 if leverage is None else float(leverage))
        if self.live:
            sec.data_normalization_mode = DataNormalizationMode.RAW
        elif data_normalization_mode is not None:
            sec.data_normalization_mode = _supported_mode(data_normalization_mode)
        self._securities[symbol] = sec
        self._by_ticker[symbol.value] = sec
        self._load(sec)
        self.algorithm._run_security_initializers(sec)
        if self.running:
            self._align(sec)
        return sec

    def _load(self, sec: Security) -> None:
        mode = sec.data_normalization_mode
        bars = self.provider.load_daily(sec.symbol.value, adjusted=mode != DataNormalizationMode.RAW,
                                        start_day=yyyymmdd(self.start_date),
                                        split_adjusted_only=mode == DataNormalizationMode.SPLIT_ADJUSTED)
        if bars is None:
            path = self.provider.daily_path(sec.symbol.value, yyyymmdd(self.start_date))
            message = f"Failed data request: missing daily data file {path} for {sec.symbol.value}"
            self.missing_data.append(str(path))
            self._log_line(f"Engine: {message}")
            self.algorithm.log(f"Warning: {message}; the security has no data.")
        self._data[sec.symbol] = bars

    def set_normalization(self, sec: Security, mode: DataNormalizationMode) -> None:
        if self.live:
            return
        sec.data_normalization_mode = _supported_mode(mode)
        self._load(sec)
        if self.running:
            self._align(sec)

    def _align(self, sec: Security) -> None:
        """Map every session index to the security's row (or -1)."""
        bars = self._data.get(sec.symbol)
        n = len(self.sessions.days)
        rows = np.full(n, -1, dtype=np.int64)
        if bars is not None and len(bars):
            pos = np.searchsorted(self.sessions.days, bars.days)
            ok = (pos < n) & (self.sessions.days[np.minimum(pos, n - 1)] == bars.days)
            rows[pos[ok]] = np.nonzero(ok)[0]
            self._lists[sec.symbol] = (bars.open.tolist(), bars.high.tolist(), bars.low.tolist(),
                                       bars.close.tolist(), bars.volume.tolist())
        self._rows[sec.symbol] = rows.tolist()
        self._feed_cache: tuple[tuple[int, int], list[Any]] | None = None
        events = self._corporate_events_of(sec)
        if events or self._corporate.pop(sec.symbol, None) is not None:
            self._corporate_by_step = None
        if events:
            self._corporate[sec.symbol] = events

    def _corporate_events_of(self, sec: Security) -> dict[int, list[CorporateEvent]]:
        # A live run is one session against the latest bar, on raw prices (Lean live leaves dividend cash to
        # the brokerage's cash sync as well): no corporate-event slices there.
        if self.live:
            return {}
        ticker = sec.symbol.value
        factors = self.provider.factor_file(ticker)
        if factors is None:
            return {}
        mf = self.provider.map_file(ticker)
        raw: list[DailyBars | None] = []

        def raw_close_before(k: int) -> float:
            if not raw:
                raw.append(self.provider.load_daily(ticker, adjusted=False, start_day=yyyymmdd(self.start_date)))
            bars = raw[0]
            if bars is None:
                return 0.0
            j = int(np.searchsorted(bars.days, self.sessions.days[k])) - 1
            return float(bars.close[j]) if j >= 0 else 0.0

        return corporate_events(sec.symbol, factors, self.sessions.days,
                                data_range=(mf.rows[0][0], mf.rows[-1][0]) if mf else None,
                                raw_close_before=raw_close_before)

    def _corporate_step_events(self) -> dict[int, list[CorporateEvent]]:
        if self._corporate_by_step is None:
            merged: dict[int, list[CorporateEvent]] = {}
            for events in self._corporate.values():
                for k, items in events.items():
                    merged.setdefault(k, []).extend(items)
            self._corporate_by_step = merged
        return self._corporate_by_step

    def register_indicator(self, symbol: Any, indicator: IndicatorBase,
                           selector: Callable[[TradeBar], float] | None = None) -> None:
        sym = self.to_symbol(symbol)
        self._indicators.setdefault(sym, []).append((indicator, selector))

    # ------------------------------------------------------------------ clock
    def schedule_range(self) -> tuple[dt.date, dt.date]:
        start = self.start_date.date()
        if self.warmup_bars or self.warmup_days:
            start = from_yyyymmdd(int(self.sessions.days[self._warmup_start_index()])) if self.warmup_bars else \
                (self.start_date - (self.warmup_days or dt.timedelta())).date()
        return start, self.end_date.date()

    def clock_floor(self) -> dt.datetime | None:
        return self.algorithm.time if self.running else None

    def exchange_open(self) -> bool:
        return self._market_open

    def _is_open_at(self, local: dt.datetime) -> bool:
        i = self.sessions.index_of(yyyymmdd(local.date()))
        if i >= len(self.sessions.days) or int(self.sessions.days[i]) != yyyymmdd(local.date()):
            return False
        return self.sessions.opens[i] <= local < self.sessions.closes[i]

    def _next_close_after(self, local: dt.datetime) -> dt.datetime:
        i = self.sessions.index_of(yyyymmdd(local.date()))
        while i < len(self.sessions.days):
            if self.sessions.closes[i] > local:
                return self.sessions.closes[i]
            i += 1
        return dt.datetime.max

    def _set_time(self, local: dt.datetime) -> None:
        self.algorithm.time = local
        self.now_utc = local_to_utc(local)
        self.algorithm.utc_time = self.now_utc
        self._market_open = self._is_open_at(local)

    def _warmup_start_index(self) -> int:
        first = self.sessions.index_of(yyyymmdd(self.start_date.date()))
        return max(first - self.warmup_bars, 0)

    # ------------------------------------------------------------------ portfolio
    def total_portfolio_value(self) -> float:
        if self._tpv_cache is None:
            self._tpv_cache = self.algorithm.portfolio.cash + sum(
                s.holdings.quantity * s.price for s in self._invested.values())
        return self._tpv_cache

    def total_margin_used(self) -> float:
        return sum(abs(s.holdings.quantity * s.price) / s.leverage for s in self._invested.values())

    def tpv_less_free_buffer(self) -> float:
        settings = self.algorithm.settings
        tpv = self.total_portfolio_value()
        free = settings.free_portfolio_value if settings.free_portfolio_value is not None else \
            tpv * settings.free_portfolio_value_percentage
        return tpv - free

    def _fee(self, sec: Security, order: Order) -> OrderFee:
        fee = sec.fee_model.get_order_fee(OrderFeeParameters(sec, order))
        return fee if isinstance(fee, OrderFee) else OrderFee(fee.value)

    def percent_target_quantity(self, symbol: Any, percent: float, delta: bool = True) -> float | None:
        """PortfolioTarget.Percent: the (delta) quantity for a target portfolio fraction, or None on error."""
        algo = self.algorithm
        settings = algo.settings
        ap = abs(percent)
        if ap > settings.max_absolute_portfolio_target_percentage or (
                ap != 0 and ap < settings.min_absolute_portfolio_target_percentage):
            algo.error(f"The portfolio target percent: {percent}, does not comply with the current "
                       f"'Algorithm.Settings' 'MaxAbsolutePortfolioTargetPercentage': "
                       f"{settings.max_absolute_portfolio_target_percentage} or "
                       f"'MinAbsolutePortfolioTargetPercentage': {settings.min_absolute_portfolio_target_percentage}. "
                       "Skipping")
            return None
        sym = self.to_symbol(symbol)
        if not self.has_security(sym):
            algo.error(f"{sym} not found in portfolio. Request this data when initializing the algorithm.")
            return None
        sec = self.security(sym)
        price = sec.price
        if price == 0:
            algo.error(f"{sym}: The security does not have an accurate price as it has not yet received a bar of "
                       "data. Before placing a trade (or using SetHoldings) warm up your algorithm with "
                       "SetWarmup, or use slice.Contains(symbol) to confirm the Slice object has price before "
                       "using the data. Data does not necessarily all arrive at the same time so your algorithm "
                       "should confirm the data is ready before using it. In live trading this can mean you do not "
                       "have an active subscription to the asset class you're trying to trade. If using custom "
                       "data make sure you've set the 'Value' property.")
            return None
        tpv = self.total_portfolio_value()
        adjusted = percent * self.tpv_less_free_buffer() / tpv
        target = adjusted / sec.leverage
        margin_req = 1.0 / sec.leverage
        lot = sec.symbol_properties.lot_size
        qty0 = sec.holdings.quantity
        target_margin = target * tpv
        if target_margin == 0:
            result = -qty0
        else:
            current_margin = qty0 * price * margin_req
            unit_margin = price * margin_req
            if abs(target_margin - current_margin) < tpv * settings.minimum_order_margin_portfolio_percentage:
                if not getattr(self, "_min_margin_warned", False):
                    self._min_margin_warned = True
                    algo.debug("Warning: Portfolio rebalance result ignored as it resulted in a single share trade "
                               "recommendation which can generate high fees. To disable minimum order size checks "
                               "please set Settings.MinimumOrderMarginPortfolioPercentage = 0.")
                return 0.0 if delta else qty0
            last = 0.0
            while True:
                size = -qty0 + target_margin / unit_margin
                size = (math.floor if target_margin >= 0 else math.ceil)(size / lot) * lot
                final_margin = (size + qty0) * price * margin_req
                while (target_margin < 0 and final_margin - target_margin < 0) or (
                        target_margin > 0 and final_margin - target_margin > 0):
                    size += lot if target_margin < 0 else -lot
                    final_margin = (size + qty0) * price * margin_req
                if size == 0:
                    return 0.0 if delta else qty0
                probe = Order(0, sym, size, OrderType.MARKET, self.now_utc)
                fee = self._fee(sec, probe).value.amount
                target_margin = (tpv - fee) * target
                if last == size:
                    raise ValueError(f"GetMaximumOrderQuantityForTargetBuyingPower failed to converge for {sym}")
                last = size
                if abs(final_margin) <= abs(target_margin):
                    break
            result = size
        return result if delta else result + qty0

    # ------------------------------------------------------------------ orders
    def submit_order(self, symbol: Any, quantity: float, order_type: OrderType, tag: str = "",
                     limit_price: float | None = None) -> OrderTicket:
        algo = self.algorithm
        sym = self.to_symbol(symbol)
        quantity = float(quantity)
        error = self._pre_order_check(sym, quantity, order_type)
        if error:
            algo.error(error)
            return OrderTicket(self, None, sym, quantity, order_type, tag, error)
        sec = self.security(sym)
        lot = sec.symbol_properties.lot_size
        rounded = round_lots(quantity, lot)
        if rounded != quantity:
            if not getattr(self, "_lot_warned", False):
                self._lot_warned = True
                algo.error(f"Warning: Due to brokerage limitations, orders will be rounded to the nearest lot size "
                           f"of {lot:g}")
            quantity = rounded
        order_id = len(self.orders) + 1
        order = Order(order_id, sym, quantity, order_type, self.now_utc, tag, limit_price)
        order.price_adjustment_mode = sec.data_normalization_mode
        order.submission_price = sec.price
        self.orders[order_id] = order
        ticket = OrderTicket(self, order, sym, quantity, order_type, tag)
        self.tickets[order_id] = ticket
        self._tpv_cache = None
        insufficient = self._buying_power_error(order, sec, ticket)
        if insufficient:
            algo.error(insufficient)
            order.status = OrderStatus.INVALID
            self._emit(order, OrderEvent(order, self.now_utc, OrderFee.ZERO, insufficient))  # type: ignore[attr-defined]
            return ticket
        order.status = OrderStatus.SUBMITTED
        self._emit(order, OrderEvent(order, self.now_utc, OrderFee.ZERO))  # type: ignore[attr-defined]
        self._pending[order_id] = order
        if order_type == OrderType.MARKET:
            self.process_orders(only=order_id)
        return ticket

    def _pre_order_check(self, sym: Symbol, quantity: float, order_type: OrderType) -> str:
        if self.is_warming_up or not self.initialized:
            return ("This operation is not allowed in initialize or during warm up: OrderRequest.submit. Please "
                    "move this code to the on_warmup_finished() method.")
        if not self.has_security(sym):
            return f"You haven't requested {sym} data. Add this with add_security() in the initialize() method."
        if quantity == 0:
            return "Unable to submit order with id 0 that has zero quantity."
        sec = self.security(sym)
        lot = sec.symbol_properties.lot_size
        if abs(quantity) < lot:
            return (f"Unable to submit order with id 0 which quantity ({_normalize(abs(quantity))}) is less than lot "
                    f"size ({_normalize(lot)}).")
        if not sec.is_tradable:
            return f"The security with symbol '{sym}' is marked as non-tradable."
        if sec.price == 0:
            return (f"{sym}: The security does not have an accurate price as it has not yet received a bar of data. "
                    "Before placing a trade (or using SetHoldings) warm up your algorithm with SetWarmup, or use "
                    "slice.Contains(symbol) to confirm the Slice object has price before using the data. Data does "
                    "not necessarily all arrive at the same time so your algorithm should confirm the data is ready "
                    "before using it. In live trading this can mean you do not have an active subscription to the "
                    "asset class you're trying to trade. If using custom data make sure you've set the 'Value' "
                    "property.")
        if not sec.has_data:
            return ("There is no data for this symbol yet, please check the security.HasData flag to ensure there is "
                    "at least one data point.")
        if order_type == OrderType.MARKET_ON_CLOSE and self.now_utc > local_to_utc(
                self._next_close_after(self.algorithm.time)) - MOC_BUFFER:
            return ("MarketOnClose orders must be placed within 00:15:30 before market close. Override this TimeSpan "
                    "buffer by setting Orders.MarketOnCloseOrder.SubmissionTimeBuffer in QCAlgorithm.Initialize().")
        return ""

    def _buying_power_error(self, order: Order, sec: Security, ticket: OrderTicket) -> str:
        """SecurityMarginModel.HasSufficientBuyingPowerForOrder; '' when sufficient, else Lean's message."""
        qty = order.quantity
        held = sec.holdings.quantity
        if qty == 0 or (held * qty < 0 and abs(held) >= abs(qty)):
            return ""
        tpv = self.total_portfolio_value()
        free = tpv - self.total_margin_used()
        req = 1.0 / sec.leverage
        if (held > 0 and qty < 0) or (held < 0 and qty > 0):
            free += 2 * abs(held) * sec.price * req
        free = max(free, 0.0)
        order_margin = qty * sec.price * req
        fee = self._fee(sec, order).value.amount
        initial = order_margin + math.copysign(fee, order_margin)
        unfilled = (abs(qty) - abs(ticket.quantity_filled)) / abs(qty)
        remainder = unfilled * initial
        if abs(remainder) > free:
            value = order.get_value(sec)
            return (f"Order Error: ids: [{order.id}], Insufficient buying power to complete orders "
                    f"(Value:[{smart_rounding(value)}]), Reason: Id: {order.id}, Initial Margin: "
                    f"{_normalize(round(remainder, 10))}, Free Margin: {_normalize(round(free, 10))}.")
        return ""

    def _emit(self, order: Order, event: OrderEvent) -> None:
        n = self._event_counts.get(order.id, 0) + 1
        self._event_counts[order.id] = n
        event.order_event_id = n
        ticket = self.tickets.get(order.id)
        event.ticket = ticket
        if ticket is not None:
            ticket.order_events.append(event)
        self.events.append(event)
        handler = getattr(self.algorithm, "on_order_event", None)
        if handler is not None:
            handler(event)

    def cancel_order(self, order_id: int, tag: str | None = None) -> bool:
        order = self._pending.pop(order_id, None)
        if order is None:
            return False
        order.status = OrderStatus.CANCELED
        order.canceled_time = self.now_utc
        if tag:
            order.tag = tag
        self._emit(order, OrderEvent(order, self.now_utc, OrderFee.ZERO))  # type: ignore[attr-defined]
        return True

    def open_orders(self, symbol: Any = None) -> list[Order]:
        sym = None if symbol is None else self.to_symbol(symbol)
        return [o for o in self._pending.values() if sym is None or o.symbol == sym]

    def process_orders(self, only: int | None = None) -> None:
        if not self._pending:
            return
        local = self.algorithm.time
        ids = [only] if only is not None else sorted(self._pending)
        for oid in ids:
            order = self._pending.get(oid)
            if order is None:
                continue
            if order.time == self.now_utc and order.type != OrderType.MARKET:
                continue
            sec = self._securities[order.symbol]
            ticket = self.tickets[oid]
            price = self._fill_price(order, sec, local)
            if price is None:
                continue
            message = self._buying_power_error(order, sec, ticket)
            if message:
                del self._pending[oid]
                order.status = OrderStatus.INVALID
                self._emit(order, OrderEvent(order, self.now_utc, OrderFee.ZERO, message))  # type: ignore[attr-defined]
                self.algorithm.error(message)
                continue
            slip = float(sec.slippage_model.get_slippage_approximation(sec, order))
            price = price + slip if order.quantity > 0 else price - slip
            fee = self._fee(sec, order)
            del self._pending[oid]
            self._apply_fill(order, sec, ticket, price, fee)

    def _fill_price(self, order: Order, sec: Security, local: dt.datetime) -> float | None:
        bar = sec.bar
        if order.type == OrderType.MARKET:
            return sec.price if sec.price else None
        if bar is None:
            return None
        order_local = order.time.astimezone(UTC).replace(tzinfo=None)
        order_local = _utc_to_local(order.time)
        if order.type == OrderType.MARKET_ON_OPEN:
            if bar.time < order_local or order_local >= bar.end_time:
                return None
            if self._is_open_at(order_local) and order_local.date() == bar.end_time.date():
                return None
            if local.date() != bar.end_time.date():
                return None
            return bar.open
        if order.type == OrderType.MARKET_ON_CLOSE:
            if local < self._next_close_after(order_local):
                return None
            return bar.close
        if order.type == OrderType.LIMIT:
            if local_to_utc(bar.end_time) <= order.time or order.limit_price is None:
                return None
            limit = order.limit_price
            if order.quantity > 0 and bar.low < limit:
                return min(bar.high, limit)
            if order.quantity < 0 and bar.high > limit:
                return max(bar.low, limit)
            return None
        raise NotSupportedByLocalRuntime(f"order type {order.type.name}")

    def _apply_fill(self, order: Order, sec: Security, ticket: OrderTicket, price: float, fee: OrderFee) -> None:
        qty = order.quantity
        holding = sec.holdings
        q0, a0 = holding.quantity, holding.average_price
        fee_amount = fee.value.amount
        portfolio = self.algorithm.portfolio
        if q0 == 0 or (q0 > 0) == (qty > 0):
            new_q = q0 + qty
            holding.average_price = (q0 * a0 + qty * price) / new_q
            holding.quantity = new_q
        else:
            closed = min(abs(qty), abs(q0))
            profit = (price - a0) * closed * (1 if q0 > 0 else -1)
            holding.profit += profit
            holding.last_trade_profit = profit
            portfolio._profit += profit
            self.trades.append(profit - fee_amount)
            new_q = q0 + qty
            holding.quantity = new_q
            if new_q == 0:
                holding.average_price = 0.0
            elif (new_q > 0) != (q0 > 0):
                holding.average_price = price
        if abs(holding.quantity) < 1e-12:
            holding.quantity = 0.0
        holding.total_fees += fee_amount
        holding.total_sale_volume += abs(qty) * price
        self.sales_volume += abs(qty) * price
        portfolio.cash -= qty * price + fee_amount
        portfolio.total_fees += fee_amount
        if holding.quantity != 0:
            self._invested[sec.symbol] = sec
        else:
            self._invested.pop(sec.symbol, None)
        self._tpv_cache = None
        order.status = OrderStatus.FILLED
        order.price = price
        order.last_fill_time = self.now_utc
        ticket.quantity_filled = qty
        ticket.average_fill_price = price
        self._emit(order, OrderEvent(order, self.now_utc, fee, "", OrderStatus.FILLED, price, qty))

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        """Backtest (or the single live step) over the sessions of the configured range."""
        for sec in self._securities.values():
            self._align(sec)
        first = self.sessions.index_of(yyyymmdd(self.start_date.date()))
        last = self.sessions.index_of(yyyymmdd(self.end_date.date()) + 1)
        if self.warmup_bars:
            begin = self._warmup_start_index()
        elif self.warmup_days:
            begin = self.sessions.index_of(yyyymmdd((self.start_date - self.warmup_days).date()))
        else:
            begin = first
        if self.live_now_index is not None:
            last = self.live_now_index + 1
            first = self.live_now_index
        self.first_step_index = first
        self.session_range = (begin, last)
        self.running = True
        self.is_warming_up = begin < first
        if not self.is_warming_up:
            self._warmup_finished()
        for k in range(begin, last):
            if self.is_warming_up and k >= first:
                self.is_warming_up = False
                self._warmup_finished()
            self._step(k)
            if self.stopped:
                break
        if not self.stopped:
            end_local = dt.datetime.combine(self.end_date.date(), dt.time(23, 59, 59)) if self.live_now_index is None \
                else self.sessions.closes[last - 1]
            self._fire_events(end_local, inclusive=True)

    def _warmup_finished(self) -> None:
        hook = getattr(type(self.algorithm), "on_warmup_finished", None)
        if hook is not None:
            hook(self.algorithm)

    def _fire_events(self, until: dt.datetime, inclusive: bool) -> None:
        events = self.algorithm.schedule.events
        if not events:
            return
        while True:
            best = None
            for ev in events:
                t = ev.next_time
                if t is None or (t > until if inclusive else t >= until):
                    continue
                if best is None or best.next_time is None or t < best.next_time:
                    best = ev
            if best is None:
                return
            t = best.next_time
            if t is None:
                return
            best.position += 1
            if t < self.algorithm.time:
                continue
            self._set_time(t)
            best.callback()
            if self.stopped:
                return

    def _corporate_slice(self, events: list[CorporateEvent]) -> None:
        """The midnight time slice of a day's dividends and splits (Lean applies them to the portfolio, calls
        ``on_dividends``/``on_splits``, then ``on_data`` with a slice that has no bars)."""
        algo = self.algorithm
        midnight = events[0].time
        self._fire_events(midnight, inclusive=False)
        if self.stopped:
            return
        self._set_time(midnight)
        self._tpv_cache = None
        dividends: dict[Symbol, Dividend] = {}
        splits: dict[Symbol, Split] = {}
        for event in events:
            sec = self._securities.get(event.symbol)
            if sec is None or sec.is_delisted:
                continue
            if isinstance(event, Dividend):
                dividends[event.symbol] = event
            else:
                splits[event.symbol] = event
        if not dividends and not splits:
            return
        if not self.is_warming_up:  # a warm-up's positions already reflect past events
            for dividend in dividends.values():
                self._apply_dividend(self._securities[dividend.symbol], dividend)
            for split in splits.values():
                if split.type == SplitType.SPLIT_OCCURRED:
                    self._apply_split(self._securities[split.symbol], split)
        if splits:
            algo.on_splits(Splits(splits))
        if dividends:
            algo.on_dividends(Dividends(dividends))
        data = Slice(midnight, {}, dividends=dividends, splits=splits)
        algo.current_slice = data
        algo.on_data(data)
        self.process_orders()

    def _apply_dividend(self, sec: Security, dividend: Dividend) -> None:
        """Cash for the holder in Raw and SplitAdjusted modes; adjusted prices already carry it."""
        if sec.data_normalization_mode not in (DataNormalizationMode.RAW, DataNormalizationMode.SPLIT_ADJUSTED):
            return
        total = sec.holdings.quantity * dividend.distribution
        if total:
            self.algorithm.portfolio.cash += total
            self.algorithm.portfolio._profit += total
            sec.holdings.total_dividends += total
            sec.holdings.profit += total
            self._tpv_cache = None

    def _apply_split(self, sec: Security, split: Split) -> None:
        """Raw mode only (other modes' prices are split-adjusted): quantity / factor, average price x factor,
        the fractional share paid out in cash, and the last price scaled so the portfolio value holds."""
        if sec.data_normalization_mode != DataNormalizationMode.RAW:
            return
        factor = split.split_factor
        if self.open_orders(sec.symbol):
            raise NotSupportedByLocalRuntime(
                f"a split of {sec.symbol.value} with open orders in Raw mode (Lean updates their quantity and prices)")
        fraction = sec.holdings.apply_split(factor)
        bar = sec.bar
        if bar is not None:
            sec.bar = TradeBar(bar.time, bar.symbol, bar.open * factor, bar.high * factor, bar.low * factor,
                               bar.close * factor, bar.volume / factor, end_time=bar.end_time,
                               is_fill_forward=bar.is_fill_forward)
            price = sec.bar.close
        else:
            price = split.reference_price * factor
        self.algorithm.portfolio.cash += fraction * price
        self._tpv_cache = None

    def _step(self, k: int) -> None:
        algo = self.algorithm
        if self._corporate:
            events = self._corporate_step_events().get(k)
            if events:
                self._corporate_slice(events)
                if self.stopped:
                    return
        close_local = self.sessions.closes[k]
        open_local = self.sessions.opens[k]
        self._fire_events(close_local, inclusive=False)
        if self.stopped:
            return
        self._set_time(close_local)
        self._tpv_cache = None
        day = int(self.sessions.days[k])
        bars: dict[Symbol, TradeBar] = {}
        delistings: dict[Symbol, Delisting] = {}
        for sym, sec, rows, lists, indicators, mf_delist in self._feed():
            if sec.is_delisted:
                continue
            row = rows[k]
            if row >= 0:
                o, h, lo, c, v = lists
                bar = TradeBar(open_local, sym, o[row], h[row], lo[row], c[row], v[row], end_time=close_local)
            elif sec.bar is not None:
                prev = sec.bar.close
                bar = TradeBar(open_local, sym, prev, prev, prev, prev, 0.0, end_time=close_local, is_fill_forward=True)
            else:
                continue
            sec.bar = bar
            bars[sym] = bar
            for indicator, selector in indicators:
                indicator.update(close_local, selector(bar) if selector else bar.close)
            if mf_delist is not None and not getattr(sec, "_warned", False):
                next_day = int(self.sessions.days[k + 1]) if k + 1 < len(self.sessions.days) else day + 1
                if next_day >= mf_delist:
                    # Lean warns on the last bar before the delisting date ("delisted at end of day")
                    sec._warned = True  # type: ignore[attr-defined]
                    delistings[sym] = Delisting(sym, close_local, bar.close, DelistingType.WARNING)
        self.process_orders()
        self._fire_events(close_local, inclusive=True)
        if self.stopped:
            return
        self._set_time(close_local)
        for sym, sec in self._securities.items():
            if getattr(sec, "_warned", False) and not sec.is_delisted and sym not in delistings:
                mf_delist = self._delisting_day(sym)
                if mf_delist is not None and day >= mf_delist:
                    sec.is_delisted = True
                    sec.is_tradable = False
                    delistings[sym] = Delisting(sym, close_local, sec.price, DelistingType.DELISTED)
                    for order in self.open_orders(sym):
                        self.cancel_order(order.id)
                    if sec.holdings.quantity:
                        self._liquidate_delisted(sec)
        data = Slice(close_local, bars, delistings)
        algo.current_slice = data
        if delistings:
            algo.on_delistings(Delistings(delistings))
        if bars or delistings:
            algo.on_data(data)
        self.process_orders()
        if not self.is_warming_up:
            tpv = self.total_portfolio_value()
            self.daily_values.append((day, tpv))
            self.daily_sales.append((day, self.sales_volume))
            self.daily_turnover.append((self.sales_volume - self._last_volume) / tpv if tpv else 0.0)
        self._last_volume = self.sales_volume

    def _feed(self) -> list[tuple[Symbol, Security, list[int], tuple[list[float], ...],
                                  list[tuple[IndicatorBase, Callable[[TradeBar], float] | None]], int | None]]:
        """Per-security loop state, rebuilt only when securities or indicators change."""
        key = (len(self._securities), sum(len(v) for v in self._indicators.values()))
        cached = getattr(self, "_feed_cache", None)
        if cached is not None and cached[0] == key:
            feed: list[Any] = cached[1]
            return feed
        feed = []
        for sym, sec in self._securities.items():
            rows = self._rows.get(sym)
            if rows is None:
                continue
            lists = self._lists.get(sym, ((), (), (), (), ()))
            feed.append((sym, sec, rows, lists, self._indicators.setdefault(sym, []), self._delisting_day(sym)))
        self._feed_cache = (key, feed)
        return feed

    def _delisting_day(self, sym: Symbol) -> int | None:
        cache: dict[Symbol, int | None] | None = getattr(self, "_delist_cache", None)
        if cache is None:
            cache = {}
            self._delist_cache = cache
        if sym not in cache:
            mf = self.provider.map_file(sym.value)
            cache[sym] = mf.delisting_date if mf else None
        value: int | None = cache[sym]
        return value

    def _liquidate_delisted(self, sec: Security) -> None:
        qty = -sec.holdings.quantity
        order_id = len(self.orders) + 1
        order = Order(order_id, sec.symbol, qty, OrderType.MARKET, self.now_utc, "Liquidate from delisting")
        self.orders[order_id] = order
        ticket = OrderTicket(self, order, sec.symbol, qty, OrderType.MARKET, order.tag)
        self.tickets[order_id] = ticket
        order.status = OrderStatus.SUBMITTED
        self._emit(order, OrderEvent(order, self.now_utc, OrderFee.ZERO))  # type: ignore[attr-defined]
        self._apply_fill(order, sec, ticket, sec.price, self._fee(sec, order))

    # ------------------------------------------------------------------ history
    def history_bars(self, symbol: Symbol, count: int | None, start: dt.datetime | None = None,
                     end: dt.datetime | None = None) -> list[TradeBar]:
        bars = self._data.get(symbol)
        if bars is None or not len(bars):
            return []
        now = self.algorithm.time
        out: list[TradeBar] = []
        idx = np.searchsorted(self.sessions.days, bars.days)
        n = len(self.sessions.days)
        limit_end = min(now, end) if end is not None else now
        for j in range(len(bars) - 1, -1, -1):
            si = int(idx[j])
            if si >= n or int(self.sessions.days[si]) != int(bars.days[j]):
                continue
            close = self.sessions.closes[si]
            if close > limit_end:
                continue
            if start is not None and close <= start:
                break
            out.append(TradeBar(self.sessions.opens[si], symbol, float(bars.open[j]), float(bars.high[j]),
                                float(bars.low[j]), float(bars.close[j]), float(bars.volume[j]), end_time=close))
            if count is not None and len(out) >= count:
                break
        out.reverse()
        return out


def _supported_mode(mode: Any) -> DataNormalizationMode:
    value = DataNormalizationMode(int(mode))
    if value not in (DataNormalizationMode.RAW, DataNormalizationMode.ADJUSTED, DataNormalizationMode.SPLIT_ADJUSTED):
        raise NotSupportedByLocalRuntime(f"DataNormalizationMode.{value.name}")
    return value


def _utc_to_local(value: dt.datetime) -> dt.datetime:
    from include.lean_local.data import NEW_YORK

    return value.astimezone(NEW_YORK).replace(tzinfo=None)


def format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def bisect_right(values: list[Any], x: Any) -> int:
    return bisect.bisect_right(values, x)
