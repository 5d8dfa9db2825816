"""Every public method the local runtime's shim provides takes Lean's parameter names and defaults.

The source of truth is the pinned ``quantconnect-stubs`` (Lean's Python API as generated from its C#), read
with ``ast`` (never imported). For each shim class with a stub counterpart, each public method the stub class
(or one of its stub bases) also has is compared with every one of the stub's overloads: the overload's calls,
calling convention by calling convention (the first k of its arguments positional, the rest by keyword,
for every k and for every prefix of its optional arguments, and each optional argument alone by keyword),
must bind to the shim's signature, and where the stub gives a default the shim's parameter of that name has
one too, equal to it unless the stub writes ``= ...``. One shim function may serve several overloads (a
union): ``set_warm_up(time_span)`` and ``set_warm_up(bar_count)`` bind to one Python function whose first
parameter is ``time_span`` and which also takes ``bar_count`` by keyword. A shim method may not hide its
names behind ``**kwargs`` (it would accept any keyword, so no drift would show) unless listed below.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from include.lean_local import (
    brokerages,
    consolidators,
    framework,
    framework_models,
    indicators,
    insights,
    lean_util,
    market_data,
    order_models,
    orders,
    portfolio,
    risk_free,
    scheduling,
    securities,
    settlement,
    shortable,
    universes,
)
from include.lean_local.algorithm import QCAlgorithm
from include.lean_local.object_store import ObjectStore
from include.lean_local.settings import AlgorithmSettings
from include.lean_local.subscriptions import SubscriptionDataConfigService, SubscriptionManager
from include.lean_local.symbols import SecurityIdentifier, Symbol
from include.lean_local.transactions import SecurityTransactionManager

STUBS = Path(str(metadata.distribution("quantconnect-stubs").locate_file("QuantConnect"))).parent

# shim class -> its stub class (module path . class name)
SHIM_CLASSES: dict[type, str] = {
    QCAlgorithm: "QuantConnect.Algorithm.QCAlgorithm",
    ObjectStore: "QuantConnect.Storage.ObjectStore",
    AlgorithmSettings: "QuantConnect.AlgorithmSettings",
    Symbol: "QuantConnect.Symbol",
    SecurityIdentifier: "QuantConnect.SecurityIdentifier",
    SecurityTransactionManager: "QuantConnect.Securities.SecurityTransactionManager",
    SubscriptionManager: "QuantConnect.Data.SubscriptionManager",
    SubscriptionDataConfigService: "QuantConnect.Interfaces.ISubscriptionDataConfigService",
    portfolio.SecurityPortfolioManager: "QuantConnect.Securities.SecurityPortfolioManager",
    portfolio.PortfolioTarget: "QuantConnect.Algorithm.Framework.Portfolio.PortfolioTarget",
    portfolio.Cash: "QuantConnect.Securities.Cash",
    portfolio.CashBook: "QuantConnect.Securities.CashBook",
    securities.Security: "QuantConnect.Securities.Security",
    securities.SecurityHolding: "QuantConnect.Securities.SecurityHolding",
    securities.SecurityManager: "QuantConnect.Securities.SecurityManager",
    securities.SymbolProperties: "QuantConnect.Securities.SymbolProperties",
    securities._Exchange: "QuantConnect.Securities.SecurityExchange",
    scheduling.ScheduleManager: "QuantConnect.Scheduling.ScheduleManager",
    scheduling.DateRules: "QuantConnect.Scheduling.DateRules",
    scheduling.TimeRules: "QuantConnect.Scheduling.TimeRules",
    scheduling.ScheduledEvent: "QuantConnect.Scheduling.ScheduledEvent",
    orders.Order: "QuantConnect.Orders.Order",
    orders.OrderEvent: "QuantConnect.Orders.OrderEvent",
    orders.OrderTicket: "QuantConnect.Orders.OrderTicket",
    market_data.TradeBar: "QuantConnect.Data.Market.TradeBar",
    market_data.Delisting: "QuantConnect.Data.Market.Delisting",
    market_data.Dividend: "QuantConnect.Data.Market.Dividend",
    market_data.Split: "QuantConnect.Data.Market.Split",
    market_data.Dividends: "QuantConnect.Data.Market.Dividends",
    market_data.Splits: "QuantConnect.Data.Market.Splits",
    market_data.Delistings: "QuantConnect.Data.Market.Delistings",
    market_data.Slice: "QuantConnect.Data.Slice",
    universes.UniverseDefinitions: "QuantConnect.Algorithm.UniverseDefinitions",
    universes.Fundamental: "QuantConnect.Data.Fundamental.Fundamental",
    order_models.CashAmount: "QuantConnect.Securities.CashAmount",
    brokerages.DefaultBrokerageModel: "QuantConnect.Brokerages.DefaultBrokerageModel",
    brokerages.BrokerageMessageEvent: "QuantConnect.Brokerages.BrokerageMessageEvent",
    settlement.ImmediateSettlementModel: "QuantConnect.Securities.ImmediateSettlementModel",
    settlement.ApplyFundsSettlementModelParameters: "QuantConnect.Securities.ApplyFundsSettlementModelParameters",
    settlement.ScanSettlementModelParameters: "QuantConnect.Securities.ScanSettlementModelParameters",
    order_models.OrderFee: "QuantConnect.Orders.Fees.OrderFee",
    order_models.OrderFeeParameters: "QuantConnect.Orders.Fees.OrderFeeParameters",
    order_models.FeeModel: "QuantConnect.Orders.Fees.FeeModel",
    order_models.ConstantFeeModel: "QuantConnect.Orders.Fees.ConstantFeeModel",
    order_models.InteractiveBrokersFeeModel: "QuantConnect.Orders.Fees.InteractiveBrokersFeeModel",
    order_models.NullSlippageModel: "QuantConnect.Orders.Slippage.NullSlippageModel",
    order_models.ConstantSlippageModel: "QuantConnect.Orders.Slippage.ConstantSlippageModel",
    order_models.FillModel: "QuantConnect.Orders.Fills.FillModel",
    order_models.EquityFillModel: "QuantConnect.Orders.Fills.EquityFillModel",
    order_models.ImmediateFillModel: "QuantConnect.Orders.Fills.ImmediateFillModel",
    indicators.IndicatorDataPoint: "QuantConnect.Indicators.IndicatorDataPoint",
    indicators.IndicatorBase: "QuantConnect.Indicators.IndicatorBase",
    indicators.IndicatorExtensions: "QuantConnect.Indicators.IndicatorExtensions",
    indicators.Identity: "QuantConnect.Indicators.Identity",
    indicators.SimpleMovingAverage: "QuantConnect.Indicators.SimpleMovingAverage",
    indicators.ExponentialMovingAverage: "QuantConnect.Indicators.ExponentialMovingAverage",
    indicators.Momentum: "QuantConnect.Indicators.Momentum",
    indicators.MomentumPercent: "QuantConnect.Indicators.MomentumPercent",
    indicators.RateOfChange: "QuantConnect.Indicators.RateOfChange",
    indicators.RateOfChangePercent: "QuantConnect.Indicators.RateOfChangePercent",
    indicators.MovingAverageConvergenceDivergence: "QuantConnect.Indicators.MovingAverageConvergenceDivergence",
    indicators.Delay: "QuantConnect.Indicators.Delay",
    indicators.RollingWindow: "QuantConnect.Indicators.RollingWindow",
    consolidators.ClassicRenkoConsolidator: "QuantConnect.Data.Consolidators.ClassicRenkoConsolidator",
    consolidators.RangeConsolidator: "QuantConnect.Data.Consolidators.RangeConsolidator",
    insights.Insight: "QuantConnect.Algorithm.Framework.Alphas.Insight",
    framework.InsightCollection: "QuantConnect.Algorithm.Framework.Alphas.InsightCollection",
    framework.InsightManager: "QuantConnect.Algorithm.Framework.Alphas.Analysis.InsightManager",
    framework_models.AlphaModel: "QuantConnect.Algorithm.Framework.Alphas.AlphaModel",
    framework_models.ConstantAlphaModel: "QuantConnect.Algorithm.Framework.Alphas.ConstantAlphaModel",
    framework_models.CompositeAlphaModel: "QuantConnect.Algorithm.Framework.Alphas.CompositeAlphaModel",
    framework_models.PortfolioConstructionModel: (
        "QuantConnect.Algorithm.Framework.Portfolio.PortfolioConstructionModel"
    ),
    framework_models.EqualWeightingPortfolioConstructionModel: (
        "QuantConnect.Algorithm.Framework.Portfolio.EqualWeightingPortfolioConstructionModel"
    ),
    framework_models.InsightWeightingPortfolioConstructionModel: (
        "QuantConnect.Algorithm.Framework.Portfolio.InsightWeightingPortfolioConstructionModel"
    ),
    framework_models.MeanReversionPortfolioConstructionModel: (
        "QuantConnect.Algorithm.Framework.Portfolio.MeanReversionPortfolioConstructionModel"
    ),
    framework_models.RiskParityPortfolioConstructionModel: (
        "QuantConnect.Algorithm.Framework.Portfolio.RiskParityPortfolioConstructionModel"
    ),
    framework_models.RiskParityPortfolioOptimizer: (
        "QuantConnect.Algorithm.Framework.Portfolio.RiskParityPortfolioOptimizer"
    ),
    framework_models.ReturnsSymbolData: "QuantConnect.Algorithm.Framework.Portfolio.ReturnsSymbolData",
    framework_models.PortfolioTargetCollection: "QuantConnect.Algorithm.Framework.Portfolio.PortfolioTargetCollection",
    framework_models.ExecutionModel: "QuantConnect.Algorithm.Framework.Execution.ExecutionModel",
    framework_models.ImmediateExecutionModel: "QuantConnect.Algorithm.Framework.Execution.ImmediateExecutionModel",
    framework_models.RiskManagementModel: "QuantConnect.Algorithm.Framework.Risk.RiskManagementModel",
    framework_models.NullRiskManagementModel: "QuantConnect.Algorithm.Framework.Risk.NullRiskManagementModel",
    framework_models.MaximumDrawdownPercentPerSecurity: (
        "QuantConnect.Algorithm.Framework.Risk.MaximumDrawdownPercentPerSecurity"
    ),
    framework_models.ManualUniverseSelectionModel: (
        "QuantConnect.Algorithm.Framework.Selection.ManualUniverseSelectionModel"
    ),
    framework_models.CustomUniverseSelectionModel: (
        "QuantConnect.Algorithm.Framework.Selection.CustomUniverseSelectionModel"
    ),
    framework_models.OrderSizing: "QuantConnect.Orders.OrderSizing",
    orders.SubmitOrderRequest: "QuantConnect.Orders.SubmitOrderRequest",
    orders.UpdateOrderFields: "QuantConnect.Orders.UpdateOrderFields",
    lean_util.CircularQueue: "QuantConnect.Util.CircularQueue",
    indicators.ConstantIndicator: "QuantConnect.Indicators.ConstantIndicator",
    indicators.CompositeIndicator: "QuantConnect.Indicators.CompositeIndicator",
    indicators.Variance: "QuantConnect.Indicators.Variance",
    indicators.StandardDeviation: "QuantConnect.Indicators.StandardDeviation",
    indicators.BollingerBands: "QuantConnect.Indicators.BollingerBands",
    risk_free.FuncRiskFreeRateInterestRateModel: "QuantConnect.Data.FuncRiskFreeRateInterestRateModel",
    shortable.NullShortableProvider: "QuantConnect.Data.Shortable.NullShortableProvider",
}

# Constructors an algorithm calls (models, indicators, targets, fees, data points); the other classes are
# made by the engine (a Security, a Slice, an OrderTicket...), whose constructors algorithms never call.
CONSTRUCTED: frozenset[type] = frozenset(
    {
        portfolio.PortfolioTarget,
        brokerages.DefaultBrokerageModel,
        brokerages.BrokerageMessageEvent,
        settlement.ApplyFundsSettlementModelParameters,
        settlement.ScanSettlementModelParameters,
        order_models.CashAmount,
        order_models.OrderFee,
        order_models.ConstantFeeModel,
        order_models.InteractiveBrokersFeeModel,
        order_models.NullSlippageModel,
        order_models.ConstantSlippageModel,
        order_models.EquityFillModel,
        order_models.ImmediateFillModel,
        indicators.IndicatorDataPoint,
        indicators.Identity,
        indicators.SimpleMovingAverage,
        indicators.ExponentialMovingAverage,
        indicators.Momentum,
        indicators.MomentumPercent,
        indicators.RateOfChange,
        indicators.RateOfChangePercent,
        indicators.MovingAverageConvergenceDivergence,
        indicators.Delay,
        indicators.RollingWindow,
        consolidators.ClassicRenkoConsolidator,
        consolidators.RangeConsolidator,
        orders.SubmitOrderRequest,
        orders.UpdateOrderFields,
        lean_util.CircularQueue,
        indicators.ConstantIndicator,
        indicators.CompositeIndicator,
        indicators.Variance,
        indicators.StandardDeviation,
        indicators.BollingerBands,
        risk_free.FuncRiskFreeRateInterestRateModel,
        shortable.NullShortableProvider,
        framework_models.ConstantAlphaModel,
        framework_models.EqualWeightingPortfolioConstructionModel,
        framework_models.InsightWeightingPortfolioConstructionModel,
        framework_models.MeanReversionPortfolioConstructionModel,
        framework_models.RiskParityPortfolioConstructionModel,
        framework_models.RiskParityPortfolioOptimizer,
        framework_models.ImmediateExecutionModel,
        framework_models.MaximumDrawdownPercentPerSecurity,
        framework_models.ManualUniverseSelectionModel,
        framework_models.CustomUniverseSelectionModel,
    }
)

# (shim class name, method) left out of the comparison, with the reason.
LEFT_OUT: dict[tuple[str, str], str] = {
    ("QCAlgorithm", "on_order_event"): "an event handler the algorithm overrides and the engine calls positionally; "
    "the stubs name its parameter new_event in one overload and order_event in another",
}

_PLOT_OUTSIDE = "a plot form outside the runtime's subset (candles, bars, indicator lists, a series without a chart)"
# (shim class name, method, the overload's parameter names) left out, with the reason: overloads of a method the
# shim provides for a form the runtime does not implement, which fails by name or type when used.
LEFT_OUT_OVERLOADS: dict[tuple[str, str, tuple[str, ...]], str] = {
    ("QCAlgorithm", "liquidate", ("symbol_to_liquidate", "tag")): "Lean's internal end-of-day liquidation for "
    "tick strategies (returns order ids); an algorithm calls liquidate(symbol, ...) or liquidate(symbols, ...)",
    ("QCAlgorithm", "order", ("order",)): "combo/option strategy orders are outside the runtime's subset",
    ("QCAlgorithm", "order", ("orders",)): "combo/option strategy orders are outside the runtime's subset",
    ("QCAlgorithm", "order", ("strategy", "quantity", "asynchronous", "tag", "order_properties")): "option "
    "strategies are outside the runtime's subset (OptionStrategy refuses by name)",
    ("QCAlgorithm", "buy", ("strategy", "quantity", "asynchronous", "tag", "order_properties")): "option "
    "strategies are outside the runtime's subset (OptionStrategy refuses by name)",
    ("QCAlgorithm", "sell", ("strategy", "quantity", "asynchronous", "tag", "order_properties")): "option "
    "strategies are outside the runtime's subset (OptionStrategy refuses by name)",
    ("QCAlgorithm", "plot", ("series", "py_object")): _PLOT_OUTSIDE,
    ("QCAlgorithm", "plot", ("series", "value")): _PLOT_OUTSIDE,
    ("QCAlgorithm", "plot", ("series", "open", "high", "low", "close")): _PLOT_OUTSIDE,
    ("QCAlgorithm", "plot", ("chart", "series", "open", "high", "low", "close")): _PLOT_OUTSIDE,
    ("QCAlgorithm", "plot", ("series", "bar")): _PLOT_OUTSIDE,
    ("QCAlgorithm", "plot", ("chart", "series", "bar")): _PLOT_OUTSIDE,
    ("QCAlgorithm", "plot", ("chart", "indicators")): _PLOT_OUTSIDE,
    ("QCAlgorithm", "plot", ("chart", "first", "second", "third", "fourth")): _PLOT_OUTSIDE,
    ("QCAlgorithm", "plot_indicator", ("chart", "first", "second", "third", "fourth")): "only the "
    "plot_indicator(chart, *indicators) form is implemented (positional calls of this form work)",
    ("QCAlgorithm", "plot_indicator", ("chart", "wait_for_ready", "first", "second", "third", "fourth")): "only "
    "plot_indicator(chart, *indicators) is implemented, which always waits for the indicator to be ready",
    ("QCAlgorithm", "plot_indicator", ("chart", "wait_for_ready", "indicators")): "only "
    "plot_indicator(chart, *indicators) is implemented, which always waits for the indicator to be ready",
    ("ScheduleManager", "on", ("name", "date_rule", "time_rule", "callback")): "the named form is refused by "
    "name (schedule.on(name, ...)); the runtime implements on(date_rule, time_rule, callback)",
    ("Slice", "get", ("key", "value")): "a .NET TryGetValue-shaped form whose value is an out parameter; "
    "Python callers use get(key[, default_value])",
}

# (shim class name, method, parameter) whose shim default differs from a stub overload's, with the reason.
DEFAULTS_DIFFER: dict[tuple[str, str, str], str] = {
    ("QCAlgorithm", "liquidate", "tag"): "the stubs give None (liquidate(symbol)) and 'Liquidated' "
    "(liquidate(symbols)); the shim's None becomes 'Liquidated', as Lean's C# does",
}

# (shim class name, method) that may take **kwargs although no stub overload does, with the reason.
CATCH_ALL: dict[tuple[str, str], str] = {}


# --- the stubs ---------------------------------------------------------------------------------------------------


@cache
def _stub_module(module: str) -> dict[str, ast.ClassDef] | None:
    path = STUBS.joinpath(*module.split("."), "__init__.pyi")
    if not path.is_file():
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _stub_class(fqn: str) -> tuple[str, ast.ClassDef] | None:
    module, _, name = fqn.rpartition(".")
    classes = _stub_module(module)
    if classes is None or name not in classes:
        return None
    return module, classes[name]


def _base_names(module: str, node: ast.ClassDef) -> Iterator[str]:
    for base in node.bases:
        while isinstance(base, ast.Subscript):
            base = base.value
        text = ast.unparse(base)
        yield text if "." in text else f"{module}.{text}"


def _decorators(fn: ast.FunctionDef) -> set[str]:
    return {ast.unparse(d).rsplit(".", 1)[-1] for d in fn.decorator_list}


@cache
def stub_methods(fqn: str) -> dict[str, tuple[ast.FunctionDef, ...]]:
    """The stub class's methods (its own and its stub bases'), each name with all of its overloads."""
    found = _stub_class(fqn)
    assert found is not None, f"no stub class {fqn}"
    module, node = found
    out: dict[str, list[ast.FunctionDef]] = {}
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and not ({"property", "setter"} & _decorators(item)):
            out.setdefault(item.name, []).append(item)
    for base in _base_names(module, node):
        if _stub_class(base) is None:
            continue
        for name, overloads in stub_methods(base).items():
            if name != "__init__":
                out.setdefault(name, []).extend(overloads)
    return {name: tuple(overloads) for name, overloads in out.items()}


_NO_DEFAULT = object()
_ANY_DEFAULT = object()  # the stub writes ``= ...``


@dataclass(frozen=True)
class StubParam:
    name: str
    kind: inspect._ParameterKind
    default: Any


def _default(node: ast.expr | None) -> Any:
    if node is None:
        return _NO_DEFAULT
    if isinstance(node, ast.Constant) and node.value is Ellipsis:
        return _ANY_DEFAULT
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _ANY_DEFAULT  # an enum member or an expression: only the presence of a default is compared


def stub_params(fn: ast.FunctionDef) -> list[StubParam]:
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    out = [
        StubParam(
            arg.arg,
            inspect.Parameter.POSITIONAL_ONLY if i < len(a.posonlyargs) else inspect.Parameter.POSITIONAL_OR_KEYWORD,
            _default(default),
        )
        for i, (arg, default) in enumerate(zip(positional, defaults, strict=True))
    ]
    if "staticmethod" not in _decorators(fn):
        out = out[1:]  # self / cls
    if a.vararg is not None:
        out.append(StubParam(a.vararg.arg, inspect.Parameter.VAR_POSITIONAL, _NO_DEFAULT))
    out += [
        StubParam(arg.arg, inspect.Parameter.KEYWORD_ONLY, _default(default))
        for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True)
    ]
    if a.kwarg is not None:
        out.append(StubParam(a.kwarg.arg, inspect.Parameter.VAR_KEYWORD, _NO_DEFAULT))
    return out


def calls(params: list[StubParam]) -> Iterator[tuple[int, tuple[str, ...]]]:
    """The calls an overload allows, as (number of positional arguments, names passed by keyword)."""
    positional_kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    fixed = [p for p in params if p.kind in positional_kinds]
    keyword_only = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    has_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    required = sum(p.default is _NO_DEFAULT for p in fixed)
    required_kw = tuple(p.name for p in keyword_only if p.default is _NO_DEFAULT)
    optional_kw = [p.name for p in keyword_only if p.default is not _NO_DEFAULT]
    for supplied in range(required, len(fixed) + 1):
        for positional in range(supplied + 1):
            by_keyword = fixed[positional:supplied]
            if any(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in by_keyword):
                continue
            yield positional, tuple(p.name for p in by_keyword) + required_kw
    for p in fixed[required:]:  # one optional argument alone, by keyword
        if p.kind is not inspect.Parameter.POSITIONAL_ONLY:
            yield required, (p.name, *required_kw)
    for name in optional_kw:
        yield required, (*required_kw, name)
    yield len(fixed), tuple(p.name for p in keyword_only)
    if has_varargs:
        for extra in (1, 2):
            yield len(fixed) + extra, required_kw


# --- the shim ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    shim: type
    stub: str
    method: str

    @property
    def key(self) -> tuple[str, str]:
        return self.shim.__name__, self.method

    def __str__(self) -> str:
        return f"{self.shim.__name__}.{self.method}"


def _callable(cls: type, name: str) -> Callable[..., Any] | None:
    for klass in cls.__mro__:
        if name in vars(klass):
            raw = vars(klass)[name]
            if isinstance(raw, (staticmethod, classmethod)) or inspect.isfunction(raw):
                return raw  # type: ignore[no-any-return]
            return None  # a property or a value
    return None


def shim_signature(cls: type, name: str) -> inspect.Signature:
    raw = _callable(cls, name)
    assert raw is not None
    if isinstance(raw, staticmethod):
        return inspect.signature(raw.__func__)
    fn = raw.__func__ if isinstance(raw, classmethod) else raw
    sig = inspect.signature(fn)
    return sig.replace(parameters=list(sig.parameters.values())[1:])


def pairs() -> list[Pair]:
    out = []
    for cls, stub in SHIM_CLASSES.items():
        methods = stub_methods(stub)
        for name in sorted(methods):
            if name.startswith("_") and not (name == "__init__" and cls in CONSTRUCTED):
                continue
            if (
                name == "__init__"
                and "__init__" not in vars(cls)
                and not any("__init__" in vars(k) for k in cls.__mro__[1:-1])
            ):
                continue
            if _callable(cls, name) is not None:
                out.append(Pair(cls, stub, name))
    return out


PAIRS = pairs()


def mismatches(pair: Pair) -> list[str]:
    sig = shim_signature(pair.shim, pair.method)
    problems = []
    shim_has_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    overloads = stub_methods(pair.stub)[pair.method]
    stub_has_kwargs = any(fn.args.kwarg is not None for fn in overloads)
    if shim_has_kwargs and not stub_has_kwargs and pair.key not in CATCH_ALL:
        problems.append(f"{pair}{sig}: takes **kwargs, which hides its keyword names")
    for fn in overloads:
        params = stub_params(fn)
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            continue
        if (*pair.key, tuple(p.name for p in params)) in LEFT_OUT_OVERLOADS:
            continue
        stub_text = f"{pair.method}({', '.join(p.name for p in params)})"
        for positional, keywords in calls(params):
            try:
                sig.bind(*range(positional), **dict.fromkeys(keywords))
            except TypeError as exc:
                problems.append(
                    f"{pair}{sig} cannot take stub overload {stub_text} called with {positional} positional "
                    f"and keywords {list(keywords)}: {exc}"
                )
                break
        for p in params:
            if p.default is _NO_DEFAULT or p.name not in sig.parameters:
                continue
            shim_default = sig.parameters[p.name].default
            if shim_default is inspect.Parameter.empty:
                problems.append(f"{pair}{sig}: {p.name} has no default, stub {stub_text} gives one")
            elif (
                p.default is not _ANY_DEFAULT
                and not _same(shim_default, p.default)
                and (*pair.key, p.name) not in DEFAULTS_DIFFER
            ):
                problems.append(f"{pair}{sig}: {p.name}={shim_default!r}, stub {stub_text} has {p.default!r}")
    return sorted(set(problems))


def _same(shim: Any, stub: Any) -> bool:
    if stub is None or shim is None:
        return shim is stub
    try:
        return bool(shim == stub) and isinstance(shim, str) == isinstance(stub, str)
    except Exception:
        return False


# --- the tests -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", [p for p in PAIRS if p.key not in LEFT_OUT], ids=str)
def test_the_shim_takes_the_stubs_parameter_names_and_defaults(pair: Pair) -> None:
    assert mismatches(pair) == []


def test_the_walk_covers_the_shim() -> None:
    """Every mapped stub class exists, the walk is not empty, and each exception still names a real method."""
    for stub in SHIM_CLASSES.values():
        assert _stub_class(stub) is not None, stub
    keys = {p.key for p in PAIRS}
    assert len(PAIRS) >= 100
    for key in [*LEFT_OUT, *CATCH_ALL, *(k[:2] for k in DEFAULTS_DIFFER), *(k[:2] for k in LEFT_OUT_OVERLOADS)]:
        assert key in keys, f"{key} is listed as an exception but is not a compared method"
    for cls_name, method, names in LEFT_OUT_OVERLOADS:
        stub = next(p.stub for p in PAIRS if p.key == (cls_name, method))
        overloads = {tuple(p.name for p in stub_params(fn)) for fn in stub_methods(stub)[method]}
        assert names in overloads, f"{cls_name}.{method}{names} is not an overload of the stubs"
