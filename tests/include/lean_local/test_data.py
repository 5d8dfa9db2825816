from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from include.errors import LeanAirflowError
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
    assert days.tolist() == [20200102, 20200103]
    assert c.tolist() == [1.0, 1.75] and v.tolist() == [5.0, 100.0]


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
    pre = raw.days <= 20200612
    np.testing.assert_allclose(adj.close[pre], raw.close[pre] * 0.5)
    np.testing.assert_allclose(adj.close[~pre], raw.close[~pre])
    i = int(np.searchsorted(raw.days, 20200615))
    assert raw.close[i] / raw.close[i - 1] < 0.7  # the raw series halves at the split
    assert 0.7 < adj.close[i] / adj.close[i - 1] < 1.3  # the adjusted one does not


def test_missing_factor_file_means_no_adjustment() -> None:
    provider = DataProvider(SAMPLE_DATA)
    raw = provider.load_daily("ZZSA", adjusted=False)
    adj = provider.load_daily("ZZSA", adjusted=True)
    assert raw is not None and adj is not None
    np.testing.assert_array_equal(raw.close, adj.close)
    assert provider.load_daily("NOPE") is None
