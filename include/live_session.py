"""When a live rebalance session runs: one home for its timing, read by the DAG's schedule and the pipeline.

The live run of session D starts N minutes before D's close (``$LEAN_AIRFLOW_LIVE_MINUTES_BEFORE_CLOSE``,
default 50: 15:10 New York time on a full day, 12:10 on a 13:00 early close). Its market-on-close orders
must reach Lean before the MOC cutoff, close - 15.5 min (Lean ``Common/Orders/MarketOnCloseOrder.cs`` L35);
at close + 10 min the algorithm cancels what is still open, writes ``done-<D>.json`` and quits.
"""

from __future__ import annotations

import datetime as dt
import os

from include.trading_calendar import NEW_YORK, session_close_utc

LIVE_MINUTES_BEFORE_CLOSE_ENV = "LEAN_AIRFLOW_LIVE_MINUTES_BEFORE_CLOSE"
DEFAULT_LIVE_MINUTES_BEFORE_CLOSE = 50
MOC_CUTOFF_MINUTES = 15.5
# Submitting takes the run's first tasks and Lean's start-up: at least this long before the cutoff.
MIN_LIVE_MINUTES_BEFORE_CLOSE = 20
MAX_LIVE_MINUTES_BEFORE_CLOSE = 12 * 60
# The algorithm's deadline (algorithms/lean_trend_rotation.py DEADLINE_MINUTES_AFTER_CLOSE).
LIVE_DEADLINE_MINUTES_AFTER_CLOSE = 10


def live_minutes_before_close() -> int:
    """``$LEAN_AIRFLOW_LIVE_MINUTES_BEFORE_CLOSE`` (default 50); ``ValueError`` naming it when it cannot work."""
    raw = (os.environ.get(LIVE_MINUTES_BEFORE_CLOSE_ENV) or "").strip()
    if not raw:
        return DEFAULT_LIVE_MINUTES_BEFORE_CLOSE
    try:
        minutes = int(raw)
    except ValueError:
        raise ValueError(f"{LIVE_MINUTES_BEFORE_CLOSE_ENV}={raw!r} is not a whole number of minutes") from None
    if not MIN_LIVE_MINUTES_BEFORE_CLOSE <= minutes <= MAX_LIVE_MINUTES_BEFORE_CLOSE:
        raise ValueError(
            f"{LIVE_MINUTES_BEFORE_CLOSE_ENV}={minutes} must be within [{MIN_LIVE_MINUTES_BEFORE_CLOSE}, "
            f"{MAX_LIVE_MINUTES_BEFORE_CLOSE}]: the live run submits market-on-close orders, which Lean refuses "
            f"later than {MOC_CUTOFF_MINUTES:g} min before the close (Lean Common/Orders/MarketOnCloseOrder.cs L35)"
        )
    return minutes


def session_start_utc(day: dt.date, minutes_before_close: int | None = None) -> dt.datetime:
    """When the live run of session ``day`` starts (UTC)."""
    lead = live_minutes_before_close() if minutes_before_close is None else minutes_before_close
    return session_close_utc(day) - dt.timedelta(minutes=lead)


def replay_clock(day: dt.date, today: dt.date | None = None) -> str | None:
    """The local runtime's clock for a live run of session ``day``: its start time when ``day`` is before
    today (a replay of a past session on the bundled data; the real Lean cannot replay), else None (the
    machine's clock, as Lean's)."""
    today = today or dt.datetime.now(NEW_YORK).date()
    if day >= today:
        return None
    return session_start_utc(day).isoformat()
