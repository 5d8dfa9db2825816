"""Registers lean-airflow with Airflow: the trading-day timetable and the report pages.

The report pages appear twice in Airflow's UI: "Lean runs" in the Browse menu, and a "Lean report"
tab on every DAG run's page. Airflow 3's UI lists a plugin's ``external_views`` whose
``destination`` is ``dag_run`` and that have a ``url_route`` as tabs of the DAG run page, and shows
the view in an iframe whose ``src`` is ``href`` with ``{DAG_ID}`` and ``{RUN_ID}`` replaced
(URL-encoded) and no base path added; the report pages' ``frame-ancestors 'self'`` lets the UI,
on the same origin, frame them.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from lean_airflow.operators import REPORT_URL_PREFIX, _api_root_path
from lean_airflow.timetables import NyseTradingDayTimetable

# The tab's route in the UI: /dags/<dag_id>/runs/<run_id>/plugin/lean-report (unique among plugins).
REPORT_TAB_ROUTE = "lean-report"


def _fastapi_apps() -> list[dict[str, object]]:
    from lean_airflow.sweep_pages import register
    from lean_airflow.ui import URL_PREFIX, app

    # The sweep comparison pages (/lean-airflow/sweeps/<hash>) are routes of the same app.
    return [{"app": register(app), "url_prefix": URL_PREFIX, "name": "lean-airflow reports"}]


def _external_views() -> list[dict[str, object]]:
    return [
        {
            "name": "Lean runs",
            "href": "/lean-airflow/",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "Lean report",
            # The UI uses a tab's href as the iframe's src as it is: it needs Airflow's sub-path.
            "href": f"{_api_root_path()}{REPORT_URL_PREFIX}/dag-runs/{{DAG_ID}}/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": REPORT_TAB_ROUTE,
        },
    ]


class LeanAirflowPlugin(AirflowPlugin):
    name = "lean_airflow"
    timetables = [NyseTradingDayTimetable]
    fastapi_apps = _fastapi_apps()
    external_views = _external_views()
