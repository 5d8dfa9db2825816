"""Runs one algorithm from a launcher config: load, initialize, loop, write results, exit code."""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import json
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from include.atomic_io import atomic_write_bytes, atomic_write_text
from include.lean_local import __version__
from include.lean_local.algorithm import ObjectStore, QCAlgorithm
from include.lean_local.config import RuntimeConfig, load_config
from include.lean_local.data import DataProvider, nyse_sessions, set_default_provider, yyyymmdd
from include.lean_local.engine import Engine
from include.lean_local.errors import LocalConfigError
from include.lean_local.results import serialize_order, write_json, write_order_events
from include.lean_local.statistics import compute, risk_free_rate

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
    module: ModuleType = importlib.import_module(name)
    candidates = [obj for obj in vars(module).values()
                  if inspect.isclass(obj) and issubclass(obj, QCAlgorithm) and obj is not QCAlgorithm
                  and obj.__module__ == module.__name__]
    if not candidates:
        raise LocalConfigError(f"no QCAlgorithm subclass defined in {cfg.algorithm_location} "
                               "(config key 'algorithm-location')")
    for cls in candidates:
        if cls.__name__ == cfg.algorithm_type_name:
            return cls
    return candidates[0]


def provider_for(folder: Path) -> DataProvider:
    key = folder.resolve()
    if key not in _PROVIDERS:
        _PROVIDERS[key] = DataProvider(key)
    return _PROVIDERS[key]


def run(config_path: str, progress: Any = None) -> int:
    try:
        cfg = load_config(config_path)
    except LocalConfigError as exc:
        sys.stderr.write(f"error: LocalConfigError: {exc}\n")
        return 2
    # In-process runs (tests, the CLI) must not leave the algorithm's folder importable afterwards: a later
    # ``import sched`` would find a user's sched.py. Restore sys.path and forget the modules loaded from there.
    saved_path = list(sys.path)
    try:
        return _run(cfg, progress)
    finally:
        sys.path[:] = saved_path
        _forget_modules_under(cfg.algorithm_location.parent)


def _forget_modules_under(folder: Path) -> None:
    root = folder.resolve()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and root in Path(file).resolve().parents:
            del sys.modules[name]


def _describe(exc: BaseException, cfg: RuntimeConfig) -> str:
    """The error text, plus the runtime's reading of a NameError raised in the algorithm's own file: most
    often a Lean name outside the local AlgorithmImports subset."""
    text = str(exc)
    tb = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, NameError) and exc.name and tb \
            and Path(tb[-1].filename).resolve() == cfg.algorithm_location.resolve():
        text += (f" - not supported by the local runtime: {exc.name} (not in the local AlgorithmImports subset; "
                 "if it is not a Lean name, check its spelling)")
    return text


def _run(cfg: RuntimeConfig, progress: Any) -> int:
    logs = RunLogs()
    cfg.results_folder.mkdir(parents=True, exist_ok=True)
    logs.engine_line(f"Engine.Main(): LEAN ALGORITHMIC TRADING ENGINE (lean_local {__version__}) "
                     f"Mode: {'LIVE' if cfg.live_mode else 'BACKTESTING'}")
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
        sys.stderr.write(tb)
        return 1
    started = time.perf_counter()
    code = _run_algorithm(cfg, cls, logs, progress)
    logs.engine_line(f"Engine.Run(): Exiting with code {code} after {time.perf_counter() - started:.2f}s")
    logs.engine_line("Engine.Main(): Analysis Complete.")
    logs.engine_line("Program.Main(): Exiting Lean...")
    _write_logs(cfg, logs)
    return code


def _write_logs(cfg: RuntimeConfig, logs: RunLogs) -> None:
    atomic_write_text(cfg.results_folder / "log.txt", "\n".join(logs.engine) + "\n")
    if logs.algorithm:
        atomic_write_text(cfg.results_folder / f"{cfg.algorithm_id}-log.txt", "\n".join(logs.algorithm) + "\n")


def _run_algorithm(cfg: RuntimeConfig, cls: type[QCAlgorithm], logs: RunLogs, progress: Any) -> int:
    from include.lean_local import live as live_mod

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
    state = None
    error: BaseException | None = None
    phase = "Initialize"
    try:
        algorithm.initialize()
        phase = "setup"
        engine.initialized = True
        start_cash = algorithm.portfolio.cash
        if cfg.live_mode:
            state = live_mod.prepare(cfg, engine, algorithm)
            start_cash = state.start_equity
        logs.engine_line(f"BacktestingSetupHandler.Setup(): {algorithm.start_date:%Y-%m-%d} to "
                         f"{algorithm.end_date:%Y-%m-%d}, cash {algorithm.portfolio.cash}")
        phase = "OnData"
        if not engine.stopped:
            engine.run()
        phase = "OnEndOfAlgorithm"
        algorithm.on_end_of_algorithm()
    except Exception as exc:
        error = exc
        tb = traceback.format_exc()
        message = f"Runtime Error: {_describe(exc, cfg)} in {phase}\n{tb}"
        logs.engine_line(f"AlgorithmManager.Run(): {message}")
        logs.algorithm_line(algorithm.time, "error", message)
        sys.stderr.write(tb)
    if error is None and engine.stopped:
        logs.engine_line("AlgorithmManager.Run(): Stopping algorithm... Algorithm Stopped")
    if cfg.live_mode and state is not None and error is None:
        live_mod.save(cfg, engine, algorithm, state)
    try:
        _write_results(cfg, engine, algorithm, start_cash if engine.initialized else algorithm.portfolio.cash,
                       error, logs)
    except Exception:  # results must never hide the algorithm outcome
        logs.engine_line("Results: failed to store results\n" + traceback.format_exc())
        return 1
    return 1 if error is not None else 0


def _write_results(cfg: RuntimeConfig, engine: Engine, algorithm: QCAlgorithm, start_cash: float,
                   error: BaseException | None, logs: RunLogs) -> None:
    out = cfg.results_folder
    aid = cfg.algorithm_id
    if cfg.live_mode:
        from include.lean_local.live import live_events_filename

        write_order_events(out / live_events_filename(cfg, engine), engine.events, aid)
    else:
        write_order_events(out / f"{aid}-order-events.json", engine.events, aid)
    daily = engine.daily_values
    turnover = engine.daily_turnover
    sessions = nyse_sessions()
    rf = risk_free_rate(cfg.data_folder, [d for d, _ in daily])
    traded = sorted({str(o.symbol.id) for o in engine.orders.values()})
    from include.lean_local.statistics import calendar_samples

    last_day = algorithm.end_date.date()
    if daily:
        last_day = min(last_day, dt.date(daily[-1][0] // 10000, daily[-1][0] // 100 % 100, daily[-1][0] % 100))
    cal_values, cal_turnover = calendar_samples(algorithm.start_date.date(), last_day, daily, start_cash,
                                                engine.daily_sales)
    years = None
    if daily:
        i = sessions.index_of(daily[-1][0])
        years = (sessions.closes[i] - algorithm.start_date).total_seconds() / 86400 / 365
    stats = compute(start_cash, daily, len(engine.orders), algorithm.portfolio.total_fees, cal_turnover,
                    engine.trades, rf, algorithm.start_date.date(), traded[0] if len(traded) == 1 else "",
                    years=years, calendar_values=cal_values)
    _ = turnover
    if not daily:
        stats["End Equity"] = stats["Start Equity"]
    equity_values: list[list[float]] = []
    for day, value in daily:
        i = sessions.index_of(day)
        stamp = int(sessions.close_epoch[i]) if i < len(sessions.days) else 0
        equity_values.append([stamp, round(value, 2), round(value, 2), round(value, 2), round(value, 2)])
    charts: dict[str, Any] = {
        "Strategy Equity": {"name": "Strategy Equity", "chartType": 0, "series": {
            "Equity": {"name": "Equity", "unit": "$", "index": 0, "seriesType": 2, "values": equity_values}}},
    }
    for chart, series in algorithm._charts.items():
        charts[chart] = {"name": chart, "chartType": 0, "series": {
            name: {"name": name, "unit": "$", "index": 0, "seriesType": 0, "values": [[t, v] for t, v in points]}
            for name, points in series.items()}}
    status = "RuntimeError" if error is not None else ("Stopped" if engine.stopped else "Completed")
    state = {"Status": status, "Name": aid, "StartTime": algorithm.start_date.strftime("%Y-%m-%d %H:%M:%S"),
             "EndTime": algorithm.end_date.strftime("%Y-%m-%d %H:%M:%S"), "RuntimeError": str(error or ""),
             "StackTrace": "".join(traceback.format_exception(error)) if error else "", "Hostname": "lean_local"}
    if engine.missing_data:
        state["FailedDataRequests"] = "; ".join(engine.missing_data)
    holdings_value = algorithm.portfolio.total_holdings_value
    runtime = {
        "Equity": f"${engine.total_portfolio_value():,.2f}",
        "Fees": f"-${algorithm.portfolio.total_fees:,.2f}",
        "Holdings": f"${holdings_value:,.2f}",
        "Net Profit": f"${algorithm.portfolio.total_net_profit:,.2f}",
        "Return": f"{(engine.total_portfolio_value() / start_cash - 1) * 100 if start_cash else 0:.2f} %",
        "Unrealized": f"${algorithm.portfolio.total_unrealized_profit:,.2f}",
        "Volume": f"${engine.sales_volume:,.2f}",
    }
    total_performance = {"portfolioStatistics": {"startEquity": start_cash, "endEquity": round(
        daily[-1][1] if daily else start_cash, 2)}, "tradeStatistics": {"totalNumberOfTrades": len(engine.trades)},
        "closedTrades": []}
    result = {
        "rollingWindow": {},
        "totalPerformance": total_performance,
        "charts": charts,
        "orders": {str(o.id): serialize_order(o) for o in engine.orders.values()},
        "profitLoss": {},
        "statistics": stats,
        "runtimeStatistics": runtime,
        "state": state,
        "algorithmConfiguration": {"name": aid, "parameters": cfg.parameters, "startDate": algorithm.start_date
                                   .strftime("%Y-%m-%d %H:%M:%S"), "endDate": algorithm.end_date
                                   .strftime("%Y-%m-%d %H:%M:%S"), "accountCurrency": "USD"},
    }
    write_json(out / f"{aid}.json", result)
    summary = {"statistics": stats, "totalPerformance": total_performance, "state": state,
               "runtimeStatistics": runtime, "algorithmConfiguration": result["algorithmConfiguration"],
               "charts": {"Strategy Equity": charts["Strategy Equity"]}}
    write_json(out / f"{aid}-summary.json", summary)
    if engine.missing_data:
        atomic_write_bytes(out / f"failed-data-requests-{cfg.algorithm_id}.txt",
                           ("\n".join(engine.missing_data) + "\n").encode())
    _ = json, yyyymmdd


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m include.lean_local", description=__doc__)
    parser.add_argument("--config", required=True, help="Lean launcher config.json")
    args = parser.parse_args(argv)
    return run(args.config)
