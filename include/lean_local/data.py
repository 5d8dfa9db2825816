"""Lean-format daily US-equity data: zips, map files, factor files. Read with the standard library, cached.

The engine walks bars one by one as Python floats, so the columns are plain lists. The standard library
parses a short file as fast as pyarrow's CSV reader, whose import (with numpy, about 0.1 s) every engine
subprocess would pay; on long files pyarrow is about 2.5x faster per row. So a provider reads with the
standard library, and once it has read ``COLUMNAR_AFTER_ROWS`` rows (a large universe with long
histories) it reads each further long file with pyarrow. Both readers give the same numbers.
"""

from __future__ import annotations

import bisect
import datetime as dt
import io
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from include.lean_local.errors import DataFormatError
from include.lean_local.sessions import from_yyyymmdd
from include.lean_local.symbols import SecurityIdentifier, Symbol

FAR_FUTURE = 20501231
PRICE_DIVISOR = 10000.0  # Lean stores equity prices x 10000
COLUMNAR_AFTER_ROWS = 100_000  # about 0.15 s of standard-library parsing: pyarrow's import pays off past it
COLUMNAR_MIN_FILE_ROWS = 2_000  # below, pyarrow's per-file overhead eats its per-row gain
# The text a Lean daily CSV may hold for a missing number; read as NaN (the tokens pyarrow's reader took as null).
NULL_TOKENS = frozenset(
    {
        b"",
        b"#N/A",
        b"#N/A N/A",
        b"#NA",
        b"-1.#IND",
        b"-1.#QNAN",
        b"-NaN",
        b"-nan",
        b"1.#IND",
        b"1.#QNAN",
        b"N/A",
        b"NA",
        b"NULL",
        b"NaN",
        b"n/a",
        b"nan",
        b"null",
    }
)
# days, open, high, low, close, volume; prices in dollars
DailyColumns = tuple[list[int], list[float], list[float], list[float], list[float], list[float]]


@dataclass
class DailyBars:
    """One ticker's daily bars (prices adjusted per the normalization mode), sorted by day key (yyyymmdd).

    The lists may be shared with the provider's cache: read them, never change them."""

    ticker: str
    days: list[int]
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]
    source: Path | None

    def __len__(self) -> int:
        return len(self.days)


@dataclass(frozen=True)
class FactorFile:
    """A factor file's columns, sorted by date. A row dated D holds the factors for bars up to D; a change
    of price factor (split factor) between a row and the next is a dividend (split) on the trading day
    after the row's date, and the row's reference price is the raw close before it."""

    dates: tuple[int, ...]
    price_factor: tuple[float, ...]
    split_factor: tuple[float, ...]
    reference_price: tuple[float, ...]


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
        self._raw: dict[Path, tuple[float, DailyColumns]] = {}
        self._symbols: dict[str, Symbol] = {}
        self._rows_read = 0

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
        dates, price_factor, split_factor, reference_price = zip(*rows, strict=True) if rows else ((), (), (), ())
        return FactorFile(dates, price_factor, split_factor, reference_price)

    def factor_rows(self, ticker: str, *, include_dividends: bool = True) -> tuple[tuple[int, ...], list[float]] | None:
        """Row dates and price scale (priceFactor x splitFactor, or splitFactor alone for split-adjusted
        prices), sorted by date; None without a file."""
        factors = self.factor_file(ticker)
        if factors is None:
            return None
        if include_dividends:
            return factors.dates, [p * s for p, s in zip(factors.price_factor, factors.split_factor, strict=True)]
        return factors.dates, list(factors.split_factor)

    def split_scale(self, ticker: str, day: int, as_of: int) -> float:
        """What a raw price of ``day`` is multiplied by to be in the shares of ``as_of``: the splits effective
        after ``day`` up to ``as_of`` (each bar takes the split factor of the first factor row dated on or
        after its day, as :meth:`load_daily` scales); 1.0 without a factor file."""
        factors = self.factor_file(ticker)
        if factors is None:
            return 1.0

        def factor(d: int) -> float:
            i = bisect.bisect_left(factors.dates, d)
            return factors.split_factor[i] if i < len(factors.dates) else 1.0

        return factor(day) / factor(as_of)

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
    def _mapped_rows(self, mf: MapFile) -> DailyColumns:
        """A renamed security's bars: each day's from the file of the ticker the map file gives that day (a map
        row dated D names the ticker through D, from the day after the previous row; none before the first
        row), as Lean's reader picks the file by the date's mapped ticker."""
        days: list[int] = []
        o: list[float] = []
        h: list[float] = []
        lo: list[float] = []
        c: list[float] = []
        v: list[float] = []
        previous = mf.rows[0][0] - 1
        for date, mapped in mf.rows:
            path = self.root / "equity" / "usa" / "daily" / f"{mapped.lower()}.zip"
            if date > previous and path.is_file():
                part = _rows_between(self._read_raw(path), previous, date)
                days += part[0]
                o += part[1]
                h += part[2]
                lo += part[3]
                c += part[4]
                v += part[5]
            previous = max(previous, date)
        return days, o, h, lo, c, v

    def daily_path(self, ticker: str, start_day: int | None = None) -> Path:
        mf = self.map_file(ticker)
        data_ticker = mf.ticker_on(start_day or 0) if mf else ticker
        return self.root / "equity" / "usa" / "daily" / f"{data_ticker.lower()}.zip"

    def _read_raw(self, path: Path) -> DailyColumns:
        mtime = path.stat().st_mtime
        with self._lock:
            hit = self._raw.get(path)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        columns = read_daily_zip(
            path, columnar_from_rows=COLUMNAR_MIN_FILE_ROWS if self._rows_read >= COLUMNAR_AFTER_ROWS else None
        )
        with self._lock:
            self._raw[path] = (mtime, columns)
            self._rows_read += len(columns[0])
        return columns

    def load_daily(
        self, ticker: str, adjusted: bool = True, start_day: int | None = None, *, split_adjusted_only: bool = False
    ) -> DailyBars | None:
        """Bars of ``ticker`` (None when the zip is missing). Adjusted: price x factor of the first
        factor-file row dated on/after the bar date (Lean's default mode); ``split_adjusted_only`` uses the
        split factor alone (``DataNormalizationMode.SPLIT_ADJUSTED``)."""
        path = self.daily_path(ticker, start_day)
        if not path.is_file():
            return None
        mf = self.map_file(ticker)
        if mf is None:
            days, o, h, lo, c, v = self._read_raw(path)
        else:
            days, o, h, lo, c, v = self._mapped_rows(mf)
        if adjusted:
            factors = self.factor_rows(ticker, include_dividends=not split_adjusted_only)
            if factors is not None:
                if days and not factors[0]:  # nothing to scale by: a run on such data has always stopped here
                    raise DataFormatError(f"{self._aux_path('factor_files', ticker)}: factor file has no rows")
                segments = _factor_segments(days, *factors)
                o, h, lo, c = (_scaled(column, segments) for column in (o, h, lo, c))
        return DailyBars(ticker.upper(), days, o, h, lo, c, v, path)


def _rows_between(columns: DailyColumns, after: int, through: int) -> DailyColumns:
    """The rows dated in (after, through] (the days are sorted: a slice)."""
    days, o, h, lo, c, v = columns
    a, b = bisect.bisect_right(days, after), bisect.bisect_right(days, through)
    return days[a:b], o[a:b], h[a:b], lo[a:b], c[a:b], v[a:b]


def _factor_segments(
    days: Sequence[int], dates: Sequence[int], scales: Sequence[float]
) -> list[tuple[int, int, float]]:
    """(first, end, scale) runs of bar positions: a bar takes the scale of the first factor row dated on or
    after its day; bars after the last row keep their price."""
    segments: list[tuple[int, int, float]] = []
    first = 0
    for date, scale in zip(dates, scales, strict=True):
        end = bisect.bisect_right(days, date, lo=first)
        if end > first:
            segments.append((first, end, scale))
        first = end
    return segments


def _scaled(column: list[float], segments: list[tuple[int, int, float]]) -> list[float]:
    out = column.copy()  # the column may be the provider's cached one
    for first, end, scale in segments:
        out[first:end] = [value * scale for value in column[first:end]]
    return out


def read_daily_zip(path: Path, *, columnar_from_rows: int | None = None) -> DailyColumns:
    """A Lean daily zip (``yyyyMMdd HH:mm,o,h,l,c,v``, prices x 10000) as columns sorted by day.

    ``columnar_from_rows``: parse a file of at least that many rows with pyarrow when it is installed."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if not names:
                raise DataFormatError(f"{path}: zip holds no file")
            payload = archive.read(names[0])
    except zipfile.BadZipFile as exc:
        raise DataFormatError(f"{path}: not a zip file") from exc
    if not payload.strip():
        return [], [], [], [], [], []
    if columnar_from_rows is not None and payload.count(b"\n") >= columnar_from_rows:
        columns = _parse_columnar(payload)
        if columns is not None:
            return columns
    return _parse_text(path, payload)


def _parse_text(path: Path, payload: bytes) -> DailyColumns:
    lines = [line for line in payload.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n") if line]
    for number, line in enumerate(lines, 1):
        if line.count(b",") != 5:
            raise DataFormatError(
                f"{path}: malformed daily CSV: row {number} has {line.count(b',') + 1} "
                f"columns, expected 6: {line[:80]!r}"
            )
    fields = b",".join(lines).split(b",")
    try:
        days = [int(stamp[:8]) for stamp in fields[0::6]]
    except ValueError as exc:
        raise DataFormatError(f"{path}: malformed date column: {exc}") from exc
    o, h, lo, c, v = (_numbers(path, fields[k::6]) for k in range(1, 6))
    if any(days[i] > days[i + 1] for i in range(len(days) - 1)):
        order = sorted(range(len(days)), key=days.__getitem__)  # stable: the file's order breaks ties
        days = [days[i] for i in order]
        o, h, lo, c, v = ([column[i] for i in order] for column in (o, h, lo, c, v))
    # Lean's decimal price is the stored integer / 10000: the division gives its nearest double
    scale = PRICE_DIVISOR
    return days, [x / scale for x in o], [x / scale for x in h], [x / scale for x in lo], [x / scale for x in c], v


def _parse_columnar(payload: bytes) -> DailyColumns | None:
    """pyarrow's parse of a daily CSV; None without pyarrow, or for text it rejects (the standard library
    reader then reads it, or names what is wrong)."""
    try:
        import numpy as np
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return None
    float64 = pa.float64()
    try:
        table = pacsv.read_csv(
            io.BytesIO(payload),
            read_options=pacsv.ReadOptions(column_names=["t", "o", "h", "l", "c", "v"]),
            convert_options=pacsv.ConvertOptions(
                column_types={"t": pa.string(), "o": float64, "h": float64, "l": float64, "c": float64, "v": float64}
            ),
        )
        days = table.column("t").to_numpy(zero_copy_only=False).astype("U8").astype(np.int64)
    except (pa.ArrowInvalid, ValueError):
        return None
    order = np.argsort(days, kind="stable")
    o, h, lo, c = ((table.column(k).to_numpy()[order] / PRICE_DIVISOR).tolist() for k in ("o", "h", "l", "c"))
    return days[order].tolist(), o, h, lo, c, table.column("v").to_numpy()[order].astype(np.float64).tolist()


def _numbers(path: Path, texts: list[bytes]) -> list[float]:
    try:
        return list(map(float, texts))
    except ValueError:
        pass
    values: list[float] = []
    for text in texts:  # the slow path: missing values, or a bad one to name
        try:
            values.append(float(text))
        except ValueError as exc:
            if text.strip() not in NULL_TOKENS:
                raise DataFormatError(f"{path}: malformed daily CSV: {exc}") from exc
            values.append(float("nan"))
    return values


_DEFAULT: list[DataProvider] = []


def set_default_provider(provider: DataProvider) -> None:
    _DEFAULT[:] = [provider]


def default_provider() -> DataProvider:
    if not _DEFAULT:
        raise RuntimeError("no data folder configured for Symbol.create")
    return _DEFAULT[0]
