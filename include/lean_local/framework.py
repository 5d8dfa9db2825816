"""Lean's algorithm framework (``QCAlgorithm.Framework.cs``): universe selection, alpha, portfolio construction,
risk management and execution models, and the insights between them.

The pipeline is Lean's ``OnFrameworkData``, run after ``on_data`` at each time slice with data: the alpha
model's ``update`` gives insights (their generated and close times set, ``InsightsGenerated`` fired, added to
``algorithm.insights``), the portfolio construction model turns the active insights into targets when a
rebalance is due, the risk model may override them, and the execution model orders. ``OnFrameworkSecuritiesChanged``
gives each model the universe's changes after ``on_securities_changed``.

The models are Lean's (``framework_models.py``); this module holds the algorithm's side: the model slots, the
``InsightManager`` and the pipeline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.insights import Insight, _naive_utc

if TYPE_CHECKING:
    from include.lean_local.security_changes import SecurityChanges


class InsightCollection:
    """Lean's ``InsightCollection``: insights by symbol, in the order of a .NET ``Dictionary`` (a removed key's
    slot is reused by the next new key, last freed first), each symbol's insights in the order added."""

    def __init__(self) -> None:
        self._slots: list[Any] = []  # symbol or None (a freed slot)
        self._free: list[int] = []
        self._index: dict[Any, int] = {}
        self._by_symbol: dict[Any, list[Insight]] = {}
        self._complete: list[Insight] = []
        self.total_count = 0

    # the dictionary ----------------------------------------------------------------------------------------
    def _symbols(self) -> Iterator[Any]:
        for symbol in self._slots:
            if symbol is not None:
                yield symbol

    def _remove_key(self, symbol: Any) -> None:
        slot = self._index.pop(symbol)
        self._slots[slot] = None
        self._free.append(slot)
        del self._by_symbol[symbol]

    def _add_key(self, symbol: Any) -> list[Insight]:
        if self._free:
            slot = self._free.pop()
            self._slots[slot] = symbol
        else:
            slot = len(self._slots)
            self._slots.append(symbol)
        self._index[symbol] = slot
        items: list[Insight] = []
        self._by_symbol[symbol] = items
        return items

    # Lean's members ----------------------------------------------------------------------------------------
    def add(self, item: Insight) -> None:
        self.total_count += 1
        self._complete.append(item)
        items = self._by_symbol.get(item.symbol)
        if items is None:
            items = self._add_key(item.symbol)
        items.append(item)

    def add_range(self, insights: Iterable[Insight]) -> None:
        for insight in insights:
            self.add(insight)

    def contains(self, item: Insight) -> bool:
        return item in self._by_symbol.get(item.symbol, [])

    def contains_key(self, symbol: Any) -> bool:
        return bool(self._by_symbol.get(symbol))

    def remove(self, item: Insight) -> bool:
        items = self._by_symbol.get(item.symbol)
        if items is None or item not in items:
            return False
        items.remove(item)
        if not items:
            self._remove_key(item.symbol)
        return True

    def __getitem__(self, symbol: Any) -> list[Insight]:
        return list(self._by_symbol[symbol])

    def try_get_value(self, symbol: Any, insights: Any = None) -> tuple[bool, list[Insight] | None]:
        """.NET's ``TryGetValue`` as Python.NET returns it: (found, the symbol's insights)."""
        items = self._by_symbol.get(symbol)
        return (False, None) if items is None else (True, list(items))

    @property
    def count(self) -> int:
        return sum(len(v) for v in self._by_symbol.values())

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Insight]:
        for symbol in self._symbols():
            yield from list(self._by_symbol[symbol])

    def get_insights(self, filter: Callable[[Insight], bool] | None = None) -> list[Insight]:
        items = list(self._complete)
        return items if filter is None else [i for i in items if filter(i)]

    def get_next_expiry_time(self) -> dt.datetime | None:
        closes = [i.close_time_utc for i in self if i.close_time_utc is not None]
        return min(closes) if closes else None

    def get_active_insights(self, utc_time: dt.datetime) -> list[Insight]:
        return [i for i in self if i.is_active(utc_time)]

    def has_active_insights(self, symbol: Any, utc_time: dt.datetime) -> bool:
        return any(i.is_active(utc_time) for i in self._by_symbol.get(symbol, []))

    def remove_expired_insights(self, utc_time: dt.datetime) -> list[Insight]:
        removed = [i for i in self if i.is_expired(utc_time)]
        for insight in removed:
            self.remove(insight)
        return removed

    def clear(self, symbols: Iterable[Any]) -> None:
        for symbol in symbols:
            if symbol in self._by_symbol:
                self._remove_key(symbol)


class InsightManager(InsightCollection):
    """Lean's ``InsightManager``: the algorithm's insights (``algorithm.insights``)."""

    def __init__(self, algorithm: Any) -> None:
        super().__init__()
        self._algorithm = algorithm

    def step(self, utc_now: dt.datetime) -> None:
        """Lean scores insights here with a score function, if one is set (none by default)."""

    def set_insight_score_function(self, insight_score_function: Any) -> None:
        raise NotSupportedByLocalRuntime("InsightManager.set_insight_score_function (insight scoring)")

    def expire(self, symbols: Iterable[Any] | None = None, *, insights: Iterable[Any] | None = None) -> None:
        """Lean's ``Expire(symbols)`` / ``Expire(insights)``: the active insights close now."""
        if symbols is None:
            symbols = insights
        if symbols is None:
            return
        now = self._algorithm.utc_time
        for item in list(symbols):
            if isinstance(item, Insight):
                item.expire(now)
                continue
            for insight in self._by_symbol.get(item, []):
                insight.expire(now)

    def cancel(self, symbols: Iterable[Any] | None = None, *, insights: Iterable[Any] | None = None) -> None:
        self.expire(symbols, insights=insights)


class GeneratedInsightsCollection:
    """Lean's ``GeneratedInsightsCollection``: the insights of one time step (``insights_generated``)."""

    def __init__(self, date_time_utc: dt.datetime, insights: Iterable[Insight]) -> None:
        self.date_time_utc = date_time_utc
        self.insights = list(insights)


class AlgorithmEvent:
    """A .NET event in Python: ``event += handler`` / ``event -= handler``; handlers get (algorithm, data)."""

    def __init__(self) -> None:
        self._handlers: list[Callable[[Any, Any], Any]] = []

    def __iadd__(self, handler: Callable[[Any, Any], Any]) -> AlgorithmEvent:
        self._handlers.append(handler)
        return self

    def __isub__(self, handler: Callable[[Any, Any], Any]) -> AlgorithmEvent:
        if handler in self._handlers:
            self._handlers.remove(handler)
        return self

    def __bool__(self) -> bool:
        return bool(self._handlers)

    def fire(self, algorithm: Any, data: Any) -> None:
        for handler in list(self._handlers):
            handler(algorithm, data)


class Framework:
    """The framework's state in an algorithm: the models, ``insights`` and the pipeline."""

    def __init__(self, algorithm: Any) -> None:
        from include.lean_local import framework_models as fm

        self.algorithm = algorithm
        self.active = False  # any model set or insight emitted: the engine runs the pipeline
        self.alpha: Any = fm.NullAlphaModel()
        self.portfolio_construction: Any = fm.NullPortfolioConstructionModel()
        self.execution: Any = fm.ImmediateExecutionModel()
        self.risk_management: Any = fm.NullRiskManagementModel()
        self.universe_selection: Any = fm.NullUniverseSelectionModel()
        self.insights = InsightManager(algorithm)
        self.insights_generated = AlgorithmEvent()
        self._warned_warmup = False
        self._warned_delisted = False
        self._universes: list[Any] = []

    # setup --------------------------------------------------------------------------------------------------
    def post_initialize(self) -> None:
        """Lean's ``PostInitialize``: the rebalance settings applied to the portfolio construction model, then
        ``FrameworkPostInitialize`` creates the universe selection model's universes."""
        from include.lean_local import framework_models as fm

        algorithm = self.algorithm
        settings = algorithm.settings
        pcm = self.portfolio_construction
        on_security = getattr(settings, "rebalance_portfolio_on_security_changes", None)
        on_insight = getattr(settings, "rebalance_portfolio_on_insight_changes", None)
        if isinstance(pcm, fm.PortfolioConstructionModel):
            if on_security is not None:
                pcm.rebalance_on_security_changes = bool(on_security)
            if on_insight is not None:
                pcm.rebalance_on_insight_changes = bool(on_insight)
        elif on_security is not None or on_insight is not None:
            algorithm.debug(
                "Warning: rebalance portfolio settings are set but not supported by the current "
                f"IPortfolioConstructionModel type: {type(pcm).__name__}"
            )
        if not self.active:
            return
        algorithm._engine.security_changes.add_listener(self.on_securities_changed)
        for universe in self.universe_selection.create_universes(algorithm):
            self._universes.append(universe)
            universe.start(algorithm)

    # the pipeline ---------------------------------------------------------------------------------------------
    def on_data(self, slice: Any) -> None:
        """Lean's ``OnFrameworkData``."""
        algorithm = self.algorithm
        utc = _naive_utc(algorithm.utc_time)
        refresh = self.universe_selection.get_next_refresh_time_utc()
        if refresh is not None and utc >= _naive_utc(refresh):
            raise NotSupportedByLocalRuntime(
                "a universe selection model whose universes change during the run (GetNextRefreshTimeUtc)"
            )
        for universe in self._universes:
            universe.on_time_step(algorithm)
        self.insights.step(utc)
        if not getattr(slice, "has_data", True):
            return
        insights = list(self.alpha.update(algorithm, slice) or [])
        if insights:
            insights = self._initialize_insights(insights)
            self._on_insights_generated(insights)
        self.process_insights(insights)

    def emit_insights(self, insights: list[Insight]) -> None:
        """Lean's ``EmitInsights``: ignored during the warm-up (with Lean's error), else the pipeline from the
        portfolio construction model on."""
        algorithm = self.algorithm
        if algorithm.is_warming_up:
            if not self._warned_warmup:
                algorithm.error("Warning: insights emitted during algorithm warmup are ignored.")
                self._warned_warmup = True
            return
        insights = self._initialize_insights(insights)
        self._on_insights_generated(insights)
        self.process_insights(insights)

    def _initialize_insights(self, insights: list[Insight]) -> list[Insight]:
        algorithm = self.algorithm
        valid: list[Insight] = []
        for insight in insights:
            if not isinstance(insight, Insight):
                raise TypeError(f"an alpha model returned {type(insight).__name__}, not an Insight")
            security = algorithm.securities[insight.symbol]
            if security.is_delisted:
                if not self._warned_delisted:
                    algorithm.error(
                        "QCAlgorithm.EmitInsights(): Warning: cannot emit insights for delisted securities, "
                        "these will be discarded"
                    )
                    self._warned_delisted = True
                continue
            insight.symbol = security.symbol
            insight.generated_time_utc = algorithm.utc_time
            insight.reference_value = security.price
            if not insight.source_model:
                insight.source_model = _model_name(self.alpha)
            insight.set_period_and_close_time()
            valid.append(insight)
        return valid

    def _on_insights_generated(self, insights: list[Insight]) -> None:
        self.insights.add_range(insights)
        if self.insights_generated:
            self.insights_generated.fire(self.algorithm, GeneratedInsightsCollection(self.algorithm.utc_time, insights))

    def process_insights(self, insights: list[Insight]) -> None:
        """Lean's ``ProcessInsights``: targets, risk overrides, execution."""
        algorithm = self.algorithm
        targets = list(self.portfolio_construction.create_targets(algorithm, insights) or [])
        overrides = list(self.risk_management.manage_risk(algorithm, targets) or [])
        adjusted: list[Any] = []
        if overrides or targets:
            seen: set[Any] = set()
            for target in [*overrides, *targets]:
                if target.symbol not in seen:
                    seen.add(target.symbol)
                    adjusted.append(target)
        self.execution.execute(algorithm, adjusted)

    def on_securities_changed(self, changes: SecurityChanges) -> None:
        """Lean's ``OnFrameworkSecuritiesChanged``."""
        algorithm = self.algorithm
        self.alpha.on_securities_changed(algorithm, changes)
        self.portfolio_construction.on_securities_changed(algorithm, changes)
        self.execution.on_securities_changed(algorithm, changes)
        self.risk_management.on_securities_changed(algorithm, changes)


def _model_name(model: Any) -> str:
    name = getattr(model, "name", None)
    if isinstance(name, str) and name:
        return name
    return type(model).__name__


class _UniverseManagerView:
    """``count``: the add_universe universes, one per framework universe (a ManualUniverseSelectionModel's, a
    CustomUniverseSelectionModel's...) and Lean's user-defined universe when a security was added by add_equity
    (or add_security) rather than by a universe; ``active_securities``: the members of every universe."""

    def __init__(self, algorithm: Any) -> None:
        self._algorithm = algorithm

    @property
    def count(self) -> int:
        engine = self._algorithm._engine
        fundamental = getattr(engine, "universes", None)
        fw: Framework = self._algorithm._fw
        count = len(fw._universes)
        by_universe: set[Any] = set()
        for universe in fw._universes:
            by_universe.update(getattr(universe, "added", ()))
        if fundamental is not None:
            count += len(fundamental.universes)
            by_universe.update(fundamental._created)
        if any(symbol not in by_universe for symbol, _ in engine.securities.items()):
            count += 1  # Lean's UserDefinedUniverse of the USA equities added by add_equity
        return count

    def __len__(self) -> int:
        return self.count

    @property
    def active_securities(self) -> Any:
        return self._algorithm.active_securities


class FrameworkApi:
    """The framework members of ``QCAlgorithm`` (``QCAlgorithm.Framework.cs``)."""

    _engine: Any

    @property
    def _fw(self) -> Framework:
        fw = self.__dict__.get("_framework_state")
        if fw is None:
            fw = Framework(self)
            self.__dict__["_framework_state"] = fw
        return fw

    def _use_framework(self) -> Framework:
        if getattr(self._engine, "initialized", False) and not self._fw.active:
            raise NotSupportedByLocalRuntime("setting a framework model after initialize")
        fw = self._fw
        fw.active = True
        return fw

    # the models ---------------------------------------------------------------------------------------------
    @property
    def alpha(self) -> Any:
        return self._fw.alpha

    @property
    def portfolio_construction(self) -> Any:
        return self._fw.portfolio_construction

    @property
    def execution(self) -> Any:
        return self._fw.execution

    @property
    def risk_management(self) -> Any:
        return self._fw.risk_management

    @property
    def universe_selection(self) -> Any:
        return self._fw.universe_selection

    @property
    def insights(self) -> InsightManager:
        return self._fw.insights

    @property
    def insights_generated(self) -> AlgorithmEvent:
        return self._fw.insights_generated

    @insights_generated.setter
    def insights_generated(self, value: AlgorithmEvent) -> None:
        if value is not self._fw.insights_generated:
            raise TypeError("insights_generated is an event: use += and -=")

    def set_alpha(self, alpha: Any) -> None:
        self._use_framework().alpha = alpha

    def add_alpha(self, alpha: Any) -> None:
        from include.lean_local import framework_models as fm

        fw = self._use_framework()
        if isinstance(fw.alpha, fm.NullAlphaModel):
            fw.alpha = alpha
        elif isinstance(fw.alpha, fm.CompositeAlphaModel):
            fw.alpha.add_alpha(alpha)
        else:
            fw.alpha = fm.CompositeAlphaModel(fw.alpha, alpha)

    def set_portfolio_construction(self, portfolio_construction: Any) -> None:
        self._use_framework().portfolio_construction = portfolio_construction

    def set_execution(self, execution: Any) -> None:
        self._use_framework().execution = execution

    def set_risk_management(self, risk_management: Any) -> None:
        self._use_framework().risk_management = risk_management

    def add_risk_management(self, risk_management: Any) -> None:
        from include.lean_local import framework_models as fm

        fw = self._use_framework()
        if isinstance(fw.risk_management, fm.NullRiskManagementModel):
            fw.risk_management = risk_management
        elif isinstance(fw.risk_management, fm.CompositeRiskManagementModel):
            fw.risk_management.add_risk_management(risk_management)
        else:
            fw.risk_management = fm.CompositeRiskManagementModel(fw.risk_management, risk_management)

    def set_universe_selection(self, universe_selection: Any) -> None:
        self._use_framework().universe_selection = universe_selection

    def add_universe_selection(self, universe_selection: Any) -> None:
        from include.lean_local import framework_models as fm

        fw = self._use_framework()
        if isinstance(fw.universe_selection, fm.NullUniverseSelectionModel):
            fw.universe_selection = universe_selection
        elif isinstance(fw.universe_selection, fm.CompositeUniverseSelectionModel):
            fw.universe_selection.add_universe_selection(universe_selection)
        else:
            fw.universe_selection = fm.CompositeUniverseSelectionModel(fw.universe_selection, universe_selection)

    def emit_insights(self, *insights: Any, insight: Any = None) -> None:
        """Lean's ``EmitInsights(insight)`` or ``EmitInsights(*insights)``."""
        items: list[Any] = []
        for item in [*insights, *([] if insight is None else [insight])]:
            if isinstance(item, (list, tuple)):
                items.extend(item)
            else:
                items.append(item)
        for item in items:
            if not isinstance(item, Insight):
                raise TypeError(f"emit_insights() takes Insight objects, not {type(item).__name__}")
        fw = self._fw
        fw.active = True
        fw.emit_insights(items)

    @property
    def universe_manager(self) -> Any:
        """Lean's ``UniverseManager`` as an algorithm reads it: ``count`` and ``active_securities``."""
        return _UniverseManagerView(self)

    # indicators and prices the framework models use -----------------------------------------------------------
    def warm_up_indicator(self, symbol: Any, indicator: Any, resolution: Any = None, selector: Any = None) -> None:
        """Lean's ``WarmUpIndicator(symbol, indicator[, resolution, selector])``: ``IndicatorHistory`` of the
        indicator's warm-up period of daily bars before now (the indicator keeps the state)."""
        if isinstance(resolution, dt.timedelta):
            raise NotSupportedByLocalRuntime("warm_up_indicator over a period (only a bar count at a resolution)")
        self.indicator_history(indicator, symbol, 0, resolution, selector)  # type: ignore[attr-defined]

    def get_last_known_price(self, security: Any = None, *, symbol: Any = None) -> Any:
        """Lean's ``GetLastKnownPrice(security | symbol)``: the last daily bar that closed by now (None if none)."""
        target = security if security is not None else symbol
        engine = self._engine
        sym = getattr(target, "symbol", None) or engine.securities.to_symbol(target)
        bars = engine.history_bars(sym, 1)
        return bars[-1] if bars else None

    # engine hooks -------------------------------------------------------------------------------------------
    def _framework_post_initialize(self) -> None:
        self._fw.post_initialize()

    def _on_framework_data(self, slice: Any) -> None:
        fw = self.__dict__.get("_framework_state")
        if fw is not None and fw.active:
            fw.on_data(slice)
