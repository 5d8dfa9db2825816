"""``QCAlgorithm``: the snake_case API subset of Lean's QCAlgorithm the local runtime implements.

As Lean splits QCAlgorithm into partial classes, the trading API (orders, ``set_holdings``, ``liquidate``)
is the mixin ``TradingApi`` (algorithm_trading.py); this module holds setup, parameters, logging, charts,
indicators and history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from include.lean_local.algorithm_trading import TradingApi
from include.lean_local.enums import AlgorithmMode, DataNormalizationMode, DeploymentTarget, Resolution, SecurityType
from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.framework import FrameworkApi
from include.lean_local.indicators import (
    BollingerBands,
    ExponentialMovingAverage,
    Identity,
    IndicatorBase,
    Momentum,
    MomentumPercent,
    MovingAverageConvergenceDivergence,
    MovingAverageType,
    RateOfChange,
    RateOfChangePercent,
    SimpleMovingAverage,
    StandardDeviation,
)
from include.lean_local.market_data import Delistings, Dividends, Slice, Splits, TradeBar
from include.lean_local.object_store import ObjectStore
from include.lean_local.portfolio import SecurityPortfolioManager
from include.lean_local.scheduling import DateRules, ScheduledEvent, ScheduleManager, TimeRules
from include.lean_local.securities import Security, SecurityManager
from include.lean_local.sessions import utc_to_local
from include.lean_local.settings import AlgorithmSettings
from include.lean_local.subscriptions import SubscriptionManager
from include.lean_local.symbols import Symbol
from include.lean_local.transactions import SecurityTransactionManager
from include.lean_local.universe_settings import UniverseSettings
from include.lean_local.unsupported import missing_attribute

if TYPE_CHECKING:
    import pandas as pd

    from include.lean_local.engine import Engine
    from include.lean_local.indicator_history import IndicatorHistory


def _one_of(method: str, **named: Any) -> Any:
    """The one argument given among the names of a method's overloads (``set_warm_up(time_span)`` or
    ``set_warm_up(bar_count=...)``): one Python function serves Lean's overloads."""
    given = [value for value in named.values() if value is not None]
    if len(given) != 1:
        raise TypeError(f"{method}() takes exactly one of {', '.join(named)}")
    return given[0]


def _to_datetime(y: Any, m: int | None = None, d: int | None = None) -> dt.datetime:
    if isinstance(y, dt.datetime):
        return y.replace(tzinfo=None)
    if isinstance(y, dt.date):
        return dt.datetime(y.year, y.month, y.day)
    if m is None or d is None:
        raise TypeError("expected (year, month, day) or a date/datetime")
    return dt.datetime(int(y), int(m), int(d))


class QCAlgorithm(TradingApi, FrameworkApi):
    """Base class of user algorithms. Names outside the supported subset raise NotSupportedByLocalRuntime."""

    # set by _bind; before it, these names raise NotSupportedByLocalRuntime like any unknown name
    portfolio: SecurityPortfolioManager
    securities: SecurityManager
    transactions: SecurityTransactionManager
    schedule: ScheduleManager
    object_store: ObjectStore
    subscription_manager: SubscriptionManager

    def __init__(self) -> None:
        self._engine: Engine = cast("Engine", None)  # bound by the runner (_bind) before initialize()
        self._parameters: dict[str, str] = {}
        self._security_initializers: list[Callable[[Security], Any]] = []
        self._log_sink: Callable[[str, str], None] | None = None
        self._charts: dict[str, dict[str, list[tuple[int, float]]]] = {}
        self._warned_market_on_open = False
        self._warned_daily_market_order = False
        self.time = dt.datetime(1998, 1, 1)
        self.utc_time = dt.datetime(1998, 1, 1, tzinfo=dt.UTC)
        self.settings = AlgorithmSettings()
        self.universe_settings = UniverseSettings()
        self.date_rules = DateRules(lambda: self.time)
        self.time_rules = TimeRules(lambda: self.time)
        self.current_slice: Slice | None = None
        self.name = type(self).__name__

    def _bind(
        self,
        engine: Engine,
        parameters: dict[str, str],
        object_store: ObjectStore,
        log_sink: Callable[[str, str], None],
    ) -> None:
        self._engine = engine
        self._parameters = dict(parameters)
        self._log_sink = log_sink
        self.portfolio = SecurityPortfolioManager(engine.portfolio, engine.securities, self)
        self.securities = SecurityManager(engine.securities)
        self.transactions = SecurityTransactionManager(engine.transactions)
        self.schedule = ScheduleManager(engine)
        self.object_store = object_store
        self.subscription_manager = SubscriptionManager(engine.securities, engine.feed)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        # Lean's member the runtime lacks is refused by name; any other name is the algorithm's own error
        raise missing_attribute(self, name, "QCAlgorithm")

    # lifecycle (overridden by users) ----------------------------------------
    def initialize(self) -> None:
        pass

    def on_data(self, slice: Slice) -> None:
        pass

    def on_order_event(self, order_event: Any) -> None:
        pass

    def on_splits(self, splits: Splits) -> None:
        pass

    def on_dividends(self, dividends: Dividends) -> None:
        pass

    def on_delistings(self, delistings: Delistings) -> None:
        pass

    def on_end_of_algorithm(self) -> None:
        pass

    # setup ------------------------------------------------------------------
    def set_start_date(
        self, year: Any = None, month: int | None = None, day: int | None = None, *, start: Any = None
    ) -> None:
        """Lean's ``SetStartDate`` (``(year, month, day)`` or ``(start)``): ignored live; refused before 1900
        or after today (New York)."""
        if self._engine.live:
            return
        first = _to_datetime(_one_of("set_start_date", year=year, start=start), month, day)
        start = first.replace(hour=0, minute=0, second=0, microsecond=0)
        if start < dt.datetime(1900, 1, 1):
            raise ValueError("Please select a start date after January 1st, 1900.")
        if start.date() > self._today():
            raise ValueError("Please select start date less than today")
        self._engine.start_date = start
        self.time = start

    def set_end_date(
        self, year: Any = None, month: int | None = None, day: int | None = None, *, end: Any = None
    ) -> None:
        """Lean's ``SetEndDate`` (``(year, month, day)`` or ``(end)``): ignored live; a backtest ends yesterday
        (New York) at the latest, so a backtest started on day D never trades D (Lean
        ``QCAlgorithm.SetEndDate(DateTime)``)."""
        if self._engine.live:
            return
        end = _to_datetime(_one_of("set_end_date", year=year, end=end), month, day)
        yesterday = dt.datetime.combine(self._today() - dt.timedelta(days=1), dt.time())
        self._engine.end_date = min(end, yesterday)

    def _today(self) -> dt.date:
        """Today in the algorithm's time zone (New York for US equities), from the runtime's clock."""
        return utc_to_local(self._engine.config.now_utc()).date()

    @property
    def start_date(self) -> dt.datetime:
        return self._engine.start_date

    @property
    def end_date(self) -> dt.datetime:
        return self._engine.end_date

    def set_cash(self, symbol: Any = None, starting_cash: Any = None, conversion_rate: float = 0) -> None:
        """Lean's ``SetCash``: ``(starting_cash)`` or ``(symbol, starting_cash, conversion_rate)`` (only the
        account currency, USD)."""
        if isinstance(symbol, str):
            if symbol.upper() != "USD":
                raise NotSupportedByLocalRuntime(f"set_cash in {symbol}")
            cash = starting_cash
        else:
            cash = _one_of("set_cash", symbol=symbol, starting_cash=starting_cash)
        if not self._engine.portfolio.cash_locked:
            self.portfolio.set_cash(float(cash))

    def set_warm_up(self, time_span: Any = None, resolution: Any = None, *, bar_count: int | None = None) -> None:
        """Lean's ``SetWarmUp``: ``(time_span[, resolution])`` or ``(bar_count[, resolution])``."""
        period = _one_of("set_warm_up", time_span=time_span, bar_count=bar_count)
        if isinstance(period, dt.timedelta):
            self._engine.warmup_days = period
        else:
            self._engine.warmup_bars = int(period)

    set_warmup = set_warm_up

    @property
    def is_warming_up(self) -> bool:
        return bool(self._engine.is_warming_up)

    @property
    def algorithm_id(self) -> str:
        """Lean's ``AlgorithmId``: the config's ``algorithm-id`` (it names the result files)."""
        return self._engine.config.algorithm_id

    @property
    def live_mode(self) -> bool:
        return bool(self._engine.live)

    @property
    def algorithm_mode(self) -> AlgorithmMode:
        """Lean's ``AlgorithmMode``: the job packet's (LiveNodePacket: Live; BacktestNodePacket: Optimization
        with an ``optimization-id``, else Backtesting)."""
        if self._engine.live:
            return AlgorithmMode.LIVE
        if self._engine.config.get("optimization-id"):
            return AlgorithmMode.OPTIMIZATION
        return AlgorithmMode.BACKTESTING

    @property
    def deployment_target(self) -> DeploymentTarget:
        """Lean's ``DeploymentTarget``: the local job queue's (Queues/JobQueue.cs) is always LocalPlatform."""
        return DeploymentTarget.LOCAL_PLATFORM

    def add_equity(
        self,
        ticker: str,
        resolution: Any = None,
        market: Any = None,
        fill_forward: bool = True,
        leverage: float = 0.0,
        extended_market_hours: bool = False,
        data_normalization_mode: Any = None,
        data_mapping_mode: Any = None,
        contract_depth_offset: int = 0,
    ) -> Security:
        if market is not None and str(market).lower() != "usa":
            raise NotSupportedByLocalRuntime(f"add_equity in the market {market} (only Market.USA)")
        # Lean: an unset resolution or normalization mode is the universe settings' (QCAlgorithm.AddSecurity)
        settings = self.universe_settings
        if data_normalization_mode is None and settings.data_normalization_mode != DataNormalizationMode.ADJUSTED:
            data_normalization_mode = settings.data_normalization_mode
        return self._engine.add_equity(
            ticker,
            settings.resolution if resolution is None else resolution,
            leverage=leverage or None,
            fill_forward=fill_forward,
            data_normalization_mode=data_normalization_mode,
        )

    def add_security(
        self,
        *args: Any,
        symbol: Any = None,
        security_type: Any = None,
        ticker: str | None = None,
        resolution: Any = None,
        market: str | None = None,
        fill_forward: bool | None = None,
        leverage: float = 0.0,
        extended_market_hours: bool | None = None,
        data_mapping_mode: Any = None,
        data_normalization_mode: Any = None,
        contract_depth_offset: int = 0,
    ) -> Security:
        """Lean's ``AddSecurity(symbol, ...)`` or ``AddSecurity(security_type, ticker[, resolution[, market],
        ...])``: an equity of the USA market (``add_equity``); another security type is refused by name."""
        named: dict[str, Any] = {
            "symbol": symbol,
            "security_type": security_type,
            "ticker": ticker,
            "resolution": resolution,
            "market": market,
            "fill_forward": fill_forward,
            "leverage": leverage or None,
            "extended_market_hours": extended_market_hours,
            "data_mapping_mode": data_mapping_mode,
            "data_normalization_mode": data_normalization_mode,
        }
        if args and isinstance(args[0], SecurityType):
            names: tuple[str, ...] = ("security_type", "ticker", "resolution")
            rest = args[3:]
            if rest and isinstance(rest[0], str):  # (..., resolution, market, fill_forward, leverage, ...)
                names += ("market", "fill_forward", "leverage", "extended_market_hours")
            elif len(rest) > 1 and not isinstance(rest[1], bool):  # (..., fill_forward, leverage, extended...)
                names += ("fill_forward", "leverage", "extended_market_hours")
            else:  # (..., resolution, fill_forward, extended_market_hours, ...)
                names += ("fill_forward", "extended_market_hours")
            names += ("data_mapping_mode", "data_normalization_mode")
        else:
            names = ("symbol", "resolution", "fill_forward", "leverage", "extended_market_hours")
            names += ("data_mapping_mode", "data_normalization_mode", "contract_depth_offset")
        if len(args) > len(names):
            raise TypeError(f"add_security() takes at most {len(names)} positional arguments ({len(args)} given)")
        for name, value in zip(names, args, strict=False):
            if named.get(name) is not None:
                raise TypeError(f"add_security() got multiple values for argument '{name}'")
            named[name] = value
        if named["symbol"] is not None:
            sym = named["symbol"]
            if not isinstance(sym, Symbol):
                raise TypeError("add_security(symbol, ...) needs a Symbol")
            named["security_type"], named["ticker"] = SecurityType(int(sym.security_type)), sym.value
        kind = named["security_type"]
        if kind is None or named["ticker"] is None:
            raise TypeError("add_security() needs a symbol, or a security_type and a ticker")
        if int(kind) != SecurityType.EQUITY:
            raise NotSupportedByLocalRuntime(f"add_security of SecurityType {int(kind)} (only SecurityType.EQUITY)")
        return self.add_equity(
            str(named["ticker"]),
            named["resolution"],
            named["market"],
            True if named["fill_forward"] is None else bool(named["fill_forward"]),
            float(named["leverage"] or 0.0),
            bool(named["extended_market_hours"]),
            named["data_normalization_mode"],
            named["data_mapping_mode"],
        )

    def set_security_initializer(self, security_initializer: Any) -> None:
        initializer = security_initializer
        fn = initializer if callable(initializer) else getattr(initializer, "initialize", None)
        if fn is None:
            raise TypeError("security initializer must be callable or define initialize(security)")
        self._security_initializers = [fn]

    def add_security_initializer(self, security_initializer: Any) -> None:
        initializer = security_initializer
        fn = initializer if callable(initializer) else getattr(initializer, "initialize", None)
        if fn is None:
            raise TypeError("security initializer must be callable or define initialize(security)")
        self._security_initializers.append(fn)

    def _run_security_initializers(self, security: Security) -> None:
        for fn in self._security_initializers:
            fn(security)

    def set_benchmark(
        self, *args: Any, benchmark: Any = None, symbol: Any = None, ticker: Any = None, security_type: Any = None
    ) -> None:
        """Lean's ``SetBenchmark``: ``(benchmark)``, ``(symbol)``, ``(ticker)`` or ``(security_type, symbol)``,
        positional or by these names: a ticker, a Symbol or a function of the UTC time; only before the algorithm
        is initialized (benchmark.py)."""
        from include.lean_local.benchmark import from_arguments

        if self._engine.initialized:
            raise RuntimeError("self.set_benchmark(): Cannot change Benchmark after algorithm initialized.")
        named = {"benchmark": benchmark, "symbol": symbol, "ticker": ticker, "security_type": security_type}
        self._benchmark = from_arguments(self, args, {k: v for k, v in named.items() if v is not None})

    @property
    def brokerage_model(self) -> Any:
        """The brokerage model (``DefaultBrokerageModel`` unless ``set_brokerage_model`` set another)."""
        from include.lean_local.brokerages import DefaultBrokerageModel

        model = self.__dict__.get("_brokerage_model")
        if model is None:
            model = self.__dict__["_brokerage_model"] = DefaultBrokerageModel()
        return model

    def set_brokerage_model(
        self, model: Any = None, account_type: Any = None, *, brokerage: Any = None, brokerage_model: Any = None
    ) -> None:
        """Lean's ``SetBrokerageModel(model)``: a DefaultBrokerageModel, or a Python subclass that overrides only
        ``can_submit_order``/``can_update_order``/``default_markets`` (brokerages.py); the transaction handler asks
        it before each submission and update. ``SetBrokerageModel(BrokerageName, AccountType)`` (another
        brokerage's fees, fills and buying power) is refused by name."""
        from include.lean_local.brokerages import check_model

        if brokerage is not None or account_type is not None:
            raise NotSupportedByLocalRuntime("QCAlgorithm.set_brokerage_model(BrokerageName, AccountType)")
        if self._engine.initialized:
            raise NotSupportedByLocalRuntime("QCAlgorithm.set_brokerage_model after initialize")
        if brokerage_model is not None:
            model = brokerage_model
        check_model(model)
        self.__dict__["_brokerage_model"] = model

    def train(self, date_rule: Any = None, time_rule: Any = None, training_code: Any = None) -> ScheduledEvent:
        """Lean's ``Train(training_code)`` (a scheduled event today, now) or ``Train(date_rule, time_rule,
        training_code)`` (``Schedule.TrainingNow`` / ``Schedule.Training``). The training runs on the algorithm's
        thread like any scheduled event; Lean's isolator time limits (``algorithm-manager-time-loop-maximum``,
        20 minutes by default) are not enforced."""
        if time_rule is None and training_code is None:
            date_rule, training_code = None, date_rule  # train(training_code)
        if training_code is None or not callable(training_code):
            raise TypeError("train() needs a callable training_code")
        if date_rule is None and time_rule is None:
            name = f"Training: Now: {self.utc_time.isoformat()}"
            return self.schedule.on(self.date_rules.today, self.time_rules.now, training_code, name)
        if date_rule is None or time_rule is None:
            raise TypeError("train() takes (training_code) or (date_rule, time_rule, training_code)")
        return self.schedule.on(date_rule, time_rule, training_code)

    def add_universe(self, *args: Any, **kwargs: Any) -> Any:
        """Lean's coarse fundamental universe (``include.lean_local.universes``); other universes refuse."""
        from include.lean_local import universes

        return universes.add_universe(self, args, kwargs)

    def get_last_known_prices(
        self, security: Any = None, *, symbol: Any = None, securities: Any = None, symbols: Any = None
    ) -> list[Any]:
        """Lean's ``GetLastKnownPrices(security)`` (or ``symbol``): the last bar that closed by now; the forms of
        several securities (a dictionary of them in Lean) are refused by name."""
        from include.lean_local.seeding import last_known_prices

        one = security if security is not None else symbol
        if securities is not None or symbols is not None or isinstance(one, list | tuple):
            raise NotSupportedByLocalRuntime("get_last_known_prices of several securities")
        return last_known_prices(self._engine, one)

    @property
    def active_securities(self) -> Any:
        from include.lean_local.universes import active_securities

        return active_securities(self._engine)

    @property
    def universe(self) -> Any:
        from include.lean_local.universes import UniverseDefinitions

        return UniverseDefinitions(self)

    # parameters ----------------------------------------------------------------
    def get_parameter(self, name: str, default_value: Any = None) -> Any:
        value = self._parameters.get(name)
        if value is None:
            return default_value
        if isinstance(default_value, (bool, str)) or default_value is None:
            return value
        try:
            if isinstance(default_value, int):
                return int(value)
            if isinstance(default_value, float):
                return float(value)
        except ValueError:
            return default_value
        return value

    def get_parameters(self) -> dict[str, str]:
        return dict(self._parameters)

    # logging -------------------------------------------------------------------
    def _emit_log(self, kind: str, message: Any) -> None:
        if self._log_sink is not None:
            self._log_sink(kind, str(message))

    def debug(self, message: Any) -> None:
        self._emit_log("debug", message)

    def log(self, message: Any) -> None:
        self._emit_log("log", message)

    def error(self, message: Any = None, *, error: Any = None) -> None:
        """Lean's ``Error(message)`` or ``Error(error)`` (an exception)."""
        self._emit_log("error", message if error is None else error)

    def quit(self, message: str = "") -> None:
        self._engine.stopped = True
        if message:
            self.debug(f"Quit(): {message}")

    # charts --------------------------------------------------------------------
    def plot(self, chart: str, series: Any, value: Any = None) -> None:
        if isinstance(series, IndicatorBase) and isinstance(value, IndicatorBase):
            # Lean's Plot(chart, *indicators): each indicator's current value under its name
            for indicator in (series, value):
                self.plot(chart, indicator.name, indicator.current.value)
            return
        if value is None:
            if isinstance(series, IndicatorBase):
                value, series = series.current.value, series.name
            else:
                raise NotSupportedByLocalRuntime("plot without a value")
        if isinstance(value, IndicatorBase):
            value = value.current.value
        stamp = int(self.utc_time.timestamp())
        self._charts.setdefault(chart, {}).setdefault(str(series), []).append((stamp, float(value)))

    def plot_indicator(self, chart: str, *indicators: Any) -> None:
        items = [i for i in indicators if isinstance(i, IndicatorBase)]
        for indicator in items:

            def on_update(sender: Any, point: Any, _chart: str = chart, _ind: IndicatorBase = indicator) -> None:
                if _ind.is_ready:
                    self.plot(_chart, _ind.name, point.value)

            indicator.updated += on_update

    # indicators --------------------------------------------------------------------
    def _auto(self, symbol: Any, indicator: IndicatorBase, selector: Any = None) -> IndicatorBase:
        self._engine.register_indicator(symbol, indicator, selector)
        return indicator

    def register_indicator(
        self, symbol: Any, indicator: IndicatorBase, resolution: Any = None, selector: Any = None
    ) -> None:
        self._engine.register_indicator(symbol, indicator, selector)

    def sma(self, symbol: Any, period: int, resolution: Any = None, selector: Any = None) -> IndicatorBase:
        return self._auto(symbol, SimpleMovingAverage(f"SMA({period})", period), selector)

    def ema(
        self,
        symbol: Any,
        period: int,
        smoothing_factor: float | None = None,
        resolution: Any = None,
        selector: Any = None,
    ) -> IndicatorBase:
        if isinstance(smoothing_factor, Resolution):
            smoothing_factor = None
        return self._auto(symbol, ExponentialMovingAverage(f"EMA({period})", period, smoothing_factor), selector)

    def roc(self, symbol: Any, period: int, resolution: Any = None, selector: Any = None) -> IndicatorBase:
        return self._auto(symbol, RateOfChange(period), selector)

    def rocp(self, symbol: Any, period: int, resolution: Any = None, selector: Any = None) -> IndicatorBase:
        return self._auto(symbol, RateOfChangePercent(period), selector)

    def mom(self, symbol: Any, period: int, resolution: Any = None, selector: Any = None) -> IndicatorBase:
        return self._auto(symbol, Momentum(period), selector)

    def momp(self, symbol: Any, period: int, resolution: Any = None, selector: Any = None) -> IndicatorBase:
        return self._auto(symbol, MomentumPercent(period), selector)

    def macd(
        self,
        symbol: Any,
        fast_period: int,
        slow_period: int,
        signal_period: int,
        type: Any = 1,
        resolution: Any = None,
        selector: Any = None,
    ) -> IndicatorBase:
        return self._auto(
            symbol, MovingAverageConvergenceDivergence(fast_period, slow_period, signal_period, int(type)), selector
        )

    def bb(
        self,
        symbol: Any,
        period: int,
        k: float,
        moving_average_type: Any = MovingAverageType.SIMPLE,
        resolution: Any = None,
        selector: Any = None,
    ) -> IndicatorBase:
        return self._auto(symbol, BollingerBands(period, k, int(moving_average_type)), selector)

    def std(self, symbol: Any, period: int, resolution: Any = None, selector: Any = None) -> IndicatorBase:
        return self._auto(symbol, StandardDeviation(period), selector)

    def identity(
        self, symbol: Any, resolution: Any = None, selector: Any = None, field_name: str | None = None
    ) -> IndicatorBase:
        if field_name is not None:
            raise NotSupportedByLocalRuntime("identity with field_name")
        return self._auto(symbol, Identity(f"{symbol}"), selector)

    def indicator_history(
        self,
        indicator: IndicatorBase,
        symbol: Any = None,
        period: Any = None,
        resolution: Any = None,
        selector: Any = None,
        *,
        symbols: Any = None,
        span: dt.timedelta | None = None,
        start: Any = None,
        end: Any = None,
    ) -> IndicatorHistory:
        """Lean's ``IndicatorHistory(indicator, symbol(s), period | span[, resolution, selector])`` or
        ``(indicator, symbols, start, end[, resolution, selector])``: daily history bars, as many as ``period``
        plus the indicator's warm-up period less one, pushed through the reset indicator."""
        from include.lean_local import indicator_history

        if symbols is not None:
            if symbol is not None:
                raise TypeError("indicator_history() takes symbol or symbols, not both")
            symbol = symbols
        if span is not None:
            period = span
        if start is not None:
            period = start
        if isinstance(period, (dt.datetime, dt.date)) and isinstance(resolution, (dt.datetime, dt.date)):
            end, resolution = resolution, selector
            selector = None
        if (
            resolution is not None
            and not isinstance(resolution, (dt.datetime, dt.date))
            and int(resolution) != Resolution.DAILY
        ):
            raise NotSupportedByLocalRuntime(f"indicator_history at {Resolution(int(resolution)).name} resolution")
        if symbol is None or period is None:
            raise TypeError("indicator_history() needs an indicator, symbol(s) and a period, span or start")
        if isinstance(symbol, IndicatorBase) or not isinstance(indicator, IndicatorBase):
            raise NotSupportedByLocalRuntime("indicator_history of this indicator or history form")
        items = list(symbol) if isinstance(symbol, (list, tuple, set)) else [symbol]
        engine = self._engine
        bars: list[TradeBar] = []
        for item in items:
            sym = engine.securities.to_symbol(item)
            if isinstance(period, int):
                warm_up = indicator.warm_up_period
                if warm_up > 0 and period > 0:
                    warm_up -= 1
                bars += engine.history_bars(sym, period + warm_up)
            elif isinstance(period, dt.timedelta):
                bars += engine.history_bars(sym, None, self.time - period, self.time)
            elif isinstance(period, (dt.datetime, dt.date)):
                bars += engine.history_bars(sym, None, _to_datetime(period), _to_datetime(end) if end else None)
            else:
                raise TypeError("indicator_history() period must be an int, a timedelta or a start date")
        bars.sort(key=lambda bar: bar.end_time)
        return indicator_history.run(indicator, bars, selector)

    # history -------------------------------------------------------------------------
    def _history_normalized(self, symbol: Symbol, bars: list[TradeBar], mode: DataNormalizationMode) -> list[TradeBar]:
        """History bars in another price normalization than the security's: the same mode, or live (Raw
        prices) split-adjusted to today's shares, as Lean's history on a live data folder's factor files."""
        engine = self._engine
        own = engine.securities.security(symbol).data_normalization_mode if engine.securities.contains(symbol) else None
        if mode == own:
            return bars
        if not (engine.live and own == DataNormalizationMode.RAW and mode == DataNormalizationMode.SPLIT_ADJUSTED):
            raise NotSupportedByLocalRuntime(
                f"history(data_normalization_mode={mode.name}) on {own.name if own is not None else 'no'} prices "
                "(only the security's own mode, or SPLIT_ADJUSTED in live mode)"
            )
        today = int(self.time.strftime("%Y%m%d"))
        out = []
        for bar in bars:
            scale = engine.provider.split_scale(symbol.value, int(bar.end_time.strftime("%Y%m%d")), today)
            out.append(
                TradeBar(
                    bar.time,
                    symbol,
                    bar.open * scale,
                    bar.high * scale,
                    bar.low * scale,
                    bar.close * scale,
                    bar.volume / scale if scale else bar.volume,
                    end_time=bar.end_time,
                )
            )
        return out

    def history(self, symbols: Any, periods: Any = None, resolution: Any = None, **kwargs: Any) -> pd.DataFrame:
        """Daily bars as Lean's DataFrame (index: symbol, time; columns: close, high, low, open, volume)."""
        import pandas as pd  # only algorithms that ask for history pay for pandas

        engine = self._engine
        if resolution is not None and int(resolution) != Resolution.DAILY:
            raise NotSupportedByLocalRuntime(f"history at {Resolution(int(resolution)).name} resolution")
        if isinstance(symbols, type):
            raise NotSupportedByLocalRuntime("history(type, ...)")
        items = list(symbols) if isinstance(symbols, (list, tuple, set)) else [symbols]
        count: int | None = None
        start = end = None
        if isinstance(periods, int):
            count = periods
        elif isinstance(periods, dt.timedelta):
            start = self.time - periods
        elif isinstance(periods, (dt.datetime, dt.date)):
            start = _to_datetime(periods)
            end_arg = resolution if isinstance(resolution, (dt.datetime, dt.date)) else kwargs.get("end")
            end = _to_datetime(end_arg) if end_arg is not None else None
        mode = kwargs.get("data_normalization_mode")
        frames = []
        for item in items:
            sym = engine.securities.to_symbol(item)
            bars = engine.history_bars(sym, count, start, end)
            if not bars:
                continue
            if mode is not None:
                bars = self._history_normalized(sym, bars, DataNormalizationMode(int(mode)))
            frames.append(
                pd.DataFrame(
                    {
                        "close": [b.close for b in bars],
                        "high": [b.high for b in bars],
                        "low": [b.low for b in bars],
                        "open": [b.open for b in bars],
                        "volume": [b.volume for b in bars],
                    },
                    index=pd.MultiIndex.from_arrays(
                        [[sym] * len(bars), [b.end_time for b in bars]], names=["symbol", "time"]
                    ),
                )
            )
        if not frames:
            return pd.DataFrame(columns=["close", "high", "low", "open", "volume"])
        return pd.concat(frames)
