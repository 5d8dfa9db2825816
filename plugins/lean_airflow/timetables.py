"""``NyseTradingDayTimetable``: one run per NYSE session, some minutes after or before its close.

Weekends and exchange holidays (e.g. 2025-12-25, the observed 2026-07-03) never get a run.

* **After the close** (``minutes_after_close``, the daily backtest): a session's run has the data
  interval [the session's close, the run time]; its logical date is the close (so the session
  date derives from it, and ``airflow backfill create --from-date A --to-date B`` selects the
  sessions whose close lies in [A, B]) and it runs at the interval's end. The delay may reach past
  midnight: a daily *backtest* must, because Lean's ``SetEndDate`` cuts a backtest's end to
  yesterday in the algorithm's time zone (Lean ``Algorithm/QCAlgorithm.cs``,
  ``SetEndDate(DateTime)``), so a backtest of session D started on D itself never trades D.
* **Before the close** (``minutes_before_close``, the live rebalance): the run of session D starts
  at close(D) - N on D itself (15:10 New York time for N = 50 on a full day, 12:10 on a 13:00
  early close), early enough for market-on-close orders (Lean refuses them later than 15.5 minutes
  before the close: Lean ``Common/Orders/MarketOnCloseOrder.cs`` L35). Its data interval is the
  run instant itself (zero length, like Airflow's ``CronTriggerTimetable``): the logical date is on
  D in New York, so the session still derives from the interval's start, and a backfill range
  selects the sessions whose run time lies in it.

Sessions come from ``include.trading_calendar``, loaded lazily so DAG parsing stays cheap.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.timetables.base import DagRunInfo, DataInterval, Timetable
from pendulum import UTC, DateTime, instance

if TYPE_CHECKING:
    from airflow.timetables.base import TimeRestriction

NEW_YORK = "America/New_York"


def session_date_of(moment: dt.datetime) -> dt.date:
    """The New York calendar date of a run instant: the session it belongs to."""
    return instance(moment).in_timezone(NEW_YORK).date()


MAX_DELAY_MINUTES = 24 * 60
# A run before the close stays on the session's New York date: the earliest close is 13:00.
MAX_LEAD_MINUTES = 12 * 60
DEFAULT_MINUTES_AFTER_CLOSE = 30


class NyseTradingDayTimetable(Timetable):
    def __init__(self, *, minutes_after_close: int | None = None, minutes_before_close: int | None = None) -> None:
        if minutes_before_close is not None:
            if minutes_after_close is not None:
                raise ValueError("give minutes_after_close or minutes_before_close, not both")
            if not 0 < minutes_before_close <= MAX_LEAD_MINUTES:
                raise ValueError(f"minutes_before_close={minutes_before_close} must be within (0, {MAX_LEAD_MINUTES}]")
            self.offset_minutes = -minutes_before_close
            self.description = f"NYSE sessions, {minutes_before_close} min before the close"
        else:
            after = DEFAULT_MINUTES_AFTER_CLOSE if minutes_after_close is None else minutes_after_close
            if not 0 <= after < MAX_DELAY_MINUTES:
                raise ValueError(f"minutes_after_close={after} must be within [0, {MAX_DELAY_MINUTES})")
            self.offset_minutes = after
            self.description = f"NYSE sessions, {after} min after the close"

    @property
    def before_close(self) -> bool:
        """Runs before the session's close (the live rebalance), on the session's own date."""
        return self.offset_minutes < 0

    @property
    def minutes_after_close(self) -> int:
        return max(self.offset_minutes, 0)

    @property
    def minutes_before_close(self) -> int:
        return max(-self.offset_minutes, 0)

    @property
    def summary(self) -> str:
        if self.before_close:
            return f"NYSE close -{self.minutes_before_close}m"
        return f"NYSE close +{self.minutes_after_close}m"

    def serialize(self) -> dict[str, Any]:
        if self.before_close:
            return {"minutes_before_close": self.minutes_before_close}
        return {"minutes_after_close": self.minutes_after_close}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        if data.get("minutes_before_close") is not None:
            return cls(minutes_before_close=int(data["minutes_before_close"]))
        return cls(minutes_after_close=int(data.get("minutes_after_close", DEFAULT_MINUTES_AFTER_CLOSE)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NyseTradingDayTimetable) and other.offset_minutes == self.offset_minutes

    def __hash__(self) -> int:
        return hash(("NyseTradingDayTimetable", self.offset_minutes))

    def close_of(self, session: dt.date) -> DateTime:
        from include.trading_calendar import session_close_utc

        return instance(session_close_utc(session)).in_timezone(UTC)

    def run_time_of(self, session: dt.date) -> DateTime:
        return self.close_of(session).add(minutes=self.offset_minutes)

    def logical_date_of(self, session: dt.date) -> DateTime:
        """The run's logical date (its data interval's start): the close, or the run time before it;
        on the session's New York date either way, so ``session_date_of`` gives the session back."""
        return self.run_time_of(session) if self.before_close else self.close_of(session)

    def run_info_of(self, session: dt.date) -> DagRunInfo:
        if self.before_close:
            return DagRunInfo.exact(self.run_time_of(session))
        return DagRunInfo.interval(start=self.close_of(session), end=self.run_time_of(session))

    def _first_session_at_or_after(self, moment: DateTime) -> dt.date | None:
        """The first session whose logical date is at or after ``moment``."""
        from include.trading_calendar import is_session, next_session

        day = session_date_of(moment)
        if is_session(day) and self.logical_date_of(day) >= moment:
            return day
        return next_session(day)

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        from include.trading_calendar import next_session

        if last_automated_data_interval is not None:
            session = next_session(session_date_of(last_automated_data_interval.start))
        elif restriction.earliest is None:
            return None
        else:
            session = self._first_session_at_or_after(restriction.earliest)
        if not restriction.catchup:
            # Like Airflow's cron timetables: without catchup, missed sessions are not replayed
            # (after a pause the next run is the next one still to come, not every day since).
            now = DateTime.utcnow().replace(tzinfo=UTC)
            while session is not None and self.run_time_of(session) < now:
                session = next_session(session)
        if session is None:
            return None
        # The logical date (the close, or the run time before it): backfill date ranges and the session date use it.
        if restriction.latest is not None and self.logical_date_of(session) > restriction.latest:
            return None
        return self.run_info_of(session)
