"""Columnar reads of Lean-format daily US-equity data for the backend (signals, audits).

``equity/usa/daily/<ticker>.zip`` holds one CSV of ``yyyyMMdd 00:00,open,high,low,close,volume``
with prices x 10000. Factor files (``equity/usa/factor_files/<ticker>.csv``) adjust prices the
way Lean does by default (price factor x split factor applied to bars before each row's date).
"""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from include.errors import LeanAirflowError

PRICE_SCALE = 10_000.0


class MarketDataError(LeanAirflowError, ValueError):
    """A Lean data file is missing or malformed."""


def daily_zip_path(data_folder: str | os.PathLike[str], ticker: str) -> Path:
    return Path(data_folder) / "equity" / "usa" / "daily" / f"{ticker.lower()}.zip"


def available_tickers(data_folder: str | os.PathLike[str]) -> list[str]:
    folder = Path(data_folder) / "equity" / "usa" / "daily"
    return sorted(p.stem.upper() for p in folder.glob("*.zip"))


@lru_cache(maxsize=512)
def _read_raw(path: Path, mtime_ns: int) -> pd.DataFrame:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if not names:
                raise MarketDataError(f"{path}: the zip archive is empty")
            with archive.open(names[0]) as handle:
                frame = pd.read_csv(
                    handle,
                    header=None,
                    names=["time", "open", "high", "low", "close", "volume"],
                    dtype={"time": str, "open": np.float64, "high": np.float64, "low": np.float64,
                           "close": np.float64, "volume": np.float64},
                )
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        if isinstance(exc, MarketDataError):
            raise
        raise MarketDataError(f"{path}: not a readable Lean daily zip ({exc})") from None
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("time").str.slice(0, 8), format="%Y%m%d"), name="date")
    for column in ("open", "high", "low", "close"):
        frame[column] = frame[column] / PRICE_SCALE
    return frame


def read_daily_bars(data_folder: str | os.PathLike[str], ticker: str, *, adjusted: bool = True) -> pd.DataFrame:
    """Daily bars indexed by date (``open, high, low, close, volume``), adjusted by default."""
    path = daily_zip_path(data_folder, ticker)
    if not path.exists():
        raise MarketDataError(f"no daily data for {ticker.upper()}: {path} does not exist")
    frame = _read_raw(path, path.stat().st_mtime_ns).copy()
    if adjusted:
        factors = _price_factors(Path(data_folder), ticker, frame.index)
        for column in ("open", "high", "low", "close"):
            frame[column] = frame[column] * factors
    return frame


def _price_factors(data_folder: Path, ticker: str, dates: pd.DatetimeIndex) -> np.ndarray:
    path = data_folder / "equity" / "usa" / "factor_files" / f"{ticker.lower()}.csv"
    if not path.exists():
        return np.ones(len(dates))
    table = pd.read_csv(path, header=None, names=["date", "price", "split", "ref"], dtype={"date": str})
    table["date"] = pd.to_datetime(table["date"], format="%Y%m%d")
    table = table.sort_values("date")
    # A row applies to bars strictly before its date and on/after the previous row's date.
    positions = np.searchsorted(table["date"].to_numpy(), dates.to_numpy(), side="right")
    positions = np.minimum(positions, len(table) - 1)
    combined = (table["price"] * table["split"]).to_numpy()
    return np.asarray(combined[positions], dtype=np.float64)


def closes_before(data_folder: str | os.PathLike[str], tickers: list[str], before: dt.date) -> pd.DataFrame:
    """Adjusted closes of ``tickers`` for every date strictly before ``before`` (no look-ahead)."""
    cutoff = pd.Timestamp(before)
    columns = {}
    for ticker in tickers:
        bars = read_daily_bars(data_folder, ticker)
        columns[ticker.upper()] = bars.loc[bars.index < cutoff, "close"]
    return pd.DataFrame(columns).sort_index()
