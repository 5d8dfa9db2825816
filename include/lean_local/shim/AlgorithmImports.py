"""``from AlgorithmImports import *`` for the local runtime (the supported subset of Lean's names)."""

# ruff: noqa: F401
import importlib as _importlib
import json
import math
import types as _types
from datetime import date, datetime, time, timedelta
from typing import Any as _Any

from include.lean_local.algorithm import QCAlgorithm
from include.lean_local.enums import (
    AccountType,
    DataNormalizationMode,
    DelistingType,
    Market,
    Resolution,
    SecurityType,
    SplitType,
)
from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.indicators import (
    Delay,
    ExponentialMovingAverage,
    Identity,
    IndicatorDataPoint,
    IndicatorExtensions,
    Momentum,
    MomentumPercent,
    MovingAverageConvergenceDivergence,
    MovingAverageType,
    RateOfChange,
    RateOfChangePercent,
    SimpleMovingAverage,
)
from include.lean_local.market_data import Delisting, Delistings, Dividend, Dividends, Slice, Split, Splits, TradeBar
from include.lean_local.object_store import ObjectStore
from include.lean_local.order_models import (
    CashAmount,
    ConstantFeeModel,
    ConstantSlippageModel,
    EquityFillModel,
    FeeModel,
    FillModel,
    ImmediateFillModel,
    InteractiveBrokersFeeModel,
    NullSlippageModel,
    OrderFee,
    OrderFeeParameters,
)
from include.lean_local.orders import Order, OrderDirection, OrderEvent, OrderStatus, OrderTicket, OrderType
from include.lean_local.portfolio import PortfolioTarget
from include.lean_local.securities import Security
from include.lean_local.symbols import SecurityIdentifier, Symbol


class _ModuleOnFirstUse(_types.ModuleType):
    """Lean's AlgorithmImports gives ``np`` and ``pd``; importing pandas costs about 0.3 s, which an algorithm
    that never uses it should not pay. This stand-in imports the module on its first attribute access."""

    def __getattr__(self, name: str) -> _Any:
        module = _importlib.import_module(self.__name__)
        self.__dict__.update(vars(module))
        return getattr(module, name)


np = _ModuleOnFirstUse("numpy")
pd = _ModuleOnFirstUse("pandas")

__all__ = [name for name in dir() if not name.startswith("_")]
