"""Lean's brokerage model, the part a daily US-equity backtest reads (``Common/Brokerages``).

* ``DefaultBrokerageModel`` is the model every algorithm runs under unless it calls ``set_brokerage_model``; the
  runtime's security defaults (InteractiveBrokersFeeModel, EquityFillModel, no slippage, the margin model with
  leverage 2, SPY benchmark) are its ``Get*Model`` answers for a US equity. A Python subclass may override
  ``can_submit_order`` and ``can_update_order`` (BrokerageTransactionHandler.HandleSubmitOrderRequest /
  HandleUpdateOrderRequest ask them) and ``default_markets``; overriding any other of its members would change
  what the runtime's defaults assume, so such a subclass is refused by name.
* ``BrokerageMessageEvent`` / ``BrokerageMessageType``: the message a refusal carries
  (``"{type} - Code: {code} - {message}"``).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from include.lean_local.enums import AccountType, Market, SecurityType
from include.lean_local.errors import NotSupportedByLocalRuntime


class BrokerageMessageType(IntEnum):
    INFORMATION = 0
    WARNING = 1
    ERROR = 2
    RECONNECT = 3
    DISCONNECT = 4
    ACTION_REQUIRED = 5

    def __str__(self) -> str:
        # .NET prints the enum member's name in PascalCase
        return "".join(part.capitalize() for part in self.name.split("_"))


class BrokerageMessageEvent:
    """``QuantConnect.Brokerages.BrokerageMessageEvent(type, code, message)``."""

    def __init__(self, type: BrokerageMessageType, code: Any, message: str) -> None:
        self.type = BrokerageMessageType(type)
        self.code = str(code)
        self.message = message

    def __str__(self) -> str:
        return f"{self.type!s} - Code: {self.code} - {self.message}"

    __repr__ = __str__


# DefaultBrokerageModel.DefaultMarketMap, for the security types the runtime knows
DEFAULT_MARKET_MAP: dict[Any, str] = {SecurityType.BASE: Market.USA, SecurityType.EQUITY: Market.USA}

# the members a Python subclass may override (the rest are the runtime's defaults)
OVERRIDABLE = frozenset({"can_submit_order", "can_update_order", "default_markets"})
_MODEL_MEMBERS = (
    "account_type",
    "required_free_buying_power_percent",
    "can_execute_order",
    "apply_split",
    "get_leverage",
    "get_benchmark",
    "get_fill_model",
    "get_fee_model",
    "get_slippage_model",
    "get_settlement_model",
    "get_buying_power_model",
    "get_shortable_provider",
    "get_margin_interest_rate_model",
)


class DefaultBrokerageModel:
    """``QuantConnect.Brokerages.DefaultBrokerageModel(account_type=AccountType.MARGIN)``."""

    default_markets: Any = DEFAULT_MARKET_MAP

    def __init__(self, account_type: AccountType = AccountType.MARGIN) -> None:
        self._account_type = AccountType(account_type)

    @property
    def account_type(self) -> AccountType:
        return self._account_type

    @property
    def required_free_buying_power_percent(self) -> float:
        return 0.0

    def can_submit_order(self, security: Any, order: Any, message: Any = None) -> Any:
        """DefaultBrokerageModel.CanSubmitOrder: any equity order (only futures' market-on-open orders are
        refused). Returns ``(True, None)``, Python.NET's form of the ``out`` message."""
        return True, None

    def can_update_order(self, security: Any, order: Any, request: Any, message: Any = None) -> Any:
        return True, None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"DefaultBrokerageModel.{name}")


def check_model(model: Any) -> None:
    """``set_brokerage_model(model)``: a DefaultBrokerageModel (or a Python subclass overriding only
    ``can_submit_order``/``can_update_order``/``default_markets``) on a margin account; anything else refused."""
    if not isinstance(model, DefaultBrokerageModel):
        raise NotSupportedByLocalRuntime(f"set_brokerage_model({type(model).__name__}) (only DefaultBrokerageModel)")
    for klass in type(model).__mro__:
        if klass is DefaultBrokerageModel or klass is object:
            break
        for name in vars(klass):
            if name in _MODEL_MEMBERS or (name.startswith(("get_", "can_")) and name not in OVERRIDABLE):
                raise NotSupportedByLocalRuntime(f"DefaultBrokerageModel.{name} overridden by {klass.__name__}")
    if model.account_type != AccountType.MARGIN:
        raise NotSupportedByLocalRuntime("DefaultBrokerageModel with AccountType.CASH (a cash account)")


def ask(answer: Any) -> tuple[bool, Any]:
    """BrokerageModelPythonWrapper: a Python override returns ``(allowed, message)`` or just ``allowed``."""
    if isinstance(answer, tuple):
        allowed, message = answer[0], answer[1] if len(answer) > 1 else None
    else:
        allowed, message = answer, None
    return bool(allowed), message
