"""``algorithm.subscription_manager`` (Lean's ``SubscriptionManager``): the algorithm's data subscriptions, one
``SubscriptionDataConfig`` per security (the runtime subscribes each security's daily trade bars only; Lean's
internal feeds, quotes, consolidators and custom data are outside the runtime's subset)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from include.lean_local.enums import DataNormalizationMode, Resolution, SecurityType
from include.lean_local.errors import NotSupportedByLocalRuntime, SupportedSubset
from include.lean_local.market_data import TradeBar
from include.lean_local.symbols import Symbol

if TYPE_CHECKING:
    from include.lean_local.securities import Security, SecurityRegistry


class SubscriptionDataConfig(SupportedSubset):
    """A security's subscription: its symbol, daily trade bars, its normalization mode (read from the security,
    as it may change), regular market hours."""

    def __init__(self, security: Security) -> None:
        self._security = security
        self.symbol: Symbol = security.symbol
        self.type = TradeBar
        self.security_type = SecurityType.EQUITY
        self.extended_market_hours = False
        self.is_internal_feed = False
        self.is_custom_data = False

    @property
    def resolution(self) -> Resolution:
        return self._security.resolution

    @property
    def data_normalization_mode(self) -> DataNormalizationMode:
        return self._security.data_normalization_mode

    def __repr__(self) -> str:
        """Lean's ``symbol,#depth,mapped symbol,resolution,type,tick type,normalization,mapping``."""
        mode = self.data_normalization_mode.name.title().replace("_", "")
        value = self.symbol.value
        return f"{value},#0,{value},{self.resolution.name.title()},TradeBar,Trade,{mode},OpenInterest"


class SubscriptionDataConfigService(SupportedSubset):
    """``subscription_manager.subscription_data_config_service`` (Lean's ``ISubscriptionDataConfigService``)."""

    def __init__(self, securities: SecurityRegistry) -> None:
        self._securities = securities

    def get_subscription_data_configs(
        self, symbol: Any = None, include_internal_configs: bool = False
    ) -> list[SubscriptionDataConfig]:
        """The configs of ``symbol`` (none if not subscribed), or of every security; the runtime has no internal
        feeds, so ``include_internal_configs`` adds none."""
        if symbol is None:
            return [SubscriptionDataConfig(s) for s in self._securities.as_list()]
        sym = symbol.symbol if hasattr(symbol, "holdings") else self._securities.to_symbol(symbol)
        security = self._securities.get(sym)
        return [] if security is None else [SubscriptionDataConfig(security)]


class ConsolidatorHost(Protocol):
    """Where consolidators are fed (the data feed)."""

    def add_consolidator(self, symbol: Symbol, consolidator: Any) -> None: ...

    def remove_consolidator(self, symbol: Symbol, consolidator: Any) -> None: ...


class SubscriptionManager(SupportedSubset):
    def __init__(self, securities: SecurityRegistry, feed: ConsolidatorHost | None = None) -> None:
        self._securities = securities
        self._service = SubscriptionDataConfigService(securities)
        self._feed = feed

    def add_consolidator(
        self, symbol: Any, consolidator: Any = None, tick_type: Any = None, *, py_consolidator: Any = None
    ) -> None:
        """Lean's ``AddConsolidator(symbol, consolidator)``: the consolidator gets each bar of the security."""
        consolidator = py_consolidator if consolidator is None else consolidator
        if tick_type is not None:
            raise NotSupportedByLocalRuntime("SubscriptionManager.add_consolidator with a tick_type")
        if self._feed is None or not callable(getattr(consolidator, "update", None)):
            raise NotSupportedByLocalRuntime(f"SubscriptionManager.add_consolidator of {type(consolidator).__name__}")
        self._feed.add_consolidator(self._securities.to_symbol(symbol), consolidator)

    def remove_consolidator(self, symbol: Any, consolidator: Any = None, *, py_consolidator: Any = None) -> None:
        consolidator = py_consolidator if consolidator is None else consolidator
        if self._feed is not None:
            self._feed.remove_consolidator(self._securities.to_symbol(symbol), consolidator)

    @property
    def subscription_data_config_service(self) -> SubscriptionDataConfigService:
        return self._service

    @property
    def subscriptions(self) -> list[SubscriptionDataConfig]:
        return self._service.get_subscription_data_configs()

    @property
    def count(self) -> int:
        return len(self._securities.as_list())
