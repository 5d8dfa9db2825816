"""Registers lean-airflow with Airflow: the trading-day timetable (and, later, the UI app)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from lean_airflow.timetables import NyseTradingDayTimetable


class LeanAirflowPlugin(AirflowPlugin):
    name = "lean_airflow"
    timetables = [NyseTradingDayTimetable]
