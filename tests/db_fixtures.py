"""Pytest plugin: a migrated audit database per test, on SQLite AND on the machine's PostgreSQL.

``db_url`` is parametrised with ids ``sqlite`` and ``postgres``:

* sqlite: a fresh file in ``tmp_path``;
* postgres: a fresh schema ``t_<uuid>`` in ``$LEAN_AIRFLOW_TEST_PG_URL`` (default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), selected through the connection's
  ``options=-csearch_path=...``, dropped (CASCADE) at teardown. Real Postgres, no mocks; when the
  server is unreachable the postgres variants fail (skip only with ``LEAN_AIRFLOW_SKIP_POSTGRES=1``).

Both are migrated with Alembic (``upgrade_database``). ``db_engine`` is an engine on that URL;
``raw_db_url`` is the same URL without migrations (for migration tests).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

PG_URL_ENV = "LEAN_AIRFLOW_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_admin_url() -> str:
    return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)


def _postgres_schema_url(schema: str) -> str:
    url = make_url(_pg_admin_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgres"])
def raw_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    request.applymarker(pytest.mark.postgres)
    schema = f"t_{uuid.uuid4().hex}"
    admin: Engine = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # never faked: an unreachable server fails, unless skipping was asked for
        admin.dispose()
        where = make_url(_pg_admin_url()).render_as_string()
        if os.environ.get("LEAN_AIRFLOW_SKIP_POSTGRES") == "1":
            pytest.skip(f"PostgreSQL not reachable at {where} (LEAN_AIRFLOW_SKIP_POSTGRES=1): {exc}")
        pytest.fail(
            f"PostgreSQL not reachable at {where}: {exc}. Start it, set {PG_URL_ENV}, "
            "or set LEAN_AIRFLOW_SKIP_POSTGRES=1 to skip the PostgreSQL variants."
        )
    try:
        yield _postgres_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def db_url(raw_db_url: str) -> str:
    """A database URL migrated to head through Alembic."""
    from include.audit.db import upgrade_database

    upgrade_database(raw_db_url)
    return raw_db_url


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    from include.audit.db import make_engine

    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()
