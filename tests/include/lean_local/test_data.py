from __future__ import annotations

import bisect
import datetime as dt
import math
import zipfile
from pathlib import Path

import pytest

from include.errors import LeanAirflowError
from include.lean_local import data
from include.lean_local.data import DataProvider, read_daily_zip
from include.lean_local.errors import DataFormatError
from include.lean_local.symbols import encode_base36, equity_sid
from tests.include.lean_local.helpers import SAMPLE_DATA
from tests.lean_data_factory import write_daily_zip


def test_security_identifier_known_values() -> None:
    # Lean's Tests/Common/SecurityIdentifierTests.cs and the regression statistics use these identifiers
    assert equity_sid("SPY", dt.date(1998, 1, 2)) == "SPY R735QTJ8XC9X"
    assert equity_sid("AAPL", dt.date(1998, 1, 2)) == "AAPL R735QTJ8XC9X"
    assert equity_sid("AAA", dt.date(2002, 5, 22)) == "AAA SEVKGI6HF885"
    # no map file: SecurityIdentifier.DefaultDate (1899-12-30) -> properties = market 1 x 100 + type 1
    assert equity_sid("XYZ", None) == "XYZ 2T"
    assert encode_base36(0) == "0"


def test_symbol_uses_map_file_first_date(tmp_path: Path) -> None:
    provider = DataProvider(SAMPLE_DATA)
    assert str(provider.symbol_for("ZZSC").id) == equity_sid("ZZSC", dt.date(2019, 1, 2))
    assert str(provider.symbol_for("ZZSA").id) == "ZZSA 2T"


def test_read_daily_zip_scales_prices(tmp_path: Path) -> None:
    path = write_daily_zip(
        tmp_path, "abc", [(dt.date(2020, 1, 3), 1.5, 2.0, 1.0, 1.75, 100), (dt.date(2020, 1, 2), 1.0, 1.0, 1.0, 1.0, 5)]
    )
    days, _o, _h, _lo, c, v = read_daily_zip(path)
    assert days == [20200102, 20200103]
    assert c == [1.0, 1.75] and v == [5.0, 100.0]


def test_bad_zip_named_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match=r"x\.zip") as raised:
        read_daily_zip(bad)
    assert isinstance(raised.value, LeanAirflowError)  # the CLI and the operator report it by name


def test_factor_adjustment_split() -> None:
    provider = DataProvider(SAMPLE_DATA)
    raw = provider.load_daily("ZZSC", adjusted=False)
    adj = provider.load_daily("ZZSC", adjusted=True)
    assert raw is not None and adj is not None
    assert adj.days == raw.days
    for day, adjusted, unadjusted in zip(raw.days, adj.close, raw.close, strict=True):
        assert adjusted == pytest.approx(unadjusted * (0.5 if day <= 20200612 else 1.0))
    i = bisect.bisect_left(raw.days, 20200615)
    assert raw.close[i] / raw.close[i - 1] < 0.7  # the raw series halves at the split
    assert 0.7 < adj.close[i] / adj.close[i - 1] < 1.3  # the adjusted one does not


def test_missing_factor_file_means_no_adjustment() -> None:
    provider = DataProvider(SAMPLE_DATA)
    raw = provider.load_daily("ZZSA", adjusted=False)
    adj = provider.load_daily("ZZSA", adjusted=True)
    assert raw is not None and adj is not None
    assert raw.close == adj.close
    assert provider.load_daily("NOPE") is None


def _zip(tmp_path: Path, name: str, text: bytes) -> Path:
    path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}.csv", text)
    return path


def test_read_daily_zip_text_forms(tmp_path: Path) -> None:
    # rows out of order (ties keep the file's order), CRLF and bare CR line ends, blank lines, padded numbers
    text = b"20200103 00:00,30000,30000,30000,30000,3\r\n\r\n20200102 00:00, 10000 ,1,1,1,1\r20200103 00:00,2,2,2,2,2\n"
    days, o, _h, _lo, c, v = read_daily_zip(_zip(tmp_path, "forms", text))
    assert days == [20200102, 20200103, 20200103]
    assert o == [1.0, 3.0, 2 / 10000] and c[1] == 3.0 and v == [1.0, 3.0, 2.0]


def test_read_daily_zip_missing_values_are_nan(tmp_path: Path) -> None:
    days, o, h, lo, c, v = read_daily_zip(_zip(tmp_path, "nulls", b"20200102 00:00,NA,,10000,nan,N/A\n"))
    assert days == [20200102] and lo == [1.0]
    assert all(math.isnan(x[0]) for x in (o, h, c, v))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (b"20200102 00:00,1,2,3,4\n", "row 1 has 5 columns"),
        (b"20200102 00:00,1,2,3,4,5\n  \n", "row 2 has 1 columns"),
        (b"20200102 00:00,1,0x10,3,4,5\n", "malformed daily CSV"),
        (b"2020x102 00:00,1,2,3,4,5\n", "malformed date column"),
    ],
)
def test_malformed_daily_csv_is_a_named_error(tmp_path: Path, text: bytes, match: str) -> None:
    path = _zip(tmp_path, "bad", text)
    for columnar_from_rows in (None, 0):  # pyarrow rejects these too and leaves the naming to the text reader
        with pytest.raises(DataFormatError, match=match):
            read_daily_zip(path, columnar_from_rows=columnar_from_rows)


def test_columnar_reader_gives_the_same_numbers(tmp_path: Path) -> None:
    paths = sorted((SAMPLE_DATA / "equity" / "usa" / "daily").glob("*.zip"))
    paths.append(_zip(tmp_path, "odd", b"20200103 00:00,3,3,3,3,3\r\n\n20200102 00:00,NA,1,1,1,1\n"))
    for path in paths:
        text_columns = read_daily_zip(path)
        columnar = read_daily_zip(path, columnar_from_rows=0)
        assert [[repr(x) for x in column] for column in columnar] == [[repr(x) for x in c] for c in text_columns]


def test_provider_switches_to_the_columnar_reader_after_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    text_bars = [DataProvider(SAMPLE_DATA).load_daily(t) for t in ("ZZSA", "ZZSB", "ZZSC")]
    monkeypatch.setattr(data, "COLUMNAR_AFTER_ROWS", 700)
    monkeypatch.setattr(data, "COLUMNAR_MIN_FILE_ROWS", 10)
    read: list[int | None] = []
    reader = data.read_daily_zip

    def spy(path: Path, *, columnar_from_rows: int | None = None) -> data.DailyColumns:
        read.append(columnar_from_rows)
        return reader(path, columnar_from_rows=columnar_from_rows)

    monkeypatch.setattr(data, "read_daily_zip", spy)
    provider = DataProvider(SAMPLE_DATA)
    bars = [provider.load_daily(t) for t in ("ZZSA", "ZZSB", "ZZSC")]
    assert read == [None, 10, 10]  # the first file (757 rows) reaches the threshold
    assert bars == text_bars


def test_factor_file_without_rows_is_a_named_error_for_adjusted_prices(tmp_path: Path) -> None:
    write_daily_zip(tmp_path, "EMP", [(dt.date(2020, 1, 2), 1.0, 1.0, 1.0, 1.0, 5)])
    (tmp_path / "equity" / "usa" / "factor_files").mkdir(parents=True)
    (tmp_path / "equity" / "usa" / "factor_files" / "emp.csv").write_text("\n")
    provider = DataProvider(tmp_path)
    with pytest.raises(DataFormatError, match=r"emp\.csv: factor file has no rows"):
        provider.load_daily("EMP")
    raw = provider.load_daily("EMP", adjusted=False)
    assert raw is not None and raw.close == [1.0]
