from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from include.audit.db import (
    DB_URL_ENV,
    Base,
    current_revision,
    default_database_url,
    downgrade_database,
    make_engine,
    upgrade_database,
)
from include.audit.ingest import ensure_run

TABLES = {"rebalance_runs", "intent_orders", "order_events", "consistency_results"}


def test_migrations_up_down_up(raw_db_url: str) -> None:
    upgrade_database(raw_db_url)
    assert current_revision(raw_db_url) == "0002_run_attempts"
    engine = make_engine(raw_db_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
        downgrade_database(raw_db_url)
        assert current_revision(raw_db_url) is None
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade_database(raw_db_url)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_run_key_is_unique_per_dag(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        first = ensure_run(conn, dag_id="d", run_key="20210330")
        assert ensure_run(conn, dag_id="d", run_key="20210330") == first
        assert ensure_run(conn, dag_id="other", run_key="20210330") != first
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rebalance_runs (dag_id, run_key, mode, runtime, status, created_at, updated_at) "
                "VALUES ('d', '20210330', 'backtest', 'local', 'x', :now, :now)"
            ),
            {"now": now},
        )


def _event_sql() -> str:
    return (
        "INSERT INTO order_events (run_id, algorithm_id, order_id, order_event_id, symbol, symbol_value, "
        "symbol_permtick, time, status, direction, fill_price, fill_price_currency, fill_quantity, quantity, "
        "is_assignment, is_in_the_money, source_file) VALUES (:run, 'a', 1, 1, 'SPY R735QTJ8XC9X', 'SPY', 'SPY', "
        "1.0, 'submitted', 'buy', 0, 'USD', 0, 1, false, false, 'f.json')"
    )


def test_order_event_key_and_foreign_keys(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        run = ensure_run(conn, dag_id="d", run_key="k")
        conn.execute(text(_event_sql()), {"run": run})
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(text(_event_sql()), {"run": run})
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(text(_event_sql()), {"run": run + 1000})


def test_intent_order_key_and_checks(db_engine: Engine) -> None:
    sql = text(
        "INSERT INTO intent_orders (run_id, rebalance_date, symbol, side, weight) "
        "VALUES (:run, :day, 'SPY', :side, 0.5)"
    )
    with db_engine.begin() as conn:
        run = ensure_run(conn, dag_id="d", run_key="k")
        conn.execute(sql, {"run": run, "day": dt.date(2021, 3, 30), "side": "BUY"})
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(sql, {"run": run, "day": dt.date(2021, 3, 30), "side": "BUY"})
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(sql, {"run": run, "day": dt.date(2021, 3, 31), "side": "HOLD"})
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rebalance_runs (dag_id, run_key, mode, runtime, status, created_at, updated_at) "
                "VALUES ('d', 'k2', 'paper', 'local', 'x', :now, :now)"
            ),
            {"now": dt.datetime.now(dt.UTC)},
        )


def test_sqlite_pragmas(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_default_url_from_env_or_artifact_root(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv(DB_URL_ENV, "postgresql+psycopg://u@h/db")
    assert default_database_url() == "postgresql+psycopg://u@h/db"
    monkeypatch.delenv(DB_URL_ENV)
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path))
    assert default_database_url() == f"sqlite:///{tmp_path}/audit.db"
