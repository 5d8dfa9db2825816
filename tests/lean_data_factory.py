"""Write small Lean-format data folders for tests (daily bars: prices x 10000, one CSV per zip).

Every folder written here is one the real Lean starts on: :func:`write_daily_zip` also copies Lean's two
databases (``market-hours/``, ``symbol-properties/``) from the bundled sample data, since Lean reads them
at every start and the local runtime refuses a folder without them, as Lean does.
"""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from include.launch.data_folder import MARKET_HOURS_DATABASE, SYMBOL_PROPERTIES_DATABASE
from tests.conftest import REPO_ROOT

Bar = tuple[dt.date, float, float, float, float, int]

SAMPLE_DATA_FOLDER = REPO_ROOT / "include" / "sample_data" / "lean"
LEAN_DATABASES = (MARKET_HOURS_DATABASE, SYMBOL_PROPERTIES_DATABASE)


def write_lean_databases(data_folder: Path) -> None:
    """Copy the sample data's market-hours and symbol-properties databases into ``data_folder`` (when missing)."""
    for relative in LEAN_DATABASES:
        target = data_folder / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SAMPLE_DATA_FOLDER / relative, target)


def write_daily_zip(data_folder: Path, ticker: str, bars: Sequence[Bar]) -> Path:
    folder = data_folder / "equity" / "usa" / "daily"
    folder.mkdir(parents=True, exist_ok=True)
    write_lean_databases(data_folder)
    lines = [
        f"{day:%Y%m%d} 00:00,{round(o * 10000)},{round(h * 10000)},{round(lo * 10000)},{round(c * 10000)},{v}"
        for day, o, h, lo, c, v in bars
    ]
    path = folder / f"{ticker.lower()}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{ticker.lower()}.csv", "\n".join(lines) + "\n")
    return path


def write_closes(data_folder: Path, closes: Mapping[str, Mapping[dt.date, float]]) -> None:
    """Flat bars (open = high = low = close) from a close series per ticker."""
    for ticker, series in closes.items():
        write_daily_zip(data_folder, ticker, [(d, c, c, c, c, 1_000_000) for d, c in sorted(series.items())])
