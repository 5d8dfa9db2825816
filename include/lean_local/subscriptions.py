"""``algorithm.subscription_manager`` (Lean's ``SubscriptionManager``): the algorithm's data subscriptions, one
``SubscriptionDataConfig`` per security (the runtime subscribes each security's daily trade bars only; Lean's
internal feeds, quotes, consolidators and custom data are outside the runtime's subset)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.lean_local.enums import DataNormalizationMode, Resolution, SecurityType
from include.lean_local.errors import SupportedSubset
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


class SubscriptionManager(SupportedSubset):
    def __init__(self, securities: SecurityRegistry) -> None:
        self._securities = securities
        self._service = SubscriptionDataConfigService(securities)

    @property
    def subscription_data_config_service(self) -> SubscriptionDataConfigService:
        return self._service

    @property
    def subscriptions(self) -> list[SubscriptionDataConfig]:
        return self._service.get_subscription_data_configs()

    @property
    def count(self) -> int:
        return len(self._securities.as_list())
