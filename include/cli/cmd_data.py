"""``data import-csv``: convert a user's OHLCV CSV into Lean's daily zip format."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import math
import re
import zipfile
from pathlib import Path
from typing import Any

from include.atomic_io import atomic_write_bytes
from include.cli import print_json
from include.contracts.validation import FILE_ERRORS, read_text_file
from include.errors import ContractValidationError, InputFileError

_TICKER = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,15}$")


class CsvImportError(ContractValidationError):
    """A row of the CSV to import is invalid; names the line number."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("ohlcv csv", problems)


class CsvFileError(InputFileError, CsvImportError):
    """The CSV to import cannot be read: missing, not a regular file, no permission."""


FILE_ERRORS[CsvImportError] = (CsvFileError, "ohlcv csv")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("data", help="Lean data folder helpers")
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    imp = sub.add_parser("import-csv", help="convert an OHLCV CSV (with header) into equity/usa/daily/<t>.zip")
    imp.add_argument("--csv", required=True, type=Path)
    imp.add_argument("--ticker", required=True)
    imp.add_argument("--data-folder", required=True, type=Path)
    for col in ("date", "open", "high", "low", "close", "volume"):
        imp.add_argument(f"--{col}-col", default=col, help=f"header of the {col} column (default {col})")
    imp.add_argument("--date-format", default="%Y-%m-%d", help="strptime format of the date column")
    imp.set_defaults(handler=_import_csv)


def convert_csv(text: str, *, columns: dict[str, str], date_format: str) -> list[str]:
    """Lean daily rows ``yyyyMMdd 00:00,o,h,l,c,v`` (prices x 10000, rounded) sorted by date."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in columns.values() if c not in header]
    if missing:
        raise CsvImportError([f"missing column(s) {missing}; header is {header}"])
    problems: list[str] = []
    rows: dict[str, str] = {}
    for line_no, row in enumerate(reader, start=2):
        try:
            day = dt.datetime.strptime(row[columns["date"]].strip(), date_format).date()
        except (ValueError, AttributeError):
            problems.append(f"line {line_no}: bad date {row.get(columns['date'])!r} (format {date_format})")
            continue
        values: dict[str, float] = {}
        for key in ("open", "high", "low", "close", "volume"):
            raw = row.get(columns[key])
            try:
                values[key] = float(str(raw).strip())
            except ValueError:
                problems.append(f"line {line_no}: bad {key} {raw!r}")
                break
            if not math.isfinite(values[key]) or values[key] < 0:
                problems.append(f"line {line_no}: {key} must be a finite non-negative number, got {raw!r}")
                break
        if len(values) < 5:
            continue
        if values["high"] < max(values["open"], values["close"], values["low"]) or values["low"] > min(
            values["open"], values["close"]
        ):
            problems.append(f"line {line_no}: high/low inconsistent with open/close")
            continue
        key = f"{day:%Y%m%d}"
        if key in rows:
            problems.append(f"line {line_no}: duplicate date {day}")
            continue
        rows[key] = (
            f"{key} 00:00,{round(values['open'] * 10000)},{round(values['high'] * 10000)},"
            f"{round(values['low'] * 10000)},{round(values['close'] * 10000)},{round(values['volume'])}"
        )
    if problems:
        raise CsvImportError(problems)
    if not rows:
        raise CsvImportError(["no data rows"])
    return [rows[k] for k in sorted(rows)]


def _import_csv(args: argparse.Namespace) -> int:
    ticker = args.ticker.strip().upper()
    if not _TICKER.fullmatch(ticker):
        raise CsvImportError([f"ticker={args.ticker!r}: expected letters/digits/.-"])
    text = read_text_file(args.csv, CsvImportError, limit=None)
    columns = {k: getattr(args, f"{k}_col") for k in ("date", "open", "high", "low", "close", "volume")}
    lines = convert_csv(text, columns=columns, date_format=args.date_format)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(f"{ticker.lower()}.csv", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, "\n".join(lines) + "\n")
    target = args.data_folder / "equity" / "usa" / "daily" / f"{ticker.lower()}.zip"
    atomic_write_bytes(target, buffer.getvalue())
    print_json(
        {"ticker": ticker, "path": str(target), "rows": len(lines), "first": lines[0][:8], "last": lines[-1][:8]}
    )
    return 0
