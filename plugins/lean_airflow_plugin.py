"""Registers lean-airflow with Airflow: the trading-day timetable and the report pages."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from lean_airflow.timetables import NyseTradingDayTimetable


def _fastapi_apps() -> list[dict[str, object]]:
    from lean_airflow.ui import URL_PREFIX, app

    return [{"app": app, "url_prefix": URL_PREFIX, "name": "lean-airflow reports"}]


class LeanAirflowPlugin(AirflowPlugin):
    name = "lean_airflow"
    timetables = [NyseTradingDayTimetable]
    fastapi_apps = _fastapi_apps()
    external_views = [
        {
            "name": "Lean runs",
            "href": "/lean-airflow/",
            "destination": "nav",
            "category": "browse",
        }
    ]
