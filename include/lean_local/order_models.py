"""Lean's fee, slippage and fill models (``QuantConnect.Orders.Fees``, ``.Slippage``, ``.Fills``), subclassable
from Python, and ``CashAmount`` (the fee's money)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from include.lean_local.orders import Order
    from include.lean_local.securities import Security


class CashAmount:
    __slots__ = ("amount", "currency")

    def __init__(self, amount: float, currency: str = "USD") -> None:
        self.amount = float(amount)
        self.currency = currency

    def __repr__(self) -> str:
        return f"{self.amount} {self.currency}"


class OrderFee:
    ZERO: ClassVar[OrderFee]  # no fee, in Lean's placeholder currency "QCC" (set below)

    def __init__(self, value: Any = None, *, order_fee: Any = None) -> None:
        """Lean's ``OrderFee(value)`` (a CashAmount) or ``OrderFee(order_fee)`` (a copy)."""
        source = order_fee if order_fee is not None else value
        if isinstance(source, OrderFee):
            source = source.value
        if source is None:
            raise TypeError("OrderFee() needs a value")
        self.value: CashAmount = source

    def __repr__(self) -> str:
        return f"{self.value.amount} {self.value.currency}"


OrderFee.ZERO = OrderFee(CashAmount(0.0, "QCC"))


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


def order_fee(security: Security, order: Order) -> OrderFee:
    """The security's fee model applied to ``order``; a fee model may return any object with ``.value``."""
    fee = security.fee_model.get_order_fee(OrderFeeParameters(security, order))
    return fee if isinstance(fee, OrderFee) else OrderFee(fee.value)
