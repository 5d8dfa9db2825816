"""The algorithm's benchmark, as Lean samples it for the "Benchmark" chart and the statistics.

Lean (commit 24863901d; paths are Lean's):

* The default is SPY: ``QCAlgorithm.PostInitialize`` (Algorithm/QCAlgorithm.cs L816-820) asks the brokerage
  model, whose ``GetBenchmark`` is ``SecurityBenchmark.CreateInstance(securities, SPY)``
  (Common/Brokerages/DefaultBrokerageModel.cs L211-215). ``SetBenchmark`` (QCAlgorithm.cs L1450-1530,
  the Python entry at Algorithm/QCAlgorithm.Python.cs L1368-1391) replaces it before the algorithm is
  initialized and raises after.
* A security benchmark is a security of its own (``SecurityService.CreateBenchmarkSecurity``,
  Common/Securities/SecurityService.cs L301-311), fed by an internal **hourly** subscription, not fill-forwarded,
  in the default Adjusted mode, from the tradable day before the start to the end date
  (``UniverseSelection.AddPendingInternalDataFeeds``, Engine/DataFeeds/UniverseSelection.cs L326-395). Its
  value is the security's price (Common/Benchmarks/SecurityBenchmark.cs L47-50), ``SmartRounding``-ed
  (Engine/Results/BaseResultsHandler.cs L1287-1293; Common/Extensions.cs L1476-1488).
* Hourly data missing from the data folder leaves the price at 0: every sample is 0, the benchmark's daily
  changes are 0 (Common/Statistics/StatisticsBuilder.cs L350-356), so Beta, Alpha and Treynor are 0 and the
  Information Ratio and Tracking Error compare the strategy with a flat line
  (Common/Statistics/PortfolioStatistics.cs L299-308). The runtime computes the same and logs which file is missing.
* ``SetBenchmark(lambda time: value)`` is a ``FuncBenchmark`` (Common/Benchmarks/FuncBenchmark.cs L56-59): called
  with the sample's UTC time (a naive datetime, as Python.NET passes a C# DateTime).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import zipfile
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.lean_local.corporate import corporate_events
from include.lean_local.enums import SecurityType
from include.lean_local.errors import DataFormatError, NotSupportedByLocalRuntime
from include.lean_local.sessions import UTC, local_to_utc, yyyymmdd
from include.lean_local.statistics import LeanSeries, Step, decimal_from_double, sample_backtest

if TYPE_CHECKING:
    from include.lean_local.algorithm import QCAlgorithm
    from include.lean_local.data import DataProvider
    from include.lean_local.engine import Engine
    from include.lean_local.symbols import Symbol

DEFAULT_BENCHMARK = "SPY"
_PRICE_SCALE = Decimal("0.0001")  # Lean stores equity prices x 10000 (LeanData: value * 0.0001m)
_ONE_HOUR = dt.timedelta(hours=1)


def smart_rounding(value: Decimal) -> Decimal:
    """Lean's ``Extensions.SmartRounding``: above 1000, 4 decimals; else 7 significant digits (half to even)."""
    if value > 1000:
        return _net_round(value, 4)
    if value == 0:
        return Decimal(0)
    digits = value.copy_abs().adjusted()  # floor(log10|value|)
    return value.quantize(Decimal(1).scaleb(digits - 6), rounding=ROUND_HALF_EVEN).normalize()


def _net_round(value: Decimal, places: int) -> Decimal:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return value


class SecurityBenchmark:
    """A security's hourly closes (Adjusted) as the benchmark: its value at a time is the close of the last
    hourly bar that ended by then, 0 before the first."""

    def __init__(self, symbol: Symbol) -> None:
        self.symbol = symbol
        self.missing: list[str] = []  # the hourly files Lean would ask for and the data folder lacks
        self._ends: list[dt.datetime] = []  # bar end times, New York
        self._closes: list[Decimal] = []

    @property
    def description(self) -> str:
        return f"{self.symbol.value} (hourly closes)"

    def load(self, provider: DataProvider, first_day: int, last_day: int) -> None:
        """Read the bars dated ``first_day``..``last_day`` (yyyymmdd): the map file picks the ticker of each
        day, the factor file scales the prices."""
        ticker = self.symbol.value
        root = provider.root / "equity" / "usa"
        map_file = provider.map_file(ticker)
        if map_file is not None:
            last_day = min(last_day, map_file.rows[-1][0])
        tickers: dict[str, list[tuple[int, int]]] = {}
        if map_file is None:
            tickers[ticker.lower()] = [(first_day, last_day)]
        else:
            previous = 0
            for date, mapped in map_file.rows:
                low, high = max(previous + 1, first_day), min(date, last_day)
                if low <= high:
                    tickers.setdefault(mapped.lower(), []).append((low, high))
                previous = date
        factors = _factor_rows(root / "factor_files" / f"{ticker.lower()}.csv")
        bars: list[tuple[dt.datetime, Decimal]] = []
        for name, ranges in tickers.items():
            path = root / "hour" / f"{name}.zip"
            if not path.is_file():
                self.missing.append(str(path))
                continue
            rows = _read_hourly(path)
            for low, high in ranges:
                first = bisect.bisect_left(rows, (low, -1, 0))
                for day, hhmm, close in itertools.islice(rows, first, None):
                    if day > high:
                        break
                    start = dt.datetime(day // 10000, day // 100 % 100, day % 100, hhmm // 100, hhmm % 100)
                    price = Decimal(close) * _PRICE_SCALE * _factor_on(factors, day)
                    bars.append((start + _ONE_HOUR, smart_rounding(price)))
        bars.sort(key=lambda bar: bar[0])
        self._ends = [end for end, _ in bars]
        self._closes = [close for _, close in bars]

    def value_at(self, local: dt.datetime) -> Decimal:
        i = bisect.bisect_right(self._ends, local)
        return self._closes[i - 1] if i else Decimal(0)

    def slice_times(self) -> list[dt.datetime]:
        """The times its bars arrive (New York): time slices of the backtest."""
        return self._ends


class FuncBenchmark:
    """``set_benchmark(function)``: the function's value at each sample's UTC time."""

    def __init__(self, function: Callable[[dt.datetime], Any]) -> None:
        self.function = function
        self.missing: list[str] = []
        self.description = "a function"

    def load(self, provider: DataProvider, first_day: int, last_day: int) -> None:
        return None

    def value_at(self, local: dt.datetime) -> Decimal:
        utc = local_to_utc(local).astimezone(UTC).replace(tzinfo=None)
        value = self.function(utc)
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise TypeError(f"the benchmark function returned {value!r}, not a number")
        if isinstance(value, float):  # Python.NET converts a float to the decimal Lean wants as C# does
            return smart_rounding(decimal_from_double(value))
        return smart_rounding(Decimal(value))

    def slice_times(self) -> list[dt.datetime]:
        return []


Benchmark = SecurityBenchmark | FuncBenchmark


HourlyRows = list[tuple[int, int, int]]
_HOURLY: dict[Path, tuple[float, HourlyRows]] = {}  # path -> (mtime, rows): the runs of one process share them


def _read_hourly(path: Path) -> HourlyRows:
    """(day yyyymmdd, bar start hhmm in New York, close x 10000) of a Lean hourly zip
    (``yyyyMMdd HH:mm,o,h,l,c,v``), sorted as the file is."""
    mtime = path.stat().st_mtime
    cached = _HOURLY.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if not names:
                raise DataFormatError(f"{path}: zip holds no file")
            text = archive.read(names[0]).decode("ascii", errors="replace")
    except zipfile.BadZipFile as exc:
        raise DataFormatError(f"{path}: not a zip file") from exc
    rows: HourlyRows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        stamp, _, rest = line.partition(",")
        parts = rest.split(",")
        try:
            if len(stamp) != 14 or stamp[8] != " " or stamp[11] != ":" or len(parts) < 4:
                raise ValueError(stamp)
            rows.append((int(stamp[:8]), int(stamp[9:11]) * 100 + int(stamp[12:14]), int(parts[3])))
        except ValueError as exc:
            raise DataFormatError(f"{path}:{number}: malformed hourly row {line[:80]!r}") from exc
    rows.sort()
    _HOURLY[path] = (mtime, rows)
    return rows


def _factor_rows(path: Path) -> tuple[list[int], list[Decimal]]:
    """Dates and price scale factors (price factor x split factor) of a factor file, as Lean's decimals."""
    if not path.is_file():
        return [], []
    rows: list[tuple[int, Decimal]] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            rows.append((int(parts[0]), Decimal(parts[1].strip()) * Decimal(parts[2].strip())))
        except (ValueError, IndexError, InvalidOperation) as exc:
            raise DataFormatError(f"{path}:{number}: bad factor file row {line!r}") from exc
    rows.sort(key=lambda row: row[0])
    return [d for d, _ in rows], [f for _, f in rows]


def _factor_on(factors: tuple[list[int], list[Decimal]], day: int) -> Decimal:
    """The scale of the first row dated on or after ``day`` (Lean's ``GetPriceScale``); 1 past the last row."""
    dates, scales = factors
    i = bisect.bisect_left(dates, day)
    return scales[i] if i < len(scales) else Decimal(1)


# ---------------------------------------------------------------------------------------------- the run's series
def resolve(setting: Benchmark | None, provider: DataProvider) -> Benchmark:
    """The algorithm's benchmark: what ``set_benchmark`` set, else SPY (the default brokerage model's)."""
    if setting is not None:
        return setting
    return SecurityBenchmark(provider.symbol_for(DEFAULT_BENCHMARK))


def run_series(engine: Engine, start_equity: float, benchmark: Benchmark) -> LeanSeries:
    """The statistics' series of a finished run: Lean's samples over the runtime's sessions, the benchmark's
    hourly bars and the midnight slices of dividends and splits (the benchmark's own included: its internal
    subscription emits them too, Common/Data/SubscriptionDataConfigExtensions.cs L158-161)."""
    sessions = engine.sessions
    steps: list[Step] = []
    indexes: list[int] = []
    for (day, value), (_, volume) in zip(engine.daily_values, engine.daily_sales, strict=True):
        index = sessions.positions[day]
        steps.append(Step(sessions.closes[index], value, volume))
        indexes.append(index)
    start = engine.start_date
    warmup_start = dt.datetime.combine(engine.schedule_range()[0], dt.time())
    first_index = sessions.index_of(yyyymmdd(warmup_start.date()))
    last_index = indexes[-1] if indexes else first_index
    # the subscription starts at the tradable day before the first step (UniverseSelection.cs L374-384)
    benchmark.load(engine.provider, sessions.days[max(first_index - 1, 0)], yyyymmdd(engine.end_date.date()))
    extra: list[dt.datetime] = list(benchmark.slice_times())
    run_indexes = range(first_index, last_index + 1)
    extra.extend(sessions.closes[k] for k in run_indexes)  # the warm-up's sessions too
    for k in run_indexes:
        if engine.feed.corporate_events_at(k):
            extra.append(dt.datetime.combine(sessions.dates[k], dt.time()))
    if isinstance(benchmark, SecurityBenchmark) and engine.securities.get(benchmark.symbol) is None:
        extra.extend(_corporate_midnights(engine, benchmark.symbol, run_indexes))
    extra.extend(engine.universes.slice_times)  # a universe's data makes its own midnight slices
    last = max(engine.universes.slice_times, default=None)
    return sample_backtest(
        start, engine.end_date, start_equity, steps, benchmark.value_at, extra, warmup_start, last_slice=last
    )


def _corporate_midnights(engine: Engine, symbol: Symbol, run_indexes: range) -> list[dt.datetime]:
    factors = engine.provider.factor_file(symbol.value)
    if factors is None or not len(factors.dates):
        return []
    map_file = engine.provider.map_file(symbol.value)
    data_range = (map_file.rows[0][0], map_file.rows[-1][0]) if map_file is not None else None
    try:
        events = corporate_events(
            symbol, factors, engine.sessions.days, data_range=data_range, raw_close_before=lambda _k: 0.0
        )
    except DataFormatError:  # a row without a reference price makes no event, so no midnight slice
        return []
    return [dt.datetime.combine(engine.sessions.dates[k], dt.time()) for k in events if k in run_indexes]


def from_arguments(algorithm: QCAlgorithm, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Benchmark:
    """The benchmark ``set_benchmark(*args, **kwargs)`` names, per Lean's overloads (QCAlgorithm.cs L1450-1530,
    QCAlgorithm.Python.cs L1368-1391): ``(security_type, symbol)``, ``ticker``, ``symbol`` or ``benchmark`` (a
    Symbol or a function of the time)."""
    from include.lean_local.symbols import Symbol

    unknown = set(kwargs) - {"benchmark", "symbol", "ticker", "security_type"}
    if unknown or len(args) + len(kwargs) not in (1, 2):
        raise TypeError(
            "set_benchmark() takes (benchmark), (symbol), (ticker) or (security_type, symbol); got "
            f"{len(args)} positional and keyword(s) {sorted(kwargs)}"
        )
    engine = algorithm._engine
    if len(args) + len(kwargs) == 2:
        security_type = args[0] if args else kwargs.get("security_type")
        ticker = args[1] if len(args) > 1 else kwargs.get("symbol")
        if security_type is None or not isinstance(ticker, str):
            raise TypeError("set_benchmark(security_type, symbol) takes a SecurityType and a ticker")
        if int(security_type) != SecurityType.EQUITY:
            raise NotSupportedByLocalRuntime(f"set_benchmark with security type {security_type!r} (only EQUITY)")
        return SecurityBenchmark(engine.provider.symbol_for(ticker))
    value = args[0] if args else next(iter(kwargs.values()))
    if isinstance(value, Symbol):
        return SecurityBenchmark(value)
    if isinstance(value, str):
        if not engine.securities.contains(value):
            algorithm.debug(
                f"Warning: SetBenchmark({value}): no existing symbol found, benchmark security will be added "
                "with Equity type."
            )
        return SecurityBenchmark(engine.securities.to_symbol(value))
    if callable(value):
        return FuncBenchmark(value)
    raise ValueError(f"Unable to set the benchmark from {value!r}: it is not a supported benchmark type.")
