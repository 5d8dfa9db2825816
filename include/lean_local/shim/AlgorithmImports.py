"""``from AlgorithmImports import *`` for the local runtime (the supported subset of Lean's names)."""

# ruff: noqa: F401
import json
import math
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd

from include.lean_local.algorithm import ObjectStore, QCAlgorithm
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
    RateOfChange,
    RateOfChangePercent,
    SimpleMovingAverage,
)
from include.lean_local.model import (
    AccountType,
    CashAmount,
    ConstantFeeModel,
    ConstantSlippageModel,
    DataNormalizationMode,
    Delisting,
    Delistings,
    DelistingType,
    Dividend,
    Dividends,
    EquityFillModel,
    FeeModel,
    FillModel,
    ImmediateFillModel,
    InteractiveBrokersFeeModel,
    Market,
    MovingAverageType,
    NullSlippageModel,
    Order,
    OrderDirection,
    OrderEvent,
    OrderFee,
    OrderFeeParameters,
    OrderStatus,
    OrderTicket,
    OrderType,
    PortfolioTarget,
    Resolution,
    Security,
    SecurityType,
    Slice,
    Split,
    Splits,
    SplitType,
    TradeBar,
)
from include.lean_local.symbols import SecurityIdentifier, Symbol

__all__ = [name for name in dir() if not name.startswith("_")]
