"""The three snapshot providers. Each returns a validated ``DecisionSnapshot``."""

from __future__ import annotations

import datetime as dt
import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from include.contracts.snapshot import DecisionSnapshot, WeightItem
from include.contracts.validation import decode_utf8, describe_validation_error, read_input_bytes
from include.errors import SnapshotError, SnapshotSourceError
from include.market_data import available_tickers, closes_before


def _snapshot(as_of: dt.date, source: str, weights: dict[str, float]) -> DecisionSnapshot:
    try:
        return DecisionSnapshot(
            as_of=as_of,
            source=source,
            items=tuple(WeightItem(symbol=s, weight=w) for s, w in sorted(weights.items())),
        )
    except ValidationError as exc:
        raise SnapshotError([f"{source} {as_of}: {p}" for p in describe_validation_error(exc)]) from None


def trend_rotation_snapshot(
    *,
    as_of: dt.date,
    data_folder: str | os.PathLike[str],
    universe: Sequence[str] | None = None,
    top_n: int,
    lookback_days: int,
) -> DecisionSnapshot:
    """Equal weights over the ``top_n`` symbols with the best positive momentum.

    Momentum is close[-1] / close[-1 - lookback] - 1 over sessions strictly before ``as_of``:
    the decision for a day never sees that day's bar.
    """
    if top_n < 1 or lookback_days < 1:
        raise SnapshotError([f"top_n={top_n}, lookback_days={lookback_days}: both must be >= 1"])
    tickers = [t.upper() for t in universe] if universe else available_tickers(data_folder)
    if not tickers:
        raise SnapshotError([f"data folder {os.fspath(data_folder)!r} has no daily equity data"])
    closes = closes_before(data_folder, tickers, as_of)
    momentum: dict[str, float] = {}
    for ticker in tickers:
        series = closes[ticker].dropna() if ticker in closes else pd.Series(dtype=float)
        if len(series) > lookback_days:
            momentum[ticker] = float(series.iloc[-1] / series.iloc[-1 - lookback_days] - 1.0)
    ranked = sorted((m, t) for t, m in momentum.items() if m > 0)
    chosen = [t for _, t in sorted(ranked, key=lambda pair: (-pair[0], pair[1]))[:top_n]]
    weights = {t: 1.0 / len(chosen) for t in chosen}
    # Symbols we rotated out of get an explicit 0 so the intent says "sell", not "ignore".
    for ticker in momentum:
        weights.setdefault(ticker, 0.0)
    return _snapshot(as_of, f"trend_rotation(top_n={top_n},lookback={lookback_days})", weights)


def _read_csv(path: Path, data: bytes) -> pd.DataFrame:
    import csv

    text = decode_utf8(data, path, SnapshotError)
    header = next(csv.reader(io.StringIO(text, newline="")), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:  # pandas would silently rename the second one "weight.1"
        raise SnapshotError([f"{path}: duplicate column(s) {repeated} in the header"])
    # No NA parsing: "NA" and "NAN" are tickers, and a blank cell must stay blank so the row check
    # below can name it.
    return pd.read_csv(io.StringIO(text, newline=""), dtype={"symbol": str}, keep_default_na=False, na_values=[])


def _read_json(path: Path, data: bytes) -> pd.DataFrame:
    text = decode_utf8(data, path, SnapshotError)
    return pd.read_json(io.StringIO(text), dtype={"symbol": str}, precise_float=True)


def _read_parquet(_path: Path, data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))


_READERS: dict[str, Callable[[Path, bytes], pd.DataFrame]] = {
    ".csv": _read_csv,
    ".json": _read_json,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
}


def _read_table(path: Path) -> pd.DataFrame:
    """The weights table of a regular file; the file is read once, by the one reader of input files
    (a FIFO, a directory, a missing, unreadable or non-UTF-8 file: a named ``SnapshotFileError``)."""
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise SnapshotError(
            [f"{path}: unsupported weights file type {path.suffix.lower()!r} (use .csv, .json or .parquet)"]
        )
    data = read_input_bytes(path, SnapshotError, limit=None)
    try:
        return reader(path, data)
    except SnapshotError:
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise SnapshotError([f"{path}: cannot read weights table ({exc})"]) from None


def _symbol_of(value: Any, where: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise SnapshotError([f"{where}: the symbol is missing (null)"])
    if not isinstance(value, str):
        raise SnapshotError([f"{where}: symbol {value!r} is not text"])
    if not value.strip():
        raise SnapshotError([f"{where}: the symbol is blank"])
    return value.strip().upper()


def _weight_of(value: Any, where: str) -> float:
    if isinstance(value, np.generic):
        value = value.item()
    # A boolean is no weight: True would become a 100% position.
    blank = isinstance(value, str) and not value.strip()
    if isinstance(value, bool) or value is None or blank:
        raise SnapshotError([f"{where}: weight {value!r} is not a number"])
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise SnapshotError([f"{where}: weight {value!r} is not a number"]) from None
    if math.isnan(weight):  # a null cell of a JSON or Parquet table
        raise SnapshotError([f"{where}: the weight is missing (null)"])
    return weight


def _rows_for(frame: pd.DataFrame, as_of: dt.date, where: str) -> dict[str, float]:
    missing = {"date", "symbol", "weight"} - set(frame.columns)
    if missing:
        raise SnapshotError([f"{where}: missing columns {sorted(missing)} (need date, symbol, weight)"])
    dates = pd.to_datetime(frame["date"], errors="coerce").dt.date
    if dates.isna().any():
        bad = int(dates.isna().to_numpy().nonzero()[0][0])
        raise SnapshotError([f"{where}: row {bad}: date {frame['date'].iloc[bad]!r} does not parse"])
    positions = (dates == as_of).to_numpy().nonzero()[0]
    if not len(positions):
        raise SnapshotError([f"{where}: no weights for {as_of.isoformat()}"])
    weights: dict[str, float] = {}
    for row in positions:
        at = f"{where}: row {int(row)} ({as_of})"
        key = _symbol_of(frame["symbol"].iloc[row], at)
        if key in weights:
            raise SnapshotError([f"{at}: duplicate symbol {key!r}"])
        weights[key] = _weight_of(frame["weight"].iloc[row], at)
    return weights


def file_snapshot(*, as_of: dt.date, path: str | os.PathLike[str]) -> DecisionSnapshot:
    """The weights of ``as_of`` from a table file under a weights base folder (``WeightsFileLocationError``
    outside them, before anything is read); the resolved path is the one read and named in errors."""
    from include.snapshots import confine_weights_file

    table_path = confine_weights_file(path)
    return _snapshot(as_of, f"file:{table_path.name}", _rows_for(_read_table(table_path), as_of, str(table_path)))


_SQL_FIX = "use a SQLAlchemy URL such as postgresql+psycopg://user:password@host:5432/db or sqlite:////abs/path.db"


def _sql_engine(url: str, where: str) -> Any:
    """An engine for ``url``; ``SnapshotSourceError`` for a URL SQLAlchemy cannot parse or whose driver is unknown."""
    import sqlalchemy as sa

    try:
        return sa.create_engine(url)
    except sa.exc.NoSuchModuleError as exc:
        raise SnapshotSourceError(
            [f"{where}: unknown database driver ({_first_line(exc)}). Fix: {_SQL_FIX}, with its driver installed"]
        ) from None
    except (sa.exc.ArgumentError, ValueError, TypeError) as exc:
        raise SnapshotSourceError([f"{where}: not a SQLAlchemy URL ({_first_line(exc)}). Fix: {_SQL_FIX}"]) from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().replace("\n\t", " ").splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def sql_snapshot(*, as_of: dt.date, url: str, table: str) -> DecisionSnapshot:
    """The weights of ``as_of`` from a SQL table of date, symbol, weight.

    Every failure of the source names it (table and URL, password hidden) and what to do:
    ``SnapshotSourceError`` for a bad URL, an unknown driver, an unreachable database, a missing
    table or column; ``SnapshotError`` for bad rows.
    """
    import sqlalchemy as sa

    from include.audit.db_errors import safe_url

    if not table.replace("_", "").replace(".", "").isalnum():
        raise SnapshotError([f"table={table!r}: not a plain table name"])
    source = f"sql table {table!r} at {safe_url(url)}"
    engine = _sql_engine(url, f"sql provider url {safe_url(url)}")
    try:
        schema, _, name = table.rpartition(".")
        weights_table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=engine)
        missing = [c for c in ("date", "symbol", "weight") if c not in weights_table.c]
        if missing:
            raise SnapshotSourceError(
                [
                    f"{source}: missing column(s) {missing}; it has {list(weights_table.c.keys())}. "
                    "Fix: give a table (or view) with the columns date, symbol, weight"
                ]
            )
        query = sa.select(weights_table.c.date, weights_table.c.symbol, weights_table.c.weight)
        with engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=["date", "symbol", "weight"])
    except sa.exc.NoSuchTableError:
        raise SnapshotSourceError(
            [
                f"{source}: the table does not exist (NoSuchTableError). "
                "Fix: create it, or name an existing table (schema.table)"
            ]
        ) from None
    except sa.exc.DBAPIError as exc:
        reason = _first_line(exc.orig if exc.orig is not None else exc)
        raise SnapshotSourceError(
            [
                f"{source}: the database cannot be used ({reason}). Fix: check the URL's host, port, database, "
                "user and password, and that the server is running"
            ]
        ) from None
    except sa.exc.SQLAlchemyError as exc:
        raise SnapshotSourceError([f"{source}: {type(exc).__name__}: {_first_line(exc)}"]) from None
    finally:
        engine.dispose()
    return _snapshot(as_of, f"sql:{table}", _rows_for(frame, as_of, f"sql table {table!r}"))
