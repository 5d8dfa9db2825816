"""Orders from submission to fill (Lean's TransactionHandler with the equity FillModel) and the algorithm's
view of them, ``algorithm.transactions`` (Lean's SecurityTransactionManager).

Daily data: market-on-open orders fill at the open of the first bar after them, market-on-close orders at
the close of the session they were placed in, limit orders on a later bar that crosses the limit; a market
order (live, or an algorithm's own) fills at once at the last price.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Protocol

from include.lean_local import brokerages
from include.lean_local.buying_power import NO_PRICE
from include.lean_local.enums import DataNormalizationMode
from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.order_models import OrderFee, order_fee
from include.lean_local.orders import (
    ERROR_BROKERAGE_FAILED_TO_UPDATE_ORDER,
    ERROR_BROKERAGE_MODEL_REFUSED_TO_SUBMIT_ORDER,
    ERROR_BROKERAGE_MODEL_REFUSED_TO_UPDATE_ORDER,
    ERROR_EXCEEDS_SHORTABLE_QUANTITY,
    ERROR_INVALID_STATUS,
    ERROR_UNABLE_TO_FIND_ORDER,
    ERROR_ZERO_QUANTITY,
    LIMIT_TYPES,
    STOP_TYPES,
    CancelOrderRequest,
    Order,
    OrderDirection,
    OrderEvent,
    OrderResponse,
    OrderStatus,
    OrderTicket,
    OrderType,
    SubmitOrderRequest,
    UpdateOrderFields,
    UpdateOrderRequest,
    normalize_decimal,
    round_lots,
)
from include.lean_local.sessions import Sessions, local_to_utc, utc_to_local
from include.lean_local.symbols import Symbol

if TYPE_CHECKING:
    from include.lean_local.algorithm import QCAlgorithm
    from include.lean_local.buying_power import SecurityMarginModel
    from include.lean_local.market_data import TradeBar
    from include.lean_local.portfolio import PortfolioLedger
    from include.lean_local.securities import Security, SecurityRegistry

MOC_BUFFER = dt.timedelta(minutes=15, seconds=30)  # Orders.MarketOnCloseOrder.SubmissionTimeBuffer
# The order types whose fill the fill model worsens by the slippage afterwards (EquityFillModel's market,
# market-on-open and market-on-close fills; its stop-market fill applies it itself, its limit fills none).
SLIPPED_TYPES = frozenset({OrderType.MARKET, OrderType.MARKET_ON_OPEN, OrderType.MARKET_ON_CLOSE})
SUBMITTABLE_TYPES = frozenset(OrderType)  # every order type the runtime fills


class TradingState(Protocol):
    """The algorithm manager's state that order handling reads."""

    now_utc: dt.datetime
    is_warming_up: bool
    initialized: bool
    live: bool
    sessions: Sessions


class TransactionHandler:
    """Every order, ticket and order event of the run, in order; the open orders until they fill or end."""

    def __init__(
        self,
        state: TradingState,
        algorithm: QCAlgorithm,
        securities: SecurityRegistry,
        ledger: PortfolioLedger,
        margin: SecurityMarginModel,
    ) -> None:
        self._state = state
        self._algorithm = algorithm
        self._securities = securities
        self._ledger = ledger
        self._margin = margin
        self.orders: dict[int, Order] = {}
        self.tickets: dict[int, OrderTicket] = {}
        self.events: list[OrderEvent] = []
        self._pending: dict[int, Order] = {}
        self._event_counts: dict[int, int] = {}
        self._warned_lot_size = False
        self._warned_price_rounding = False
        # The result handler's view of each event, before the algorithm's (a live run's events files).
        self.listeners: list[Callable[[OrderEvent], None]] = []
        # updates requested by order-event handlers, handled after the request being processed (Lean's queue)
        self._deferred: list[tuple[OrderTicket, Order, UpdateOrderRequest]] = []
        # set once SymbolChangedEvents were delivered: Lean renamed the Symbol, the runtime did not
        self.after_rename = False
        self._in_handler = 0

    def submit_order(
        self,
        symbol: Any,
        quantity: float,
        order_type: OrderType,
        tag: str = "",
        limit_price: float | None = None,
        *,
        stop_price: float | None = None,
        asynchronous: bool = False,
        request: SubmitOrderRequest | None = None,
    ) -> OrderTicket:
        """Lean's backtest drains its order-request queue on the algorithm's thread (OrderRequestProcessingPool,
        synchronous): the submission waits behind the updates queued before it and the updates queued while it
        is handled (by order-event handlers) run right after it (and its market fill)."""
        if self.after_rename:
            raise NotSupportedByLocalRuntime("an order after SymbolChangedEvents (Lean renames the Symbol)")
        self._flush_deferred()
        ticket = self._submit(
            symbol,
            quantity,
            order_type,
            tag,
            limit_price,
            stop_price=stop_price,
            asynchronous=asynchronous,
            request=request,
        )
        self._flush_deferred()
        return ticket

    def _submit(
        self,
        symbol: Any,
        quantity: float,
        order_type: OrderType,
        tag: str = "",
        limit_price: float | None = None,
        *,
        stop_price: float | None = None,
        asynchronous: bool = False,
        request: SubmitOrderRequest | None = None,
    ) -> OrderTicket:
        """An order of QCAlgorithm's order methods (after its pre-order checks), or ``request`` as
        ``transactions.add_order`` submits it (Lean's SecurityTransactionManager.AddOrder: the transaction
        handler's checks only)."""
        algo = self._algorithm
        now_utc = self._state.now_utc
        sym = self._securities.to_symbol(symbol)
        quantity = float(quantity)
        if request is None:
            request = SubmitOrderRequest(
                order_type,
                sym.security_type,
                sym,
                quantity,
                stop_price or 0.0,
                limit_price or 0.0,
                now_utc,
                tag,
                asynchronous=asynchronous,
            )
            error = self._pre_order_check(sym, quantity, order_type)
        else:
            request.symbol = sym
            error = self._transaction_handler_check(sym, quantity)
        if error:
            algo.error(error)
            return OrderTicket(self, None, sym, quantity, order_type, tag, error, request)
        sec = self._securities.security(sym)
        lot = sec.symbol_properties.lot_size
        rounded = round_lots(quantity, lot)
        if rounded != quantity:
            if not self._warned_lot_size:
                self._warned_lot_size = True
                algo.error(
                    f"Warning: Due to brokerage limitations, orders will be rounded to the nearest lot size of {lot:g}"
                )
            quantity = rounded
        order_id = len(self.orders) + 1
        request.order_id = order_id
        order = Order(order_id, sym, quantity, order_type, now_utc, tag, limit_price, stop_price)
        if order_type == OrderType.TRAILING_STOP:
            order.trailing_amount = request.trailing_amount
            order.trailing_as_percentage = request.trailing_as_percentage
            if not stop_price:
                raise NotSupportedByLocalRuntime("a trailing stop order without a stop price")
        order.price_adjustment_mode = sec.data_normalization_mode
        order.submission_price = sec.price
        self._round_order_prices(order, sec)
        self.orders[order_id] = order
        ticket = OrderTicket(self, order, sym, quantity, order_type, tag, submit_request=request)
        self.tickets[order_id] = ticket
        self._ledger.invalidate()
        if quantity < 0 and not self.shortable(sym, quantity):
            # BrokerageTransactionHandler.AddOrder: an invalid order, tagged with the error, in a backtest; live,
            # a warning and the order goes on
            message = (
                f"Order exceeds shortable quantity {self.shortable_quantity(sym)} for Symbol {sym} "
                f"requested {normalize_decimal(quantity)})"
            )
        else:
            message = ""
        if message and self._state.live:
            algo.debug(f"Warning: {message}")
        elif message:
            order.status = OrderStatus.INVALID
            order.tag = message
            self._emit(order, OrderEvent(order, now_utc, OrderFee.ZERO, message))
            return ticket
        insufficient = self._margin.order_error(order, sec, ticket.quantity_filled)
        if insufficient:
            algo.error(insufficient)
            order.status = OrderStatus.INVALID
            self._emit(order, OrderEvent(order, now_utc, OrderFee.ZERO, insufficient))
            return ticket
        refusal = self._brokerage_refuses_submit(order, sec)
        if refusal:
            # HandleSubmitOrderRequest: the order invalidated (its event carries the message), then the error
            request.response = OrderResponse(order_id, ERROR_BROKERAGE_MODEL_REFUSED_TO_SUBMIT_ORDER, refusal)
            order.status = OrderStatus.INVALID
            self._emit(order, OrderEvent(order, now_utc, OrderFee.ZERO, refusal))
            algo.error(refusal)
            return ticket
        order.status = OrderStatus.SUBMITTED
        self._emit(order, OrderEvent(order, now_utc, OrderFee.ZERO))
        self._pending[order_id] = order
        if order_type == OrderType.MARKET:
            self.process_orders(only=order_id)
        return ticket

    def _round_order_prices(self, order: Order, sec: Security) -> None:
        """BrokerageTransactionHandler.RoundOrderPrices: limit and stop prices to the security's minimum price
        variation (EquityPriceVariationModel: 0.0001 below $1, else the lot's 0.01), none for Adjusted prices
        (AdjustedPriceVariationModel); Lean's warning, once."""
        if sec.data_normalization_mode == DataNormalizationMode.ADJUSTED:
            return
        fields = [("limit_price", "LimitPrice"), ("stop_price", "StopPrice")]
        if order.type == OrderType.TRAILING_STOP and not order.trailing_as_percentage:
            fields.append(("trailing_amount", "TrailingAmount"))
        for field, label in fields:
            price = getattr(order, field)
            if price is None or (field != "trailing_amount" and order.type not in (*LIMIT_TYPES, *STOP_TYPES)):
                continue
            increment = Decimal("0.0001") if price < 1 else Decimal(str(sec.symbol_properties.minimum_price_variation))
            original = Decimal(f"{price:.15g}")
            rounded = (original / increment).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * increment
            setattr(order, field, float(rounded))
            if rounded != original and not self._warned_price_rounding:
                self._warned_price_rounding = True
                self._algorithm.error(
                    f"Warning: To meet brokerage precision requirements, order {label} was rounded to "
                    f"{rounded.normalize():f} from {original.normalize():f}"
                )

    def shortable(self, symbol: Symbol, short_quantity: float, update_order_id: int | None = None) -> bool:
        """QCAlgorithm.Shortable: whether the holding, the open orders (but ``update_order_id``'s) and a short of
        ``short_quantity`` stay within the security's shortable quantity (None: no limit)."""
        sec = self._securities.security(symbol)
        limit = sec.shortable_provider.shortable_quantity(symbol, self._algorithm.time)
        if limit is None:
            return True
        open_quantity = sum(
            self.tickets[o.id].quantity_remaining for o in self.open_orders(symbol) if o.id != update_order_id
        )
        held = sec.holdings.quantity
        if held + open_quantity <= -limit:
            return False
        return held - abs(short_quantity) + open_quantity >= -limit

    def shortable_quantity(self, symbol: Symbol) -> int:
        sec = self._securities.security(symbol)
        return int(sec.shortable_provider.shortable_quantity(symbol, self._algorithm.time) or 0)

    def _transaction_handler_check(self, sym: Symbol, quantity: float) -> str:
        """BrokerageTransactionHandler's own checks of a request (``transactions.add_order`` skips
        QCAlgorithm's pre-order checks)."""
        if self._state.is_warming_up:
            raise RuntimeError("This operation is not allowed in Initialize or during warm up: OrderRequest.Submit.")
        if not self._securities.contains(sym):
            raise KeyError(f"This asset symbol ({sym}) was not found in your security list.")
        if quantity == 0:
            return "Unable to submit order with id 0 that has zero quantity."
        return ""

    def cancel_ticket(self, ticket: OrderTicket, tag: str | None) -> OrderResponse:
        """OrderTicket.Cancel: the cancel request and its response (an error for a closed order)."""
        request = CancelOrderRequest(self._state.now_utc, ticket.order_id, tag)
        ticket.cancel_request = request
        if ticket.order_id in self._pending and self.cancel_order(ticket.order_id, tag):
            request.response = OrderResponse(ticket.order_id)
        else:
            request.response = OrderResponse(
                ticket.order_id,
                ERROR_INVALID_STATUS,
                f"Unable to cancel order with id {ticket.order_id} that is already {ticket.status.name.lower()}.",
            )
        return request.response

    def update_ticket(self, ticket: OrderTicket, fields: UpdateOrderFields) -> OrderResponse:
        """BrokerageTransactionHandler.UpdateOrder and HandleUpdateOrderRequest: a closed order or a zero
        quantity is an error response; an update past the buying power an error and an order event; else the
        order takes the new fields (prices rounded as at submission) and an UpdateSubmitted event."""
        now_utc = self._state.now_utc
        order = self.orders.get(ticket.order_id)
        request = UpdateOrderRequest(now_utc, ticket.order_id, fields)
        ticket.update_requests.append(request)
        if order is None:
            request.response = OrderResponse(ticket.order_id, ERROR_UNABLE_TO_FIND_ORDER, "Unable to find order")
            return request.response
        quantity = ticket.quantity if fields.quantity is None else float(fields.quantity)
        if (order.direction == OrderDirection.SELL or quantity < 0) and not self.shortable(
            order.symbol, quantity, order.id
        ):
            message = (
                f"Order exceeds shortable quantity {self.shortable_quantity(order.symbol)} for Symbol "
                f"{order.symbol} requested {normalize_decimal(ticket.quantity)})"
            )
            if not self._state.live:
                request.response = OrderResponse(order.id, ERROR_EXCEEDS_SHORTABLE_QUANTITY, message)
                return request.response
            self._algorithm.debug(f"Warning: {message}")
        if order.status in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.INVALID):
            message = f"Unable to update order with id {order.id} that is already {order.status.name.lower()}."
            request.response = OrderResponse(order.id, ERROR_INVALID_STATUS, message)
            return request.response
        if fields.quantity is not None and float(fields.quantity) == 0:
            request.response = OrderResponse(order.id, ERROR_ZERO_QUANTITY, "Unable to update order to zero quantity.")
            return request.response
        request.response = OrderResponse(order.id)  # OrderRequestStatus.Processing until handled
        if self._in_handler:
            # queued (OrderRequestProcessingPool.Dispatch): handled once the request being processed is done
            self._deferred.append((ticket, order, request))
            return request.response
        return self._handle_update(ticket, order, request)

    def _flush_deferred(self) -> None:
        while self._deferred and not self._in_handler:
            ticket, order, request = self._deferred.pop(0)
            self._handle_update(ticket, order, request)

    def _handle_update(self, ticket: OrderTicket, order: Order, request: UpdateOrderRequest) -> OrderResponse:
        """HandleUpdateOrderRequest: a closed order (by now) is an error response; the brokerage model may refuse;
        an update past the buying power is an error and an order event; else the order takes the new fields."""
        now_utc = self._state.now_utc
        if order.status in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.INVALID):
            message = f"Unable to update order with id {order.id} that is already {order.status.name.lower()}."
            request.response = OrderResponse(order.id, ERROR_INVALID_STATUS, message)
            return request.response
        sec = self._securities.security(order.symbol)
        refusal = self._brokerage_refuses_update(order, sec, request)
        if refusal:
            # HandleUpdateOrderRequest: the error, then an order event (the order's status unchanged)
            self._algorithm.error(refusal)
            self._emit(
                order, OrderEvent(order, now_utc, OrderFee.ZERO, "BrokerageModel declared unable to update order")
            )
            request.response = OrderResponse(order.id, ERROR_BROKERAGE_MODEL_REFUSED_TO_UPDATE_ORDER, refusal)
            return request.response
        updated = self._updated_copy(order, request)
        self._ledger.invalidate()
        insufficient = self._margin.order_error(updated, sec, ticket.quantity_filled)
        if insufficient:
            message = (
                f"Brokerage failed to update order with id: {order.id}, Symbol: {order.symbol.value}, Insufficient "
                f"buying power to complete order, Reason: {insufficient}."
            )
            self._algorithm.error(message)
            self._emit(order, OrderEvent(order, now_utc, OrderFee.ZERO, message))
            request.response = OrderResponse(order.id, ERROR_BROKERAGE_FAILED_TO_UPDATE_ORDER, message)
            return request.response
        self._apply_update(order, request)
        self._round_order_prices(order, sec)
        ticket.quantity = order.quantity
        if request.tag is not None:
            ticket.tag = request.tag
        order.status = OrderStatus.UPDATE_SUBMITTED
        order.last_update_time = now_utc
        request.response = OrderResponse(order.id)
        self._emit(order, OrderEvent(order, now_utc, OrderFee.ZERO, status=OrderStatus.UPDATE_SUBMITTED))
        return request.response

    def _brokerage_model(self) -> Any:
        return self._algorithm.__dict__.get("_brokerage_model")

    def _brokerage_refuses_submit(self, order: Order, sec: Security) -> str:
        """BrokerageModel.CanSubmitOrder (after the buying-power check): the response's error message, or ''."""
        model = self._brokerage_model()
        if model is None:
            return ""
        allowed, message = brokerages.ask(model.can_submit_order(sec, order, None))
        if allowed:
            return ""
        if message is None:
            message = brokerages.BrokerageMessageEvent(brokerages.BrokerageMessageType.WARNING, "InvalidOrder", "")
        return f"BrokerageModel declared unable to submit order: [{order.id}] {message}"

    def _brokerage_refuses_update(self, order: Order, sec: Security, request: UpdateOrderRequest) -> str:
        """BrokerageModel.CanUpdateOrder (backtests only): the response's error message, or ''."""
        model = self._brokerage_model()
        if model is None or self._state.live:
            return ""
        allowed, message = brokerages.ask(model.can_update_order(sec, order, request, None))
        if allowed:
            return ""
        if message is None:
            message = brokerages.BrokerageMessageEvent(
                brokerages.BrokerageMessageType.WARNING,
                "InvalidRequest",
                f"BrokerageModel declared unable to update order: {order.id}",
            )
        return f"OrderID: {order.id} {message}"

    @staticmethod
    def _apply_update(order: Order, request: UpdateOrderRequest) -> None:
        """Order.ApplyUpdateOrderRequest (and the limit, stop, trailing orders' own fields)."""
        if request.quantity is not None:
            order.quantity = float(request.quantity)
        if request.tag is not None:
            order.tag = request.tag
        if request.limit_price is not None and order.type in LIMIT_TYPES:
            order.limit_price = float(request.limit_price)
        if request.stop_price is not None and order.type in STOP_TYPES:
            order.stop_price = float(request.stop_price)
        if request.trailing_amount is not None and order.type == OrderType.TRAILING_STOP:
            order.trailing_amount = float(request.trailing_amount)

    def _updated_copy(self, order: Order, request: UpdateOrderRequest) -> Order:
        copy = Order(order.id, order.symbol, order.quantity, order.type, order.time, order.tag, order.limit_price)
        copy.stop_price = order.stop_price
        copy.trailing_amount = order.trailing_amount
        copy.trailing_as_percentage = order.trailing_as_percentage
        self._apply_update(copy, request)
        return copy

    def _pre_order_check(self, sym: Symbol, quantity: float, order_type: OrderType) -> str:
        state = self._state
        if state.is_warming_up or not state.initialized:
            return (
                "This operation is not allowed in initialize or during warm up: OrderRequest.submit. Please "
                "move this code to the on_warmup_finished() method."
            )
        if not self._securities.contains(sym):
            return f"You haven't requested {sym} data. Add this with add_security() in the initialize() method."
        if quantity == 0:
            return "Unable to submit order with id 0 that has zero quantity."
        sec = self._securities.security(sym)
        lot = sec.symbol_properties.lot_size
        if abs(quantity) < lot:
            return (
                f"Unable to submit order with id 0 which quantity ({normalize_decimal(abs(quantity))}) is less "
                f"than lot size ({normalize_decimal(lot)})."
            )
        if not sec.is_tradable:
            return f"The security with symbol '{sym}' is marked as non-tradable."
        if sec.price == 0:
            return NO_PRICE.format(symbol=sym)
        if not sec.has_data:
            return (
                "There is no data for this symbol yet, please check the security.HasData flag to ensure there is "
                "at least one data point."
            )
        if (
            order_type == OrderType.MARKET_ON_CLOSE
            and state.now_utc > local_to_utc(state.sessions.next_close_after(self._algorithm.time)) - MOC_BUFFER
        ):
            return (
                "MarketOnClose orders must be placed within 00:15:30 before market close. Override this TimeSpan "
                "buffer by setting Orders.MarketOnCloseOrder.SubmissionTimeBuffer in QCAlgorithm.Initialize()."
            )
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
        for listener in self.listeners:
            listener(event)
        handler = getattr(self._algorithm, "on_order_event", None)
        if handler is not None:
            self._in_handler += 1
            try:
                handler(event)
            finally:
                self._in_handler -= 1

    def cancel_order(self, order_id: int, tag: str | None = None) -> bool:
        order = self._pending.pop(order_id, None)
        if order is None:
            return False
        order.status = OrderStatus.CANCELED
        order.canceled_time = self._state.now_utc
        if tag:
            order.tag = tag
        self._emit(order, OrderEvent(order, self._state.now_utc, OrderFee.ZERO))
        return True

    def open_orders(self, symbol: Any = None) -> list[Order]:
        sym = None if symbol is None else self._securities.to_symbol(symbol)
        return [o for o in self._pending.values() if sym is None or o.symbol == sym]

    def process_orders(self, only: int | None = None) -> None:
        """Fill the open orders (or just ``only``) that the current bar fills, in order of submission
        (BacktestingBrokerage.Scan: an order waits for a bar after it; each scan checks the buying power first,
        then asks the fill model)."""
        if only is None:
            self._flush_deferred()  # ProcessSynchronousEvents: the queued requests, then the brokerage's scan
        if not self._pending:
            return
        local = self._algorithm.time
        ids = [only] if only is not None else sorted(self._pending)
        for oid in ids:
            order = self._pending.get(oid)
            if order is None:
                continue
            if order.time == self._state.now_utc and order.type != OrderType.MARKET:
                continue
            sec = self._securities.security(order.symbol)
            if order.type == OrderType.MARKET_ON_OPEN and (
                sec.bar is None or utc_to_local(order.time) >= sec.bar.end_time
            ):
                continue  # TryOrderPreChecks: a market-on-open order waits for a bar after it, unchecked
            ticket = self.tickets[oid]
            message = self._margin.order_error(order, sec, ticket.quantity_filled)
            if message:
                del self._pending[oid]
                order.status = OrderStatus.INVALID
                self._emit(order, OrderEvent(order, self._state.now_utc, OrderFee.ZERO, message))
                self._algorithm.error(message)
                continue
            fill = self._fill_price(order, sec, local)
            if fill is None:
                continue
            price, fill_message = fill
            if order.type in SLIPPED_TYPES:
                slip = float(sec.slippage_model.get_slippage_approximation(sec, order))
                price = price + slip if order.quantity > 0 else price - slip
            fee = order_fee(sec, order)
            del self._pending[oid]
            self._fill(order, sec, ticket, price, fee, fill_message)

    def _fill_price(self, order: Order, sec: Security, local: dt.datetime) -> tuple[float, str] | None:
        """The equity fill model's price (and message) for ``order`` at ``local`` on the security's last bar,
        before slippage; None: not yet (Lean's EquityFillModel)."""
        bar = sec.bar
        if order.type == OrderType.MARKET:
            return (sec.price, "") if sec.price else None
        if bar is None:
            return None
        sessions = self._state.sessions
        order_local = utc_to_local(order.time)
        if order.type == OrderType.MARKET_ON_OPEN:
            if bar.time < order_local or order_local >= bar.end_time:
                return None
            if sessions.is_open_at(order_local) and order_local.date() == bar.end_time.date():
                return None
            if local.date() != bar.end_time.date():
                return None
            return bar.open, ""
        if order.type == OrderType.MARKET_ON_CLOSE:
            if local < sessions.next_close_after(order_local):
                return None
            return bar.close, ""
        # FillModel.IsExchangeOpen: open now, or (a daily bar) on the day the bar ends; and a bar after the order
        if not (sessions.is_open_at(local) or local.date() == bar.end_time.date()):
            return None
        if local_to_utc(bar.end_time) <= order.time:
            return None
        if order.type == OrderType.LIMIT:
            return _limit_fill(order, bar)
        if order.type == OrderType.STOP_MARKET:
            return _stop_market_fill(order, bar, sec)
        if order.type == OrderType.STOP_LIMIT:
            return _stop_limit_fill(order, bar)
        if order.type == OrderType.TRAILING_STOP:
            return _trailing_stop_fill(order, bar, sec)
        raise NotSupportedByLocalRuntime(f"order type {order.type.name}")

    def _fill(
        self, order: Order, sec: Security, ticket: OrderTicket, price: float, fee: OrderFee, message: str = ""
    ) -> None:
        qty = order.quantity
        self._ledger.apply_fill(sec, qty, price, fee.value.amount)
        now_utc = self._state.now_utc
        order.status = OrderStatus.FILLED
        order.price = price
        order.last_fill_time = now_utc
        ticket.quantity_filled = qty
        ticket.average_fill_price = price
        self._emit(order, OrderEvent(order, now_utc, fee, message, OrderStatus.FILLED, price, qty))

    def liquidate_delisted(self, sec: Security) -> None:
        """Lean's delisting liquidation: a market order for the whole holding, filled at the last price."""
        qty = -sec.holdings.quantity
        order_id = len(self.orders) + 1
        now_utc = self._state.now_utc
        order = Order(order_id, sec.symbol, qty, OrderType.MARKET, now_utc, "Liquidate from delisting")
        self.orders[order_id] = order
        ticket = OrderTicket(self, order, sec.symbol, qty, OrderType.MARKET, order.tag)
        self.tickets[order_id] = ticket
        order.status = OrderStatus.SUBMITTED
        self._emit(order, OrderEvent(order, now_utc, OrderFee.ZERO))
        self._fill(order, sec, ticket, sec.price, order_fee(sec, order))


def _gap_message(kind: str, bar: TradeBar) -> str:
    return (
        f"Due to {kind} gap at {bar.end_time:%m/%d/%Y %H:%M:%S} America/New_York, order filled using the open "
        f"price ({normalize_decimal(bar.open)})"
    )


def _limit_fill(order: Order, bar: TradeBar) -> tuple[float, str] | None:
    """EquityFillModel.LimitFill: a buy fills at its limit once the bar's low is below it (a sell: the high
    above it), at the open instead when the bar opens past the limit (a favorable gap)."""
    limit = order.limit_price
    if limit is None:
        return None
    if order.quantity > 0 and bar.low < limit:
        return (bar.open, _gap_message("a favorable", bar)) if bar.open < limit else (limit, "")
    if order.quantity < 0 and bar.high > limit:
        return (bar.open, _gap_message("a favorable", bar)) if bar.open > limit else (limit, "")
    return None


def _stop_market_fill(order: Order, bar: TradeBar, sec: Security) -> tuple[float, str] | None:
    """EquityFillModel.StopMarketFill: a sell fills at its stop once the bar's low reaches it (a buy: the high),
    at the open when the bar opens past the stop (an unfavorable gap); the slippage worsens the price."""
    stop = order.stop_price
    if stop is None:
        return None
    if order.quantity < 0 and bar.low <= stop:
        slip = float(sec.slippage_model.get_slippage_approximation(sec, order))
        if bar.open <= stop:
            return bar.open - slip, _gap_message("an unfavorable", bar)
        return stop - slip, ""
    if order.quantity > 0 and bar.high >= stop:
        slip = float(sec.slippage_model.get_slippage_approximation(sec, order))
        if bar.open >= stop:
            return bar.open + slip, _gap_message("an unfavorable", bar)
        return stop + slip, ""
    return None


def _stop_limit_fill(order: Order, bar: TradeBar) -> tuple[float, str] | None:
    """EquityFillModel.StopLimitFill: a buy's stop triggers once the bar's high is above the stop price (a
    sell's: the low below it) and stays triggered; a triggered buy fills when the bar closes below its limit, at
    the lower of the high and the limit (a sell: closes above it, at the higher of the low and the limit)."""
    stop, limit = order.stop_price, order.limit_price
    if stop is None or limit is None:
        return None
    if order.quantity > 0 and (bar.high > stop or order.stop_triggered):
        order.stop_triggered = True
        if bar.close < limit:
            return min(bar.high, limit), ""
    elif order.quantity < 0 and (bar.low < stop or order.stop_triggered):
        order.stop_triggered = True
        if bar.close > limit:
            return max(bar.low, limit), ""
    return None


def _trailing_stop_fill(order: Order, bar: TradeBar, sec: Security) -> tuple[float, str] | None:
    """FillModel.TrailingStopFill: a sell fills once the bar's low reaches its stop, at the lower of the stop
    and the close less slippage (a buy: the high, the higher of the stop and the close plus slippage); unfilled,
    the stop trails the bar's high (a buy: low) by the trailing amount (TrailingStopOrder.TryUpdateStopPrice)."""
    stop = order.stop_price
    if stop is None:
        return None
    slip = float(sec.slippage_model.get_slippage_approximation(sec, order))
    if order.quantity < 0 and bar.low <= stop:
        return min(stop, bar.close - slip), ""
    if order.quantity > 0 and bar.high >= stop:
        return max(stop, bar.close + slip), ""
    market = bar.high if order.quantity < 0 else bar.low
    distance = market - stop if order.quantity < 0 else stop - market
    amount = order.trailing_amount
    reference = market * amount if order.trailing_as_percentage else amount
    if distance > reference:
        if order.trailing_as_percentage:
            order.stop_price = market * (1 + amount) if order.quantity > 0 else market * (1 - amount)
        else:
            order.stop_price = market + amount if order.quantity > 0 else market - amount
    return None


class SecurityTransactionManager:
    """``algorithm.transactions``: the run's orders and tickets."""

    def __init__(self, handler: TransactionHandler) -> None:
        self._handler = handler

    def get_order_by_id(self, order_id: int) -> Order | None:
        return self._handler.orders.get(int(order_id))

    def get_order_ticket(self, order_id: int) -> OrderTicket | None:
        return self._handler.tickets.get(int(order_id))

    def get_open_orders(self, symbol: Any = None, *, filter: Any = None) -> list[Order]:
        _refuse_filter("get_open_orders", filter)
        return self._handler.open_orders(symbol)

    def get_open_order_tickets(self, symbol: Any = None, *, filter: Any = None) -> list[OrderTicket]:
        _refuse_filter("get_open_order_tickets", filter)
        return [self._handler.tickets[o.id] for o in self._handler.open_orders(symbol)]

    def get_orders(self, filter: Callable[[Order], bool] | None = None) -> list[Order]:
        orders = list(self._handler.orders.values())
        return orders if filter is None else [o for o in orders if filter(o)]

    def get_order_tickets(self, filter: Callable[[OrderTicket], bool] | None = None) -> list[OrderTicket]:
        tickets = list(self._handler.tickets.values())
        return tickets if filter is None else [t for t in tickets if filter(t)]

    def cancel_open_orders(self, symbol: Any = None, tag: str | None = None) -> list[OrderTicket]:
        out = []
        for order in self._handler.open_orders(symbol):
            self._handler.cancel_order(order.id, tag)
            out.append(self._handler.tickets[order.id])
        return out

    def cancel_order(self, order_id: int, order_tag: str | None = None) -> bool:
        return bool(self._handler.cancel_order(int(order_id), order_tag))

    def get_open_orders_remaining_quantity(self, symbol: Any = None, *, filter: Any = None) -> float:
        _refuse_filter("get_open_orders_remaining_quantity", filter)
        return sum(self._handler.tickets[o.id].quantity_remaining for o in self._handler.open_orders(symbol))

    def add_order(self, request: SubmitOrderRequest) -> OrderTicket:
        """Lean's ``AddOrder(request)``: the request goes to the transaction handler without QCAlgorithm's
        pre-order checks (a market order is not turned into a market-on-open one)."""
        if not isinstance(request, SubmitOrderRequest):
            raise TypeError("add_order() takes a SubmitOrderRequest")
        kind = request.order_type
        if kind not in SUBMITTABLE_TYPES:
            raise NotSupportedByLocalRuntime(f"order type {kind.name}")
        return self._handler.submit_order(
            request.symbol,
            request.quantity,
            kind,
            request.tag or "",
            request.limit_price if kind in LIMIT_TYPES else None,
            stop_price=request.stop_price if kind in STOP_TYPES else None,
            asynchronous=request.asynchronous,
            request=request,
        )

    @property
    def orders_count(self) -> int:
        return len(self._handler.orders)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"transactions.{name}")


def _refuse_filter(method: str, filter: Any) -> None:
    """The ``filter`` (a predicate) overloads of the open-order queries are outside the runtime's subset."""
    if filter is not None:
        raise NotSupportedByLocalRuntime(f"transactions.{method}(filter)")
