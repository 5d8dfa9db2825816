"""Lean's order/portfolio/security objects and enums (the subset daily US-equity algorithms use)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Mapping
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.symbols import Symbol

if TYPE_CHECKING:
    from include.lean_local.engine import Engine


class _Strict:
    """Unknown public attributes raise NotSupportedByLocalRuntime instead of a silent AttributeError."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"{type(self).__name__}.{name}")


class Resolution(IntEnum):
    TICK = 0
    SECOND = 1
    MINUTE = 2
    HOUR = 3
    DAILY = 4


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
    0: "new", 1: "submitted", 2: "partiallyFilled", 3: "filled", 5: "canceled", 6: "none", 7: "invalid",
    8: "cancelPending", 9: "updateSubmitted",
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


class DataNormalizationMode(IntEnum):
    RAW = 0
    ADJUSTED = 1
    SPLIT_ADJUSTED = 2
    TOTAL_RETURN = 3


class MovingAverageType(IntEnum):
    SIMPLE = 0
    EXPONENTIAL = 1


class SecurityType(IntEnum):
    BASE = 0
    EQUITY = 1


class DelistingType(IntEnum):
    WARNING = 0
    DELISTED = 1


class SplitType(IntEnum):
    WARNING = 0
    SPLIT_OCCURRED = 1


class Market:
    USA = "usa"


class AccountType(IntEnum):
    MARGIN = 0
    CASH = 1


class CashAmount:
    __slots__ = ("amount", "currency")

    def __init__(self, amount: float, currency: str = "USD") -> None:
        self.amount = float(amount)
        self.currency = currency

    def __repr__(self) -> str:
        return f"{self.amount} {self.currency}"


class OrderFee:
    def __init__(self, value: CashAmount) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"{self.value.amount} {self.value.currency}"


OrderFee.ZERO = OrderFee(CashAmount(0.0, "QCC"))  # type: ignore[attr-defined]


class OrderFeeParameters:
    def __init__(self, security: Security, order: Order) -> None:
        self.security = security
        self.order = order


class FeeModel:
    """Base fee model (subclassable from Python): zero fee in USD."""

    def get_order_fee(self, parameters: OrderFeeParameters) -> OrderFee:
        return OrderFee(CashAmount(0.0, "USD"))


class ConstantFeeModel(FeeModel):
    def __init__(self, fee: float, currency: str = "USD") -> None:
        self.fee = float(fee)
        self.currency = currency

    def get_order_fee(self, parameters: OrderFeeParameters) -> OrderFee:
        return OrderFee(CashAmount(abs(self.fee), self.currency))


class InteractiveBrokersFeeModel(FeeModel):
    """US equity: 0.005 USD per share, minimum 1 USD, capped at 0.5% of the trade value."""

    def get_order_fee(self, parameters: OrderFeeParameters) -> OrderFee:
        order = parameters.order
        security = parameters.security
        quantity = abs(order.quantity)
        trade_value = abs(order.get_value(security))
        fee = 0.005 * quantity
        maximum = 0.005 * trade_value
        if fee < 1.0:
            fee = 1.0
        elif fee > maximum:
            fee = maximum
        return OrderFee(CashAmount(abs(fee), "USD"))


class NullSlippageModel:
    def get_slippage_approximation(self, asset: Security, order: Order) -> float:
        return 0.0


class ConstantSlippageModel:
    def __init__(self, slippage_percent: float, slippage_rate: float | None = None) -> None:
        self.slippage_percent = float(slippage_percent)

    def get_slippage_approximation(self, asset: Security, order: Order) -> float:
        return asset.price * self.slippage_percent


class FillModel:
    """Lean's default fill behaviour (EquityFillModel); custom overrides are not supported."""


class EquityFillModel(FillModel):
    pass


class ImmediateFillModel(FillModel):
    pass


class SymbolProperties:
    def __init__(self, lot_size: float = 1.0, minimum_price_variation: float = 0.01) -> None:
        self.lot_size = lot_size
        self.minimum_price_variation = minimum_price_variation
        self.contract_multiplier = 1.0
        self.quote_currency = "USD"


class TradeBar:
    __slots__ = ("close", "end_time", "high", "is_fill_forward", "low", "open", "symbol", "time", "volume")

    def __init__(self, time: dt.datetime | None = None, symbol: Any = None, open: float = 0.0, high: float = 0.0,
                 low: float = 0.0, close: float = 0.0, volume: float = 0.0, period: dt.timedelta | None = None,
                 end_time: dt.datetime | None = None, is_fill_forward: bool = False) -> None:
        self.time = time or dt.datetime.min
        self.symbol = symbol
        self.open = float(open)
        self.high = float(high)
        self.low = float(low)
        self.close = float(close)
        self.volume = float(volume)
        self.end_time = end_time or (self.time + (period or dt.timedelta(days=1)))
        self.is_fill_forward = is_fill_forward

    @property
    def price(self) -> float:
        return self.close

    @property
    def value(self) -> float:
        return self.close

    @property
    def period(self) -> dt.timedelta:
        return self.end_time - self.time

    def __repr__(self) -> str:
        return (f"{self.symbol}: O: {self.open:.2f} H: {self.high:.2f} L: {self.low:.2f} C: {self.close:.2f} "
                f"V: {self.volume:.0f}")


class Delisting:
    def __init__(self, symbol: Symbol, time: dt.datetime, price: float, type: DelistingType) -> None:
        self.symbol = symbol
        self.time = time
        self.price = price
        self.type = type

    def __repr__(self) -> str:
        kind = "Warning" if self.type == DelistingType.WARNING else "Delisted"
        return f"Delisting {kind}: {self.symbol}"


class Dividend:
    """A cash distribution per share, in the slice at midnight of the ex-date (Lean's ``Dividend``)."""

    def __init__(self, symbol: Symbol, time: dt.datetime, distribution: float, reference_price: float) -> None:
        self.symbol = symbol
        self.time = time
        self.end_time = time
        self.distribution = distribution
        self.reference_price = reference_price

    @property
    def value(self) -> float:
        return self.distribution

    @property
    def price(self) -> float:
        return self.distribution

    def __repr__(self) -> str:
        return f"Dividend: {self.symbol}: {self.distribution} | {self.reference_price}"


class Split:
    """A split: a ``WARNING`` at midnight of the day before, ``SPLIT_OCCURRED`` at midnight of the
    effective day (Lean's ``Split``). ``split_factor`` < 1 for a forward split (0.5 for 2:1)."""

    def __init__(self, symbol: Symbol, time: dt.datetime, price: float, split_factor: float,
                 type: SplitType) -> None:
        self.symbol = symbol
        self.time = time
        self.end_time = time
        self.price = price
        self.split_factor = split_factor
        self.type = type

    @property
    def value(self) -> float:
        return self.price

    @property
    def reference_price(self) -> float:
        return self.price

    def __repr__(self) -> str:
        kind = "Warning" if self.type == SplitType.WARNING else "Occurred"
        return f"Split {kind}: {self.symbol}: {self.split_factor} | {self.price}"


class KeyValuePair:
    __slots__ = ("key", "value")

    def __init__(self, key: Any, value: Any) -> None:
        self.key = key
        self.value = value

    def __iter__(self) -> Iterator[Any]:
        yield self.key
        yield self.value


class DataDictionary(dict):
    """Lean's DataDictionary: iterating yields KeyValuePair (``kvp.key``/``kvp.value``) like pythonnet."""

    def __iter__(self) -> Iterator[Any]:
        return (KeyValuePair(k, v) for k, v in dict.items(self))

    def contains_key(self, key: Any) -> bool:
        return dict.__contains__(self, key)

    def try_get_value(self, key: Any) -> tuple[bool, Any]:
        value = dict.get(self, key)
        return value is not None, value

    @property
    def count(self) -> int:
        return len(self)


class Dividends(DataDictionary):
    """Lean's ``Dividends``: the slice's dividends keyed by Symbol."""


class Splits(DataDictionary):
    """Lean's ``Splits``: the slice's splits keyed by Symbol."""


class Delistings(DataDictionary):
    """Lean's ``Delistings``: the slice's delistings keyed by Symbol."""


class Slice:
    """One time step of data: bars keyed by Symbol (lookups also by ticker string), plus the corporate events
    of the step. As in Lean, a symbol with only an event in the step (a dividend at midnight, say) is in the
    slice, but ``slice[symbol]`` is None for it: only a bar is "the data" of a symbol."""

    def __init__(self, time: dt.datetime, bars: dict[Symbol, TradeBar],
                 delistings: dict[Symbol, Delisting] | None = None, *,
                 dividends: dict[Symbol, Dividend] | None = None,
                 splits: dict[Symbol, Split] | None = None) -> None:
        self.time = time
        self.utc_time = time
        self.bars = DataDictionary(bars)
        self.delistings = Delistings(delistings or {})
        self.splits = Splits(splits or {})
        self.dividends = Dividends(dividends or {})
        self.symbol_changed_events = DataDictionary()
        self.quote_bars = DataDictionary()
        self.ticks = DataDictionary()
        data: Mapping[Symbol, TradeBar | None] = bars  # a plain dict: DataDictionary iterates KeyValuePairs
        if delistings or splits or dividends:
            merged: dict[Symbol, TradeBar | None] = dict(bars)
            for events in (self.delistings, self.splits, self.dividends):
                for symbol in dict.keys(events):
                    merged.setdefault(symbol, None)
            data = merged
        self._data = data

    def __getitem__(self, key: Any) -> TradeBar | None:
        try:
            return self._data[key]
        except KeyError:
            raise KeyError(f"'{key}' wasn't found in the Slice object, likely because there was no-data at this moment "
                           "in time and it wasn't possible to fillforward historical data.") from None

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[KeyValuePair]:
        return (KeyValuePair(k, v) for k, v in self._data.items())

    def __len__(self) -> int:
        return len(self._data)

    def contains_key(self, key: Any) -> bool:
        return key in self._data

    def get(self, key: Any, default: Any = None) -> Any:
        if isinstance(key, type):
            return self.bars
        return self._data.get(key, default)

    def keys(self) -> list[Symbol]:
        return list(self._data)

    def values(self) -> list[TradeBar | None]:
        return list(self._data.values())

    def items(self) -> list[tuple[Symbol, TradeBar | None]]:
        return list(self._data.items())

    @property
    def count(self) -> int:
        return len(self._data)

    @property
    def has_data(self) -> bool:
        return len(self._data) > 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"Slice.{name}")


class SecurityHolding(_Strict):
    def __init__(self, security: Security) -> None:
        self._security = security
        self.quantity = 0.0
        self.average_price = 0.0
        self.total_fees = 0.0
        self.profit = 0.0
        self.last_trade_profit = 0.0
        self.total_sale_volume = 0.0
        self.total_dividends = 0.0

    def apply_split(self, split_factor: float) -> float:
        """Lean's Portfolio.ApplySplit on this holding: quantity / factor truncated to whole shares, average
        price x factor. Returns the fractional share left over, which the caller pays out in cash."""
        quantity = self.quantity / split_factor
        whole = float(int(quantity))
        self.set_holdings(self.average_price * split_factor, whole)
        return quantity - whole

    def set_holdings(self, average_price: float, quantity: float) -> None:
        """Lean's SecurityHolding.SetHoldings: set a starting position (no order, no fee)."""
        self.average_price = float(average_price)
        self.quantity = float(quantity)
        engine = self._security._engine
        if self.quantity:
            engine._invested[self._security.symbol] = self._security
        else:
            engine._invested.pop(self._security.symbol, None)
        engine._tpv_cache = None

    @property
    def symbol(self) -> Symbol:
        return self._security.symbol

    @property
    def price(self) -> float:
        return self._security.price

    @property
    def absolute_quantity(self) -> float:
        return abs(self.quantity)

    @property
    def invested(self) -> bool:
        return self.quantity != 0

    @property
    def is_long(self) -> bool:
        return self.quantity > 0

    @property
    def is_short(self) -> bool:
        return self.quantity < 0

    @property
    def holdings_value(self) -> float:
        return self.quantity * self._security.price

    @property
    def absolute_holdings_value(self) -> float:
        return abs(self.holdings_value)

    @property
    def holdings_cost(self) -> float:
        return self.quantity * self.average_price

    @property
    def absolute_holdings_cost(self) -> float:
        return abs(self.holdings_cost)

    @property
    def unrealized_profit(self) -> float:
        return (self._security.price - self.average_price) * self.quantity

    unrealised_profit = unrealized_profit

    @property
    def net_profit(self) -> float:
        return self.profit - self.total_fees

    @property
    def unrealized_profit_percent(self) -> float:
        cost = self.absolute_holdings_cost
        return 0.0 if cost == 0 else self.unrealized_profit / cost

    def __repr__(self) -> str:
        return f"{self.symbol}: {self.quantity} @ {self.average_price}"


class _Exchange(_Strict):
    def __init__(self, security: Security) -> None:
        self._security = security

    @property
    def exchange_open(self) -> bool:
        return self._security._engine.exchange_open()

    @property
    def time_zone(self) -> str:
        return "America/New_York"


class Security(_Strict):
    def __init__(self, engine: Engine, symbol: Symbol, resolution: Resolution, leverage: float = 2.0) -> None:
        self._engine = engine
        self.symbol = symbol
        self.resolution = resolution
        self.holdings = SecurityHolding(self)
        self.symbol_properties = SymbolProperties()
        self.fee_model: Any = InteractiveBrokersFeeModel()
        self.slippage_model: Any = NullSlippageModel()
        self.fill_model: Any = EquityFillModel()
        self.leverage = float(leverage)
        self.data_normalization_mode = DataNormalizationMode.ADJUSTED
        self.exchange = _Exchange(self)
        self.is_delisted = False
        self.is_tradable = True
        self.bar: TradeBar | None = None
        self._market_price = 0.0

    # prices ---------------------------------------------------------------
    @property
    def price(self) -> float:
        return self.bar.close if self.bar is not None else self._market_price

    @property
    def close(self) -> float:
        return self.price

    @property
    def open(self) -> float:
        return self.bar.open if self.bar is not None else self._market_price

    @property
    def high(self) -> float:
        return self.bar.high if self.bar is not None else self._market_price

    @property
    def low(self) -> float:
        return self.bar.low if self.bar is not None else self._market_price

    @property
    def volume(self) -> float:
        return self.bar.volume if self.bar is not None else 0.0

    @property
    def bid_price(self) -> float:
        return self.price

    @property
    def ask_price(self) -> float:
        return self.price

    @property
    def has_data(self) -> bool:
        return self.bar is not None or self._market_price != 0

    @property
    def invested(self) -> bool:
        return self.holdings.invested

    @property
    def type(self) -> SecurityType:
        return SecurityType.EQUITY

    @property
    def local_time(self) -> dt.datetime:
        return self._engine.algorithm.time

    def get_last_data(self) -> TradeBar | None:
        return self.bar

    def set_market_price(self, data: Any) -> None:
        if data is None:
            return
        if isinstance(data, TradeBar):
            self.bar = data
        else:
            self._market_price = float(getattr(data, "price", data))

    # models ---------------------------------------------------------------
    def set_fee_model(self, model: Any) -> None:
        if not callable(getattr(model, "get_order_fee", None)):
            raise TypeError("fee model must define get_order_fee(parameters)")
        self.fee_model = model

    def set_slippage_model(self, model: Any) -> None:
        if not callable(getattr(model, "get_slippage_approximation", None)):
            raise TypeError("slippage model must define get_slippage_approximation(asset, order)")
        self.slippage_model = model

    def set_fill_model(self, model: Any) -> None:
        if not isinstance(model, FillModel) or any(
            name in type(model).__dict__ for name in ("fill", "market_fill", "limit_fill", "market_on_open_fill",
                                                        "market_on_close_fill", "stop_market_fill")
        ):
            raise NotSupportedByLocalRuntime("custom fill models (set_fill_model)")
        self.fill_model = model

    def set_leverage(self, leverage: float) -> None:
        self.leverage = float(leverage)

    def set_data_normalization_mode(self, mode: DataNormalizationMode) -> None:
        self._engine.set_normalization(self, DataNormalizationMode(mode))

    def __repr__(self) -> str:
        return str(self.symbol)


class Order(_Strict):
    def __init__(self, order_id: int, symbol: Symbol, quantity: float, order_type: OrderType, time: dt.datetime,
                 tag: str = "", limit_price: float | None = None) -> None:
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
        price = self.limit_price if self.type == OrderType.LIMIT and self.limit_price is not None else security.price
        return self.quantity * price

    def __repr__(self) -> str:
        return (f"OrderId: {self.id} {self.status.name.title()} {self.type.name.title().replace('_', '')} order "
                f"for {self.quantity:g} unit{'s' if abs(self.quantity) != 1 else ''} of {self.symbol}")


class OrderEvent(_Strict):
    def __init__(self, order: Order, utc_time: dt.datetime, fee: OrderFee, message: str = "",
                 status: OrderStatus | None = None, fill_price: float = 0.0, fill_quantity: float = 0.0) -> None:
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
        self.limit_price = order.limit_price if order.type == OrderType.LIMIT else None
        self.ticket: OrderTicket | None = None

    @property
    def id(self) -> int:
        return self.order_event_id

    @property
    def absolute_fill_quantity(self) -> float:
        return abs(self.fill_quantity)

    def __repr__(self) -> str:
        text = (f"Time: {self.utc_time:%m/%d/%Y %H:%M:%S} OrderID: {self.order_id} EventID: {self.order_event_id} "
                f"Symbol: {self.symbol} Status: {self.status.name.title().replace('_', '')} "
                f"Quantity: {self.quantity:g}")
        if self.fill_quantity:
            text += f" FillQuantity: {self.fill_quantity:g} FillPrice: {self.fill_price:g} USD"
        if self.order_fee.value.amount:
            text += f" OrderFee: {self.order_fee.value.amount:g} USD"
        if self.message:
            text += f" Message: {self.message}"
        return text


class OrderTicket(_Strict):
    def __init__(self, engine: Engine, order: Order | None, symbol: Symbol, quantity: float, order_type: OrderType,
                 tag: str = "", error: str = "") -> None:
        self._engine = engine
        self._order = order
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

    def cancel(self, tag: str | None = None) -> bool:
        if self._order is None:
            return False
        return self._engine.cancel_order(self._order.id, tag)

    def get(self, field: Any) -> Any:
        raise NotSupportedByLocalRuntime("OrderTicket.get")

    def __repr__(self) -> str:
        return f"OrderTicket {self.order_id} {self.symbol} {self.quantity:g} {self.status.name}"


class PortfolioTarget(_Strict):
    """``PortfolioTarget(symbol, quantity)``; in ``set_holdings([...])`` the quantity is a portfolio percentage."""

    def __init__(self, symbol: Any, quantity: float, tag: str = "") -> None:
        self.symbol = symbol
        self.quantity = float(quantity)
        self.tag = tag

    @staticmethod
    def percent(algorithm: Any, symbol: Any, percent: float, return_delta_quantity: bool = False,
                tag: str = "") -> PortfolioTarget | None:
        qty = algorithm._engine.percent_target_quantity(symbol, float(percent), delta=return_delta_quantity)
        if qty is None:
            return None
        return PortfolioTarget(algorithm._engine.to_symbol(symbol), qty, tag)

    def __repr__(self) -> str:
        return f"{self.symbol}: {self.quantity:g}"


class Cash:
    def __init__(self, symbol: str, amount: float) -> None:
        self.symbol = symbol
        self.amount = amount
        self.conversion_rate = 1.0

    @property
    def value_in_account_currency(self) -> float:
        return self.amount


class CashBook(dict):
    def __init__(self, portfolio: SecurityPortfolioManager) -> None:
        super().__init__()
        self._portfolio = portfolio

    def __getitem__(self, key: str) -> Cash:
        if key != "USD":
            raise NotSupportedByLocalRuntime(f"cash_book[{key!r}] (only USD)")
        return Cash("USD", self._portfolio.cash)

    def __contains__(self, key: object) -> bool:
        return key == "USD"

    def keys(self) -> Any:
        return ["USD"]

    @property
    def total_value_in_account_currency(self) -> float:
        return self._portfolio.cash

    @property
    def account_currency(self) -> str:
        return "USD"


class SecurityPortfolioManager(_Strict):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.cash = 100000.0
        self.total_fees = 0.0
        self._profit = 0.0
        self.cash_book = CashBook(self)

    def set_cash(self, cash: float) -> None:
        self.cash = float(cash)

    def _holding(self, key: Any) -> SecurityHolding:
        return self._engine.security(key).holdings

    def __getitem__(self, key: Any) -> SecurityHolding:
        return self._holding(key)

    def __contains__(self, key: Any) -> bool:
        return self._engine.has_security(key)

    def contains_key(self, key: Any) -> bool:
        return self._engine.has_security(key)

    def __iter__(self) -> Iterator[KeyValuePair]:
        return (KeyValuePair(s.symbol, s.holdings) for s in self._engine.securities_list())

    def keys(self) -> list[Symbol]:
        return [s.symbol for s in self._engine.securities_list()]

    def values(self) -> list[SecurityHolding]:
        return [s.holdings for s in self._engine.securities_list()]

    def items(self) -> list[tuple[Symbol, SecurityHolding]]:
        return [(s.symbol, s.holdings) for s in self._engine.securities_list()]

    def __len__(self) -> int:
        return len(self._engine.securities_list())

    @property
    def count(self) -> int:
        return len(self)

    @property
    def invested(self) -> bool:
        return any(s.holdings.quantity != 0 for s in self._engine.invested_securities())

    @property
    def total_holdings_value(self) -> float:
        return sum(abs(s.holdings.quantity * s.price) for s in self._engine.invested_securities())

    @property
    def total_absolute_holdings_cost(self) -> float:
        return sum(abs(s.holdings.holdings_cost) for s in self._engine.invested_securities())

    @property
    def total_unrealized_profit(self) -> float:
        return sum(s.holdings.unrealized_profit for s in self._engine.invested_securities())

    total_unrealised_profit = total_unrealized_profit

    @property
    def total_portfolio_value(self) -> float:
        return self._engine.total_portfolio_value()

    @property
    def total_profit(self) -> float:
        return self._profit

    @property
    def total_net_profit(self) -> float:
        return self._profit - self.total_fees

    @property
    def total_margin_used(self) -> float:
        return self._engine.total_margin_used()

    @property
    def margin_remaining(self) -> float:
        return self.total_portfolio_value - self.total_margin_used

    @property
    def total_portfolio_value_less_free_buffer(self) -> float:
        return self._engine.tpv_less_free_buffer()


class AlgorithmSettings(_Strict):
    def __init__(self) -> None:
        self.free_portfolio_value_percentage = 0.0025
        self.free_portfolio_value: float | None = None
        self.minimum_order_margin_portfolio_percentage = 0.001
        self.max_absolute_portfolio_target_percentage = 1_000_000_000.0
        self.min_absolute_portfolio_target_percentage = 0.0000000001
        self.liquidate_enabled = True
        self.daily_precise_end_time = True
        self.seed_initial_prices = False
        self.stale_price_time_span = dt.timedelta(hours=1)
        self.warmup_resolution: Resolution | None = None


def round_lots(quantity: float, lot: float) -> float:
    """Truncate toward zero to a multiple of the lot (1e-6-lot tolerance, as OrderSizing.AdjustByLotSize)."""
    lots = quantity / lot
    return math.trunc(lots + (1e-6 if lots > 0 else -1e-6)) * lot


def enum_name_of(value: Any) -> str:
    return value.name if hasattr(value, "name") else str(value)


CallbackT = Callable[..., Any]
