"""Lean's fundamental (coarse) universe selection on daily US equities: ``add_universe(selector)``,
``add_universe(CoarseFundamental)`` and ``add_universe(self.universe.top(n))``.

Lean's rules, as the runtime implements them (``Engine/DataFeeds/UniverseSelection.cs``,
``Common/Data/Fundamental/Fundamental.cs``, ``Engine/DataFeeds/PendingRemovalsManager.cs``):

- the universe reads ``equity/usa/fundamental/coarse/YYYYMMDD.csv`` (``Fundamental.GetSource``), one file per
  trading day D holding that day's close, volume and dollar volume; its data's ``Time`` is D at midnight and its
  ``EndTime`` D + 1 day, so the selection of file D runs at midnight starting D + 1 (New York), before that day's
  bars (a Friday's file selects at Saturday midnight). No file, no selection (Lean has no data to emit). Nothing is
  selected after the end date (``ApplyUniverseSelection``: ``dateTimeUtc > algorithmEndDateUtc``);
- a selected symbol not yet a member becomes a security with the universe settings (resolution, leverage,
  normalization) and is reported in ``SecurityChanges.added_securities``, unless its subscription already
  existed (a security added by ``add_equity``: Lean's ``AddSubscription`` returns false and it is not reported);
- a member no longer selected, once in the universe for ``minimum_time_in_universe`` (``CanRemoveMember``), is
  reported in ``removed_securities``; it leaves the universe (its data stops, its cached price resets, it is no
  longer tradable) at once when it has no holdings and no open orders, else it stays a pending removal, checked
  at each later selection (``CheckPendingRemovals``; selected again, it stays a member and is not reported);
- ``on_securities_changed`` is called at the selection's time (that midnight).
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.lean_local.enums import Resolution
from include.lean_local.errors import NotSupportedByLocalRuntime, SupportedSubset
from include.lean_local.scheduling import DateRule
from include.lean_local.sessions import from_yyyymmdd
from include.lean_local.symbols import _DAYS_OFFSET, OA_EPOCH, SecurityIdentifier, Symbol

if TYPE_CHECKING:
    from include.lean_local.engine import Engine
    from include.lean_local.securities import Security
    from include.lean_local.universe_settings import UniverseSettings

__all__ = ["CoarseFundamental", "Fundamental", "UniverseDefinitions", "UniverseManager", "selection_time"]

_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def parse_sid(text: str) -> SecurityIdentifier:
    """An equity ``SecurityIdentifier`` from its string (``"AAPL R735QTJ8XC9X"``): the first ticker and the first
    date packed in the base-36 properties."""
    ticker, _, encoded = text.strip().partition(" ")
    value = 0
    for ch in encoded.upper():
        value = value * 36 + _BASE36.index(ch)
    days = value // _DAYS_OFFSET
    return SecurityIdentifier(ticker, OA_EPOCH + dt.timedelta(days=days))


class Fundamental(SupportedSubset):
    """One line of a coarse file (Lean's ``Fundamental``/``CoarseFundamental`` coarse properties). The fine
    properties (``valuation_ratios``...) are refused by name."""

    def __init__(
        self,
        time: dt.datetime,
        symbol: Symbol,
        value: float,
        volume: int,
        dollar_volume: float,
        has_fundamental_data: bool,
        price_factor: float = 1.0,
        split_factor: float = 1.0,
    ) -> None:
        self.time = time
        self.end_time = time + dt.timedelta(days=1)
        self.symbol = symbol
        self.value = value
        self.volume = volume
        self.dollar_volume = dollar_volume
        self.has_fundamental_data = has_fundamental_data
        self.price_factor = price_factor
        self.split_factor = split_factor

    @property
    def price(self) -> float:
        return self.value

    @property
    def market(self) -> str:
        return "usa"

    @property
    def price_scale_factor(self) -> float:
        return self.price_factor * self.split_factor

    @property
    def adjusted_price(self) -> float:
        return self.price * self.price_scale_factor

    def __repr__(self) -> str:
        return f"{self.symbol.value}: {self.value}"


class CoarseFundamental(Fundamental):
    """Lean's obsolete ``CoarseFundamental`` (read from the same files); ``add_universe(CoarseFundamental)``."""


def read_coarse(path: Path, day: dt.date) -> list[Fundamental]:
    """The coarse file of ``day`` (``CoarseFundamentalDataProvider.Read``: SID, ticker, close, volume, dollar
    volume, has fundamental data, price factor, split factor); a malformed line is skipped, as Lean does."""
    time = dt.datetime.combine(day, dt.time())
    rows: list[Fundamental] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        csv = line.split(",")
        try:
            symbol = Symbol(parse_sid(csv[0]), csv[1])
            row = Fundamental(time, symbol, float(csv[2]), int(csv[3]), float(csv[4]), False)
            if len(csv) > 5:
                row.has_fundamental_data = csv[5].strip().lower() == "true"
            if len(csv) > 7:
                row.price_factor, row.split_factor = float(csv[6]), float(csv[7])
        except (ValueError, IndexError):
            continue
        rows.append(row)
    return rows


def selection_time(file_day: dt.date) -> dt.datetime:
    """The local (New York) time the coarse file of ``file_day`` is selected at: its data's EndTime."""
    return dt.datetime.combine(file_day + dt.timedelta(days=1), dt.time())


class UniverseDefinitions(SupportedSubset):
    """``algorithm.universe`` (Lean's ``UniverseDefinitions``): ``top(count)`` only."""

    def __init__(self, algorithm: Any) -> None:
        self._algorithm = algorithm

    def top(self, count: int, universe_settings: Any = None) -> _UniverseSpec:
        """Lean's ``DollarVolumeUniverseDefinitions.Top``: the ``count`` symbols of largest dollar volume."""

        def select(coarse: Iterable[Fundamental]) -> list[Symbol]:
            ranked = sorted(coarse, key=lambda c: c.dollar_volume, reverse=True)
            return [c.symbol for c in ranked[:count]]

        return _UniverseSpec(select, universe_settings)


class Universe(SupportedSubset):
    """Lean's ``Universe``: its ``UNCHANGED`` selection result (the previous selection stands)."""

    UNCHANGED: Any = None


class _Unchanged:
    def __repr__(self) -> str:
        return "Universe.UNCHANGED"


Universe.UNCHANGED = _Unchanged()


class _UniverseSpec:
    def __init__(self, selector: Callable[[list[Fundamental]], Any], settings: Any) -> None:
        self.selector = selector
        self.settings = settings


class SymbolSet(dict[Symbol, None]):
    """Lean's ``HashSet<Symbol>`` of a universe's selection (``Universe.Selected``): membership, ``count``, and
    iteration in the selection's order (a .NET HashSet filled once iterates in insertion order)."""

    def __init__(self, symbols: Iterable[Symbol] = ()) -> None:
        super().__init__((s, None) for s in symbols)

    @property
    def count(self) -> int:
        return len(self)

    def contains(self, item: Any) -> bool:
        return item in self

    def __repr__(self) -> str:
        return "{" + ", ".join(s.value for s in self) + "}"


class SymbolDict(dict[Symbol, Any]):
    """Lean's ``Dictionary<Symbol, Security>`` of a universe's members."""

    @property
    def count(self) -> int:
        return len(self)

    def contains_key(self, key: Any) -> bool:
        return key in self


class _Member:
    __slots__ = ("added", "security")

    def __init__(self, security: Security, added: dt.datetime) -> None:
        self.security = security
        self.added = added


class FundamentalUniverse:
    """A coarse universe: its selector, its settings (a snapshot at ``add_universe``), members and pending
    removals."""

    def __init__(self, selector: Callable[[list[Fundamental]], Any] | None, settings: UniverseSettings) -> None:
        self.selector = selector
        self.by_time = False  # Lean's UserDefinedUniverse of a function of the time giving tickers
        self.resolution = Resolution(int(settings.resolution))
        self.leverage = float(settings.leverage)
        self.normalization = settings.data_normalization_mode
        self.minimum_time = settings.minimum_time_in_universe
        schedule = getattr(settings, "schedule", None)
        self.schedule: Any = schedule.rule if schedule is not None and schedule.initialized else None
        self._members: dict[Symbol, _Member] = {}
        self.selected: SymbolSet = SymbolSet()
        self.pending: dict[Symbol, _Member] = {}

    @staticmethod
    def usa(selector: Any, universe_settings: Any = None) -> _UniverseSpec:
        """Lean's ``FundamentalUniverse.USA(selector, universe_settings)``: a fundamental universe to add."""
        return _UniverseSpec(selector, universe_settings)

    @property
    def members(self) -> SymbolDict:
        """Lean's ``Universe.Members``: the member securities by symbol (pending removals included)."""
        return SymbolDict((sym, member.security) for sym, member in self._members.items())

    def select(self, coarse: list[Fundamental]) -> list[Symbol] | None:
        """The selected symbols; None for ``Universe.UNCHANGED``."""
        if self.selector is None:  # add_universe(CoarseFundamental): every symbol of the file
            return [c.symbol for c in coarse]
        result = self.selector(coarse)
        if self.by_time and result is not Universe.UNCHANGED:
            from include.lean_local.data import default_provider

            result = [default_provider().symbol_for(str(t)) if isinstance(t, str) else t for t in result]
        if result is Universe.UNCHANGED:
            return None
        if result is None:
            raise TypeError("the universe selection function returned None (Lean expects symbols)")
        if isinstance(result, str | Symbol):
            result = [result]
        symbols = []
        for item in result:
            if isinstance(item, Symbol):
                symbols.append(item)
            elif isinstance(item, str):
                raise NotSupportedByLocalRuntime("a universe selection function returning ticker strings")
            else:
                raise NotSupportedByLocalRuntime(
                    f"Universe.UNCHANGED or a universe selection result of {type(item).__name__}"
                )
        return symbols


class UniverseManager:
    """The engine's universes and their daily selection (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.universes: list[FundamentalUniverse] = []
        self._coarse_folder = engine.provider.root / "equity" / "usa" / "fundamental" / "coarse"
        self._cache: dict[dt.date, list[Fundamental]] = {}
        self._created: set[Symbol] = set()  # the securities a universe created (not added by add_equity)
        self._added_at: dict[Symbol, dt.datetime] = {}  # when a universe last added each security
        self._sid_index: dict[str, str] | None = None
        self._stepped = False
        self.slice_times: list[dt.datetime] = []  # the midnights a universe's data made a time slice

    def add(self, selector: Any, settings: UniverseSettings) -> FundamentalUniverse:
        if Resolution(int(settings.resolution)) != Resolution.DAILY:
            raise NotSupportedByLocalRuntime(
                f"a universe at resolution {Resolution(int(settings.resolution)).name} (only Resolution.DAILY)"
            )
        universe = FundamentalUniverse(selector, settings)
        self.universes.append(universe)
        return universe

    def coarse(self, day: dt.date) -> list[Fundamental]:
        """The day's coarse rows; none when its file is missing (Lean's enumerator still emits the day's empty
        collection, BaseDataCollectionSubscriptionEnumeratorFactory: the selection runs on an empty list)."""
        if day not in self._cache:
            path = self._coarse_folder / f"{day:%Y%m%d}.csv"
            self._cache[day] = read_coarse(path, day) if path.is_file() else []
        return self._cache[day]

    def before_step(self, k: int) -> None:
        """Run the selections due before session ``k`` (each at its time, in time order): a daily universe's on
        the previous session's file at the midnight after it; a scheduled universe's at its schedule's dates."""
        first, self._stepped = not self._stepped, True
        if not self.universes or k <= 0:
            return
        engine = self._engine
        days = engine.sessions.days
        limit = dt.datetime.combine(from_yyyymmdd(days[k]), dt.time())
        floor = engine.sessions.closes[k - 1]
        self._run_due(self._due(from_yyyymmdd(days[k - 1]), floor, limit, first))

    def after_run(self, last_k: int) -> None:
        """After the run's last session: a daily universe's last file (its selection still due when before the end,
        an end date on a weekend; else only a time slice of its own: Lean reads the file, whose EndTime is past
        the end, the synchronizer's last slice and the final sample's time) and a schedule's dates left."""
        if not self.universes or not 0 <= last_k < len(self._engine.sessions.days):
            return
        engine = self._engine
        end = dt.datetime.combine(engine.end_date.date(), dt.time(23, 59, 59))
        file_day = from_yyyymmdd(engine.sessions.days[last_k])
        self._run_due(self._due(file_day, engine.sessions.closes[last_k], end + dt.timedelta(days=1), False))

    def _due(
        self, file_day: dt.date, floor: dt.datetime, limit: dt.datetime, first: bool
    ) -> dict[dt.datetime, list[tuple[FundamentalUniverse, dt.date]]]:
        """The selections in (floor, limit]: time -> [(universe, the day of the file it selects on)]."""
        engine = self._engine
        start = engine.start_date
        due: dict[dt.datetime, list[tuple[FundamentalUniverse, dt.date]]] = {}
        for universe in self.universes:
            if universe.by_time:
                # UserDefinedUniverse.GetTriggerTimes: the start, then each day's midnight whose day the exchange
                # opens; the selector gets that time
                session = dt.datetime.combine(file_day, dt.time()) + dt.timedelta(days=1)
                times = [start] if first else []
                times += [
                    dt.datetime.combine(d, dt.time())
                    for d in _session_dates_between(engine, floor, limit)
                    if dt.datetime.combine(d, dt.time()) >= start
                ]
                del session
                for when in times:
                    if floor < when <= limit or (first and when == start):
                        due.setdefault(when, []).append((universe, when.date()))
                continue
            if universe.schedule is None:
                when = selection_time(file_day)
                if when < start:
                    # Lean starts a universe's subscription at the tradable day before the start (DataManager):
                    # that day's file (the first step's previous session's) is selected right away, at the start
                    if not first:
                        continue
                    when = start
                if floor < when <= limit:
                    due.setdefault(when, []).append((universe, file_day))
                continue
            # a schedule (ScheduledEnumerator): at each date's midnight, the latest file whose EndTime is by then
            lo = (start if first else floor).date()
            for day in universe.schedule.get_dates(lo, limit.date()):
                when = dt.datetime.combine(day, dt.time())
                if when >= start and floor < when <= limit and when <= engine_end(engine):
                    due.setdefault(when, []).append((universe, self._file_before(day)))
            if first:
                # DataManager looks back (up to 365 days) for the schedule's last date by the start: its data is
                # emitted at the start, the first selection
                past = [d for d in universe.schedule.get_dates(start.date() - dt.timedelta(days=365), start.date())]
                if past and dt.datetime.combine(past[-1], dt.time()) < start:
                    due.setdefault(start, []).append((universe, self._file_before(past[-1])))
        return due

    def _file_before(self, day: dt.date) -> dt.date:
        """The last session before ``day``: its file's EndTime (the midnight after it) is by ``day``'s midnight."""
        sessions = self._engine.sessions
        i = sessions.index_of(int(f"{day:%Y%m%d}"))
        return from_yyyymmdd(sessions.days[max(i - 1, 0)])

    def _run_due(self, due: dict[dt.datetime, list[tuple[FundamentalUniverse, dt.date]]]) -> None:
        engine = self._engine
        if due and (engine.warmup_bars or engine.warmup_days):
            raise NotSupportedByLocalRuntime("a universe with a warm-up (set_warm_up)")
        end = engine_end(engine)
        for when in sorted(due):
            if self.slice_times and when <= self.slice_times[-1]:
                continue
            self.slice_times.append(when)
            if when > end:
                continue
            engine._fire_events(when, inclusive=False)
            if engine.stopped or not engine._advance_to(when):
                return
            for universe, file_day in due[when]:
                self._apply(universe, when, when if universe.by_time else self.coarse(file_day))
            engine.security_changes.deliver(engine.algorithm)
            engine.transactions.process_orders()
            if engine.stopped:
                return

    def _map_files_by_sid(self) -> dict[str, str]:
        """Each map file's SecurityIdentifier (its first ticker and date) -> its name (the ticker of its files)."""
        if self._sid_index is None:
            index: dict[str, str] = {}
            folder = self._engine.provider.root / "equity" / "usa" / "map_files"
            for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
                mf = self._engine.provider.map_file(path.stem)
                if mf is not None and mf.rows:
                    index.setdefault(str(SecurityIdentifier(mf.first_ticker, mf.first_date)), path.stem)
            self._sid_index = index
        return self._sid_index

    def _data_ticker(self, symbol: Symbol) -> str:
        """Lean finds a selected security's map file by its SecurityIdentifier (``GOOG T1AZ164W5VTX``, GOOG in
        March 2014, is the map file ``googl``); the runtime reads its bars through that map file. A security
        renamed during the run (Lean's SymbolChangedEvents), or whose ticker's map file is another security's
        while none is its own, is refused by name."""
        engine = self._engine
        provider = engine.provider
        stem = self._map_files_by_sid().get(str(symbol.id))
        if stem is None:
            mf = provider.map_file(symbol.value)
            if mf is not None and provider.symbol_for(symbol.value).id != symbol.id:
                raise NotSupportedByLocalRuntime(
                    f"a universe selecting {symbol.value} ({symbol.id}), whose ticker the map files give to another "
                    "security (a renamed share class)"
                )
            return symbol.value
        mf = provider.map_file(stem)
        assert mf is not None
        first, last = int(f"{engine.start_date:%Y%m%d}"), int(f"{engine.end_date:%Y%m%d}")
        for (date, old), (_, new) in zip(mf.rows, mf.rows[1:], strict=False):
            if first <= date < last and old.upper() != new.upper():
                raise NotSupportedByLocalRuntime(
                    f"a universe selecting {symbol.value} ({symbol.id}), renamed {new.upper()} after {date} "
                    "(SymbolChangedEvents)"
                )
        return stem

    def corporate_events(self, events: list[Any] | None) -> list[Any] | None:
        """A midnight's dividends and splits without those of securities no longer subscribed, nor of securities a
        universe added at that very midnight (Lean's new subscription starts in that time slice: its first-day
        event does not make a slice before the security has a price)."""
        if not events or not self.universes:
            return events
        securities = self._engine.securities
        kept = []
        for event in events:
            sec = securities.get(event.symbol)
            if sec is not None and getattr(sec, "_universe_removed", False):
                continue
            if self._added_at.get(event.symbol) == event.time:
                continue
            kept.append(event)
        return kept

    # ------------------------------------------------------------------ ApplyUniverseSelection
    def _apply(self, universe: FundamentalUniverse, when: dt.datetime, coarse: Any) -> None:
        engine = self._engine
        notifier = engine.security_changes
        result = universe.select(coarse if universe.by_time else list(coarse))
        if result is not None:
            universe.selected = SymbolSet(result)
        # CheckPendingRemovals
        for sym, member in list(universe.pending.items()):
            if self._safe_to_remove(member.security):
                del universe.pending[sym]
                self._remove_member(universe, member)
            elif sym in universe.selected:
                del universe.pending[sym]
        if result is None:  # Universe.UNCHANGED: no change (pending removals checked all the same)
            return
        for sym in sorted(universe._members, key=lambda s: str(s.id)):
            if sym in universe.selected:
                continue
            member = universe._members[sym]
            security = member.security
            if not self._can_remove(universe, member, when, security):
                continue
            if not security.is_delisted and sym not in universe.pending:
                notifier.removed(security)
            if self._safe_to_remove(security):
                self._remove_member(universe, member)
            else:
                universe.pending[sym] = member
        for sym in _ordered(universe.selected):
            if sym in universe._members:
                continue
            existing = engine.securities.get(sym)
            subscribed = existing is not None and not getattr(existing, "_universe_removed", False)
            security = self._security(universe, sym)
            universe._members[sym] = _Member(security, when)
            self._added_at[sym] = when
            if not subscribed:
                notifier.added(security)

    def _can_remove(self, universe: FundamentalUniverse, member: _Member, when: dt.datetime, security: Any) -> bool:
        if security.is_delisted:
            return True
        days = round((when - member.added) / dt.timedelta(days=1))  # Lean rounds to the universe's resolution
        return dt.timedelta(days=days) >= universe.minimum_time

    def _safe_to_remove(self, security: Security) -> bool:
        """``PendingRemovalsManager.IsSafeToRemove``: no holdings and no open orders."""
        if security.holdings.quantity:
            return False
        return not self._engine.transactions.open_orders(security.symbol)

    def _remove_member(self, universe: FundamentalUniverse, member: _Member) -> None:
        """``RemoveSecurityFromUniverse``: the subscription ends; a security no other universe uses loses its
        cached price and is no longer tradable."""
        security = member.security
        universe._members.pop(security.symbol, None)
        if any(security.symbol in u._members for u in self.universes):
            return
        if security.symbol not in self._created:
            return  # a user-defined security (add_equity) keeps its subscription
        security._universe_removed = True  # type: ignore[attr-defined]
        security.is_tradable = False
        security.bar = None
        security._market_price = 0.0

    def _security(self, universe: FundamentalUniverse, symbol: Symbol) -> Security:
        engine = self._engine
        existing = engine.securities.get(symbol)
        if existing is not None:
            if getattr(existing, "_universe_removed", False):
                existing._universe_removed = False  # type: ignore[attr-defined]
                existing.is_tradable = not existing.is_delisted
                # Lean's SecurityService re-initializes a security added again (the initializers, a seeder)
                engine.algorithm._run_security_initializers(existing)
            return existing
        ticker = self._data_ticker(symbol)
        if ticker.upper() != symbol.value:
            engine.feed.data_tickers[symbol] = ticker
        security = engine.add_equity(
            symbol,
            universe.resolution,
            leverage=universe.leverage or None,
            data_normalization_mode=universe.normalization,
        )
        self._created.add(symbol)
        return security


def _session_dates_between(engine: Engine, floor: dt.datetime, limit: dt.datetime) -> list[dt.date]:
    """The session dates whose midnight lies in (floor, limit]."""
    out = []
    for day in engine.sessions.dates[engine.sessions.index_of(int(f"{floor:%Y%m%d}")) :]:
        midnight = dt.datetime.combine(day, dt.time())
        if midnight > limit:
            break
        if midnight > floor:
            out.append(day)
    return out


def engine_end(engine: Engine) -> dt.datetime:
    """Lean's end: the last tick of the end date."""
    return dt.datetime.combine(engine.end_date.date(), dt.time(23, 59, 59))


def _ordered(symbols: Iterable[Symbol]) -> list[Symbol]:
    """Lean iterates the selected HashSet; the runtime adds in SecurityIdentifier order (the changes the algorithm
    sees are ordered by ticker either way)."""
    return sorted(symbols, key=lambda s: str(s.id))


def is_fundamental_type(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, Fundamental)


def add_universe(algorithm: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FundamentalUniverse:
    """``QCAlgorithm.add_universe``: the coarse forms (a selector over ``Fundamental``, ``CoarseFundamental``
    itself, ``self.universe.top(n)``); every other form is refused by name."""
    named = dict(kwargs)
    selector = named.pop("selector", None) or named.pop("coarse_selector", None) or named.pop("py_selector", None)
    universe = named.pop("universe", None)
    settings = named.pop("universe_settings", None)
    positional = list(args)
    if positional and isinstance(positional[0], str):  # add_universe(name[, resolution], selector): tickers by time
        # implemented below (UserDefinedUniverse's trigger times, a re-added security re-initialized) but not yet
        # proved: RawPricesUniverseRegressionAlgorithm gets Lean's 57 orders and an End Equity 0.07 % off
        raise NotSupportedByLocalRuntime(
            "add_universe(name, resolution, selector) (a universe of tickers chosen by time; its run does not match "
            "Lean's yet)"
        )
    if positional and isinstance(positional[0], str):
        positional.pop(0)
        resolution = named.pop("resolution", None)
        if positional and not callable(positional[0]):
            resolution = positional.pop(0)
        time_selector = positional.pop(0) if positional else named.pop("selector", selector)
        if positional or named or not callable(time_selector):
            raise NotSupportedByLocalRuntime("add_universe(name, ...) other than (name[, resolution], selector)")
        from include.lean_local.universe_settings import UniverseSettings as _Settings

        own = _Settings(settings or algorithm.universe_settings)
        if resolution is not None:
            own.resolution = resolution
        added = algorithm._engine.universes.add(time_selector, own)
        added.by_time = True
        return added
    if positional and isinstance(positional[0], DateRule):  # add_universe(date_rule, selector)
        from include.lean_local.universe_settings import UniverseSettings as _Settings

        scheduled = _Settings(algorithm.universe_settings)
        scheduled.schedule.on(positional.pop(0))
        named.setdefault("universe_settings", scheduled)
        settings = named.pop("universe_settings")
    if positional and is_fundamental_type(positional[0]) and len(positional) == 1:
        return algorithm._engine.universes.add(None, algorithm.universe_settings)
    if positional and isinstance(positional[0], _UniverseSpec):
        universe = positional.pop(0)
    elif positional and callable(positional[0]) and not inspect.isclass(positional[0]) and selector is None:
        selector = positional.pop(0)
    if positional and settings is None and not callable(positional[0]):
        settings = positional.pop(0)
    if positional or named:
        extra = [type(a).__name__ if not inspect.isclass(a) else a.__name__ for a in positional] + sorted(named)
        raise NotSupportedByLocalRuntime(f"add_universe with {', '.join(extra)} (only a coarse selection)")
    if isinstance(universe, _UniverseSpec):
        selector, settings = universe.selector, settings or universe.settings
    elif universe is not None:
        raise NotSupportedByLocalRuntime(f"add_universe({type(universe).__name__})")
    if selector is None:
        raise NotSupportedByLocalRuntime("add_universe without a coarse selector")
    return algorithm._engine.universes.add(selector, settings or algorithm.universe_settings)


class _ActiveRegistry:
    """The securities of ``active_securities``: Lean's ``UniverseManager.ActiveSecurities``, the members of every
    universe (the user-defined one included; a pending removal still is one), not those a universe removed."""

    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def as_list(self) -> list[Security]:
        return [s for s in self._registry.as_list() if not getattr(s, "_universe_removed", False) and not s.is_delisted]

    def security(self, key: Any) -> Security:
        symbol = self._registry.to_symbol(key)
        for security in self.as_list():
            if security.symbol == symbol:
                return security
        raise KeyError(f"{key} is not an active security")

    def contains(self, key: Any) -> bool:
        try:
            self.security(key)
        except (KeyError, TypeError):
            return False
        return True


def active_securities(engine: Engine) -> Any:
    from include.lean_local.securities import SecurityManager

    return SecurityManager(_ActiveRegistry(engine.securities))  # type: ignore[arg-type]


class FundamentalUniverseSelectionModel:
    """Lean's ``FundamentalUniverseSelectionModel`` (``Algorithm.Framework/Selection``): a fundamental universe
    whose selection is the model's ``select(algorithm, fundamental)`` (a selector given to it, or a subclass's);
    the obsolete coarse/fine forms (``select_coarse``/``select_fine`` overrides, a market other than USA) are
    refused by name."""

    def __init__(self, *args: Any, market: Any = None, selector: Any = None, universe_settings: Any = None) -> None:
        rest = list(args)
        if rest and isinstance(rest[0], str) and market is None:
            market = rest.pop(0)
        if rest and callable(rest[0]) and selector is None:
            selector = rest.pop(0)
        if rest and universe_settings is None:
            universe_settings = rest.pop(0)
        if rest:
            raise TypeError("FundamentalUniverseSelectionModel() takes (market, selector, universe_settings)")
        if market is not None and str(market).lower() != "usa":
            raise NotSupportedByLocalRuntime(f"FundamentalUniverseSelectionModel in the market {market}")
        self._selector = selector
        self.universe_settings = universe_settings

    def get_next_refresh_time_utc(self) -> dt.datetime | None:
        return None

    def create_universes(self, algorithm: Any) -> list[Any]:
        for name in ("select_coarse", "select_fine"):
            if getattr(type(self), name, None) is not None:
                raise NotSupportedByLocalRuntime(f"FundamentalUniverseSelectionModel.{name}")
        return [_ModelUniverse(self, self.universe_settings)]

    def select(self, algorithm: Any, fundamental: list[Fundamental]) -> Any:
        if self._selector is None:
            raise NotImplementedError("Please overrride the 'Select' fundamental function")
        return self._selector(fundamental)


class _ModelUniverse:
    """The universe a FundamentalUniverseSelectionModel creates, in the framework's universe protocol (``start``
    when the run starts, ``on_time_step``): a fundamental universe of the runtime's UniverseManager."""

    def __init__(self, model: FundamentalUniverseSelectionModel, settings: Any) -> None:
        self._model = model
        self._settings = settings

    def start(self, algorithm: Any) -> None:
        settings = self._settings if self._settings is not None else algorithm.universe_settings
        algorithm._engine.universes.add(lambda fundamental: self._model.select(algorithm, fundamental), settings)

    def on_time_step(self, algorithm: Any) -> None:
        pass
