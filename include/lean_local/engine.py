"""The algorithm manager: the clock and the loop over the sessions.

Each session ``k`` is one step: first the midnight slice of its dividends and splits (if any), then the
scheduled events before the close, the bars at the close (16:00, or the early close), the fills those
bars make, the events at the close, delistings, ``on_data``, and the day's portfolio value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from include.lean_local.buying_power import SecurityMarginModel
from include.lean_local.corporate import CorporateEvent
from include.lean_local.data import DataProvider
from include.lean_local.enums import DataNormalizationMode, DelistingType, Resolution, SplitType
from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.feed import BarSelector, DataFeed
from include.lean_local.live import LiveClock, bar_wait_s
from include.lean_local.market_data import (
    Delisting,
    Delistings,
    Dividend,
    Dividends,
    Slice,
    Split,
    Splits,
    SymbolChangedEvent,
    SymbolChangedEvents,
    TradeBar,
)
from include.lean_local.portfolio import PortfolioLedger
from include.lean_local.securities import Security, SecurityRegistry, supported_normalization
from include.lean_local.security_changes import SecurityChangeNotifier
from include.lean_local.sessions import from_yyyymmdd, local_to_utc, nyse_sessions, utc_to_local, yyyymmdd
from include.lean_local.symbols import Symbol
from include.lean_local.transactions import TransactionHandler
from include.lean_local.universes import UniverseManager

if TYPE_CHECKING:
    from include.lean_local.algorithm import QCAlgorithm
    from include.lean_local.config import RuntimeConfig
    from include.lean_local.indicators import IndicatorBase


class Engine:
    def __init__(
        self, config: RuntimeConfig, provider: DataProvider, algorithm: QCAlgorithm, log_line: Callable[[str], None]
    ) -> None:
        self.config = config
        self.provider = provider
        self.algorithm = algorithm
        self.live = config.live_mode
        self.log_line = log_line
        self.sessions = nyse_sessions()
        self.start_date = dt.datetime(1998, 1, 1)
        # Lean's default end: SetEndDate(now), which its clamp makes yesterday in New York.
        yesterday = utc_to_local(config.now_utc()).date() - dt.timedelta(days=1)
        self.end_date = dt.datetime.combine(yesterday, dt.time())
        self.warmup_bars = 0
        self.warmup_days: dt.timedelta | None = None
        self.is_warming_up = False
        self.initialized = False
        self.running = False
        self.stopped = False
        self.now_utc: dt.datetime = local_to_utc(self.start_date)
        # (last date of the old ticker, symbol, old ticker, new ticker): SymbolChangedEvents still to deliver
        self._pending_renames: list[tuple[int, Symbol, str, str]] = []
        # A live run's clock (include.lean_local.live.LiveClock); None in a backtest.
        self.clock: LiveClock | None = None
        self.daily_values: list[tuple[int, float]] = []  # (yyyymmdd, portfolio value at the close)
        self.daily_sales: list[tuple[int, float]] = []  # (yyyymmdd, sale volume so far)
        self._market_open = False
        self._stepped = False
        self.securities = SecurityRegistry(provider)
        self.portfolio = PortfolioLedger()
        self.margin = SecurityMarginModel(self.portfolio, self.securities, algorithm, self)
        self.transactions = TransactionHandler(self, algorithm, self.securities, self.portfolio, self.margin)
        self.feed = DataFeed(self, provider, self.sessions, self.securities, algorithm, log_line)
        # OnSecuritiesChanged: additions/removals queued here, delivered at the start of the next step
        self.security_changes = SecurityChangeNotifier()
        self.universes = UniverseManager(self)  # add_universe's coarse universes, selected before each step

    # ------------------------------------------------------------------ securities
    def add_equity(
        self,
        ticker: str | Symbol,
        resolution: Any = None,
        leverage: float | None = None,
        fill_forward: bool = True,
        extended_market_hours: bool = False,
        data_normalization_mode: Any = None,
    ) -> Security:
        res = Resolution.MINUTE if resolution is None else Resolution(int(resolution))
        if res != Resolution.DAILY:
            raise NotSupportedByLocalRuntime(
                f"add_equity resolution {res.name} (only Resolution.DAILY; Lean defaults to MINUTE)"
            )
        symbol = ticker if isinstance(ticker, Symbol) else self.provider.symbol_for(ticker)
        existing = self.securities.get(symbol)
        if existing is not None:
            return existing
        sec = Security(self, symbol, res, 2.0 if leverage is None else float(leverage))
        if self.live:
            sec.data_normalization_mode = DataNormalizationMode.RAW
        elif data_normalization_mode is not None:
            sec.data_normalization_mode = supported_normalization(data_normalization_mode)
        self.securities.add(sec)
        self.feed.load(sec)
        self._refuse_symbol_changes(sec)
        self.security_changes.added(sec)  # Lean's user-defined universe reports it in OnSecuritiesChanged
        self.algorithm._run_security_initializers(sec)
        if self.running:
            self.feed.align(sec)
        if getattr(self.algorithm.settings, "seed_initial_prices", False):
            self.seed_price(sec)
        return sec

    def _refuse_symbol_changes(self, sec: Security) -> None:
        """Lean renames a security whose ticker changes (its map file) and calls ``on_symbol_changed_events``
        with a SymbolChangedEvent at the first time slice of the new ticker's first day. The runtime reads the
        renamed ticker's files; for an algorithm that handles the events it delivers them (``_symbol_changes``),
        but it does not rename the Symbol (Lean's value becomes the new ticker): the events are delivered only
        to an algorithm that has no ``on_data``, no scheduled event and no order by then (an order after it is
        refused too); any other is refused by name when its run spans a rename."""
        if getattr(type(self.algorithm), "on_symbol_changed_events", None) is None:
            return
        mf = self.provider.map_file(sec.symbol.value)
        if mf is None:
            return
        first, last = yyyymmdd(self.start_date.date()), yyyymmdd(self.end_date.date())
        for (date, old), (_, new) in zip(mf.rows, mf.rows[1:], strict=False):
            if first <= date < last and old.upper() != new.upper():
                self._pending_renames.append((date, sec.symbol, old.upper(), new.upper()))

    def _symbol_changes(self, k: int) -> None:
        """The renames whose new ticker starts at session ``k``: ``on_symbol_changed_events`` at its midnight."""
        day = self.sessions.days[k]
        due = [r for r in self._pending_renames if r[0] < day]
        if not due:
            return
        self._pending_renames = [r for r in self._pending_renames if r[0] >= day]
        algo = self.algorithm
        own_on_data = any("on_data" in vars(c) for c in type(algo).__mro__ if c.__name__ != "QCAlgorithm")
        if own_on_data or algo.schedule.events or self.transactions.orders:
            _, _symbol, old, new = due[0]
            raise NotSupportedByLocalRuntime(
                f"SymbolChangedEvents ({old} renamed {new}; on_symbol_changed_events with on_data, scheduled "
                "events or orders: Lean renames the Symbol, the runtime does not)"
            )
        self.transactions.after_rename = True  # any later order is refused (the Symbol is not renamed)
        midnight = dt.datetime.combine(self.sessions.dates[k], dt.time())
        events = SymbolChangedEvents({s: SymbolChangedEvent(s, midnight, old, new) for _, s, old, new in due})
        algo.on_symbol_changed_events(events)

    def seed_price(self, sec: Security) -> None:
        """Lean's ``Settings.SeedInitialPrices``: the last bar that closed by now prices the new security."""
        if not sec.price:
            bars = self.history_bars(sec.symbol, 1)
            if bars:
                sec.set_market_price(bars[-1])

    def register_indicator(self, symbol: Any, indicator: IndicatorBase, selector: BarSelector | None = None) -> None:
        self.feed.register_indicator(symbol, indicator, selector)

    def history_bars(
        self, symbol: Symbol, count: int | None, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> list[TradeBar]:
        return self.feed.history_bars(symbol, count, start, end)

    # SecurityHost: what a Security asks of the engine
    def exchange_open(self) -> bool:
        return self._market_open

    def local_time(self) -> dt.datetime:
        return self.algorithm.time

    def set_normalization(self, security: Security, mode: DataNormalizationMode) -> None:
        if self.live:
            return
        security.data_normalization_mode = supported_normalization(mode)
        self.feed.load(security)
        if self.running:
            self.feed.align(security)

    def holdings_changed(self, security: Security) -> None:
        self.portfolio.track(security)

    # ------------------------------------------------------------------ clock
    def schedule_range(self) -> tuple[dt.date, dt.date]:
        """The dates scheduled events are expanded over: from the warm-up's start to the end date (live: from
        today, a year ahead; Lean live has no end date)."""
        if self.clock is not None:
            today = self.algorithm.time.date()
            return today, today + dt.timedelta(days=366)
        start = self.start_date.date()
        if self.warmup_bars or self.warmup_days:
            start = (
                from_yyyymmdd(self.sessions.days[self._warmup_start_index()])
                if self.warmup_bars
                else (self.start_date - (self.warmup_days or dt.timedelta())).date()
            )
        return start, self.end_date.date()

    def clock_floor(self) -> dt.datetime | None:
        """The algorithm time once the loop runs (events scheduled then start after it), else None."""
        return self.algorithm.time if self.running else None

    def _set_time(self, local: dt.datetime) -> None:
        self.algorithm.time = local
        self.now_utc = local_to_utc(local)
        self.algorithm.utc_time = self.now_utc
        self._market_open = self.sessions.is_open_at(local)

    def _warmup_start_index(self) -> int:
        first = self.sessions.index_of(yyyymmdd(self.start_date.date()))
        return max(first - self.warmup_bars, 0)

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        """Backtest over the sessions of the configured range (a live run: :meth:`run_live`)."""
        if self.clock is not None:
            self.run_live()
            return
        first = self.sessions.index_of(yyyymmdd(self.start_date.date()))
        last = self.sessions.index_of(yyyymmdd(self.end_date.date()) + 1)
        if self.warmup_bars:
            begin = self._warmup_start_index()
        elif self.warmup_days:
            begin = self.sessions.index_of(yyyymmdd((self.start_date - self.warmup_days).date()))
        else:
            begin = first
        self.feed.start(range(begin, last))
        self.running = True
        self.is_warming_up = begin < first
        if not self.is_warming_up:
            self._warmup_finished()
        for k in range(begin, last):
            if self.is_warming_up and k >= first:
                self.is_warming_up = False
                self._warmup_finished()
            self._step(k)
            if self.stopped:
                break
        if not self.stopped:
            self.universes.after_run(last - 1)
        if not self.stopped:
            self._fire_events(dt.datetime.combine(self.end_date.date(), dt.time(23, 59, 59)), inclusive=True)

    def live_first_index(self, now_local: dt.datetime) -> int:
        """The first session whose close is after ``now_local`` (today's, before its close)."""
        i = self.sessions.index_of(yyyymmdd(now_local.date()))
        while i < len(self.sessions.days) and self.sessions.closes[i] <= now_local:
            i += 1
        return i

    def run_live(self) -> None:
        """Lean live: a warm-up replays the bars before now, then the clock runs from now, session by session,
        until ``quit()``, SIGINT or a stop command; past the calendar it waits for one of them."""
        clock = self.clock
        assert clock is not None
        now_local = self.algorithm.time
        first = self.live_first_index(now_local)
        begin = first - self.warmup_bars if self.warmup_bars else first
        if self.warmup_days:
            begin = min(begin, self.sessions.index_of(yyyymmdd((now_local - self.warmup_days).date())))
        begin = max(begin, 0)
        self.feed.start(range(begin, len(self.sessions.days)))
        self.running = True
        self.is_warming_up = begin < first
        for k in range(begin, first):  # the warm-up: history, at the bars' own times
            self._step(k)
        self.is_warming_up = False
        self._set_time(now_local)
        self._warmup_finished()
        try:
            for k in range(first, len(self.sessions.days)):
                if self.stopped:
                    return
                self._step(k)
            if not self.stopped and not clock.wait_until(dt.datetime.max.replace(tzinfo=dt.UTC)):
                self.stopped = True
        finally:
            self._final_sample()

    def _final_sample(self) -> None:
        """Lean samples the portfolio once more when the algorithm ends (``AlgorithmManager`` "Take final
        samples"): a live run that quits at its session's close counts that close's value."""
        day = yyyymmdd(self.algorithm.time.date())
        if self.daily_values and self.daily_values[-1][0] == day:
            return
        self.portfolio.invalidate()
        self.daily_values.append((day, self.portfolio.total_portfolio_value()))
        self.daily_sales.append((day, self.portfolio.sales_volume))

    def _advance_to(self, local: dt.datetime) -> bool:
        """Move the algorithm's clock to ``local``; a live run waits for it on its clock (False: stopped first)."""
        if self.clock is not None and not self.is_warming_up and not self.clock.wait_until(local_to_utc(local)):
            self.stopped = True
            return False
        self._set_time(local)
        return True

    def _wait_for_bars(self, k: int) -> None:
        """A live run reads the session's bar from the data folder at the close; it may be written a little later."""
        clock = self.clock
        if clock is None or self.is_warming_up or not self.feed.missing_bars(k):
            return
        waited, budget = 0.0, bar_wait_s(virtual=clock.is_virtual)
        while self.feed.missing_bars(k) and waited < budget:
            step = min(2.0, budget - waited)
            if not clock.pause(step):
                self.stopped = True
                return
            waited += step
            for sec in self.feed.missing_bars(k):
                self.feed.reload(sec)
        missing = ", ".join(sorted(sec.symbol.value for sec in self.feed.missing_bars(k)))
        if missing:
            self.log_line(f"LiveTradingDataFeed: no bar of {self.sessions.days[k]} for {missing} after {budget:g}s")

    def _warmup_finished(self) -> None:
        hook = getattr(type(self.algorithm), "on_warmup_finished", None)
        if hook is not None:
            hook(self.algorithm)

    def _fire_events(self, until: dt.datetime, inclusive: bool) -> None:
        """Run the scheduled events due before ``until`` (or at it, if ``inclusive``), in time order."""
        events = self.algorithm.schedule.events
        if not events:
            return
        while True:
            best = None
            for ev in events:
                t = ev.next_time
                if t is None or (t > until if inclusive else t >= until):
                    continue
                if best is None or best.next_time is None or t < best.next_time:
                    best = ev
            if best is None:
                return
            t = best.next_time
            if t is None:
                return
            best.position += 1
            if t < self.algorithm.time:
                continue
            if not self._advance_to(t):
                return
            best.callback()
            if self.stopped:
                return

    def _deliver_security_changes(self, k: int, first: bool) -> None:
        """Lean reports the securities added in ``initialize`` in the run's first time slice (its first day at
        midnight, before any data) and later additions in the next time slice: here, the start of a step."""
        if not self.security_changes.pending():
            return
        if first and self.clock is None and self.security_changes.has_receivers(self.algorithm):
            self._set_time(dt.datetime.combine(from_yyyymmdd(self.sessions.days[k]), dt.time()))
        self.security_changes.deliver(self.algorithm)

    def _step(self, k: int) -> None:
        algo = self.algorithm
        if self._pending_renames and not self.is_warming_up:
            self._symbol_changes(k)
        self.universes.before_step(k)  # a selection at a midnight also delivers the pending changes
        if self.stopped:
            return
        self._deliver_security_changes(k, first=not self._stepped)
        self._stepped = True
        if self.stopped:
            return
        events = self.universes.corporate_events(self.feed.corporate_events_at(k))
        if events:
            self._corporate_slice(events)
            if self.stopped:
                return
        close_local = self.sessions.closes[k]
        self._fire_events(close_local, inclusive=False)
        if self.stopped or not self._advance_to(close_local):
            return
        self._wait_for_bars(k)
        if self.stopped:
            return
        self.portfolio.invalidate()
        day = self.sessions.days[k]
        bars, delistings = self.feed.advance(k)
        self.transactions.process_orders()
        self.feed.consolidate(bars)
        self._fire_events(close_local, inclusive=True)
        if self.stopped:
            return
        self._set_time(close_local)
        self._delist(day, close_local, delistings)
        data = Slice(close_local, bars, delistings)
        algo.current_slice = data
        if delistings:
            algo.on_delistings(Delistings(delistings))
        if bars or delistings:
            algo.on_data(data)
        algo._on_framework_data(data)  # Lean's OnFrameworkData, after OnData, before the orders are processed
        self.transactions.process_orders()
        if not self.is_warming_up:
            self.daily_values.append((day, self.portfolio.total_portfolio_value()))
            self.daily_sales.append((day, self.portfolio.sales_volume))

    def _delist(self, day: int, close_local: dt.datetime, delistings: dict[Symbol, Delisting]) -> None:
        """Securities warned earlier whose delisting date has come: no longer tradable, open orders canceled,
        holdings liquidated at the last price (Lean's delisting)."""
        for sym, sec in self.securities.items():
            if sym in self.feed.delisting_warned and not sec.is_delisted and sym not in delistings:
                delisting_day = self.feed.delisting_day(sym)
                if delisting_day is not None and day >= delisting_day:
                    sec.is_delisted = True
                    sec.is_tradable = False
                    delistings[sym] = Delisting(sym, close_local, sec.price, DelistingType.DELISTED)
                    for order in self.transactions.open_orders(sym):
                        self.transactions.cancel_order(order.id)
                    if sec.holdings.quantity:
                        self.transactions.liquidate_delisted(sec)

    def _corporate_slice(self, events: list[CorporateEvent]) -> None:
        """The midnight time slice of a day's dividends and splits (Lean applies them to the portfolio, calls
        ``on_dividends``/``on_splits``, then ``on_data`` with a slice that has no bars)."""
        algo = self.algorithm
        midnight = events[0].time
        self._fire_events(midnight, inclusive=False)
        if self.stopped or not self._advance_to(midnight):
            return
        self.portfolio.invalidate()
        dividends: dict[Symbol, Dividend] = {}
        splits: dict[Symbol, Split] = {}
        for event in events:
            sec = self.securities.get(event.symbol)
            if sec is None or sec.is_delisted:
                continue
            if isinstance(event, Dividend):
                dividends[event.symbol] = event
            else:
                splits[event.symbol] = event
        if not dividends and not splits:
            return
        if not self.is_warming_up:  # a warm-up's positions already reflect past events
            for dividend in dividends.values():
                self.portfolio.apply_dividend(self.securities.security(dividend.symbol), dividend)
            for split in splits.values():
                if split.type == SplitType.SPLIT_OCCURRED:
                    self._apply_split(self.securities.security(split.symbol), split)
        if splits:
            algo.on_splits(Splits(splits))
        if dividends:
            algo.on_dividends(Dividends(dividends))
        data = Slice(midnight, {}, dividends=dividends, splits=splits)
        algo.current_slice = data
        algo.on_data(data)
        algo._on_framework_data(data)
        self.transactions.process_orders()

    def _apply_split(self, sec: Security, split: Split) -> None:
        if sec.data_normalization_mode != DataNormalizationMode.RAW:
            return  # the other modes' prices are split-adjusted: nothing to change
        if self.transactions.open_orders(sec.symbol):
            raise NotSupportedByLocalRuntime(
                f"a split of {sec.symbol.value} with open orders in Raw mode (Lean updates their quantity and prices)"
            )
        self.portfolio.apply_split(sec, split)
