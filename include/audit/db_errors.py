"""Named audit-database failures: what failed, where (the URL, password hidden) and what to do.

SQLAlchemy, sqlite3 and psycopg report an unavailable, read-only, locked or full database as
their own ``OperationalError`` family with a driver message. :func:`audit_db_errors` wraps the code
that opens or uses the audit DB and turns those into the named ``AuditDatabaseError`` subclasses of
:mod:`include.errors` (the driver's error stays the ``__cause__``). Any other error passes through.

The SQLite primary result code (``sqlite_errorcode & 0xff``) and the PostgreSQL SQLSTATE decide;
psycopg's connection failures carry no SQLSTATE, so their message decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from include.errors import (
    AuditDatabaseError,
    AuditDatabaseFullError,
    AuditDatabaseLockedError,
    AuditDatabaseReadOnlyError,
    AuditDatabaseUnavailableError,
)

# SQLite primary result codes (https://sqlite.org/rescode.html).
_SQLITE_CODES: dict[int, type[AuditDatabaseError]] = {
    3: AuditDatabaseReadOnlyError,  # SQLITE_PERM
    5: AuditDatabaseLockedError,  # SQLITE_BUSY
    6: AuditDatabaseLockedError,  # SQLITE_LOCKED
    8: AuditDatabaseReadOnlyError,  # SQLITE_READONLY
    13: AuditDatabaseFullError,  # SQLITE_FULL
    14: AuditDatabaseUnavailableError,  # SQLITE_CANTOPEN
    26: AuditDatabaseUnavailableError,  # SQLITE_NOTADB
}
# The same by message, for errors that lost their code.
_SQLITE_MESSAGES: tuple[tuple[str, type[AuditDatabaseError]], ...] = (
    ("readonly database", AuditDatabaseReadOnlyError),
    ("database is locked", AuditDatabaseLockedError),
    ("database table is locked", AuditDatabaseLockedError),
    ("database or disk is full", AuditDatabaseFullError),
    ("unable to open database file", AuditDatabaseUnavailableError),
    ("file is not a database", AuditDatabaseUnavailableError),
)
# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_STATES: dict[str, type[AuditDatabaseError]] = {
    "25006": AuditDatabaseReadOnlyError,  # read_only_sql_transaction
    "55P03": AuditDatabaseLockedError,  # lock_not_available (lock_timeout)
    "53100": AuditDatabaseFullError,  # disk_full
    "53300": AuditDatabaseUnavailableError,  # too_many_connections
    "3D000": AuditDatabaseUnavailableError,  # invalid_catalog_name: no such database
    "28000": AuditDatabaseUnavailableError,  # invalid_authorization_specification
    "28P01": AuditDatabaseUnavailableError,  # invalid_password
    "57P01": AuditDatabaseUnavailableError,  # admin_shutdown
    "57P02": AuditDatabaseUnavailableError,  # crash_shutdown
    "57P03": AuditDatabaseUnavailableError,  # cannot_connect_now
}
# psycopg connection failures (no SQLSTATE): the message names the cause.
_PG_CONNECT_MESSAGES: tuple[tuple[str, type[AuditDatabaseError]], ...] = (
    ("read-only transaction", AuditDatabaseReadOnlyError),
    ("no space left on device", AuditDatabaseFullError),
    ("connection refused", AuditDatabaseUnavailableError),
    ("does not exist", AuditDatabaseUnavailableError),
    ("failed to resolve host", AuditDatabaseUnavailableError),
    ("could not translate host name", AuditDatabaseUnavailableError),
    ("name or service not known", AuditDatabaseUnavailableError),
    ("timeout expired", AuditDatabaseUnavailableError),
    ("connection failed", AuditDatabaseUnavailableError),
    ("server closed the connection", AuditDatabaseUnavailableError),
    ("password authentication failed", AuditDatabaseUnavailableError),
)


def safe_url(url: str | None) -> str:
    """``url`` with its password hidden (``***``); the default audit DB URL when ``url`` is None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if url is None:
        from include.audit.db import default_database_url

        url = default_database_url()
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        # Not a URL SQLAlchemy parses: still never show what looks like a password.
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", str(url))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n\t", " ").splitlines()
    return text[0].strip() if text else type(exc).__name__


def _classify(driver_error: BaseException) -> type[AuditDatabaseError] | None:
    import sqlite3

    if isinstance(driver_error, sqlite3.Error):
        code = getattr(driver_error, "sqlite_errorcode", None)
        if isinstance(code, int) and (code & 0xFF) in _SQLITE_CODES:
            return _SQLITE_CODES[code & 0xFF]
        message = str(driver_error).lower()
        return next((kind for text, kind in _SQLITE_MESSAGES if text in message), None)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return None
    if isinstance(driver_error, psycopg.Error):
        state = driver_error.sqlstate
        if state is not None:
            return _PG_STATES.get(state)
        if isinstance(driver_error, psycopg.OperationalError):
            message = str(driver_error).lower()
            return next((kind for text, kind in _PG_CONNECT_MESSAGES if text in message), None)
    return None


def translate_db_error(exc: BaseException, url: str | None) -> AuditDatabaseError | None:
    """The named error for a driver/SQLAlchemy failure of the audit DB at ``url``, or None if it is
    not an environment failure (an integrity error, a bug: those keep their own type)."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, AuditDatabaseError):
        return None
    where = safe_url(url)
    if isinstance(exc, sa_exc.NoSuchModuleError | sa_exc.ArgumentError):
        return AuditDatabaseUnavailableError(where, f"not a usable SQLAlchemy URL ({_one_line(exc)})")
    driver_error: BaseException = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    kind = _classify(driver_error)
    if kind is None:
        return None
    return kind(where, _one_line(driver_error))


@contextmanager
def audit_db_errors(url: str | None = None) -> Iterator[None]:
    """Named ``AuditDatabaseError`` subclasses for the DB failures raised inside the block.

    ``url``: the audit DB's URL as given (None: ``$LEAN_AIRFLOW_DB_URL`` or the default SQLite file),
    shown with its password hidden.
    """
    import sqlite3

    from sqlalchemy import exc as sa_exc

    try:
        yield
    except (sa_exc.DBAPIError, sa_exc.ArgumentError, sa_exc.NoSuchModuleError, sqlite3.Error) as exc:
        named = translate_db_error(exc, url)
        if named is None:
            raise
        raise named from exc
    except Exception as exc:
        named = _translate_driver_only(exc, url)
        if named is None:
            raise
        raise named from exc


def _translate_driver_only(exc: Exception, url: str | None) -> AuditDatabaseError | None:
    """A psycopg error raised outside SQLAlchemy (COPY in the ingestion), else None."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return None
    return translate_db_error(exc, url) if isinstance(exc, psycopg.Error) else None
