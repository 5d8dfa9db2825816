"""Lean's securities (``QuantConnect.Securities``): a security, its holding and exchange, and the algorithm's
securities by Symbol and ticker."""

from __future__ import annotations

import datetime as dt
from collections.abc import ItemsView, Iterator, ValuesView
from typing import TYPE_CHECKING, Any, Protocol

from include.lean_local.enums import DataNormalizationMode, Resolution, SecurityType
from include.lean_local.errors import NotSupportedByLocalRuntime, SupportedSubset
from include.lean_local.market_data import KeyValuePair, TradeBar
from include.lean_local.order_models import EquityFillModel, FillModel, InteractiveBrokersFeeModel, NullSlippageModel
from include.lean_local.settlement import ImmediateSettlementModel
from include.lean_local.settlement import check_model as check_settlement_model
from include.lean_local.shortable import NullShortableProvider
from include.lean_local.symbols import Symbol

if TYPE_CHECKING:
    from include.lean_local.data import DataProvider

SUPPORTED_NORMALIZATION = (
    DataNormalizationMode.RAW,
    DataNormalizationMode.ADJUSTED,
    DataNormalizationMode.SPLIT_ADJUSTED,
)


class SecurityHost(Protocol):
    """What a security asks of the engine."""

    def exchange_open(self) -> bool: ...

    def local_time(self) -> dt.datetime: ...

    def set_normalization(self, security: Security, mode: DataNormalizationMode) -> None: ...

    def holdings_changed(self, security: Security) -> None: ...


def supported_normalization(mode: Any) -> DataNormalizationMode:
    value = DataNormalizationMode(int(mode))
    if value not in SUPPORTED_NORMALIZATION:
        raise NotSupportedByLocalRuntime(f"DataNormalizationMode.{value.name}")
    return value


class SymbolProperties:
    def __init__(self, lot_size: float = 1.0, minimum_price_variation: float = 0.01) -> None:
        self.lot_size = lot_size
        self.minimum_price_variation = minimum_price_variation
        self.contract_multiplier = 1.0
        self.quote_currency = "USD"


class SecurityHolding(SupportedSubset):
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
        self._security._host.holdings_changed(self._security)

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


class _Exchange(SupportedSubset):
    def __init__(self, security: Security) -> None:
        self._security = security

    @property
    def exchange_open(self) -> bool:
        return self._security._host.exchange_open()

    @property
    def time_zone(self) -> str:
        return "America/New_York"


class Security(SupportedSubset):
    def __init__(self, host: SecurityHost, symbol: Symbol, resolution: Resolution, leverage: float = 2.0) -> None:
        self._host = host
        self.symbol = symbol
        self.resolution = resolution
        self.holdings = SecurityHolding(self)
        self.symbol_properties = SymbolProperties()
        self.fee_model: Any = InteractiveBrokersFeeModel()
        self.slippage_model: Any = NullSlippageModel()
        self.fill_model: Any = EquityFillModel()
        self.settlement_model: Any = ImmediateSettlementModel()
        self.shortable_provider: Any = NullShortableProvider()
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
    def buying_power_model(self) -> Any:
        from include.lean_local.buying_power import SecurityBuyingPowerModel

        return SecurityBuyingPowerModel()

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
        return self._host.local_time()

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
    def set_fee_model(self, feel_model: Any) -> None:  # sic: Lean's parameter name
        model = feel_model
        if not callable(getattr(model, "get_order_fee", None)):
            raise TypeError("fee model must define get_order_fee(parameters)")
        self.fee_model = model

    def set_slippage_model(self, slippage_model: Any) -> None:
        model = slippage_model
        if not callable(getattr(model, "get_slippage_approximation", None)):
            raise TypeError("slippage model must define get_slippage_approximation(asset, order)")
        self.slippage_model = model

    def set_settlement_model(self, settlement_model: Any) -> None:
        """Lean's ``SetSettlementModel``: only an ImmediateSettlementModel (settlement.py)."""
        check_settlement_model(settlement_model)
        self.settlement_model = settlement_model

    def set_fill_model(self, fill_model: Any) -> None:
        model = fill_model
        if not isinstance(model, FillModel) or any(
            name in type(model).__dict__
            for name in (
                "fill",
                "market_fill",
                "limit_fill",
                "market_on_open_fill",
                "market_on_close_fill",
                "stop_market_fill",
            )
        ):
            raise NotSupportedByLocalRuntime("custom fill models (set_fill_model)")
        self.fill_model = model

    def set_shortable_provider(self, py_object: Any = None, *, shortable_provider: Any = None) -> None:
        """Lean's ``SetShortableProvider(shortable_provider)`` (or a Python object with its methods)."""
        provider = shortable_provider if py_object is None else py_object
        if not callable(getattr(provider, "shortable_quantity", None)):
            raise TypeError("shortable provider must define shortable_quantity(symbol, local_time)")
        self.shortable_provider = provider

    def set_leverage(self, leverage: float) -> None:
        self.leverage = float(leverage)

    def set_data_normalization_mode(self, mode: DataNormalizationMode) -> None:
        self._host.set_normalization(self, DataNormalizationMode(mode))

    def __repr__(self) -> str:
        return str(self.symbol)


class SecurityRegistry:
    """The algorithm's securities by Symbol and by ticker, in the order they were added."""

    def __init__(self, provider: DataProvider) -> None:
        self._provider = provider
        self._by_symbol: dict[Symbol, Security] = {}
        self._by_ticker: dict[str, Security] = {}

    def add(self, security: Security) -> None:
        self._by_symbol[security.symbol] = security
        self._by_ticker[security.symbol.value] = security

    def get(self, symbol: Symbol) -> Security | None:
        return self._by_symbol.get(symbol)

    def to_symbol(self, key: Any) -> Symbol:
        if isinstance(key, Symbol):
            return key
        if isinstance(key, str):
            sec = self._by_ticker.get(key.upper())
            if sec is not None:
                return sec.symbol
            return self._provider.symbol_for(key)
        raise TypeError(f"expected a Symbol or ticker string, got {type(key).__name__}")

    def security(self, key: Any) -> Security:
        if isinstance(key, Symbol):
            sec = self._by_symbol.get(key)
        elif isinstance(key, str):
            sec = self._by_ticker.get(key.upper())
        else:
            sec = None
        if sec is None:
            raise KeyError(
                f"This asset symbol ({key}) was not found in your security list. Please add this "
                "security or check it exists before using it with 'Securities.ContainsKey(\"{key}\")'"
            )
        return sec

    def contains(self, key: Any) -> bool:
        if isinstance(key, Symbol):
            return key in self._by_symbol
        return isinstance(key, str) and key.upper() in self._by_ticker

    def values(self) -> ValuesView[Security]:
        return self._by_symbol.values()

    def items(self) -> ItemsView[Symbol, Security]:
        return self._by_symbol.items()

    def __len__(self) -> int:
        return len(self._by_symbol)

    def as_list(self) -> list[Security]:
        return list(self._by_symbol.values())


class SecurityManager:
    """``algorithm.securities``: the securities by Symbol or ticker (Lean's SecurityManager)."""

    def __init__(self, registry: SecurityRegistry) -> None:
        self._registry = registry

    def __getitem__(self, key: Any) -> Security:
        return self._registry.security(key)

    def __contains__(self, key: Any) -> bool:
        return self._registry.contains(key)

    def contains_key(self, symbol: Any = None, *, key: Any = None) -> bool:
        """``contains_key(symbol)``, or ``key=`` (the name of Lean's dictionary base)."""
        return (symbol if key is None else key) in self

    def __iter__(self) -> Iterator[KeyValuePair]:
        return (KeyValuePair(s.symbol, s) for s in self._registry.as_list())

    def __len__(self) -> int:
        return len(self._registry.as_list())

    @property
    def count(self) -> int:
        return len(self._registry.as_list())

    def keys(self) -> list[Symbol]:
        return [s.symbol for s in self._registry.as_list()]

    def values(self) -> list[Security]:
        return self._registry.as_list()

    def items(self) -> list[tuple[Symbol, Security]]:
        return [(s.symbol, s) for s in self._registry.as_list()]

    @property
    def total(self) -> list[Security]:
        return self.values()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"securities.{name}")
