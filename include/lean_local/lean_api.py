"""The Lean names the local runtime implements, by the name an algorithm uses (``from AlgorithmImports import *``
and ``from QuantConnect.<namespace> import NAME``). Any other Lean name is a stand-in that refuses by name."""

from __future__ import annotations

from typing import Any


def names() -> dict[str, Any]:
    from include.lean_local import (
        brokerages,
        consolidators,
        enums,
        framework,
        framework_models,
        indicators,
        insights,
        lean_util,
        market_data,
        order_models,
        orders,
        risk_free,
        security_changes,
        seeding,
        settlement,
        shortable,
        universe_settings,
        universes,
    )
    from include.lean_local.algorithm import QCAlgorithm
    from include.lean_local.buying_power import ReservedBuyingPowerForPositionParameters
    from include.lean_local.object_store import ObjectStore
    from include.lean_local.portfolio import PortfolioTarget
    from include.lean_local.securities import Security
    from include.lean_local.symbols import SecurityIdentifier, Symbol

    out: dict[str, Any] = {
        "QCAlgorithm": QCAlgorithm,
        "ReservedBuyingPowerForPositionParameters": ReservedBuyingPowerForPositionParameters,
        "ObjectStore": ObjectStore,
        "PortfolioTarget": PortfolioTarget,
        "Security": Security,
        "SecurityIdentifier": SecurityIdentifier,
        "Symbol": Symbol,
    }
    modules: dict[Any, tuple[str, ...]] = {
        enums: (
            "AccountType",
            "AlgorithmMode",
            "Currencies",
            "DataNormalizationMode",
            "DayOfWeek",
            "DeploymentTarget",
            "DelistingType",
            "Market",
            "Resolution",
            "SecurityType",
            "SplitType",
        ),
        indicators: (
            "BollingerBands",
            "CompositeIndicator",
            "ConstantIndicator",
            "Delay",
            "ExponentialMovingAverage",
            "Identity",
            "IndicatorDataPoint",
            "IndicatorExtensions",
            "Momentum",
            "MomentumPercent",
            "MovingAverageConvergenceDivergence",
            "MovingAverageType",
            "RateOfChange",
            "RateOfChangePercent",
            "RollingWindow",
            "SimpleMovingAverage",
            "StandardDeviation",
            "Variance",
        ),
        market_data: ("Delisting", "Delistings", "Dividend", "Dividends", "Slice", "Split", "Splits", "TradeBar"),
        order_models: (
            "CashAmount",
            "ConstantFeeModel",
            "ConstantSlippageModel",
            "EquityFillModel",
            "FeeModel",
            "FillModel",
            "ImmediateFillModel",
            "InteractiveBrokersFeeModel",
            "NullSlippageModel",
            "OrderFee",
            "OrderFeeParameters",
        ),
        consolidators: ("ClassicRenkoConsolidator", "RangeBar", "RangeConsolidator", "RenkoBar"),
        insights: ("Insight", "InsightDirection", "InsightType"),
        lean_util: ("CircularQueue", "TimeSpan"),
        risk_free: ("FuncRiskFreeRateInterestRateModel",),
        security_changes: ("SecurityChanges", "SecurityChangesConstructor"),
        framework: ("GeneratedInsightsCollection", "InsightCollection", "InsightManager"),
        framework_models: (
            "AlphaModel",
            "CompositeAlphaModel",
            "CompositeRiskManagementModel",
            "CompositeUniverseSelectionModel",
            "ConstantAlphaModel",
            "CustomUniverseSelectionModel",
            "EqualWeightingPortfolioConstructionModel",
            "ExecutionModel",
            "ImmediateExecutionModel",
            "InsightWeightingPortfolioConstructionModel",
            "ManualUniverseSelectionModel",
            "MaximumDrawdownPercentPerSecurity",
            "MeanReversionPortfolioConstructionModel",
            "ReturnsSymbolData",
            "RiskParityPortfolioConstructionModel",
            "RiskParityPortfolioOptimizer",
            "NullAlphaModel",
            "NullExecutionModel",
            "NullPortfolioConstructionModel",
            "NullRiskManagementModel",
            "NullUniverseSelectionModel",
            "OrderSizing",
            "PortfolioBias",
            "PortfolioConstructionModel",
            "PortfolioTargetCollection",
            "RiskManagementModel",
            "UniverseSelectionModel",
        ),
        shortable: ("NullShortableProvider",),
        settlement: (
            "ApplyFundsSettlementModelParameters",
            "ImmediateSettlementModel",
            "ScanSettlementModelParameters",
        ),
        brokerages: ("BrokerageMessageEvent", "BrokerageMessageType", "DefaultBrokerageModel"),
        universe_settings: (
            "CorporateFactorProvider",
            "DefaultDataProvider",
            "LocalDiskFactorFileProvider",
            "LocalDiskMapFileProvider",
            "UniverseSettings",
        ),
        seeding: ("CompositeSecurityInitializer", "FuncSecurityInitializer", "FuncSecuritySeeder"),
        universes: (
            "CoarseFundamental",
            "Fundamental",
            "FundamentalUniverse",
            "FundamentalUniverseSelectionModel",
            "Universe",
        ),
        orders: (
            "CancelOrderRequest",
            "Order",
            "OrderDirection",
            "OrderEvent",
            "OrderField",
            "OrderResponse",
            "OrderStatus",
            "OrderTicket",
            "OrderType",
            "SubmitOrderRequest",
            "UpdateOrderFields",
            "UpdateOrderRequest",
        ),
    }
    for module, exported in modules.items():
        out.update({name: getattr(module, name) for name in exported})
    return out
