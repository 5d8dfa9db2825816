"""``QCAlgorithm``: the snake_case API subset of Lean's QCAlgorithm the local runtime implements."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.indicators import (
    ExponentialMovingAverage,
    Identity,
    IndicatorBase,
    Momentum,
    MomentumPercent,
    MovingAverageConvergenceDivergence,
    RateOfChange,
    RateOfChangePercent,
    SimpleMovingAverage,
)
from include.lean_local.model import (
    AlgorithmSettings,
    Delistings,
    Dividends,
    Order,
    OrderTicket,
    OrderType,
    PortfolioTarget,
    Resolution,
    Security,
    SecurityPortfolioManager,
    Slice,
    Splits,
)
from include.lean_local.scheduling import DateRules, ScheduleManager, TimeRules
from include.lean_local.symbols import Symbol

_UNSET = object()


class ObjectStore:
    """Lean's LocalObjectStore: keys are files under ``object-store-root``."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    def _path(self, key: str) -> Path:
        clean = key.lstrip("/\\")
        path = (self._root / clean).resolve()
        root = self._root.resolve()
        if root != path and root not in path.parents:
            raise ValueError(f"object store key escapes the store root: {key!r}")
        return path

    def contains_key(self, key: str) -> bool:
        return self._path(key).is_file()

    def save(self, key: str, text: str | None = None) -> bool:
        return self.save_bytes(key, ("" if text is None else str(text)).encode("utf-8"))

    def save_string(self, key: str, text: str) -> bool:
        return self.save(key, text)

    def save_bytes(self, key: str, data: bytes | bytearray) -> bool:
        from include.atomic_io import atomic_write_bytes

        atomic_write_bytes(self._path(key), bytes(data))
        return True

    def save_json(self, key: str, obj: Any) -> bool:
        return self.save(key, json.dumps(obj))

    def read(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def read_string(self, key: str) -> str:
        return self.read(key)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise KeyError(f"Object store key not found: {key}")
        return path.read_bytes()

    def read_json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def delete(self, key: str) -> bool:
        path = self._path(key)
        if path.is_file():
            path.unlink()
            return True
        return False

    def get_file_path(self, key: str) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.fspath(path)

    @property
    def keys(self) -> list[str]:
        if not self._root.is_dir():
            return []
        return sorted(p.relative_to(self._root).as_posix() for p in self._root.rglob("*") if p.is_file())

    def __contains__(self, key: str) -> bool:
        return self.contains_key(key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"object_store.{name}")


class SecurityManager:
    def __init__(self, algorithm: QCAlgorithm) -> None:
        self._algorithm = algorithm

    def __getitem__(self, key: Any) -> Security:
        return self._algorithm._engine.security(key)

    def __contains__(self, key: Any) -> bool:
        return self._algorithm._engine.has_security(key)

    def contains_key(self, key: Any) -> bool:
        return key in self

    def __iter__(self) -> Any:
        from include.lean_local.model import KeyValuePair

        return (KeyValuePair(s.symbol, s) for s in self._algorithm._engine.securities_list())

    def __len__(self) -> int:
        return len(self._algorithm._engine.securities_list())

    def keys(self) -> list[Symbol]:
        return [s.symbol for s in self._algorithm._engine.securities_list()]

    def values(self) -> list[Security]:
        return self._algorithm._engine.securities_list()

    def items(self) -> list[tuple[Symbol, Security]]:
        return [(s.symbol, s) for s in self._algorithm._engine.securities_list()]

    @property
    def total(self) -> list[Security]:
        return self.values()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"securities.{name}")


class SecurityTransactionManager:
    def __init__(self, algorithm: QCAlgorithm) -> None:
        self._algorithm = algorithm

    @property
    def _engine(self) -> Any:
        return self._algorithm._engine

    def get_order_by_id(self, order_id: int) -> Order | None:
        return self._engine.orders.get(int(order_id))

    def get_order_ticket(self, order_id: int) -> OrderTicket | None:
        return self._engine.tickets.get(int(order_id))

    def get_open_orders(self, symbol: Any = None) -> list[Order]:
        return self._engine.open_orders(symbol)

    def get_open_order_tickets(self, symbol: Any = None) -> list[OrderTicket]:
        return [self._engine.tickets[o.id] for o in self._engine.open_orders(symbol)]

    def get_orders(self, filter: Callable[[Order], bool] | None = None) -> list[Order]:
        orders = list(self._engine.orders.values())
        return orders if filter is None else [o for o in orders if filter(o)]

    def get_order_tickets(self, filter: Callable[[OrderTicket], bool] | None = None) -> list[OrderTicket]:
        tickets = list(self._engine.tickets.values())
        return tickets if filter is None else [t for t in tickets if filter(t)]

    def cancel_open_orders(self, symbol: Any = None, tag: str | None = None) -> list[OrderTicket]:
        out = []
        for order in self._engine.open_orders(symbol):
            self._engine.cancel_order(order.id, tag)
            out.append(self._engine.tickets[order.id])
        return out

    def cancel_order(self, order_id: int, tag: str | None = None) -> bool:
        return bool(self._engine.cancel_order(int(order_id), tag))

    def get_open_orders_remaining_quantity(self, symbol: Any = None) -> float:
        return sum(self._engine.tickets[o.id].quantity_remaining for o in self._engine.open_orders(symbol))

    @property
    def orders_count(self) -> int:
        return len(self._engine.orders)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"transactions.{name}")


def _to_datetime(y: Any, m: int | None = None, d: int | None = None) -> dt.datetime:
    if isinstance(y, dt.datetime):
        return y.replace(tzinfo=None)
    if isinstance(y, dt.date):
        return dt.datetime(y.year, y.month, y.day)
    if m is None or d is None:
        raise TypeError("expected (year, month, day) or a date/datetime")
    return dt.datetime(int(y), int(m), int(d))


class QCAlgorithm:
    """Base class of user algorithms. Names outside the supported subset raise NotSupportedByLocalRuntime."""

    def __init__(self) -> None:
        self._engine: Any = None
        self._parameters: dict[str, str] = {}
        self._security_initializers: list[Callable[[Security], Any]] = []
        self._replaced_initializer = False
        self._log_sink: Callable[[str, str], None] | None = None
        self._charts: dict[str, dict[str, list[tuple[int, float]]]] = {}
        self._cash_set = False
        self.time = dt.datetime(1998, 1, 1)
        self.utc_time = dt.datetime(1998, 1, 1, tzinfo=dt.UTC)
        self.settings = AlgorithmSettings()
        self.date_rules = DateRules()
        self.time_rules = TimeRules()
        self.current_slice: Slice | None = None
        self.name = type(self).__name__

    def _bind(self, engine: Any, parameters: dict[str, str], object_store: ObjectStore,
              log_sink: Callable[[str, str], None]) -> None:
        self._engine = engine
        self._parameters = dict(parameters)
        self._log_sink = log_sink
        self.portfolio = SecurityPortfolioManager(engine)
        self.securities = SecurityManager(self)
        self.transactions = SecurityTransactionManager(self)
        self.schedule = ScheduleManager(engine)
        self.object_store = object_store

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(name)

    # lifecycle (overridden by users) ----------------------------------------
    def initialize(self) -> None:
        pass

    def on_data(self, data: Slice) -> None:
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
    def set_start_date(self, year: Any, month: int | None = None, day: int | None = None) -> None:
        self._engine.start_date = _to_datetime(year, month, day)
        self.time = self._engine.start_date

    def set_end_date(self, year: Any, month: int | None = None, day: int | None = None) -> None:
        self._engine.end_date = _to_datetime(year, month, day)

    @property
    def start_date(self) -> dt.datetime:
        return self._engine.start_date

    @property
    def end_date(self) -> dt.datetime:
        return self._engine.end_date

    def set_cash(self, cash: Any, conversion_rate: float = 0, currency: Any = None) -> None:
        if isinstance(cash, str):
            if cash.upper() != "USD":
                raise NotSupportedByLocalRuntime(f"set_cash in {cash}")
            cash = conversion_rate
        if not getattr(self._engine, "cash_locked", False):
            self.portfolio.set_cash(float(cash))
        self._cash_set = True

    def set_warm_up(self, period: Any, resolution: Any = None) -> None:
        if isinstance(period, dt.timedelta):
            self._engine.warmup_days = period
        else:
            self._engine.warmup_bars = int(period)

    set_warmup = set_warm_up

    @property
    def is_warming_up(self) -> bool:
        return bool(self._engine.is_warming_up)

    @property
    def live_mode(self) -> bool:
        return bool(self._engine.live)

    def add_equity(self, ticker: str, resolution: Any = None, market: Any = None, fill_forward: bool = True,
                   leverage: float = 0.0, extended_market_hours: bool = False,
                   data_normalization_mode: Any = None, **_: Any) -> Security:
        return self._engine.add_equity(ticker, resolution, leverage=leverage or None, fill_forward=fill_forward,
                                       data_normalization_mode=data_normalization_mode)

    def set_security_initializer(self, initializer: Any) -> None:
        fn = initializer if callable(initializer) else getattr(initializer, "initialize", None)
        if fn is None:
            raise TypeError("security initializer must be callable or define initialize(security)")
        self._security_initializers = [fn]
        self._replaced_initializer = True

    def add_security_initializer(self, initializer: Any) -> None:
        fn = initializer if callable(initializer) else getattr(initializer, "initialize", None)
        if fn is None:
            raise TypeError("security initializer must be callable or define initialize(security)")
        self._security_initializers.append(fn)

    def _run_security_initializers(self, security: Security) -> None:
        for fn in self._security_initializers:
            fn(security)

    def set_benchmark(self, benchmark: Any) -> None:
        self._benchmark = benchmark

    # parameters ----------------------------------------------------------------
    def get_parameter(self, name: str, default_value: Any = _UNSET) -> Any:
        value = self._parameters.get(name)
        if default_value is _UNSET:
            return value
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

    def error(self, message: Any) -> None:
        self._emit_log("error", message)

    def quit(self, message: str = "") -> None:
        self._engine.stopped = True
        self._engine.quit_message = message
        if message:
            self.debug(f"Quit(): {message}")

    # charts --------------------------------------------------------------------
    def plot(self, chart: str, series: Any, value: Any = None) -> None:
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

    # orders --------------------------------------------------------------------
    def _daily_market_order_type(self) -> OrderType:
        engine = self._engine
        if not engine.exchange_open():
            if not getattr(self, "_moo_warned", False):
                self._moo_warned = True
                self.debug("Warning: market orders submitted while the market is closed are automatically converted "
                           "into MarketOnOpen orders to fill at the next market open.")
            return OrderType.MARKET_ON_OPEN
        if engine.live:
            return OrderType.MARKET
        if not getattr(self, "_daily_warned", False):
            self._daily_warned = True
            self.debug("Warning: market orders on daily resolution data sent during market hours are automatically "
                       "converted into MarketOnClose orders (or MarketOnOpen near the close) to avoid filling at the "
                       "stale previous close. Note: in live trading this conversion is not applied, as the order "
                       "fills at the current market price.")
        from include.lean_local.data import local_to_utc
        from include.lean_local.engine import MOC_BUFFER

        close = engine._next_close_after(self.time)
        if self.utc_time > local_to_utc(close) - MOC_BUFFER:
            return OrderType.MARKET_ON_OPEN
        return OrderType.MARKET_ON_CLOSE

    def market_order(self, symbol: Any, quantity: float, asynchronous: bool = False, tag: str = "",
                     order_properties: Any = None) -> OrderTicket:
        if self._engine.live and self._engine.exchange_open():
            return self._engine.submit_order(symbol, quantity, OrderType.MARKET, tag)
        if self._engine.live:
            # live paper broker: the single live step runs at the session close, fill now at the latest price
            return self._engine.submit_order(symbol, quantity, OrderType.MARKET, tag)
        return self._engine.submit_order(
            symbol, quantity, self._daily_market_order_type(), tag)

    def order(self, symbol: Any, quantity: float, asynchronous: bool = False, tag: str = "",
              order_properties: Any = None) -> OrderTicket:
        return self.market_order(symbol, quantity, asynchronous, tag)

    def market_on_open_order(self, symbol: Any, quantity: float, asynchronous: bool = False, tag: str = "",
                             order_properties: Any = None) -> OrderTicket:
        return self._engine.submit_order(symbol, quantity, OrderType.MARKET_ON_OPEN, tag)

    def market_on_close_order(self, symbol: Any, quantity: float, asynchronous: bool = False, tag: str = "",
                              order_properties: Any = None) -> OrderTicket:
        return self._engine.submit_order(
            symbol, quantity, OrderType.MARKET_ON_CLOSE, tag)

    def limit_order(self, symbol: Any, quantity: float, limit_price: float, asynchronous: bool = False,
                    tag: str = "", order_properties: Any = None) -> OrderTicket:
        return self._engine.submit_order(
            symbol, quantity, OrderType.LIMIT, tag, float(limit_price))

    def liquidate(self, symbol: Any = None, asynchronous: bool = False, tag: str | None = None,
                  order_properties: Any = None) -> list[OrderTicket]:
        engine = self._engine
        if not self.settings.liquidate_enabled:
            self.debug("Liquidate() is currently disabled by settings. To re-enable please set "
                       "'Settings.LiquidateEnabled' to true")
            return []
        tag = "Liquidated" if tag is None else tag
        if symbol is None:
            symbols = sorted((s.symbol for s in engine.securities_list()), key=lambda s: s.value)
        elif isinstance(symbol, (list, tuple)):
            symbols = [engine.to_symbol(s) for s in symbol]
        else:
            symbols = [engine.to_symbol(symbol)]
        tickets: list[OrderTicket] = []
        for sym in symbols:
            if not engine.has_security(sym):
                continue
            orders = engine.open_orders(sym)
            holding = engine.security(sym).holdings
            quantity = holding.quantity if holding.invested else 0.0
            if len(orders) == 1 and quantity != 0 and orders[0].quantity == -quantity and \
                    orders[0].type == OrderType.MARKET:
                continue
            market_qty = 0.0
            for order in orders:
                if order.type == OrderType.MARKET:
                    market_qty += engine.tickets[order.id].quantity_remaining
                else:
                    engine.cancel_order(order.id, tag)
            if quantity != 0:
                tickets.append(self.market_order(sym, -quantity - market_qty, tag=tag))
        return tickets

    def calculate_order_quantity(self, symbol: Any, target: float) -> float:
        qty = self._engine.percent_target_quantity(symbol, float(target), delta=True)
        return 0.0 if qty is None else float(qty)

    def _symbols_to_liquidate(self, keep: list[Symbol]) -> list[Symbol]:
        keep_set = set(keep)
        return sorted((s.symbol for s in self._engine.securities_list() if s.symbol not in keep_set),
                      key=lambda s: s.value)

    def set_holdings(self, symbol: Any, percentage: float | None = None, liquidate_existing_holdings: bool = False,
                     asynchronous: bool = False, tag: str | None = None, order_properties: Any = None,
                     **kwargs: Any) -> list[OrderTicket]:
        engine = self._engine
        if isinstance(symbol, (list, tuple)):
            if isinstance(percentage, bool):
                liquidate_existing_holdings = percentage
            targets = [PortfolioTarget(engine.to_symbol(t.symbol), t.quantity) for t in symbol]
            tickets: list[OrderTicket] = []
            if liquidate_existing_holdings:
                tickets += self.liquidate(self._symbols_to_liquidate([t.symbol for t in targets]), tag=tag)
            deltas = [(t.symbol, self.calculate_order_quantity(t.symbol, t.quantity)) for t in targets]
            for sym, qty in self._order_by_margin_impact(deltas):
                tickets += self._set_holdings_impl(sym, qty, tag)
            return tickets
        if percentage is None:
            raise TypeError("set_holdings(symbol, percentage) needs a percentage")
        tickets = []
        sym = engine.to_symbol(symbol)
        if liquidate_existing_holdings:
            tickets += self.liquidate(self._symbols_to_liquidate([sym]), tag=tag)
        tickets += self._set_holdings_impl(sym, self.calculate_order_quantity(sym, percentage), tag)
        return tickets

    def _order_by_margin_impact(self, deltas: list[tuple[Symbol, float]]) -> list[tuple[Symbol, float]]:
        """OrderTargetsByMarginImpact (targetIsDelta): position-reducing orders first, then by margin impact."""
        engine = self._engine
        rows = []
        for sym, qty in deltas:
            if qty == 0:
                continue
            sec = engine.security(sym)
            held = sec.holdings.quantity
            reducing = held != 0 and (held > 0) != (qty > 0)
            impact = abs((held + qty) * sec.price) - abs(held * sec.price)
            rows.append((not reducing, impact, sym.value, sym, qty))
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        return [(r[3], r[4]) for r in rows]

    def _set_holdings_impl(self, symbol: Symbol, order_quantity: float, tag: str | None) -> list[OrderTicket]:
        engine = self._engine
        pending = sum(engine.tickets[o.id].quantity_remaining for o in engine.open_orders(symbol)
                      if o.type in (OrderType.MARKET, OrderType.MARKET_ON_OPEN))
        quantity = order_quantity - pending
        if abs(quantity) > 0:
            if not engine.has_security(symbol):
                self.error(f"{symbol} not found in portfolio. Request this data when initializing the algorithm.")
                return []
            if engine.exchange_open() or engine.live:
                # live paper broker: the single step runs against the latest bar, orders stay plain Market
                return [self.market_order(symbol, quantity, tag=tag or "")]
            return [self.market_on_open_order(symbol, quantity, tag=tag or "")]
        return []

    # indicators --------------------------------------------------------------------
    def _auto(self, symbol: Any, indicator: IndicatorBase, selector: Any = None) -> IndicatorBase:
        self._engine.register_indicator(symbol, indicator, selector)
        return indicator

    def register_indicator(self, symbol: Any, indicator: IndicatorBase, resolution: Any = None,
                           selector: Any = None) -> None:
        self._engine.register_indicator(symbol, indicator, selector)

    def sma(self, symbol: Any, period: int, resolution: Any = None, selector: Any = None) -> IndicatorBase:
        return self._auto(symbol, SimpleMovingAverage(f"SMA({period})", period), selector)

    def ema(self, symbol: Any, period: int, smoothing_factor: float | None = None, resolution: Any = None,
            selector: Any = None) -> IndicatorBase:
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

    def macd(self, symbol: Any, fast_period: int, slow_period: int, signal_period: int, type: Any = 1,
             resolution: Any = None, selector: Any = None) -> IndicatorBase:
        return self._auto(symbol, MovingAverageConvergenceDivergence(fast_period, slow_period, signal_period,
                                                                     int(type)), selector)

    def identity(self, symbol: Any, resolution: Any = None, selector: Any = None) -> IndicatorBase:
        return self._auto(symbol, Identity(f"{symbol}"), selector)

    # history -------------------------------------------------------------------------
    def history(self, symbols: Any, periods: Any = None, resolution: Any = None, **kwargs: Any) -> pd.DataFrame:
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
        frames = []
        for item in items:
            sym = engine.to_symbol(item)
            bars = engine.history_bars(sym, count, start, end)
            if not bars:
                continue
            frames.append(pd.DataFrame(
                {"close": [b.close for b in bars], "high": [b.high for b in bars], "low": [b.low for b in bars],
                 "open": [b.open for b in bars], "volume": [b.volume for b in bars]},
                index=pd.MultiIndex.from_arrays([[sym] * len(bars), [b.end_time for b in bars]],
                                                names=["symbol", "time"]),
            ))
        if not frames:
            return pd.DataFrame(columns=["close", "high", "low", "open", "volume"])
        return pd.concat(frames)
