"""``NyseTradingDayTimetable``: one run per NYSE session, some minutes after its close.

Weekends and exchange holidays (e.g. 2025-12-25, the observed 2026-07-03) never get a run.
A session's run has the data interval [the session's close, the run time]: its logical date is
the close (so the session date derives from it, and ``airflow backfill create --from-date A
--to-date B`` selects the sessions whose close lies in [A, B]) and it runs at the interval's end.
The delay may reach past midnight: a daily *backtest* must, because Lean's ``SetEndDate`` cuts a
backtest's end to yesterday in the algorithm's time zone (Lean ``Algorithm/QCAlgorithm.cs``,
``SetEndDate(DateTime)``), so a backtest of session D started on D itself never trades D.
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


class NyseTradingDayTimetable(Timetable):
    def __init__(self, *, minutes_after_close: int = 30) -> None:
        if not 0 <= minutes_after_close < MAX_DELAY_MINUTES:
            raise ValueError(f"minutes_after_close={minutes_after_close} must be within [0, {MAX_DELAY_MINUTES})")
        self.minutes_after_close = minutes_after_close
        self.description = f"NYSE sessions, {minutes_after_close} min after the close"

    @property
    def summary(self) -> str:
        return f"NYSE close +{self.minutes_after_close}m"

    def serialize(self) -> dict[str, Any]:
        return {"minutes_after_close": self.minutes_after_close}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(minutes_after_close=int(data.get("minutes_after_close", 30)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NyseTradingDayTimetable) and other.minutes_after_close == self.minutes_after_close

    def __hash__(self) -> int:
        return hash(("NyseTradingDayTimetable", self.minutes_after_close))

    def close_of(self, session: dt.date) -> DateTime:
        from include.trading_calendar import session_close_utc

        return instance(session_close_utc(session)).in_timezone(UTC)

    def run_time_of(self, session: dt.date) -> DateTime:
        return self.close_of(session).add(minutes=self.minutes_after_close)

    def _first_session_closing_at_or_after(self, moment: DateTime) -> dt.date | None:
        from include.trading_calendar import is_session, next_session

        day = session_date_of(moment)
        if is_session(day) and self.close_of(day) >= moment:
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
            session = self._first_session_closing_at_or_after(restriction.earliest)
        if not restriction.catchup:
            # Like Airflow's cron timetables: without catchup, missed sessions are not replayed
            # (after a pause the next run is the next one still to come, not every day since).
            now = DateTime.utcnow().replace(tzinfo=UTC)
            while session is not None and self.run_time_of(session) < now:
                session = next_session(session)
        if session is None:
            return None
        # The logical date is the session's close: backfill date ranges and the session date use it.
        if restriction.latest is not None and self.close_of(session) > restriction.latest:
            return None
        return DagRunInfo.interval(start=self.close_of(session), end=self.run_time_of(session))
