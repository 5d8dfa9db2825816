"""Lean-format daily US-equity data: zips, map files, factor files, NYSE sessions. Columnar and cached."""

from __future__ import annotations

import datetime as dt
import io
import threading
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from include.lean_local.errors import DataFormatError
from include.lean_local.symbols import SecurityIdentifier, Symbol

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC
FAR_FUTURE = 20501231
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
RawArrays = tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]


def yyyymmdd(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def from_yyyymmdd(value: int) -> dt.date:
    return dt.date(value // 10000, (value // 100) % 100, value % 100)


@dataclass(frozen=True)
class Sessions:
    """NYSE sessions: day keys (yyyymmdd), open/close as naive New York datetimes and UTC epoch seconds."""

    days: IntArray
    opens: list[dt.datetime]
    closes: list[dt.datetime]
    close_epoch: FloatArray

    def index_of(self, day: int) -> int:
        """Index of the first session on or after ``day``."""
        return int(np.searchsorted(self.days, day, side="left"))


@lru_cache(maxsize=1)
def nyse_sessions() -> Sessions:
    import exchange_calendars as xcals

    cal = xcals.get_calendar("XNYS", start="1990-01-02", end="2030-12-31")
    sched = cal.schedule
    opens_utc = sched["open"].dt.tz_convert("America/New_York").tolist()
    closes_utc = sched["close"].dt.tz_convert("America/New_York").tolist()
    days = np.array([d.year * 10000 + d.month * 100 + d.day for d in sched.index], dtype=np.int64)
    opens = [t.to_pydatetime().replace(tzinfo=None) for t in opens_utc]
    closes = [t.to_pydatetime().replace(tzinfo=None) for t in closes_utc]
    close_epoch = np.array([t.timestamp() for t in sched["close"].tolist()], dtype=np.float64)
    return Sessions(days=days, opens=opens, closes=closes, close_epoch=close_epoch)


def local_to_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=NEW_YORK).astimezone(UTC)


@dataclass
class DailyBars:
    """One ticker's daily bars (prices adjusted per the normalization mode), aligned on session keys."""

    ticker: str
    days: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    source: Path | None

    def __len__(self) -> int:
        return int(self.days.shape[0])


@dataclass(frozen=True)
class FactorFile:
    """A factor file's columns, sorted by date. A row dated D holds the factors for bars up to D; a change
    of price factor (split factor) between a row and the next is a dividend (split) on the trading day
    after the row's date, and the row's reference price is the raw close before it."""

    dates: IntArray
    price_factor: FloatArray
    split_factor: FloatArray
    reference_price: FloatArray


@dataclass(frozen=True)
class MapFile:
    rows: list[tuple[int, str]]

    @property
    def first_date(self) -> dt.date:
        return from_yyyymmdd(self.rows[0][0])

    @property
    def first_ticker(self) -> str:
        return self.rows[0][1].upper()

    @property
    def delisting_date(self) -> int | None:
        last = self.rows[-1][0]
        return None if last >= FAR_FUTURE else last

    def ticker_on(self, day: int) -> str:
        for date, ticker in self.rows:
            if date >= day:
                return ticker.upper()
        return self.rows[-1][1].upper()


class DataProvider:
    """Reads ``<data-folder>/equity/usa/...``. Thread-safe caches shared across symbols and runs in-process."""

    def __init__(self, data_folder: Path) -> None:
        self.root = Path(data_folder)
        self._lock = threading.Lock()
        self._raw: dict[Path, tuple[float, RawArrays]] = {}
        self._symbols: dict[str, Symbol] = {}

    # --- auxiliary files -------------------------------------------------
    def _aux_path(self, kind: str, ticker: str) -> Path:
        return self.root / "equity" / "usa" / kind / f"{ticker.lower()}.csv"

    def map_file(self, ticker: str) -> MapFile | None:
        path = self._aux_path("map_files", ticker)
        if not path.is_file():
            return None
        rows: list[tuple[int, str]] = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(",")
            try:
                rows.append((int(parts[0]), parts[1].strip()))
            except (ValueError, IndexError) as exc:
                raise DataFormatError(f"{path}:{n}: bad map file row {line!r}") from exc
        rows.sort()
        return MapFile(rows) if rows else None

    def factor_file(self, ticker: str) -> FactorFile | None:
        """The ticker's factor file sorted by date; None without a file."""
        path = self._aux_path("factor_files", ticker)
        if not path.is_file():
            return None
        rows: list[tuple[int, float, float, float]] = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(",")
            try:
                # the reference price (4th column) is missing in old files: Lean reads it as 0
                reference = float(parts[3]) if len(parts) > 3 and parts[3].strip() else 0.0
                rows.append((int(parts[0]), float(parts[1]), float(parts[2]), reference))
            except (ValueError, IndexError) as exc:
                raise DataFormatError(f"{path}:{n}: bad factor file row {line!r}") from exc
        rows.sort(key=lambda row: row[0])
        columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
        return FactorFile(
            dates=np.array(columns[0], dtype=np.int64),
            price_factor=np.array(columns[1], dtype=np.float64),
            split_factor=np.array(columns[2], dtype=np.float64),
            reference_price=np.array(columns[3], dtype=np.float64),
        )

    def factor_rows(self, ticker: str, *, include_dividends: bool = True) -> tuple[IntArray, FloatArray] | None:
        """Row dates and price scale (priceFactor x splitFactor, or splitFactor alone for split-adjusted
        prices), sorted by date; None without a file."""
        factors = self.factor_file(ticker)
        if factors is None:
            return None
        scale = factors.price_factor * factors.split_factor if include_dividends else factors.split_factor
        return factors.dates, scale

    def symbol_for(self, ticker: str) -> Symbol:
        key = ticker.upper()
        with self._lock:
            cached = self._symbols.get(key)
        if cached is not None:
            return cached
        mf = self.map_file(key)
        sid = SecurityIdentifier(mf.first_ticker, mf.first_date) if mf else SecurityIdentifier(key, None)
        symbol = Symbol(sid, key)
        with self._lock:
            self._symbols[key] = symbol
        return symbol

    # --- bars --------------------------------------------------------------
    def daily_path(self, ticker: str, start_day: int | None = None) -> Path:
        mf = self.map_file(ticker)
        data_ticker = mf.ticker_on(start_day or 0) if mf else ticker
        return self.root / "equity" / "usa" / "daily" / f"{data_ticker.lower()}.zip"

    def _read_raw(self, path: Path) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        mtime = path.stat().st_mtime
        with self._lock:
            hit = self._raw.get(path)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        arrays = read_daily_zip(path)
        with self._lock:
            self._raw[path] = (mtime, arrays)
        return arrays

    def load_daily(self, ticker: str, adjusted: bool = True, start_day: int | None = None,
                   *, split_adjusted_only: bool = False) -> DailyBars | None:
        """Bars of ``ticker`` (None when the zip is missing). Adjusted: price x factor of the first
        factor-file row dated on/after the bar date (Lean's default mode); ``split_adjusted_only`` uses the
        split factor alone (``DataNormalizationMode.SPLIT_ADJUSTED``)."""
        path = self.daily_path(ticker, start_day)
        if not path.is_file():
            return None
        days, o, h, lo, c, v = self._read_raw(path)
        mf = self.map_file(ticker)
        if mf is not None:
            keep = (days >= mf.rows[0][0]) & (days <= mf.rows[-1][0])
            if not keep.all():
                days, o, h, lo, c, v = days[keep], o[keep], h[keep], lo[keep], c[keep], v[keep]
        if adjusted:
            factors = self.factor_rows(ticker, include_dividends=not split_adjusted_only)
            if factors is not None:
                fdates, fscale = factors
                idx = np.searchsorted(fdates, days, side="left")
                scale = np.where(idx < fdates.shape[0], fscale[np.minimum(idx, fdates.shape[0] - 1)], 1.0)
                o, h, lo, c = o * scale, h * scale, lo * scale, c * scale
        return DailyBars(ticker.upper(), days, o, h, lo, c, v, path)


def read_daily_zip(path: Path) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Columnar read of a Lean daily zip (``yyyyMMdd HH:mm,o,h,l,c,v``, prices x 10000)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if not names:
                raise DataFormatError(f"{path}: zip holds no file")
            payload = archive.read(names[0])
    except zipfile.BadZipFile as exc:
        raise DataFormatError(f"{path}: not a zip file") from exc
    if not payload.strip():
        empty_i: IntArray = np.zeros(0, dtype=np.int64)
        empty_f: FloatArray = np.zeros(0, dtype=np.float64)
        return empty_i, empty_f, empty_f, empty_f, empty_f, empty_f
    try:
        table = pacsv.read_csv(
            io.BytesIO(payload),
            read_options=pacsv.ReadOptions(column_names=["t", "o", "h", "l", "c", "v"]),
            convert_options=pacsv.ConvertOptions(
                column_types={"t": pa.string(), "o": pa.float64(), "h": pa.float64(), "l": pa.float64(),
                              "c": pa.float64(), "v": pa.float64()}
            ),
        )
    except pa.ArrowInvalid as exc:
        raise DataFormatError(f"{path}: malformed daily CSV: {exc}") from exc
    stamps = table.column("t").to_numpy(zero_copy_only=False).astype("U8")
    try:
        days = stamps.astype(np.int64)
    except ValueError as exc:
        raise DataFormatError(f"{path}: malformed date column: {exc}") from exc
    scale = 1.0 / 10000.0
    cols: list[Any] = [table.column(k).to_numpy() for k in ("o", "h", "l", "c", "v")]
    order = np.argsort(days, kind="stable")
    return (
        days[order],
        cols[0][order] * scale,
        cols[1][order] * scale,
        cols[2][order] * scale,
        cols[3][order] * scale,
        cols[4][order].astype(np.float64),
    )


_DEFAULT: list[DataProvider] = []


def set_default_provider(provider: DataProvider) -> None:
    _DEFAULT[:] = [provider]


def default_provider() -> DataProvider:
    if not _DEFAULT:
        raise RuntimeError("no data folder configured for Symbol.create")
    return _DEFAULT[0]
