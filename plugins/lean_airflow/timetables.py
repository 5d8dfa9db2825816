"""``NyseTradingDayTimetable``: one run per NYSE session, some minutes after its close.

Weekends and exchange holidays (e.g. 2025-12-25, the observed 2026-07-03) never get a run.
Like Airflow 3's ``CronTriggerTimetable`` the data interval has zero length: logical date,
data interval end and run time are the same instant, so the session date derives from it.
Sessions come from ``exchange_calendars``, loaded lazily so DAG parsing stays cheap.
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


class NyseTradingDayTimetable(Timetable):
    def __init__(self, *, minutes_after_close: int = 30) -> None:
        if not 0 <= minutes_after_close < 6 * 60:
            raise ValueError(f"minutes_after_close={minutes_after_close} must be within [0, 360)")
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

    def run_time_of(self, session: dt.date) -> DateTime:
        from include.trading_calendar import session_close_utc

        close = session_close_utc(session)
        return instance(close + dt.timedelta(minutes=self.minutes_after_close)).in_timezone(UTC)

    def _first_run_at_or_after(self, moment: DateTime) -> DateTime | None:
        from include.trading_calendar import is_session, next_session

        day = session_date_of(moment)
        if is_session(day) and self.run_time_of(day) >= moment:
            return self.run_time_of(day)
        following = next_session(day)
        return self.run_time_of(following) if following is not None else None

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            earliest = last_automated_data_interval.end.add(seconds=1)
        elif restriction.earliest is None:
            return None
        else:
            earliest = restriction.earliest
        if not restriction.catchup:
            # Like Airflow's cron timetables: without catchup, missed sessions are not replayed
            # (after a pause the next run is the next close, not every day since).
            earliest = max(earliest, DateTime.utcnow().replace(tzinfo=UTC))
        candidate = self._first_run_at_or_after(earliest)
        if candidate is None:
            return None
        if restriction.latest is not None and candidate > restriction.latest:
            return None
        return DagRunInfo.exact(candidate)
