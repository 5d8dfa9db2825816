"""Preflight of a Lean data folder: every file the real Lean engine reads while it starts.

Lean (``quantconnect/lean``; lines at QuantConnect/Lean commit 24863901) opens two databases of its
data folder before the algorithm's ``initialize`` has returned, and the run dies when either is missing:

* ``market-hours/market-hours-database.json``, read by ``MarketHoursDatabase.FromDataFolder``
  (``Common/Securities/MarketHoursDatabase.cs`` L118-133, the path at L126, ``File.ReadAllText`` at
  L140-143). The engine loads it while it starts (``Engine/Engine.cs`` L77 and L599-606) and so does
  the ``QCAlgorithm`` constructor (``Algorithm/QCAlgorithm.cs`` L220). Every US equity is looked up
  under the ``Equity-usa-[*]`` entry, the default benchmark SPY too (``QCAlgorithm.PostInitialize``
  L817-820 calls ``DefaultBrokerageModel.GetBenchmark``, ``Common/Brokerages/DefaultBrokerageModel.cs``
  L211-215); without the entry ``GetEntry`` throws (``MarketHoursDatabase.cs`` L192-220).
* ``symbol-properties/symbol-properties-database.csv``, read by ``SymbolPropertiesDatabase.FromDataFolder``
  (``Common/Securities/SymbolPropertiesDatabase.cs`` L186-200, the path at L194; a missing file throws
  ``FileNotFoundException`` at L209-212). The engine reads it at ``Engine/Engine.cs`` L151 and L601, the
  ``QCAlgorithm`` constructor at ``Algorithm/QCAlgorithm.cs`` L221.

Plus ``equity/usa/daily/``, the folder of the daily bars this project's algorithm trades. Lean does not stop
without it, it runs without data, which is worse: a backtest that trades nothing looks like a quiet market.

Not checked, because Lean starts without them: ``equity/usa/map_files`` and ``factor_files`` (a missing
folder is logged and treated as empty, ``Common/Data/Auxiliary/LocalDiskMapFileProvider.cs`` L68-79) and
``alternative/interest-rate/usa/interest-rate.csv`` (a missing file is logged, L136-139 of
``Common/Data/InterestRateProvider.cs``, and every day gets the 1% default, L40 and L83-103).

Stdlib only: ``airflow-init`` runs ``python -m include.launch.data_folder <folder>`` (the whole check) before
the stack starts, and the local runtime refuses what Lean refuses (:func:`check_lean_start_files`) at every start.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from include.errors import LeanConfigError

MARKET_HOURS_DATABASE = PurePosixPath("market-hours/market-hours-database.json")
SYMBOL_PROPERTIES_DATABASE = PurePosixPath("symbol-properties/symbol-properties-database.csv")
EQUITY_DAILY_FOLDER = PurePosixPath("equity/usa/daily")
# The market-hours entry of every US equity (and of the default benchmark SPY).
US_EQUITY_ENTRY = "Equity-usa-[*]"
# Lean's complete market-hours database is about 3 MB; a file far bigger is not one, and is refused
# before it is read so a wrong path cannot fill memory.
MAX_DATABASE_BYTES = 64 << 20

_WHY = {
    MARKET_HOURS_DATABASE: "Lean reads it at every start (MarketHoursDatabase.FromDataFolder)",
    SYMBOL_PROPERTIES_DATABASE: "Lean reads it at every start (SymbolPropertiesDatabase.FromDataFolder)",
    EQUITY_DAILY_FOLDER: "the daily bars of the US equities the algorithm trades",
}


def _read_file(folder: Path, relative: PurePosixPath, problems: list[str]) -> bytes | None:
    """The file's bytes, or None with the reason added to ``problems``."""
    path = folder / relative
    try:
        info = path.stat()
    except FileNotFoundError:
        problems.append(f"{path}: missing; {_WHY[relative]}")
        return None
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror}); {_WHY[relative]}")
        return None
    if not stat.S_ISREG(info.st_mode):
        problems.append(f"{path}: not a regular file; {_WHY[relative]}")
        return None
    if info.st_size > MAX_DATABASE_BYTES:
        problems.append(f"{path}: {info.st_size} bytes, over the {MAX_DATABASE_BYTES}-byte limit of a Lean database")
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror}); {_WHY[relative]}")
        return None


def _check_market_hours(folder: Path, problems: list[str]) -> None:
    data = _read_file(folder, MARKET_HOURS_DATABASE, problems)
    if data is None:
        return
    path = folder / MARKET_HOURS_DATABASE
    try:
        parsed = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        problems.append(f"{path}: not UTF-8 text (byte offset {exc.start}); Lean cannot parse it")
        return
    except json.JSONDecodeError as exc:
        problems.append(f"{path}: not valid JSON ({exc}); Lean cannot parse it")
        return
    entries = parsed.get("entries") if isinstance(parsed, dict) else None
    if not isinstance(entries, dict):
        problems.append(f"{path}: no 'entries' object; Lean's MarketHoursDatabase has its entries under it")
    elif not isinstance(entries.get(US_EQUITY_ENTRY), dict):
        problems.append(
            f"{path}: no {US_EQUITY_ENTRY!r} entry; Lean looks it up for every US equity and for the default"
            " benchmark SPY, and stops when it is missing"
        )


def _check_folder(folder: Path, relative: PurePosixPath, problems: list[str]) -> None:
    path = folder / relative
    if not path.is_dir():
        problems.append(f"{path}/: missing or not a folder; {_WHY[relative]}")
    elif not os.access(path, os.R_OK | os.X_OK):
        problems.append(f"{path}/: cannot be listed (permission denied); {_WHY[relative]}")


def _not_a_folder(folder: Path) -> list[str]:
    if folder.is_dir():
        return []
    return [f"{folder}: not a folder (a Lean data folder holds market-hours/, symbol-properties/ and equity/)"]


def check_lean_start_files(path: str | os.PathLike[str]) -> list[str]:
    """Every reason the real Lean would stop at start on this data folder (its two databases); empty when fine.

    What the local runtime refuses, as Lean does. Each problem names the file (its full path) and why.
    """
    folder = Path(path)
    problems = _not_a_folder(folder)
    if not problems:
        _check_market_hours(folder, problems)
        _read_file(folder, SYMBOL_PROPERTIES_DATABASE, problems)
    return problems


def check_lean_data_folder(path: str | os.PathLike[str]) -> list[str]:
    """:func:`check_lean_start_files`, and ``equity/usa/daily/``: every reason a run of this project's algorithm
    on this data folder would stop at start or trade without data; empty when fine.

    Each problem names the file or folder (its full path) and why Lean needs it.
    """
    problems = check_lean_start_files(path)
    folder = Path(path)
    if folder.is_dir():
        _check_folder(folder, EQUITY_DAILY_FOLDER, problems)
    return problems


def require_lean_data_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` when it is a complete Lean data folder; otherwise ``LeanConfigError`` listing every problem."""
    problems = check_lean_data_folder(path)
    if problems:
        raise LeanConfigError([f"data folder {os.fspath(path)} is not one Lean can start on: {p}" for p in problems])
    return Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m include.launch.data_folder FOLDER``: exit 0 when Lean can start on it, else 1 with the problems."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m include.launch.data_folder FOLDER", file=sys.stderr)
        return 2
    problems = check_lean_data_folder(args[0])
    for problem in problems:
        print(f"Lean data folder: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
