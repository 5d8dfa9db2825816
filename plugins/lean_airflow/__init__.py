"""Airflow-side parts of lean-airflow: operator, timetable, DAG factory, UI plugin.

Loaded through ``plugins/lean_airflow_plugin.py``; this package itself is in ``.airflowignore``
so Airflow's plugin loader does not import its modules a second time under bare names.
"""
