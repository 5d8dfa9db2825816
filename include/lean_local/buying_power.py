"""Lean's ``SecurityMarginModel`` for equities: whether an order has the buying power, and the quantity that
brings a security to a target fraction of the portfolio (``set_holdings``, ``PortfolioTarget.percent``)."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any, Protocol

from include.lean_local.order_models import order_fee
from include.lean_local.orders import Order, OrderType, normalize_decimal, smart_rounding

if TYPE_CHECKING:
    from include.lean_local.algorithm import QCAlgorithm
    from include.lean_local.portfolio import PortfolioLedger
    from include.lean_local.securities import Security, SecurityRegistry

NO_PRICE = (
    "{symbol}: The security does not have an accurate price as it has not yet received a bar of data. "
    "Before placing a trade (or using SetHoldings) warm up your algorithm with SetWarmup, or use "
    "slice.Contains(symbol) to confirm the Slice object has price before using the data. Data does not "
    "necessarily all arrive at the same time so your algorithm should confirm the data is ready before "
    "using it. In live trading this can mean you do not have an active subscription to the asset class "
    "you're trying to trade. If using custom data make sure you've set the 'Value' property."
)


class UtcClock(Protocol):
    now_utc: dt.datetime


class SecurityMarginModel:
    def __init__(
        self, ledger: PortfolioLedger, securities: SecurityRegistry, algorithm: QCAlgorithm, clock: UtcClock
    ) -> None:
        self._ledger = ledger
        self._securities = securities
        self._algorithm = algorithm
        self._clock = clock
        self._warned_minimum_order = False

    def order_error(self, order: Order, security: Security, filled_quantity: float) -> str:
        """HasSufficientBuyingPowerForOrder: '' when the unfilled part of the order has the margin, else Lean's
        message."""
        qty = order.quantity
        held = security.holdings.quantity
        if qty == 0 or (held * qty < 0 and abs(held) >= abs(qty)):
            return ""
        tpv = self._ledger.total_portfolio_value()
        free = tpv - self._ledger.total_margin_used()
        req = 1.0 / security.leverage
        if (held > 0 and qty < 0) or (held < 0 and qty > 0):
            free += 2 * abs(held) * security.price * req
        free = max(free, 0.0)
        order_margin = qty * security.price * req
        fee = order_fee(security, order).value.amount
        initial = order_margin + math.copysign(fee, order_margin)
        unfilled = (abs(qty) - abs(filled_quantity)) / abs(qty)
        remainder = unfilled * initial
        if abs(remainder) > free:
            value = order.get_value(security)
            return (
                f"Order Error: ids: [{order.id}], Insufficient buying power to complete orders "
                f"(Value:[{smart_rounding(value)}]), Reason: Id: {order.id}, Initial Margin: "
                f"{normalize_decimal(round(remainder, 10))}, Free Margin: {normalize_decimal(round(free, 10))}."
            )
        return ""

    def target_quantity(self, symbol: Any, percent: float, delta: bool = True) -> float | None:
        """PortfolioTarget.Percent: the (delta) quantity for a target portfolio fraction, or None on error."""
        security = self._target_security(symbol, percent)
        if security is None:
            return None
        settings = self._algorithm.settings
        price = security.price
        tpv = self._ledger.total_portfolio_value()
        adjusted = percent * self._ledger.total_portfolio_value_less_free_buffer(settings) / tpv
        target = adjusted / security.leverage
        margin_req = 1.0 / security.leverage
        qty0 = security.holdings.quantity
        target_margin = target * tpv
        if target_margin == 0:
            result = -qty0
        else:
            current_margin = qty0 * price * margin_req
            if abs(target_margin - current_margin) < tpv * settings.minimum_order_margin_portfolio_percentage:
                if not self._warned_minimum_order:
                    self._warned_minimum_order = True
                    self._algorithm.debug(
                        "Warning: Portfolio rebalance result ignored as it resulted in a single "
                        "share trade recommendation which can generate high fees. To disable "
                        "minimum order size checks please set "
                        "Settings.MinimumOrderMarginPortfolioPercentage = 0."
                    )
                return 0.0 if delta else qty0
            result = self._order_size(security, price, target, tpv)
            if result == 0:
                return 0.0 if delta else qty0
        return result if delta else result + qty0

    def _target_security(self, symbol: Any, percent: float) -> Security | None:
        """The security to size, or None (with Lean's error in the log) for an out-of-range target, an unknown
        security or one without a price yet."""
        algorithm = self._algorithm
        settings = algorithm.settings
        ap = abs(percent)
        if ap > settings.max_absolute_portfolio_target_percentage or (
            ap != 0 and ap < settings.min_absolute_portfolio_target_percentage
        ):
            algorithm.error(
                f"The portfolio target percent: {percent}, does not comply with the current "
                f"'Algorithm.Settings' 'MaxAbsolutePortfolioTargetPercentage': "
                f"{settings.max_absolute_portfolio_target_percentage} or "
                f"'MinAbsolutePortfolioTargetPercentage': "
                f"{settings.min_absolute_portfolio_target_percentage}. Skipping"
            )
            return None
        sym = self._securities.to_symbol(symbol)
        if not self._securities.contains(sym):
            algorithm.error(f"{sym} not found in portfolio. Request this data when initializing the algorithm.")
            return None
        security = self._securities.security(sym)
        if security.price == 0:
            algorithm.error(NO_PRICE.format(symbol=sym))
            return None
        return security

    def _order_size(self, security: Security, price: float, target: float, tpv: float) -> float:
        """GetMaximumOrderQuantityForTargetBuyingPower: whole lots toward the target margin, shrunk until the
        order's fee fits too; 0 when no lot fits."""
        margin_req = 1.0 / security.leverage
        lot = security.symbol_properties.lot_size
        qty0 = security.holdings.quantity
        target_margin = target * tpv
        unit_margin = price * margin_req
        last = 0.0
        while True:
            size = -qty0 + target_margin / unit_margin
            size = (math.floor if target_margin >= 0 else math.ceil)(size / lot) * lot
            final_margin = (size + qty0) * price * margin_req
            while (target_margin < 0 and final_margin - target_margin < 0) or (
                target_margin > 0 and final_margin - target_margin > 0
            ):
                size += lot if target_margin < 0 else -lot
                final_margin = (size + qty0) * price * margin_req
            if size == 0:
                return 0.0
            probe = Order(0, security.symbol, size, OrderType.MARKET, self._clock.now_utc)
            fee = order_fee(security, probe).value.amount
            target_margin = (tpv - fee) * target
            if last == size:
                raise ValueError(
                    f"GetMaximumOrderQuantityForTargetBuyingPower failed to converge for {security.symbol}"
                )
            last = size
            if abs(final_margin) <= abs(target_margin):
                return size


class ReservedBuyingPowerForPositionParameters:
    """Lean's ``ReservedBuyingPowerForPositionParameters(security)``."""

    def __init__(self, security: Any) -> None:
        self.security = security


class ReservedBuyingPowerForPosition:
    def __init__(self, reserved_buying_power_for_position: float) -> None:
        self.absolute_used_buying_power = abs(reserved_buying_power_for_position)


class SecurityBuyingPowerModel:
    """A security's ``buying_power_model`` (Lean's ``SecurityMarginModel`` of an equity): the members an
    algorithm reads; orders are checked by the engine's :class:`SecurityMarginModel`."""

    def get_leverage(self, security: Any) -> float:
        return float(security.leverage)

    def get_reserved_buying_power_for_position(
        self, parameters: ReservedBuyingPowerForPositionParameters
    ) -> ReservedBuyingPowerForPosition:
        """The maintenance margin of the current holdings: |holdings value| / leverage."""
        security = parameters.security
        return ReservedBuyingPowerForPosition(security.holdings.absolute_holdings_value / float(security.leverage))
