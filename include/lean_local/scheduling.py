"""Scheduled events: date rules x time rules, expanded to concrete New York times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

from include.lean_local.errors import NotSupportedByLocalRuntime
from include.lean_local.sessions import nyse_sessions, yyyymmdd

DateFn = Callable[[dt.date, dt.date], list[dt.date]]


class ScheduleHost(Protocol):
    """What scheduling asks of the engine."""

    def schedule_range(self) -> tuple[dt.date, dt.date]: ...

    def clock_floor(self) -> dt.datetime | None: ...


def _session_dates(start: dt.date, end: dt.date) -> list[dt.date]:
    s = nyse_sessions()
    lo = s.index_of(yyyymmdd(start))
    hi = s.index_of(yyyymmdd(end) + 1)
    return list(s.dates[lo:hi])


class DateRule:
    def __init__(self, name: str, fn: DateFn) -> None:
        self.name = name
        self._fn = fn

    def get_dates(self, start: dt.date, end: dt.date) -> list[dt.date]:
        return self._fn(start, end)


class TimeRule:
    def __init__(self, name: str, fn: Callable[[dt.date], list[dt.datetime]]) -> None:
        self.name = name
        self._fn = fn

    def times_on(self, day: dt.date) -> list[dt.datetime]:
        return self._fn(day)


class DateRules:
    def __init__(self, now: Callable[[], dt.datetime] | None = None) -> None:
        # The algorithm's clock (New York): what ``today``/``tomorrow`` and ``time_rules.now`` mean.
        self._now = now

    def every_day(self, symbol: Any = None, extended_market_hours: bool = False) -> DateRule:
        """``extended_market_hours`` (here and in the period rules) counts days with only an extended session:
        US equities have none (a holiday closes every session), so the dates are the same either way."""
        if symbol is None:

            def all_days(a: dt.date, b: dt.date) -> list[dt.date]:
                return [a + dt.timedelta(days=i) for i in range((b - a).days + 1)]

            return DateRule("EveryDay", all_days)
        return DateRule(f"EveryDay: {symbol}", _session_dates)

    def every(self, *days: Any, day: Any = None) -> DateRule:
        """Lean's ``Every(day)`` or ``Every(days)`` (DayOfWeek values, Sunday=0), or several days."""
        if day is not None:
            days = (*days, day)
        wanted: set[int] = set()
        for d in days:
            for item in d if isinstance(d, (list, tuple, set)) else [d]:
                wanted.add(int(item))

        def pick(a: dt.date, b: dt.date) -> list[dt.date]:
            # DayOfWeek: Sunday=0 ... Saturday=6
            out = []
            for i in range((b - a).days + 1):
                day = a + dt.timedelta(days=i)
                if (day.isoweekday() % 7) in wanted:
                    out.append(day)
            return out

        return DateRule("Every", pick)

    def month_start(self, symbol: Any = None, days_offset: int = 0, extended_market_hours: bool = True) -> DateRule:
        return DateRule("MonthStart", _period_start(symbol, days_offset, lambda d: (d.year, d.month)))

    def week_start(self, symbol: Any = None, days_offset: int = 0, extended_market_hours: bool = True) -> DateRule:
        return DateRule("WeekStart", _period_start(symbol, days_offset, lambda d: d.isocalendar()[:2]))

    def month_end(self, symbol: Any = None, days_offset: int = 0, extended_market_hours: bool = True) -> DateRule:
        return DateRule("MonthEnd", _period_end(symbol, days_offset, lambda d: (d.year, d.month)))

    def week_end(self, symbol: Any = None, days_offset: int = 0, extended_market_hours: bool = True) -> DateRule:
        return DateRule("WeekEnd", _period_end(symbol, days_offset, lambda d: d.isocalendar()[:2]))

    def on(self, *dates: Any, year: int | None = None, month: int | None = None, day: int | None = None) -> DateRule:
        """Lean's ``On(year, month, day)`` or ``On(*dates)``."""
        if year is not None or month is not None or day is not None:
            dates = (*dates, year, month, day)
        if len(dates) == 3 and all(isinstance(d, int) for d in dates):
            dates = (dt.date(*dates),)
        fixed = sorted({d if isinstance(d, dt.date) and not isinstance(d, dt.datetime) else d.date() for d in dates})

        def pick(a: dt.date, b: dt.date) -> list[dt.date]:
            return [d for d in fixed if a <= d <= b]

        return DateRule("On", pick)

    def _today(self) -> dt.date:
        if self._now is None:
            raise NotSupportedByLocalRuntime("date_rules.today outside an algorithm")
        return self._now().date()

    @property
    def today(self) -> DateRule:
        """Lean's ``Today``: the algorithm's current date only (``Common/Scheduling/DateRules.cs`` L82-86)."""
        return DateRule("TodayOnly", lambda a, b: [self._today()])

    @property
    def tomorrow(self) -> DateRule:
        """Lean's ``Tomorrow``: the day after the algorithm's current date (``DateRules.cs`` L92-94)."""
        return DateRule("TomorrowOnly", lambda a, b: [self._today() + dt.timedelta(days=1)])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"date_rules.{name}")


def _days_in_range(symbol: Any, a: dt.date, b: dt.date) -> list[dt.date]:
    if symbol is None:
        return [a + dt.timedelta(days=i) for i in range((b - a).days + 1)]
    return _session_dates(a, b)


def _period_start(symbol: Any, offset: int, key: Callable[[dt.date], Any]) -> DateFn:
    def pick(a: dt.date, b: dt.date) -> list[dt.date]:
        # look back to the period start so the first (partial) period is judged on its full calendar
        lo = a.replace(day=1) - dt.timedelta(days=7)
        groups: dict[Any, list[dt.date]] = {}
        for d in _days_in_range(symbol, lo, b):
            groups.setdefault(key(d), []).append(d)
        out = []
        for days in groups.values():
            if days:
                d = days[min(offset, len(days) - 1)]
                if a <= d <= b:
                    out.append(d)
        return sorted(out)

    return pick


def _period_end(symbol: Any, offset: int, key: Callable[[dt.date], Any]) -> DateFn:
    def pick(a: dt.date, b: dt.date) -> list[dt.date]:
        hi = b + dt.timedelta(days=38)
        groups: dict[Any, list[dt.date]] = {}
        for d in _days_in_range(symbol, a, hi):
            groups.setdefault(key(d), []).append(d)
        out = []
        for days in groups.values():
            d = days[max(len(days) - 1 - offset, 0)]
            if a <= d <= b:
                out.append(d)
        return sorted(out)

    return pick


def _session_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
    s = nyse_sessions()
    i = s.positions.get(yyyymmdd(day))
    if i is None:
        return None
    return s.opens[i], s.closes[i]


class TimeRules:
    def __init__(self, now: Callable[[], dt.datetime] | None = None) -> None:
        self._now = now

    @property
    def now(self) -> TimeRule:
        """Lean's ``Now``: the algorithm's current time, whatever the date (``TimeRules.cs`` L56-65)."""
        if self._now is None:
            raise NotSupportedByLocalRuntime("time_rules.now outside an algorithm")
        clock = self._now
        return TimeRule("Now", lambda day: [clock()])

    def at(
        self,
        hour: int | dt.timedelta | None = None,
        minute: int = 0,
        second: int = 0,
        *rest: Any,
        time_of_day: dt.timedelta | None = None,
        time_zone: Any = None,
    ) -> TimeRule:
        """Lean's ``At(hour, minute[, second])`` or ``At(time_of_day)``, in the exchange's time zone."""
        if time_zone is not None:
            raise NotSupportedByLocalRuntime("time_rules.at with a time_zone")
        if time_of_day is not None:
            if hour is not None:
                raise TypeError("at() takes (hour, minute[, second]) or (time_of_day)")
            hour = time_of_day
        if hour is None:
            raise TypeError("at() needs an hour or a time_of_day")
        delta = hour if isinstance(hour, dt.timedelta) else dt.timedelta(hours=hour, minutes=minute, seconds=second)
        return TimeRule("At", lambda day: [dt.datetime.combine(day, dt.time()) + delta])

    @property
    def midnight(self) -> TimeRule:
        return TimeRule("Midnight", lambda day: [dt.datetime.combine(day, dt.time())])

    @property
    def noon(self) -> TimeRule:
        return TimeRule("Noon", lambda day: [dt.datetime.combine(day, dt.time(12))])

    def after_market_open(
        self, symbol: Any = None, minutes_after_open: float = 0, extended_market_open: bool = False
    ) -> TimeRule:
        def fn(day: dt.date) -> list[dt.datetime]:
            bounds = _session_bounds(day)
            return [] if bounds is None else [bounds[0] + dt.timedelta(minutes=minutes_after_open)]

        return TimeRule("AfterMarketOpen", fn)

    def before_market_close(
        self, symbol: Any = None, minutes_before_close: float = 0, extended_market_close: bool = False
    ) -> TimeRule:
        def fn(day: dt.date) -> list[dt.datetime]:
            bounds = _session_bounds(day)
            return [] if bounds is None else [bounds[1] - dt.timedelta(minutes=minutes_before_close)]

        return TimeRule("BeforeMarketClose", fn)

    def after_market_close(
        self, symbol: Any = None, minutes_after_close: float = 0, extended_market_close: bool = False
    ) -> TimeRule:
        """Lean's ``AfterMarketClose``: ``BeforeMarketClose`` with the minutes negated (``TimeRules.cs`` L284-308)."""
        rule = self.before_market_close(symbol, -minutes_after_close, extended_market_close)
        return TimeRule("AfterMarketClose", rule.times_on)

    def every(self, interval: dt.timedelta) -> TimeRule:
        def fn(day: dt.date) -> list[dt.datetime]:
            start = dt.datetime.combine(day, dt.time())
            n = int(dt.timedelta(days=1) / interval)
            return [start + interval * i for i in range(n)]

        return TimeRule("Every", fn)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"time_rules.{name}")


class ScheduledEvent:
    def __init__(self, name: str, times: list[dt.datetime], callback: Callable[..., Any]) -> None:
        self.name = name
        self.times = times
        self.callback = callback
        self.position = 0

    @property
    def next_time(self) -> dt.datetime | None:
        return self.times[self.position] if self.position < len(self.times) else None


class ScheduleManager:
    def __init__(self, engine: ScheduleHost) -> None:
        self._engine = engine
        self.events: list[ScheduledEvent] = []

    def on(
        self, date_rule: DateRule, time_rule: TimeRule, callback: Callable[..., Any], name: str | None = None
    ) -> ScheduledEvent:
        if not isinstance(date_rule, DateRule) or not isinstance(time_rule, TimeRule):
            raise NotSupportedByLocalRuntime("schedule.on with custom rules")
        if isinstance(callback, str):  # schedule.on(name, date_rule, time_rule, callback) is not this overload
            raise NotSupportedByLocalRuntime("schedule.on(name, ...)")
        start, end = self._engine.schedule_range()
        times: list[dt.datetime] = []
        for day in date_rule.get_dates(start, end):
            times.extend(time_rule.times_on(day))
        times.sort()
        event = ScheduledEvent(name or f"{date_rule.name}: {time_rule.name}", times, callback)
        # skip events already in the past of the algorithm clock
        now = self._engine.clock_floor()
        while event.next_time is not None and now is not None and event.next_time < now:
            event.position += 1
        self.events.append(event)
        return event

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotSupportedByLocalRuntime(f"schedule.{name}")
