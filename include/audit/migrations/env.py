"""Alembic environment, configured programmatically by ``include.audit.db.upgrade_database``.

The URL comes from ``config.attributes["url"]`` (or ``LEAN_AIRFLOW_DB_URL`` / the default), so no
``alembic.ini`` is needed. SQLite uses batch mode so column changes work in later revisions.
"""

from __future__ import annotations

from alembic import context

from include.audit.db import Base, default_database_url, make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or default_database_url()
    return str(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
