"""The audit database: typed SQLAlchemy models, the engine factory and Alembic upgrades.

One env var picks the database: ``LEAN_AIRFLOW_DB_URL`` (any SQLAlchemy URL; Postgres via
``postgresql+psycopg://...``). Unset, it is a SQLite file ``audit.db`` under the artifact root
(``LEAN_AIRFLOW_ARTIFACT_ROOT``, default ``<repo>/artifacts``). The schema is owned by the
Alembic migrations in ``include/audit/migrations``; ``upgrade_database(url)`` applies them.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DB_URL_ENV = "LEAN_AIRFLOW_DB_URL"
AUDIT_DB_FILENAME = "audit.db"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# SQLite has no BIGINT autoincrement; INTEGER PRIMARY KEY is its 64-bit rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# JSON NULL is stored as SQL NULL, so "no extras" costs nothing.
JsonColumn = JSON(none_as_null=True)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class RebalanceRun(Base):
    __tablename__ = "rebalance_runs"
    __table_args__ = (
        # One current attempt per (dag_id, run_key); superseded attempts stay beside it as history.
        Index(
            "uq_rebalance_runs_current_attempt",
            "dag_id",
            "run_key",
            unique=True,
            sqlite_where=text("superseded_at IS NULL"),
            postgresql_where=text("superseded_at IS NULL"),
        ),
        Index("uq_rebalance_runs_dag_run_key_attempt", "dag_id", "run_key", "attempt", unique=True),
        CheckConstraint("mode IN ('backtest', 'live')", name="ck_rebalance_runs_mode"),
        CheckConstraint("runtime IN ('docker', 'local')", name="ck_rebalance_runs_runtime"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(250))
    run_key: Mapped[str] = mapped_column(String(128))
    mode: Mapped[str] = mapped_column(String(16), default="backtest")
    runtime: Mapped[str] = mapped_column(String(16), default="local")
    status: Mapped[str] = mapped_column(String(32), default="created")
    # The attempt: 1 for the first run of the key, +1 each time a re-run brings changed inputs.
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # sha256 over the input files' hashes (include.audit.manifest.inputs_sha256): what identifies an attempt.
    inputs_sha256: Mapped[str | None] = mapped_column(String(64))
    # Set when a later attempt with other inputs replaced this one (its rows stay, as history).
    superseded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    algorithm_id: Mapped[str | None] = mapped_column(String(128))
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64))
    intent_sha256: Mapped[str | None] = mapped_column(String(64))
    params_sha256: Mapped[str | None] = mapped_column(String(64))
    config_sha256: Mapped[str | None] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)
    airflow_dag_run_id: Mapped[str | None] = mapped_column(String(250))
    airflow_task_id: Mapped[str | None] = mapped_column(String(250))
    airflow_try_number: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, onupdate=_utcnow)


class IntentOrderRow(Base):
    __tablename__ = "intent_orders"
    __table_args__ = (
        UniqueConstraint("run_id", "rebalance_date", "symbol", name="uq_intent_orders_run_date_symbol"),
        CheckConstraint("side IN ('BUY', 'SELL')", name="ck_intent_orders_side"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("rebalance_runs.id", ondelete="CASCADE"))
    rebalance_date: Mapped[dt.date] = mapped_column(Date)
    symbol: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(4))
    weight: Mapped[float] = mapped_column(Float)


class OrderEventRow(Base):
    """One Lean order event. ``time`` is Unix seconds (UTC), exactly as Lean writes it."""

    __tablename__ = "order_events"
    __table_args__ = (
        UniqueConstraint("run_id", "order_id", "order_event_id", name="uq_order_events_run_order_event"),
        Index("ix_order_events_run_symbol", "run_id", "symbol_value"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("rebalance_runs.id", ondelete="CASCADE"))
    algorithm_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[int] = mapped_column(Integer)
    order_event_id: Mapped[int] = mapped_column(Integer)
    symbol: Mapped[str] = mapped_column(String(64))
    symbol_value: Mapped[str] = mapped_column(String(32))
    symbol_permtick: Mapped[str] = mapped_column(String(32))
    time: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(8))
    fill_price: Mapped[float] = mapped_column(Float)
    fill_price_currency: Mapped[str] = mapped_column(String(8))
    fill_quantity: Mapped[float] = mapped_column(Float)
    fee_amount: Mapped[float | None] = mapped_column(Float)
    fee_currency: Mapped[str | None] = mapped_column(String(8))
    quantity: Mapped[float] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Text)
    is_assignment: Mapped[bool] = mapped_column(Boolean)
    is_in_the_money: Mapped[bool] = mapped_column(Boolean)
    limit_price: Mapped[float | None] = mapped_column(Float)
    stop_price: Mapped[float | None] = mapped_column(Float)
    extras: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)
    intent_order_id: Mapped[int | None] = mapped_column(ForeignKey("intent_orders.id", ondelete="SET NULL"))
    source_file: Mapped[str] = mapped_column(String(255))


class ConsistencyResultRow(Base):
    __tablename__ = "consistency_results"
    __table_args__ = (
        CheckConstraint("verdict IN ('pass', 'warn', 'fail')", name="ck_consistency_results_verdict"),
        Index("ix_consistency_results_run", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("rebalance_runs.id", ondelete="CASCADE"))
    check_name: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str | None] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow, server_default=func.now())


def default_database_url() -> str:
    """``$LEAN_AIRFLOW_DB_URL``, else ``sqlite:///<artifact root>/audit.db``."""
    url = os.environ.get(DB_URL_ENV, "").strip()
    if url:
        return url
    from include.run_folder import artifact_root

    return f"sqlite:///{artifact_root() / AUDIT_DB_FILENAME}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default :func:`default_database_url`). SQLite gets WAL and foreign keys."""
    resolved = url or default_database_url()
    engine = create_engine(resolved, **kwargs)
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        # A "file:" URI (?uri=true, e.g. mode=ro) names its file after the scheme.
        if database and engine.url.query.get("uri") == "true" and database.startswith("file:"):
            database = database[len("file:") :].split("?", 1)[0]
        if database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                from include.audit.db_errors import safe_url
                from include.errors import AuditDatabaseUnavailableError

                raise AuditDatabaseUnavailableError(
                    safe_url(resolved), f"cannot create its folder {Path(database).parent} ({exc.strerror})"
                ) from None
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


# Alembic's ``context``/``op`` proxies are process globals: two threads migrating at once (two
# tasks in one worker process) would trample each other's. Processes are serialised by a lock
# the migration environment takes in the database (migrations/env.py).
_UPGRADE_LOCK = threading.RLock()
# URLs whose schema this process has found (or brought) at head.
_MIGRATED: set[str] = set()


def upgrade_database(url: str | None = None, revision: str = "head") -> str:
    """Apply the Alembic migrations up to ``revision``; returns the URL used (password hidden)."""
    from alembic import command

    resolved = url or default_database_url()
    with _UPGRADE_LOCK:
        command.upgrade(_alembic_config(resolved), revision)
        _MIGRATED.discard(resolved)
    return make_engine(resolved).url.render_as_string(hide_password=True)


def audit_engine(url: str | None = None) -> Engine:
    """The audit DB engine, its schema checked once per process and URL.

    Migrations run once per deployment (``airflow-init`` in compose, ``include.cli db upgrade``);
    a process that finds the schema behind (a fresh SQLite file, the first task after an upgrade)
    migrates it on its first connection, never again on later ones.
    """
    resolved = url or default_database_url()
    if resolved not in _MIGRATED:
        with _UPGRADE_LOCK:
            if resolved not in _MIGRATED:
                if current_revision(resolved) != head_revision():
                    upgrade_database(resolved)
                _MIGRATED.add(resolved)
    return make_engine(resolved)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("")).get_current_head()


def downgrade_database(url: str | None = None, revision: str = "base") -> None:
    from alembic import command

    resolved = url or default_database_url()
    with _UPGRADE_LOCK:
        command.downgrade(_alembic_config(resolved), revision)
        _MIGRATED.discard(resolved)


def current_revision(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
