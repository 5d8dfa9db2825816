"""Missing or stale market data is a hard failure, for live and backtest alike (issue #17).

Before Lean starts, every symbol a run trades or holds must have a daily bar on the session the run
sizes on. Otherwise :func:`require_data_coverage` raises ``MarketDataMissingError`` naming each symbol,
the session it needed and the last date its data has (or that it has no data file), and nothing is
traded. It is a preflight of the core (``include.pipeline.lean_job``), so it holds for both runtimes.

**Which session**, per mode (``algorithms/lean_trend_rotation.py`` and ``include/lean_local``):

* **backtest**, each rebalance dated D: **D itself**. The orders are built one minute after D's open
  (``time_rules.after_market_open(anchor, 1)``) from the latest close seen, and on daily data Lean turns
  those market orders into MarketOnClose orders that fill at D's close: D's bar is the price the trade is
  made at. Without it the feed carries the last close forward (``DataFeed.advance``, a fill-forward bar)
  and the order fills at an older day's price, however old.
* **live**, trading the intent's last date D (``lean_job`` sets ``live-as-of`` to it; ``rebalance`` trades
  only ``self._rebalances.get(today)``, so earlier dates are not checked): **the session before D**, as
  the issue states it. A live run trades when it runs, before D's close, so the freshest close in the
  data folder it can size on is the previous session's (real Lean takes D's own prices from its live
  feed, not from the folder). A bar on D itself is fresher still and is accepted too; a latest bar older
  than the previous session is stale, and two-year-old prices are refused here. The local runtime's live
  step (``include.lean_local.live``) emulates the run at D's close and sizes in ``on_data`` on D's bar
  from the data folder: with only the previous session's bar no bar arrives, nothing is traded, and the
  run fails at ``ingest_events`` (``OrderEventsMissingError``), never on stale prices.

**Which symbols**, per checked rebalance: the ones the intent targets with a non-zero weight that day,
and the ones the account may hold going into it, since ``build_orders`` sizes every held symbol (a held
symbol that is no longer targeted is sold at its price): the starting state's holdings
(``initial_state.json``) before the first rebalance (and before a live run's one), the previous
rebalance's non-zero targets before a later one. A symbol with weight 0 that is not held trades
nothing and needs no data.

Only those symbols' files are read, through the one reader (``include.market_data``); its provider
caches the parsed files per process, so after the snapshot read them (the CLI, ``run_chain``) nothing is
parsed again.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from include.errors import MarketDataMissingError
from include.trading_calendar import is_session, previous_session

if TYPE_CHECKING:
    from include.contracts.intent import OrderIntent
    from include.run_folder import RunFolder

Mode = Literal["backtest", "live"]


@dataclass(frozen=True)
class BarNeed:
    """A symbol must have a bar on ``session`` (or, live, on any of ``accepted``) for the rebalance ``date``."""

    symbol: str
    date: dt.date
    session: dt.date
    accepted: tuple[dt.date, ...]
    why: str


@dataclass(frozen=True)
class CoverageGap:
    """A need the data folder does not meet: ``last`` is the last date its data has (None: no bars),
    ``next`` the first bar after the needed session when the data resumes (a hole, not an end)."""

    need: BarNeed
    file_exists: bool
    last: dt.date | None
    next: dt.date | None
    path: str

    def describe(self) -> str:
        need = self.need
        head = f"{need.symbol}: no bar on {need.session.isoformat()} ({need.why})"
        if not self.file_exists:
            return f"{head}; no data file ({self.path})"
        if self.last is None:
            if self.next is None:
                return f"{head}; its data file ({self.path}) has no bars"
            return f"{head}; no date available before it, its data starts on {self.next.isoformat()}"
        if self.next is not None:
            return (
                f"{head}; a gap in the data: last date available before it {self.last.isoformat()}, "
                f"next {self.next.isoformat()}"
            )
        return f"{head}; last date available {self.last.isoformat()}"


def sizing_session(mode: Mode, date: dt.date) -> tuple[dt.date, tuple[dt.date, ...], str]:
    """The session a run for ``date`` sizes on, the sessions whose bar satisfies it, and why (see the module doc)."""
    if mode == "live":
        now = date if is_session(date) else previous_session(date)
        if now is None:
            raise ValueError(f"{date}: before the trading calendar's first session")
        before = previous_session(now)
        if before is None:
            return now, (now,), f"the close a live run trading {date.isoformat()} sizes on"
        why = f"the previous session's close, which a live run trading {date.isoformat()} sizes on"
        return before, (before, now), why
    return date, (date,), f"the close the backtest's rebalance of {date.isoformat()} fills at"


def bar_needs(intent: OrderIntent, *, mode: Mode, holdings: Iterable[str] = ()) -> list[BarNeed]:
    """Every (symbol, session) the run needs a bar for, per the module doc: one per symbol and checked rebalance."""
    held = {symbol.upper() for symbol in holdings}
    rebalances = intent.rebalances[-1:] if mode == "live" else intent.rebalances
    needs: list[BarNeed] = []
    carried = held  # what the account may hold going into the rebalance
    for rebalance in rebalances:
        targets = {item.symbol.upper() for item in rebalance.items if item.weight != 0}
        session, accepted, why = sizing_session(mode, rebalance.date)
        needs += [BarNeed(symbol, rebalance.date, session, accepted, why) for symbol in sorted(targets | carried)]
        carried = targets
    return needs


def coverage_gaps(data_folder: str | os.PathLike[str], needs: Sequence[BarNeed]) -> list[CoverageGap]:
    """The needs the data folder's daily bars do not meet, in order. Reads each needed symbol's file once."""
    from include.lean_local.sessions import from_yyyymmdd, yyyymmdd
    from include.market_data import daily_bar_days, daily_zip_path

    days_of: dict[str, list[int] | None] = {}
    gaps: list[CoverageGap] = []
    for need in needs:
        if need.symbol not in days_of:
            first = min(n.session for n in needs if n.symbol == need.symbol)
            days_of[need.symbol] = daily_bar_days(data_folder, need.symbol, on=first)
        days = days_of[need.symbol]
        path = daily_zip_path(data_folder, need.symbol).relative_to(Path(data_folder)).as_posix()
        if days is None:
            gaps.append(CoverageGap(need, False, None, None, path))
            continue
        keys = sorted(yyyymmdd(day) for day in need.accepted)
        if any(_has(days, key) for key in keys):
            continue
        after = bisect.bisect_right(days, keys[-1])
        before = bisect.bisect_left(days, keys[0])
        last = from_yyyymmdd(days[before - 1]) if before > 0 else None
        following = from_yyyymmdd(days[after]) if after < len(days) else None
        gaps.append(CoverageGap(need, True, last, following, path))
    return gaps


def _has(days: Sequence[int], key: int) -> bool:
    i = bisect.bisect_left(days, key)
    return i < len(days) and days[i] == key


def check_data_coverage(
    data_folder: str | os.PathLike[str], intent: OrderIntent, *, mode: Mode, holdings: Iterable[str] = ()
) -> None:
    """Raise ``MarketDataMissingError`` unless every bar the run needs is in ``data_folder``."""
    gaps = coverage_gaps(data_folder, bar_needs(intent, mode=mode, holdings=holdings))
    if gaps:
        raise MarketDataMissingError(
            os.fspath(data_folder),
            [gap.describe() for gap in gaps],
            symbols=sorted({gap.need.symbol for gap in gaps}),
        )


def starting_holdings(folder: RunFolder) -> Mapping[str, float]:
    """The non-zero holdings of the run folder's starting state (``initial_state.json``; none without it)."""
    from include.run_folder import read_starting_state

    path = folder.inside(folder.initial_state_path) if folder.initial_state_path.exists() else None
    state = read_starting_state({}, path)
    return {symbol: quantity for symbol, quantity in state.holdings.items() if quantity}


def require_data_coverage(folder: RunFolder, *, mode: Mode, data_folder: str | os.PathLike[str]) -> None:
    """The preflight of a Lean run: the run folder's intent and starting state against ``data_folder``."""
    check_data_coverage(data_folder, folder.load_intent(), mode=mode, holdings=starting_holdings(folder))


__all__ = [
    "BarNeed",
    "CoverageGap",
    "bar_needs",
    "check_data_coverage",
    "coverage_gaps",
    "require_data_coverage",
    "sizing_session",
    "starting_holdings",
]
