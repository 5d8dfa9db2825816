"""The data feed: each security's daily bars on the session index, the bars of a step (fill-forwarded,
indicators updated), delisting warnings, dividend and split events by step, and history.

A security's bars are loaded when it is added (prices per its normalization mode) and aligned on the
sessions the loop steps through when it starts (or at once, when added while it runs).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from include.lean_local.corporate import CorporateEvent, corporate_events
from include.lean_local.enums import DataNormalizationMode, DelistingType
from include.lean_local.market_data import Delisting, TradeBar
from include.lean_local.sessions import Sessions, yyyymmdd
from include.lean_local.symbols import Symbol

if TYPE_CHECKING:
    from include.lean_local.algorithm import QCAlgorithm
    from include.lean_local.data import DailyBars, DataProvider
    from include.lean_local.indicators import IndicatorBase
    from include.lean_local.securities import Security, SecurityRegistry

BarSelector = Callable[[TradeBar], float]
NO_COLUMNS: tuple[list[float], ...] = ([], [], [], [], [])


class FeedState(Protocol):
    """The algorithm manager's settings the feed reads when it loads data."""

    start_date: dt.datetime
    live: bool


class Subscription(NamedTuple):
    """A security's per-step feed: its row in its bars for each step of the loop (-1: none), its bar columns
    (open, high, low, close, volume), its indicators, and its delisting date (yyyymmdd) if any."""

    symbol: Symbol
    security: Security
    rows: list[int]
    columns: tuple[list[float], ...]
    indicators: list[tuple[IndicatorBase, BarSelector | None]]
    delisting_day: int | None


class DataFeed:
    """The securities' bars, indicators and corporate events, served step by step to the engine."""

    def __init__(
        self,
        state: FeedState,
        provider: DataProvider,
        sessions: Sessions,
        securities: SecurityRegistry,
        algorithm: QCAlgorithm,
        log_line: Callable[[str], None],
    ) -> None:
        self._state = state
        self._provider = provider
        self._sessions = sessions
        self._securities = securities
        self._algorithm = algorithm
        self._log_line = log_line
        self.missing_data: list[str] = []  # the daily files asked for and not found
        self._bars: dict[Symbol, DailyBars | None] = {}
        self._steps = range(0)  # the session indexes the loop steps through
        self._rows: dict[Symbol, list[int]] = {}
        self._columns: dict[Symbol, tuple[list[float], ...]] = {}
        self._indicators: dict[Symbol, list[tuple[IndicatorBase, BarSelector | None]]] = {}
        self._indicator_count = 0
        self._consolidators: dict[Symbol, list[Any]] = {}  # subscription_manager.add_consolidator's
        self._corporate: dict[Symbol, dict[int, list[CorporateEvent]]] = {}
        self._corporate_by_step: dict[int, list[CorporateEvent]] | None = None
        self._subscriptions: tuple[tuple[int, int], list[Subscription]] | None = None
        self._delisting_days: dict[Symbol, int | None] = {}
        self.delisting_warned: set[Symbol] = set()
        # the map file (its name: the ticker the provider reads) of a security whose ticker is not it (a
        # universe's security identified by its SecurityIdentifier)
        self.data_tickers: dict[Symbol, str] = {}

    def data_ticker(self, symbol: Symbol) -> str:
        return self.data_tickers.get(symbol, symbol.value)

    def load(self, sec: Security) -> None:
        """(Re)load the security's bars per its normalization mode; a missing file is logged, not an error."""
        mode = sec.data_normalization_mode
        start_day = yyyymmdd(self._state.start_date)
        bars = self._provider.load_daily(
            self.data_ticker(sec.symbol),
            adjusted=mode != DataNormalizationMode.RAW,
            start_day=start_day,
            split_adjusted_only=mode == DataNormalizationMode.SPLIT_ADJUSTED,
        )
        if bars is None:
            path = self._provider.daily_path(self.data_ticker(sec.symbol), start_day)
            message = f"Failed data request: missing daily data file {path} for {sec.symbol.value}"
            self.missing_data.append(str(path))
            self._log_line(f"Engine: {message}")
            self._algorithm.log(f"Warning: {message}; the security has no data.")
        self._bars[sec.symbol] = bars

    def bars_of(self, symbol: Symbol) -> DailyBars | None:
        return self._bars.get(symbol)

    def start(self, steps: range) -> None:
        """The loop is about to step through the sessions ``steps``: align every security on them."""
        self._steps = steps
        for sec in self._securities.values():
            self.align(sec)

    def align(self, sec: Security) -> None:
        """Map each step of the loop to the security's row (or -1), and find its dividends and splits."""
        bars = self._bars.get(sec.symbol)
        steps = self._steps
        rows = [-1] * len(steps)
        if bars is not None and len(bars):
            if steps:  # only the bars inside the loop's range: a long history is not walked bar by bar
                days = self._sessions.days
                first = bisect.bisect_left(bars.days, days[steps.start])
                end = bisect.bisect_right(bars.days, days[steps.stop - 1])
                positions = self._sessions.positions
                for row in range(first, end):
                    index = positions.get(bars.days[row])
                    if index is not None:
                        rows[index - steps.start] = row
            self._columns[sec.symbol] = (bars.open, bars.high, bars.low, bars.close, bars.volume)
        self._rows[sec.symbol] = rows
        self._subscriptions = None
        events = self._corporate_events_of(sec)
        if events or self._corporate.pop(sec.symbol, None) is not None:
            self._corporate_by_step = None
        if events:
            self._corporate[sec.symbol] = events

    def missing_bars(self, k: int) -> list[Security]:
        """The securities without a bar for session ``k`` (a step of the loop)."""
        i = k - self._steps.start
        return [
            sec
            for sec in self._securities.values()
            if 0 <= i < len(self._rows.get(sec.symbol, ())) and self._rows[sec.symbol][i] == -1
        ]

    def reload(self, sec: Security) -> None:
        """Read the security's file again (a live run's data folder gets the session's bar after the close)."""
        self.load(sec)
        self.align(sec)

    def _corporate_events_of(self, sec: Security) -> dict[int, list[CorporateEvent]]:
        # A live run is one session against the latest bar, on raw prices (Lean live leaves dividend cash to
        # the brokerage's cash sync as well): no corporate-event slices there.
        if self._state.live:
            return {}
        ticker = self.data_ticker(sec.symbol)
        factors = self._provider.factor_file(ticker)
        if factors is None:
            return {}
        mf = self._provider.map_file(ticker)
        raw: list[DailyBars | None] = []
        days = self._sessions.days

        def raw_close_before(k: int) -> float:
            if not raw:
                raw.append(
                    self._provider.load_daily(ticker, adjusted=False, start_day=yyyymmdd(self._state.start_date))
                )
            bars = raw[0]
            if bars is None:
                return 0.0
            j = bisect.bisect_left(bars.days, days[k]) - 1
            return bars.close[j] if j >= 0 else 0.0

        return corporate_events(
            sec.symbol,
            factors,
            days,
            data_range=(mf.rows[0][0], mf.rows[-1][0]) if mf else None,
            raw_close_before=raw_close_before,
        )

    def corporate_events_at(self, k: int) -> list[CorporateEvent] | None:
        """The dividends and splits of session ``k`` (their midnight slice), across all securities."""
        if not self._corporate:
            return None
        if self._corporate_by_step is None:
            merged: dict[int, list[CorporateEvent]] = {}
            for events in self._corporate.values():
                for step, items in events.items():
                    merged.setdefault(step, []).extend(items)
            self._corporate_by_step = merged
        return self._corporate_by_step.get(k)

    def add_consolidator(self, symbol: Symbol, consolidator: Any) -> None:
        self._consolidators.setdefault(symbol, []).append(consolidator)

    def remove_consolidator(self, symbol: Symbol, consolidator: Any) -> None:
        if consolidator in self._consolidators.get(symbol, []):
            self._consolidators[symbol].remove(consolidator)

    def register_indicator(self, symbol: Any, indicator: IndicatorBase, selector: BarSelector | None = None) -> None:
        sym = self._securities.to_symbol(symbol)
        self._indicators.setdefault(sym, []).append((indicator, selector))
        self._indicator_count += 1

    def _feed(self) -> list[Subscription]:
        """The per-step state of every aligned security, rebuilt only when securities or indicators change."""
        key = (len(self._securities), self._indicator_count)
        cached = self._subscriptions
        if cached is not None and cached[0] == key:
            return cached[1]
        feed: list[Subscription] = []
        for sym, sec in self._securities.items():
            rows = self._rows.get(sym)
            if rows is None:
                continue
            feed.append(
                Subscription(
                    sym,
                    sec,
                    rows,
                    self._columns.get(sym, NO_COLUMNS),
                    self._indicators.setdefault(sym, []),
                    self.delisting_day(sym),
                )
            )
        self._subscriptions = (key, feed)
        return feed

    def delisting_day(self, sym: Symbol) -> int | None:
        if sym not in self._delisting_days:
            mf = self._provider.map_file(self.data_ticker(sym))
            self._delisting_days[sym] = mf.delisting_date if mf else None
        return self._delisting_days[sym]

    def advance(self, k: int) -> tuple[dict[Symbol, TradeBar], dict[Symbol, Delisting]]:
        """Session ``k``'s bar of every security that is not delisted (the last close carried forward when it
        has no bar), set as its last bar; and the delisting warnings of the step."""
        sessions = self._sessions
        open_local, close_local, day = sessions.opens[k], sessions.closes[k], sessions.days[k]
        step = k - self._steps.start
        bars: dict[Symbol, TradeBar] = {}
        delistings: dict[Symbol, Delisting] = {}
        for sym, sec, rows, columns, _indicators, delisting_day in self._feed():
            if sec.is_delisted or getattr(sec, "_universe_removed", False):
                continue
            row = rows[step]
            if row >= 0:
                o, h, lo, c, v = columns
                bar = TradeBar(open_local, sym, o[row], h[row], lo[row], c[row], v[row], end_time=close_local)
            elif sec.bar is not None:
                prev = sec.bar.close
                bar = TradeBar(open_local, sym, prev, prev, prev, prev, 0.0, end_time=close_local, is_fill_forward=True)
            else:
                continue
            sec.bar = bar
            bars[sym] = bar
            if delisting_day is not None and sym not in self.delisting_warned:
                next_day = sessions.days[k + 1] if k + 1 < len(sessions.days) else day + 1
                if next_day >= delisting_day:
                    # Lean warns on the last bar before the delisting date ("delisted at end of day")
                    self.delisting_warned.add(sym)
                    delistings[sym] = Delisting(sym, close_local, bar.close, DelistingType.WARNING)
        return bars, delistings

    def consolidate(self, bars: dict[Symbol, TradeBar]) -> None:
        """Feed the step's bars to each security's indicators and consolidators: Lean's consolidator updates,
        which come after the prices and the step's fills (AlgorithmManager), before ``on_data``."""
        for sym, bar in bars.items():
            for indicator, selector in self._indicators.get(sym, ()):
                indicator.update(bar.end_time, selector(bar) if selector else bar.close)
            for consolidator in list(self._consolidators.get(sym, ())):
                consolidator.update(bar)

    def history_bars(
        self, symbol: Symbol, count: int | None, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> list[TradeBar]:
        """The security's bars that ended by now (and by ``end``), after ``start``; the last ``count`` of them."""
        bars = self._bars.get(symbol)
        if bars is None or not len(bars):
            return []
        now = self._algorithm.time
        sessions = self._sessions
        out: list[TradeBar] = []
        limit_end = min(now, end) if end is not None else now
        for j in range(len(bars) - 1, -1, -1):
            si = sessions.positions.get(bars.days[j])
            if si is None:
                continue
            close = sessions.closes[si]
            if close > limit_end:
                continue
            if start is not None and close <= start:
                break
            out.append(
                TradeBar(
                    sessions.opens[si],
                    symbol,
                    bars.open[j],
                    bars.high[j],
                    bars.low[j],
                    bars.close[j],
                    bars.volume[j],
                    end_time=close,
                )
            )
            if count is not None and len(out) >= count:
                break
        out.reverse()
        return out
