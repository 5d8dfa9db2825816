"""Runs one algorithm from a launcher config: load, initialize, loop, write results, exit code."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import inspect
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from include.atomic_io import atomic_write_bytes, atomic_write_text
from include.lean_local import __version__, live
from include.lean_local import benchmark as benchmarks
from include.lean_local.algorithm import QCAlgorithm
from include.lean_local.config import RuntimeConfig, load_config
from include.lean_local.data import DataProvider, set_default_provider
from include.lean_local.engine import Engine
from include.lean_local.errors import LocalConfigError, NotSupportedByLocalRuntime
from include.lean_local.object_store import ObjectStore
from include.lean_local.orders import OrderStatus
from include.lean_local.results import (
    sampled_charts,
    serialize_event,
    serialize_order,
    write_json,
    write_order_events,
)
from include.lean_local.sessions import utc_to_local
from include.lean_local.statistics import InterestRates, LeanSeries, StatisticsInput, compute
from include.lean_local.unsupported import install as install_lean_imports
from include.lean_local.unsupported import refusal_name
from include.lean_local.unsupported import uninstall as uninstall_lean_imports

SHIM_DIR = Path(__file__).resolve().parent / "shim"
_PROVIDERS: dict[Path, DataProvider] = {}


class RunLogs:
    def __init__(self) -> None:
        self.engine: list[str] = []
        self.algorithm: list[str] = []
        self.algorithm_time: dt.datetime | None = None

    def engine_line(self, message: str) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d %H:%M:%S.%f")[:-3]
        self.engine.append(f"{stamp} TRACE:: {message}")

    def algorithm_line(self, when: dt.datetime, kind: str, message: str) -> None:
        prefix = "ERROR:: " if kind == "error" else ""
        for line in message.splitlines() or [""]:
            self.algorithm.append(f"{when:%Y-%m-%d %H:%M:%S} {prefix}{line}")


def load_algorithm_class(cfg: RuntimeConfig) -> type[QCAlgorithm]:
    """AlgorithmPythonWrapper: import the module named after the file stem (its folder first on sys.path) and
    pick the QCAlgorithm subclass defined in that module (``algorithm-type-name`` breaks ties)."""
    folder = str(cfg.algorithm_location.parent)
    for path in (str(SHIM_DIR), folder):
        if path in sys.path:
            sys.path.remove(path)
    sys.path.insert(0, str(SHIM_DIR))
    sys.path.insert(0, folder)
    cached = sys.modules.get("AlgorithmImports")
    if cached is not None and not hasattr(cached, "QCAlgorithm"):
        # An earlier import found quantconnect-stubs' empty namespace package; use the shim.
        del sys.modules["AlgorithmImports"]
    name = cfg.algorithm_location.stem
    sys.modules.pop(name, None)
    install_lean_imports()
    module: ModuleType = importlib.import_module(name)
    candidates = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, QCAlgorithm)
        and obj is not QCAlgorithm
        and obj.__module__ == module.__name__
    ]
    if not candidates:
        raise LocalConfigError(
            f"no QCAlgorithm subclass defined in {cfg.algorithm_location} (config key 'algorithm-location')"
        )
    for cls in candidates:
        if cls.__name__ == cfg.algorithm_type_name:
            return cls
    return candidates[0]


def provider_for(folder: Path) -> DataProvider:
    key = folder.resolve()
    if key not in _PROVIDERS:
        _PROVIDERS[key] = DataProvider(key)
    return _PROVIDERS[key]


def run(config_path: str) -> int:
    try:
        cfg = load_config(config_path)
    except LocalConfigError as exc:
        sys.stderr.write(f"error: LocalConfigError: {exc}\n")
        return 2
    # In-process runs (tests, the CLI) must not leave the algorithm's folder importable afterwards: a later
    # ``import sched`` would find a user's sched.py. Restore sys.path and forget the modules loaded from there.
    saved_path = list(sys.path)
    modules_before = dict(sys.modules)
    try:
        return _run(cfg)
    finally:
        uninstall_lean_imports()
        sys.path[:] = saved_path
        # The modules the run loaded or replaced (the algorithm's module name may shadow one loaded before).
        loaded = {name for name, module in sys.modules.items() if modules_before.get(name) is not module}
        _forget_modules_under(cfg.algorithm_location.parent, loaded)


def _forget_modules_under(folder: Path, names: set[str]) -> None:
    """Forget the modules among ``names`` (those the run loaded) whose file lies under ``folder``."""
    root = folder.resolve()
    for name in names:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file and root in Path(file).resolve().parents:
            del sys.modules[name]


def _describe(exc: BaseException, cfg: RuntimeConfig) -> str:
    """The error text, plus the Lean name it refuses (``unsupported.refusal_name``). Any other error stays the
    algorithm's own, with its traceback: a name that is not Lean's is never called a refusal."""
    text = str(exc)
    refused = refusal_name(exc)
    if refused is not None and not isinstance(exc, NotSupportedByLocalRuntime):
        return f"{text} - not supported by the local runtime: {refused}"
    return text


def _report(exc: BaseException, cfg: RuntimeConfig, tb: str) -> None:
    """stderr: the traceback, then the error (with the Lean name it refuses) on one line."""
    sys.stderr.write(tb)
    sys.stderr.write(f"error: {type(exc).__name__}: {_describe(exc, cfg)}\n")


def _run(cfg: RuntimeConfig) -> int:
    logs = RunLogs()
    cfg.results_folder.mkdir(parents=True, exist_ok=True)
    logs.engine_line(
        f"Engine.Main(): LEAN ALGORITHMIC TRADING ENGINE (lean_local {__version__}) "
        f"Mode: {'LIVE' if cfg.live_mode else 'BACKTESTING'}"
    )
    logs.engine_line(f"JobQueue.NextJob(): Selected {cfg.algorithm_location}")
    try:
        cls = load_algorithm_class(cfg)
    except LocalConfigError as exc:
        logs.engine_line(f"Engine.Run(): {exc}")
        _write_logs(cfg, logs)
        sys.stderr.write(f"error: LocalConfigError: {exc}\n")
        return 2
    except Exception as exc:  # import errors in the user module are algorithm errors
        tb = traceback.format_exc()
        logs.engine_line(f"Loader.TryCreatePythonAlgorithm(): {_describe(exc, cfg)}\n{tb}")
        _write_logs(cfg, logs)
        _report(exc, cfg, tb)
        return 1
    started = time.perf_counter()
    code = _run_algorithm(cfg, cls, logs)
    logs.engine_line(f"Engine.Run(): Exiting with code {code} after {time.perf_counter() - started:.2f}s")
    logs.engine_line("Engine.Main(): Analysis Complete.")
    logs.engine_line("Program.Main(): Exiting Lean...")
    _write_logs(cfg, logs)
    return code


def _write_logs(cfg: RuntimeConfig, logs: RunLogs) -> None:
    atomic_write_text(cfg.results_folder / "log.txt", "\n".join(logs.engine) + "\n")
    if logs.algorithm:
        atomic_write_text(cfg.results_folder / f"{cfg.algorithm_id}-log.txt", "\n".join(logs.algorithm) + "\n")


class StartingPortfolioValue:
    """Lean's ``StartingPortfolioValue``, the Start Equity of the statistics (``startingCapital`` in
    PortfolioStatistics: Net Profit, Compounding Annual Return, the first daily return, the runtime Return).

    A backtest takes the portfolio's *cash* once Initialize is done (BacktestingSetupHandler.Setup):
    holdings an algorithm sets in Initialize (``portfolio[s].set_holdings``, a continued account) are
    not in it, as no price is known then. A warm-up re-captures it as the total portfolio value when
    the warm-up ends (BaseResultsHandler.OnWarmupFinished, called by the AlgorithmManager before the
    algorithm's own ``on_warmup_finished``, when the algorithm set a warm-up): holdings then count at
    the last price the warm-up brought, the close of the session before the start date. A live run's is
    the brokerage account's value at the start."""

    def __init__(self, engine: Engine, log_line: Callable[[str], None]) -> None:
        self.value: float | None = None
        self._engine = engine
        self._log_line = log_line

    def recapture_after_warmup(self) -> None:
        """After Initialize: when the algorithm warms up, take the value again as the warm-up ends."""
        engine = self._engine
        if not (engine.warmup_bars or engine.warmup_days):
            return
        algorithm_hook = engine._warmup_finished

        def warmup_finished() -> None:
            # The engine calls this once: before the first step without a warm-up, else when the
            # warm-up's last session is done (its prices are the securities' prices now).
            if engine.running:
                engine.portfolio.invalidate()
                value = engine.portfolio.total_portfolio_value()
                if value != self.value:
                    self.value = value
                    self._log_line(
                        f"BacktestingResultHandler.OnWarmupFinished(): Re-captured starting portfolio value "
                        f"after warm-up: {value}"
                    )
            algorithm_hook()

        engine._warmup_finished = warmup_finished  # type: ignore[method-assign]


# Lean's isolator limits (AlgorithmManager, LeakyBucketControlParameters) with their defaults: Lean fails an
# algorithm whose time step (or scheduled training) runs past them. The runtime enforces none, which gives
# Lean's outcome only while they are Lean's generous defaults.
ISOLATOR_DEFAULTS = {
    "algorithm-manager-time-loop-maximum": 20.0,  # minutes
    "scheduled-event-leaky-bucket-capacity": 120.0,
    "scheduled-event-leaky-bucket-time-interval-minutes": 1440.0,
    "scheduled-event-leaky-bucket-refill-amount": 18.0,
}


def _refuse_isolator_limits(cfg: RuntimeConfig) -> None:
    """A launcher config that sets one of Lean's isolator limits to another value than Lean's default is
    refused by name: Lean could stop the algorithm where the runtime would not."""
    for key, default in ISOLATOR_DEFAULTS.items():
        value = cfg.get(key)
        if value is None:
            continue
        try:
            same = float(value) == default
        except (TypeError, ValueError):
            same = False
        if not same:
            raise NotSupportedByLocalRuntime(f"config {key}={value} (Lean's isolator time limits are not enforced)")


# Lean's event handlers in their C# (PascalCase) names: Lean's Python wrapper calls an algorithm's Initialize,
# OnData... as well as initialize, on_data...; the runtime calls the snake_case names only, so an algorithm that
# defines a PascalCase handler is refused by name (else it would run without it: a silently different result).
PASCAL_CASE_HANDLERS = (
    "Initialize",
    "OnData",
    "OnOrderEvent",
    "OnEndOfAlgorithm",
    "OnEndOfDay",
    "OnSecuritiesChanged",
    "OnWarmupFinished",
    "OnDividends",
    "OnSplits",
    "OnDelistings",
    "OnSymbolChangedEvents",
    "OnMarginCall",
    "OnMarginCallWarning",
    "OnAssignmentOrderEvent",
    "OnBrokerageMessage",
)


def _refuse_pascal_case_handlers(cls: type) -> None:
    for name in PASCAL_CASE_HANDLERS:
        if any(name in vars(klass) for klass in cls.__mro__ if klass is not QCAlgorithm and klass is not object):
            raise NotSupportedByLocalRuntime(f"the PascalCase event handler {name} (only Lean's snake_case names)")


def _run_algorithm(cfg: RuntimeConfig, cls: type[QCAlgorithm], logs: RunLogs) -> int:
    provider = provider_for(cfg.data_folder)
    set_default_provider(provider)
    algorithm = cls()
    if not hasattr(algorithm, "_security_initializers"):
        QCAlgorithm.__init__(algorithm)
    engine = Engine(cfg, provider, algorithm, logs.engine_line)

    def sink(kind: str, message: str) -> None:
        logs.algorithm_line(algorithm.time, kind, message)

    store = ObjectStore(cfg.object_store_root)
    algorithm._bind(engine, cfg.parameters, store, sink)
    error: BaseException | None = None
    phase = "Initialize"
    starting = StartingPortfolioValue(engine, logs.engine_line)
    clock = None
    events_writer = None
    if cfg.live_mode:
        # Lean live: the algorithm's clock is the machine's (or the config's) from Initialize on.
        clock = live.LiveClock(cfg.fixed_now_utc, command_dir=Path.cwd())
        engine.clock = clock
        engine._set_time(utc_to_local(clock.now()))
        engine.start_date = engine.end_date = dt.datetime.combine(algorithm.time.date(), dt.time())
        events_writer = live.LiveResultWriter(cfg.results_folder, cfg.algorithm_id, serialize_event)
        engine.transactions.listeners.append(events_writer.order_event)
    # Live: SIGINT stops the algorithm from the start on (Lean's CancelKeyPress handler is set before the
    # job runs): one during Initialize stops the loop at its first step, and Lean still exits 0.
    stops = live.sigint_stops(clock) if clock is not None else contextlib.nullcontext()
    with stops:
        try:
            _refuse_isolator_limits(cfg)
            _refuse_pascal_case_handlers(type(algorithm))
            algorithm.initialize()
            algorithm._framework_post_initialize()  # Lean's PostInitialize: the framework's universes
            phase = "setup"
            engine.initialized = True
            starting.value = algorithm.portfolio.cash
            if cfg.live_mode:
                live.check_live_environment(cfg)
                live.load_brokerage_account(cfg, engine)
                starting.value = engine.portfolio.total_portfolio_value()
                logs.engine_line(
                    f"BrokerageSetupHandler.Setup(): live paper brokerage, cash {engine.portfolio.cash}, "
                    f"now {algorithm.utc_time:%Y-%m-%d %H:%M:%S} UTC"
                    + (" (clock from local-runtime-now)" if cfg.fixed_now_utc is not None else "")
                )
            else:
                starting.recapture_after_warmup()
                logs.engine_line(
                    f"BacktestingSetupHandler.Setup(): {algorithm.start_date:%Y-%m-%d} to "
                    f"{algorithm.end_date:%Y-%m-%d}, cash {algorithm.portfolio.cash}"
                )
            phase = "OnData"
            if not engine.stopped:
                engine.run()
                if clock is not None and clock.stop_reason is not None:
                    logs.engine_line(f"AlgorithmManager.Run(): {clock.stop_reason}: stopping the algorithm")
            phase = "OnEndOfAlgorithm"
            algorithm.on_end_of_algorithm()
        except Exception as exc:
            error = exc
            tb = traceback.format_exc()
            message = f"Runtime Error: {_describe(exc, cfg)} in {phase}\n{tb}"
            logs.engine_line(f"AlgorithmManager.Run(): {message}")
            logs.algorithm_line(algorithm.time, "error", message)
            _report(exc, cfg, tb)
    if error is None and engine.stopped:
        logs.engine_line("AlgorithmManager.Run(): Stopping algorithm... Algorithm Stopped")
    try:
        start_value = starting.value if starting.value is not None else algorithm.portfolio.cash
        if events_writer is not None:
            events_writer.flush()
        _write_results(cfg, engine, algorithm, start_value, error, logs)
    except Exception:  # results must never hide the algorithm outcome
        logs.engine_line("Results: failed to store results\n" + traceback.format_exc())
        return 1
    return 1 if error is not None else 0


def _write_results(
    cfg: RuntimeConfig,
    engine: Engine,
    algorithm: QCAlgorithm,
    start_cash: float,
    error: BaseException | None,
    logs: RunLogs,
) -> None:
    out = cfg.results_folder
    aid = cfg.algorithm_id
    if not cfg.live_mode:  # a live run's files are written as its events happen (live.LiveResultWriter)
        write_order_events(out / f"{aid}-order-events.json", engine.transactions.events, aid)
    daily = engine.daily_values
    stats, series = _statistics(cfg, engine, algorithm, start_cash, logs)
    charts = _charts(engine, algorithm, series)
    state = _state(engine, algorithm, aid, error)
    runtime = _runtime_statistics(engine, algorithm, start_cash)
    # GetAlgorithmRuntimeStatistics (Engine/Results/BaseResultsHandler.cs L967-974), a SortedDictionary
    runtime["Probabilistic Sharpe Ratio"] = stats.get("Probabilistic Sharpe Ratio", "0%")
    runtime = dict(sorted(runtime.items()))
    total_performance = {
        "portfolioStatistics": {
            "startEquity": start_cash,
            "endEquity": round(daily[-1][1] if daily else start_cash, 2),
        },
        "tradeStatistics": {"totalNumberOfTrades": len(engine.portfolio.trades)},
        "closedTrades": [],
    }
    result = {
        "rollingWindow": {},
        "totalPerformance": total_performance,
        "charts": charts,
        "orders": {str(o.id): serialize_order(o) for o in engine.transactions.orders.values()},
        "profitLoss": {},
        "statistics": stats,
        "runtimeStatistics": runtime,
        "state": state,
        "algorithmConfiguration": {
            "name": aid,
            "parameters": cfg.parameters,
            "startDate": algorithm.start_date.strftime("%Y-%m-%d %H:%M:%S"),
            "endDate": algorithm.end_date.strftime("%Y-%m-%d %H:%M:%S"),
            "accountCurrency": "USD",
        },
    }
    if cfg.live_mode:
        write_json(out / f"{aid}.json", live_result(engine, algorithm, result))
        _write_failed_data_requests(cfg, engine)
        return
    write_json(out / f"{aid}.json", result)
    summary = {
        "statistics": stats,
        "totalPerformance": total_performance,
        "state": state,
        "runtimeStatistics": runtime,
        "algorithmConfiguration": result["algorithmConfiguration"],
        "charts": {"Strategy Equity": charts["Strategy Equity"]},
    }
    write_json(out / f"{aid}-summary.json", summary)
    _write_failed_data_requests(cfg, engine)


def _write_failed_data_requests(cfg: RuntimeConfig, engine: Engine) -> None:
    missing = engine.feed.missing_data
    if missing:
        atomic_write_bytes(
            cfg.results_folder / f"failed-data-requests-{cfg.algorithm_id}.txt", ("\n".join(missing) + "\n").encode()
        )


def live_result(engine: Engine, algorithm: QCAlgorithm, result: dict[str, Any]) -> dict[str, Any]:
    """Lean's ``LiveResult`` (``Common/Packets/LiveResultPacket.cs``): the result's charts, orders, statistics and
    state, plus the brokerage's holdings and cash book; no rolling window, no total performance."""
    holdings = {}
    for sec in sorted(engine.securities.values(), key=lambda s: s.symbol.value):
        quantity = sec.holdings.quantity
        if quantity == 0:
            continue
        price = sec.price
        holdings[str(sec.symbol.id)] = {
            "symbol": sec.symbol.to_json(),
            "type": 1,
            "currencySymbol": "$",
            "averagePrice": sec.holdings.average_price,
            "quantity": quantity,
            "marketPrice": price,
            "conversionRate": 1.0,
            "marketValue": quantity * price,
            "unrealizedPnl": round((price - sec.holdings.average_price) * quantity, 2),
            "unrealizedPnLPercent": round((price / sec.holdings.average_price - 1) * 100, 2)
            if sec.holdings.average_price
            else 0.0,
        }
    cash = algorithm.portfolio.cash
    return {
        "holdings": holdings,
        "cash": {
            "USD": {
                "symbol": "USD",
                "amount": cash,
                "conversionRate": 1.0,
                "currencySymbol": "$",
                "valueInAccountCurrency": cash,
            }
        },
        "accountCurrency": "USD",
        "accountCurrencySymbol": "$",
        "charts": result["charts"],
        "orders": result["orders"],
        "profitLoss": result["profitLoss"],
        "statistics": result["statistics"],
        "runtimeStatistics": result["runtimeStatistics"],
        "state": result["state"],
        "serverStatistics": {"Hostname": "lean_local"},
        "algorithmConfiguration": result["algorithmConfiguration"],
    }


def _statistics(
    cfg: RuntimeConfig, engine: Engine, algorithm: QCAlgorithm, start_cash: float, logs: RunLogs
) -> tuple[dict[str, str], LeanSeries]:
    """Lean's statistics over Lean's samples of the run (statistics.py, benchmark.py)."""
    benchmark = benchmarks.resolve(getattr(algorithm, "_benchmark", None), engine.provider)
    series = benchmarks.run_series(engine, start_cash, benchmark)
    for path in benchmark.missing:
        logs.engine_line(
            f"Benchmark: no hourly data for {benchmark.description} ({path}): its value is 0, as in Lean, so "
            "Alpha, Beta and Treynor Ratio are 0 and Information Ratio and Tracking Error compare with a flat line"
        )
    rates = InterestRates(cfg.data_folder)
    if not rates.loaded:
        logs.engine_line(f"InterestRateProvider: no interest rates at {rates.path}: 1% every day, as in Lean")
    # Lean's CapacityEstimate follows the fills only: without any, its lowest capacity asset is none ("")
    filled = {str(e.symbol.id) for e in engine.transactions.events if e.status == OrderStatus.FILLED}
    traded = sorted({str(o.symbol.id) for o in engine.transactions.orders.values()})
    stats = compute(
        StatisticsInput(
            start_equity=start_cash,
            series=series,
            total_orders=len(engine.transactions.orders),
            total_fees=algorithm.portfolio.total_fees,
            trades=engine.portfolio.trades,
            rates=rates,
            lowest_capacity_asset="" if not filled else traded[0] if len(traded) == 1 else None,
        )
    )
    return stats, series


def _charts(engine: Engine, algorithm: QCAlgorithm, series: LeanSeries) -> dict[str, Any]:
    """Strategy Equity (the close of each session run), Lean's daily Benchmark and Drawdown charts and the
    algorithm's own plots."""
    sessions = engine.sessions
    equity_values: list[list[float]] = []
    for day, value in engine.daily_values:
        i = sessions.index_of(day)
        stamp = int(sessions.close_epoch(i)) if i < len(sessions.days) else 0
        equity_values.append([stamp, round(value, 2), round(value, 2), round(value, 2), round(value, 2)])
    charts: dict[str, Any] = {
        "Strategy Equity": {
            "name": "Strategy Equity",
            "chartType": 0,
            "series": {"Equity": {"name": "Equity", "unit": "$", "index": 0, "seriesType": 2, "values": equity_values}},
        },
    }
    charts.update(sampled_charts(series))
    for chart, plotted in algorithm._charts.items():
        charts[chart] = {
            "name": chart,
            "chartType": 0,
            "series": {
                name: {"name": name, "unit": "$", "index": 0, "seriesType": 0, "values": [[t, v] for t, v in points]}
                for name, points in plotted.items()
            },
        }
    return charts


def _state(engine: Engine, algorithm: QCAlgorithm, aid: str, error: BaseException | None) -> dict[str, str]:
    # Lean ends a stopped algorithm Completed too (Engine/AlgorithmManager.cs L636-654).
    status = "RuntimeError" if error is not None else "Completed"
    state = {
        "Status": status,
        "Name": aid,
        "StartTime": algorithm.start_date.strftime("%Y-%m-%d %H:%M:%S"),
        "EndTime": algorithm.end_date.strftime("%Y-%m-%d %H:%M:%S"),
        "RuntimeError": str(error or ""),
        "StackTrace": "".join(traceback.format_exception(error)) if error else "",
        "Hostname": "lean_local",
        # As Lean's GetAlgorithmState: what tells a run without orders from a run without results.
        "OrderCount": str(len(engine.transactions.orders)),
    }
    if engine.feed.missing_data:
        state["FailedDataRequests"] = "; ".join(engine.feed.missing_data)
    return state


def _runtime_statistics(engine: Engine, algorithm: QCAlgorithm, start_cash: float) -> dict[str, str]:
    portfolio = algorithm.portfolio
    holdings_value = portfolio.total_holdings_value
    equity = engine.portfolio.total_portfolio_value
    return {
        "Equity": f"${equity():,.2f}",
        "Fees": f"-${portfolio.total_fees:,.2f}",
        "Holdings": f"${holdings_value:,.2f}",
        "Net Profit": f"${portfolio.total_net_profit:,.2f}",
        "Return": f"{(equity() / start_cash - 1) * 100 if start_cash else 0:.2f} %",
        "Unrealized": f"${portfolio.total_unrealized_profit:,.2f}",
        "Volume": f"${engine.portfolio.sales_volume:,.2f}",
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m include.lean_local", description=__doc__)
    parser.add_argument("--config", required=True, help="Lean launcher config.json")
    args = parser.parse_args(argv)
    return run(args.config)
