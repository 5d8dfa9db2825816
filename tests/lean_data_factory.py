"""Write small Lean-format daily data folders for tests (prices x 10000, one CSV per zip)."""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

Bar = tuple[dt.date, float, float, float, float, int]


def write_daily_zip(data_folder: Path, ticker: str, bars: Sequence[Bar]) -> Path:
    folder = data_folder / "equity" / "usa" / "daily"
    folder.mkdir(parents=True, exist_ok=True)
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
