"""Alembic environment, configured programmatically by ``include.audit.db.upgrade_database``.

The URL comes from ``config.attributes["url"]`` (or ``LEAN_AIRFLOW_DB_URL`` / the default), so no
``alembic.ini`` is needed. SQLite uses batch mode so column changes work in later revisions.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from include.audit.db import Base, default_database_url, make_engine

config = context.config
target_metadata = Base.metadata
# pg_advisory_xact_lock key of audit-DB migrations (any constant shared by every migrating process).
MIGRATION_LOCK_KEY = 0x6C65616E_61756474  # "leanaudt"


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or default_database_url()
    return str(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _lock_out_other_migrations(connection: Connection) -> None:
    """Two processes migrating a fresh database at once (two DAGs' first runs) would both create
    the tables, and one would fail. Inside the migration's one transaction, before Alembic reads
    the version table: PostgreSQL takes an advisory lock, SQLite the write lock (BEGIN IMMEDIATE,
    waiting up to the busy timeout). Both are released at commit."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        # Batch mode copies a table to change its constraints; with foreign keys on, dropping the
        # old copy would cascade-delete every child row. The pragma only works outside a
        # transaction, so it goes first; foreign_key_check after the migrations proves nothing broke.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"audit DB migration left {len(broken)} rows with broken foreign keys: {broken[:5]}")


def run_migrations_online() -> None:
    engine = make_engine(_url())
    try:
        # One transaction of our own around the lock and every migration; Alembic runs inside it.
        with engine.connect() as connection, connection.begin():
            _lock_out_other_migrations(connection)
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            _check_foreign_keys(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
