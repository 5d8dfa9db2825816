"""Lean-format daily US-equity bars as pandas frames, for the backend (signals, the audit).

The files are read by the one reader of Lean's data folder, the local runtime's
``include.lean_local.data.DataProvider``: the same map-file range, the same factor-file
adjustment (a bar takes the price and split factors of the first factor-file row dated on or
after it, as Lean's default ``Adjusted`` mode does) and the same errors, so the audit judges
fills against exactly the prices Lean's data give.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from include.errors import LeanAirflowError

if TYPE_CHECKING:
    from include.lean_local.data import DailyBars, DataProvider

_PROVIDERS: dict[Path, DataProvider] = {}
_LOCK = threading.Lock()


class MarketDataError(LeanAirflowError, ValueError):
    """A Lean data file is missing or malformed."""


def daily_zip_path(data_folder: str | os.PathLike[str], ticker: str) -> Path:
    return Path(data_folder) / "equity" / "usa" / "daily" / f"{ticker.lower()}.zip"


def available_tickers(data_folder: str | os.PathLike[str]) -> list[str]:
    folder = Path(data_folder) / "equity" / "usa" / "daily"
    return sorted(p.stem.upper() for p in folder.glob("*.zip"))


def _provider(data_folder: str | os.PathLike[str]) -> DataProvider:
    """One provider per data folder and process: it caches each file's columns by modification time."""
    from include.lean_local.data import DataProvider

    key = Path(data_folder).resolve()
    with _LOCK:
        if key not in _PROVIDERS:
            _PROVIDERS[key] = DataProvider(key)
        return _PROVIDERS[key]


def _load_daily(
    data_folder: str | os.PathLike[str], ticker: str, *, adjusted: bool, start_day: int | None = None
) -> DailyBars | None:
    """The provider's bars (None without a zip); its format and I/O errors as ``MarketDataError``."""
    from include.lean_local.errors import DataFormatError

    try:
        return _provider(data_folder).load_daily(ticker, adjusted=adjusted, start_day=start_day)
    except DataFormatError as exc:
        raise MarketDataError(str(exc)) from None
    except OSError as exc:
        raise MarketDataError(f"{daily_zip_path(data_folder, ticker)}: cannot read ({exc})") from None


def daily_bar_days(data_folder: str | os.PathLike[str], ticker: str, *, on: dt.date | None = None) -> list[int] | None:
    """The days (yyyymmdd, sorted) on which ``ticker`` has a daily bar with a positive close, within its
    map file's range; None when its zip does not exist. ``on``: the date whose map-file ticker names the
    zip (as the runtime picks it for a run starting then; default the first).

    Raw prices, no factor scaling: only the dates are wanted. The provider caches the parsed file, so
    after a snapshot read the same data in this process nothing is parsed again."""
    from include.lean_local.sessions import yyyymmdd

    bars = _load_daily(data_folder, ticker, adjusted=False, start_day=yyyymmdd(on) if on is not None else None)
    if bars is None:
        return None
    # A close Lean's CSV left empty reads as NaN; neither it nor a zero close can size an order.
    return [day for day, close in zip(bars.days, bars.close, strict=True) if close > 0 and math.isfinite(close)]


def read_daily_bars(data_folder: str | os.PathLike[str], ticker: str, *, adjusted: bool = True) -> pd.DataFrame:
    """Daily bars indexed by date (``open, high, low, close, volume``), adjusted by default."""
    bars = _load_daily(data_folder, ticker, adjusted=adjusted)
    if bars is None:
        raise MarketDataError(
            f"no daily data for {ticker.upper()}: {daily_zip_path(data_folder, ticker)} does not exist"
        )
    index = pd.DatetimeIndex(pd.to_datetime([str(day) for day in bars.days], format="%Y%m%d"), name="date")
    return pd.DataFrame(
        {"open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close, "volume": bars.volume},
        index=index,
        dtype="float64",
    )


def closes_before(data_folder: str | os.PathLike[str], tickers: list[str], before: dt.date) -> pd.DataFrame:
    """Adjusted closes of ``tickers`` for every date strictly before ``before`` (no look-ahead)."""
    cutoff = pd.Timestamp(before)
    columns = {}
    for ticker in tickers:
        bars = read_daily_bars(data_folder, ticker)
        columns[ticker.upper()] = bars.loc[bars.index < cutoff, "close"]
    return pd.DataFrame(columns).sort_index()
