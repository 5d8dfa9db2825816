"""Lean's orders (``QuantConnect.Orders``): enums, orders, order events, tickets; lot rounding and the decimal
text of order messages."""

from __future__ import annotations

import datetime as dt
import math
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol

from include.lean_local.enums import DataNormalizationMode
from include.lean_local.errors import NotSupportedByLocalRuntime, SupportedSubset
from include.lean_local.symbols import Symbol

if TYPE_CHECKING:
    from include.lean_local.order_models import OrderFee
    from include.lean_local.securities import Security


class OrderCanceller(Protocol):
    """What a ticket cancels and updates its order through (the transaction handler)."""

    def cancel_order(self, order_id: int, tag: str | None = None) -> bool: ...

    def cancel_ticket(self, ticket: OrderTicket, tag: str | None) -> OrderResponse: ...

    def update_ticket(self, ticket: OrderTicket, fields: UpdateOrderFields) -> OrderResponse: ...


class OrderStatus(IntEnum):
    NEW = 0
    SUBMITTED = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELED = 5
    NONE = 6
    INVALID = 7
    CANCEL_PENDING = 8
    UPDATE_SUBMITTED = 9


ORDER_STATUS_JSON = {
    0: "new",
    1: "submitted",
    2: "partiallyFilled",
    3: "filled",
    5: "canceled",
    6: "none",
    7: "invalid",
    8: "cancelPending",
    9: "updateSubmitted",
}


class OrderDirection(IntEnum):
    BUY = 0
    SELL = 1
    HOLD = 2


class OrderType(IntEnum):
    MARKET = 0
    LIMIT = 1
    STOP_MARKET = 2
    STOP_LIMIT = 3
    MARKET_ON_OPEN = 4
    MARKET_ON_CLOSE = 5
    TRAILING_STOP = 11


class OrderField(IntEnum):
    """The fields ``OrderTicket.get`` reads (``QuantConnect.Orders.OrderField``)."""

    LIMIT_PRICE = 0
    STOP_PRICE = 1
    TRIGGER_PRICE = 2
    TRAILING_AMOUNT = 3
    TRAILING_AS_PERCENTAGE = 4


# The order types whose orders have a limit price / a stop price (Lean's LimitOrder, StopLimitOrder...).
LIMIT_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
STOP_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})


class Order(SupportedSubset):
    def __init__(
        self,
        order_id: int,
        symbol: Symbol,
        quantity: float,
        order_type: OrderType,
        time: dt.datetime,
        tag: str = "",
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> None:
        self.id = order_id
        self.contingent_id = 0
        self.symbol = symbol
        self.quantity = float(quantity)
        self.type = order_type
        self.status = OrderStatus.NEW
        self.time = time  # UTC
        self.created_time = time
        self.last_fill_time: dt.datetime | None = None
        self.last_update_time: dt.datetime | None = None
        self.canceled_time: dt.datetime | None = None
        self.price = 0.0
        self.tag = tag
        self.limit_price = limit_price
        self.stop_price = stop_price
        self.stop_triggered = False  # a stop-limit order's stop was reached (it is a limit order now)
        self.trailing_amount = 0.0  # a trailing stop order's distance to the market (a fraction if a percentage)
        self.trailing_as_percentage = False
        self.submission_price = 0.0
        self.price_adjustment_mode = DataNormalizationMode.ADJUSTED

    @property
    def direction(self) -> OrderDirection:
        if self.quantity > 0:
            return OrderDirection.BUY
        if self.quantity < 0:
            return OrderDirection.SELL
        return OrderDirection.HOLD

    @property
    def absolute_quantity(self) -> float:
        return abs(self.quantity)

    @property
    def value(self) -> float:
        return self.quantity * self.price

    def get_value(self, security: Security) -> float:
        """Lean's ``GetValueImpl``: a limit (stop-limit) order is valued at the less favourable of its limit
        price and the security's price (``LimitOrder.CalculateOrderValue``), a stop-market order likewise at its
        stop price, any other at the security's price."""
        reference = self.limit_price if self.type in LIMIT_TYPES else None
        if self.type in (OrderType.STOP_MARKET, OrderType.TRAILING_STOP):
            reference = self.stop_price
        if reference is None:
            return self.quantity * security.price
        if self.quantity < 0:
            return self.quantity * max(reference, security.price)
        if self.quantity > 0:
            return self.quantity * min(reference, security.price)
        return 0.0

    def __repr__(self) -> str:
        text = (
            f"OrderId: {self.id} {self.status.name.title()} {self.type.name.title().replace('_', '')} order "
            f"for {self.quantity:g} unit{'s' if abs(self.quantity) != 1 else ''} of {self.symbol}"
        )
        if self.type in STOP_TYPES and self.stop_price is not None:
            text += f" at stop ${smart_rounding(self.stop_price)}"
        if self.type in LIMIT_TYPES and self.limit_price is not None:
            label = "limit" if self.type == OrderType.STOP_LIMIT else "at limit"
            text += f" {label} ${smart_rounding(self.limit_price)}"
        if self.type == OrderType.TRAILING_STOP:
            amount = self.trailing_amount
            text += f". Trailing amount: {f'{amount * 100:g}%' if self.trailing_as_percentage else f'${amount:g}'}"
        return text


class OrderEvent(SupportedSubset):
    def __init__(
        self,
        order: Order,
        utc_time: dt.datetime,
        fee: OrderFee,
        message: str = "",
        status: OrderStatus | None = None,
        fill_price: float = 0.0,
        fill_quantity: float = 0.0,
    ) -> None:
        self.order_id = order.id
        self.order_event_id = 0
        self.symbol = order.symbol
        self.utc_time = utc_time
        self.status = order.status if status is None else status
        self.order_fee = fee
        self.fill_price = fill_price
        self.fill_price_currency = "USD"
        self.fill_quantity = fill_quantity
        self.direction = order.direction
        self.message = message
        self.is_assignment = False
        self.is_in_the_money = False
        self.quantity = order.quantity
        # the order's current prices (BrokerageTransactionHandler.HandleOrderEvents sets them on every event)
        self.limit_price = order.limit_price if order.type in LIMIT_TYPES else None
        self.stop_price = order.stop_price if order.type in STOP_TYPES else None
        self.trailing_amount = order.trailing_amount if order.type == OrderType.TRAILING_STOP else None
        self.ticket: OrderTicket | None = None

    @property
    def id(self) -> int:
        return self.order_event_id

    @property
    def absolute_fill_quantity(self) -> float:
        return abs(self.fill_quantity)

    def to_string(self) -> str:
        return repr(self)

    def __repr__(self) -> str:
        text = (
            f"Time: {self.utc_time:%m/%d/%Y %H:%M:%S} OrderID: {self.order_id} EventID: {self.order_event_id} "
            f"Symbol: {self.symbol} Status: {self.status.name.title().replace('_', '')} "
            f"Quantity: {self.quantity:g}"
        )
        if self.fill_quantity:
            text += f" FillQuantity: {self.fill_quantity:g} FillPrice: {self.fill_price:g} USD"
        if self.order_fee.value.amount:
            text += f" OrderFee: {self.order_fee.value.amount:g} USD"
        if self.message:
            text += f" Message: {self.message}"
        return text


class OrderResponse(SupportedSubset):
    """The answer to an order request (``QuantConnect.Orders.OrderResponse``)."""

    def __init__(self, order_id: int, error_code: int = 0, error_message: str = "") -> None:
        self.order_id = order_id
        self.error_code = error_code
        self.error_message = error_message

    @property
    def is_success(self) -> bool:
        return self.error_code == 0

    @property
    def is_error(self) -> bool:
        return self.error_code != 0

    def __repr__(self) -> str:
        return "OrderResponse: success" if self.is_success else f"OrderResponse: {self.error_message}"


# OrderResponseErrorCode values the runtime answers with
ERROR_INVALID_STATUS = -9
ERROR_ZERO_QUANTITY = -11
ERROR_UNABLE_TO_FIND_ORDER = -8
ERROR_EXCEEDS_SHORTABLE_QUANTITY = -33
ERROR_BROKERAGE_FAILED_TO_UPDATE_ORDER = -6
ERROR_BROKERAGE_MODEL_REFUSED_TO_SUBMIT_ORDER = -4
ERROR_BROKERAGE_MODEL_REFUSED_TO_UPDATE_ORDER = -25


class _Request(SupportedSubset):
    response: OrderResponse | None

    def __init__(self, time: dt.datetime, order_id: int, tag: str | None) -> None:
        self.time = time
        self.order_id = order_id
        self.tag = tag
        self.response = None


class SubmitOrderRequest(_Request):
    """Lean's ``SubmitOrderRequest(order_type, security_type, symbol, quantity, stop_price, limit_price
    [, trigger_price[, trailing_amount, trailing_as_percentage]], time, tag[, properties, group_order_manager,
    asynchronous])`` (``transactions.add_order`` submits it)."""

    def __init__(
        self,
        *args: Any,
        order_type: Any = None,
        security_type: Any = None,
        symbol: Any = None,
        quantity: float | None = None,
        stop_price: float | None = None,
        limit_price: float | None = None,
        trigger_price: float | None = None,
        trailing_amount: float | None = None,
        trailing_as_percentage: bool | None = None,
        time: dt.datetime | None = None,
        tag: str | None = None,
        properties: Any = None,
        group_order_manager: Any = None,
        asynchronous: bool = False,
        contingency: Any = None,
    ) -> None:
        named = {
            key: value
            for key, value in {
                "order_type": order_type,
                "security_type": security_type,
                "symbol": symbol,
                "quantity": quantity,
                "stop_price": stop_price,
                "limit_price": limit_price,
                "trigger_price": trigger_price,
                "trailing_amount": trailing_amount,
                "trailing_as_percentage": trailing_as_percentage,
                "time": time,
                "tag": tag,
                "properties": properties,
                "group_order_manager": group_order_manager,
                "asynchronous": asynchronous or None,
                "contingency": contingency,
            }.items()
            if value is not None
        }
        full = (
            "order_type",
            "security_type",
            "symbol",
            "quantity",
            "stop_price",
            "limit_price",
            "trigger_price",
            "trailing_amount",
            "trailing_as_percentage",
            "time",
            "tag",
            "properties",
            "group_order_manager",
            "asynchronous",
            "contingency",
        )
        names: tuple[str, ...] = full
        if len(args) >= 8 and isinstance(args[6], (dt.datetime, dt.date)):
            names = (*full[:6], "time", "tag", "properties", "group_order_manager", "asynchronous")
        elif len(args) >= 9 and isinstance(args[7], (dt.datetime, dt.date)):
            names = (*full[:7], "time", "tag", "properties", "group_order_manager", "asynchronous")
        unknown = set(named) - set(full)
        if unknown or len(args) > len(names):
            raise TypeError(f"SubmitOrderRequest() got unexpected arguments {sorted(unknown) or len(args)}")
        values: dict[str, Any] = dict(zip(names, args, strict=False))
        for key, value in named.items():
            if key in values:
                raise TypeError(f"SubmitOrderRequest() got multiple values for argument '{key}'")
            values[key] = value
        if values.get("group_order_manager") is not None or values.get("contingency") is not None:
            raise NotSupportedByLocalRuntime("SubmitOrderRequest with a group order manager or a contingency")
        super().__init__(values.get("time") or dt.datetime.min, 0, str(values.get("tag") or ""))
        self.order_type = OrderType(int(values["order_type"]))
        self.security_type = values.get("security_type")
        self.symbol = values["symbol"]
        self.quantity = float(values["quantity"])
        self.stop_price = float(values.get("stop_price") or 0.0)
        self.limit_price = float(values.get("limit_price") or 0.0)
        self.trigger_price = float(values.get("trigger_price") or 0.0)
        self.trailing_amount = float(values.get("trailing_amount") or 0.0)
        self.trailing_as_percentage = bool(values.get("trailing_as_percentage") or False)
        self.order_properties = values.get("properties")
        self.asynchronous = bool(values.get("asynchronous") or False)


class UpdateOrderFields(SupportedSubset):
    """What ``OrderTicket.update`` changes (None: unchanged)."""

    def __init__(self) -> None:
        self.quantity: float | None = None
        self.limit_price: float | None = None
        self.stop_price: float | None = None
        self.trigger_price: float | None = None
        self.trailing_amount: float | None = None
        self.tag: str | None = None


class UpdateOrderRequest(_Request):
    def __init__(self, time: dt.datetime, order_id: int, fields: UpdateOrderFields) -> None:
        super().__init__(time, order_id, fields.tag)
        self.quantity = fields.quantity
        self.limit_price = fields.limit_price
        self.stop_price = fields.stop_price
        self.trigger_price = fields.trigger_price
        self.trailing_amount = fields.trailing_amount
        if fields.trigger_price is not None:
            raise NotSupportedByLocalRuntime("UpdateOrderFields.trigger_price (limit-if-touched orders)")

    def __repr__(self) -> str:
        return f"{self.time} UTC: Update Order: ({self.order_id}) - {self.tag or ''} Status: {self.response}"


class CancelOrderRequest(_Request):
    def __repr__(self) -> str:
        return f"{self.time} UTC: Cancel Order: ({self.order_id}) - {self.tag or ''} Status: {self.response}"


class OrderTicket(SupportedSubset):
    def __init__(
        self,
        transactions: OrderCanceller,
        order: Order | None,
        symbol: Symbol,
        quantity: float,
        order_type: OrderType,
        tag: str = "",
        error: str = "",
        submit_request: SubmitOrderRequest | None = None,
    ) -> None:
        self._transactions = transactions
        self._order = order
        self.submit_request = submit_request or SubmitOrderRequest(
            order_type, symbol.security_type, symbol, quantity, 0.0, 0.0, order.time if order else dt.datetime.min, tag
        )
        self.update_requests: list[UpdateOrderRequest] = []
        self.cancel_request: CancelOrderRequest | None = None
        self.symbol = symbol
        self.quantity = float(quantity)
        self.order_type = order_type
        self.tag = tag
        self.error_message = error
        self.quantity_filled = 0.0
        self.average_fill_price = 0.0
        self.order_events: list[OrderEvent] = []

    @property
    def order_id(self) -> int:
        return self._order.id if self._order is not None else 0

    @property
    def status(self) -> OrderStatus:
        return self._order.status if self._order is not None else OrderStatus.INVALID

    @property
    def time(self) -> dt.datetime | None:
        return self._order.time if self._order is not None else None

    @property
    def quantity_remaining(self) -> float:
        return self.quantity - self.quantity_filled

    @property
    def limit_price(self) -> float | None:
        return self._order.limit_price if self._order is not None else None

    @property
    def stop_price(self) -> float | None:
        return self._order.stop_price if self._order is not None else None

    def cancel(self, tag: str | None = None) -> OrderResponse:
        """Lean's ``Cancel``: the cancel request's response (an error for a closed order)."""
        return self._transactions.cancel_ticket(self, tag)

    def update(self, fields: UpdateOrderFields) -> OrderResponse:
        """Lean's ``Update(fields)``: the update request's response."""
        return self._transactions.update_ticket(self, fields)

    def update_quantity(self, quantity: float, tag: str | None = None) -> OrderResponse:
        fields = UpdateOrderFields()
        fields.quantity, fields.tag = quantity, tag
        return self.update(fields)

    def update_limit_price(self, limit_price: float, tag: str | None = None) -> OrderResponse:
        fields = UpdateOrderFields()
        fields.limit_price, fields.tag = limit_price, tag
        return self.update(fields)

    def update_stop_price(self, stop_price: float, tag: str | None = None) -> OrderResponse:
        fields = UpdateOrderFields()
        fields.stop_price, fields.tag = stop_price, tag
        return self.update(fields)

    def update_tag(self, tag: str) -> OrderResponse:
        fields = UpdateOrderFields()
        fields.tag = tag
        return self.update(fields)

    def get(self, field: Any) -> Any:
        """Lean's ``OrderTicket.Get(field)``: the order's current limit or stop price (the submit request's when
        there is no order); an ArgumentException (a ValueError here) for a field the order type lacks."""
        kind = self.submit_request.order_type
        field = OrderField(int(field))
        source: Any = self._order if self._order is not None else self.submit_request
        if field == OrderField.LIMIT_PRICE and kind in LIMIT_TYPES:
            return source.limit_price
        if field == OrderField.STOP_PRICE and kind in STOP_TYPES:
            return source.stop_price
        if field == OrderField.TRAILING_AMOUNT and kind == OrderType.TRAILING_STOP:
            return source.trailing_amount
        if field == OrderField.TRAILING_AS_PERCENTAGE and kind == OrderType.TRAILING_STOP:
            return source.trailing_as_percentage
        if field != OrderField.TRIGGER_PRICE:
            raise ValueError(
                f"Unable to get field {field.name.title().replace('_', '')} on order of type "
                f"{kind.name.title().replace('_', '')}"
            )
        raise NotSupportedByLocalRuntime(f"OrderTicket.get(OrderField.{field.name})")

    def __repr__(self) -> str:
        return f"OrderTicket {self.order_id} {self.symbol} {self.quantity:g} {self.status.name}"

    def to_string(self) -> str:
        return repr(self)


def round_lots(quantity: float, lot: float) -> float:
    """Truncate toward zero to a multiple of the lot (1e-6-lot tolerance, as OrderSizing.AdjustByLotSize)."""
    lots = quantity / lot
    return math.trunc(lots + (1e-6 if lots > 0 else -1e-6)) * lot


def smart_rounding(value: float) -> str:
    """Lean's decimal SmartRounding for messages: 2 decimals above 1, else 4 significant digits."""
    if value == 0:
        return "0"
    rounded = round(value, 2) if abs(value) > 1 else float(f"{value:.4g}")
    return normalize_decimal(rounded)


def normalize_decimal(value: float) -> str:
    """decimal.Normalize(): no exponent, no trailing zeros."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
