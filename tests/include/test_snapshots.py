"""Snapshot providers, above all the trend rotation's no-look-ahead rule."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from include.errors import SnapshotError, WeightsFileLocationError
from include.snapshots import DEFAULT_WEIGHTS_DIR, WEIGHTS_DIRS_ENV, confine_weights_file, take_snapshot, weights_dirs
from include.snapshots.providers import file_snapshot, sql_snapshot, trend_rotation_snapshot
from include.trading_calendar import sessions_between
from tests.conftest import REPO_ROOT
from tests.lean_data_factory import write_closes

SESSIONS = sessions_between(dt.date(2021, 1, 4), dt.date(2021, 3, 31))


@pytest.fixture(autouse=True)
def weights_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file provider reads only under LEAN_AIRFLOW_WEIGHTS_DIRS: these tests write their tables to tmp_path."""
    monkeypatch.setenv(WEIGHTS_DIRS_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    write_closes(
        folder,
        {
            "UPP": {d: 100 + i for i, d in enumerate(SESSIONS)},
            "MID": {d: 100 + 0.5 * i for i, d in enumerate(SESSIONS)},
            "FLAT": {d: 100.0 for d in SESSIONS},
            "DOWN": {d: 200 - i for i, d in enumerate(SESSIONS)},
        },
    )
    return folder


def test_top_n_positive_momentum_equal_weights(data: Path) -> None:
    snap = trend_rotation_snapshot(as_of=SESSIONS[30], data_folder=data, top_n=2, lookback_days=10)
    weights = {i.symbol: i.weight for i in snap.items}
    assert weights == {"UPP": 0.5, "MID": 0.5, "FLAT": 0.0, "DOWN": 0.0}
    assert snap.as_of == SESSIONS[30]


def test_no_look_ahead(data: Path, tmp_path: Path) -> None:
    """Changing the as-of day's own bar (and later ones) must not change the decision."""
    as_of = SESSIONS[30]
    before = trend_rotation_snapshot(as_of=as_of, data_folder=data, top_n=1, lookback_days=10)
    shocked = tmp_path / "shocked"
    write_closes(
        shocked,
        {
            "UPP": {d: (100 + i if d < as_of else 1.0) for i, d in enumerate(SESSIONS)},
            "MID": {d: (100 + 0.5 * i if d < as_of else 10_000.0) for i, d in enumerate(SESSIONS)},
            "FLAT": {d: 100.0 for d in SESSIONS},
            "DOWN": {d: 200 - i for i, d in enumerate(SESSIONS)},
        },
    )
    after = trend_rotation_snapshot(as_of=as_of, data_folder=shocked, top_n=1, lookback_days=10)
    assert before.items == after.items
    # ...while the next day's decision does see the shock.
    next_day = trend_rotation_snapshot(as_of=SESSIONS[31], data_folder=shocked, top_n=1, lookback_days=10)
    assert {i.symbol for i in next_day.items if i.weight > 0} == {"MID"}


def test_not_enough_history_means_no_position(data: Path) -> None:
    snap = trend_rotation_snapshot(as_of=SESSIONS[3], data_folder=data, top_n=2, lookback_days=10)
    assert snap.items == ()


def test_file_provider_csv_json_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"date": ["2021-02-01", "2021-02-01", "2021-02-02"], "symbol": ["spy", "QQQ", "SPY"], "weight": [0.6, 0.4, 1.0]}
    )
    for name, writer in (
        ("w.csv", lambda p: frame.to_csv(p, index=False)),
        ("w.json", lambda p: frame.to_json(p, orient="records")),
        ("w.parquet", lambda p: frame.to_parquet(p, index=False)),
    ):
        path = tmp_path / name
        writer(path)
        snap = file_snapshot(as_of=dt.date(2021, 2, 1), path=path)
        assert {i.symbol: i.weight for i in snap.items} == {"SPY": 0.6, "QQQ": 0.4}, name


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("date,symbol\n2021-02-01,SPY\n", "missing columns"),
        ("date,symbol,weight\nnot-a-date,SPY,1\n", "does not parse"),
        ("date,symbol,weight\n2021-02-01,SPY,0.5\n2021-02-01,spy,0.5\n", "duplicate symbol"),
        ("date,symbol,weight\n2021-02-01,SPY,abc\n", "not a number"),
        ("date,symbol,weight\n2021-02-02,SPY,1\n", "no weights for 2021-02-01"),
        ("date,symbol,weight\n2021-02-01,SPY,0.7\n2021-02-01,QQQ,0.7\n", "gross weight"),
    ],
)
def test_file_provider_bad_tables(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "w.csv"
    path.write_text(content)
    with pytest.raises(SnapshotError, match=message):
        file_snapshot(as_of=dt.date(2021, 2, 1), path=path)


def test_file_provider_unsupported_type(tmp_path: Path) -> None:
    path = tmp_path / "w.xlsx"
    path.write_text("x")
    with pytest.raises(SnapshotError, match="unsupported weights file type"):
        file_snapshot(as_of=dt.date(2021, 2, 1), path=path)


def test_sql_provider(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE target_weights (date TEXT, symbol TEXT, weight REAL)"))
        conn.execute(sa.text("INSERT INTO target_weights VALUES ('2021-02-01','SPY',0.3),('2021-02-01','QQQ',0.2)"))
    engine.dispose()
    snap = sql_snapshot(as_of=dt.date(2021, 2, 1), url=url, table="target_weights")
    assert {i.symbol: i.weight for i in snap.items} == {"SPY": 0.3, "QQQ": 0.2}
    with pytest.raises(SnapshotError, match="not a plain table name"):
        sql_snapshot(as_of=dt.date(2021, 2, 1), url=url, table="w; DROP TABLE x")
    with pytest.raises(SnapshotError, match="NoSuchTableError"):
        sql_snapshot(as_of=dt.date(2021, 2, 1), url=url, table="missing")


def test_dispatch_and_unknown_provider(data: Path) -> None:
    snap = take_snapshot("trend_rotation", as_of=SESSIONS[30], data_folder=str(data), options={"top_n": 1})
    assert snap.source.startswith("trend_rotation")
    with pytest.raises(SnapshotError, match="provider='magic'"):
        take_snapshot("magic", as_of=SESSIONS[30], data_folder=str(data), options={})
    with pytest.raises(SnapshotError, match="needs option 'path'"):
        take_snapshot("file", as_of=SESSIONS[30], data_folder=str(data), options={})


# -- inputs mean what they say (a blank symbol is not skipped, "NA" is a ticker, True is no weight)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("w.csv", "date,symbol,weight\n2021-02-01,,0.5\n", r"row 0 \(2021-02-01\): the symbol is blank"),
        ("w.csv", "date,symbol,weight\n2021-02-01,SPY,true\n", r"row 0 \(2021-02-01\): weight True is not a number"),
        ("w.csv", "date,symbol,weight\n2021-02-01,SPY,\n", r"row 0 \(2021-02-01\): weight '' is not a number"),
        ("w.csv", "date,symbol,weight,weight\n2021-02-01,SPY,0.5,0.9\n", r"duplicate column\(s\) \['weight'\]"),
        ("w.csv", "date,symbol,weight\n,SPY,0.5\n", "row 0: date '' does not parse"),
        ("w.json", '[{"date": "2021-02-01", "symbol": null, "weight": 0.5}]', r"the symbol is missing \(null\)"),
        ("w.json", '[{"date": "2021-02-01", "symbol": "SPY", "weight": true}]', "weight True is not a number"),
        ("w.json", '[{"date": "2021-02-01", "symbol": "SPY", "weight": null}]', r"the weight is missing \(null\)"),
    ],
)
def test_file_provider_refuses_rows_that_would_change_meaning(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SnapshotError, match=message):
        file_snapshot(as_of=dt.date(2021, 2, 1), path=path)


@pytest.mark.parametrize("ticker", ["NA", "NAN", "NULL", "TRUE"])
@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_real_tickers_that_look_like_missing_values_are_kept(tmp_path: Path, ticker: str, suffix: str) -> None:
    frame = pd.DataFrame({"date": ["2021-02-01", "2021-02-01"], "symbol": [ticker, "SPY"], "weight": [0.4, 0.6]})
    path = tmp_path / f"w{suffix}"
    {".csv": lambda: frame.to_csv(path, index=False), ".json": lambda: frame.to_json(path, orient="records"),
     ".parquet": lambda: frame.to_parquet(path, index=False)}[suffix]()  # fmt: skip
    snap = file_snapshot(as_of=dt.date(2021, 2, 1), path=path)
    assert {i.symbol: i.weight for i in snap.items} == {ticker: 0.4, "SPY": 0.6}


def test_parquet_nulls_and_booleans_are_refused(tmp_path: Path) -> None:
    for column, values, message in (
        ("symbol", [None], "the symbol is missing"),
        ("weight", [True], "weight True is not a number"),
    ):
        frame = pd.DataFrame({"date": ["2021-02-01"], "symbol": ["SPY"], "weight": [0.5]})
        frame[column] = values
        path = tmp_path / f"{column}.parquet"
        frame.to_parquet(path, index=False)
        with pytest.raises(SnapshotError, match=message):
            file_snapshot(as_of=dt.date(2021, 2, 1), path=path)


# -- the file provider reads only under the weights base folders (LEAN_AIRFLOW_WEIGHTS_DIRS)

ONE_ROW = "date,symbol,weight\n2021-02-01,SPY,1\n"


@pytest.fixture
def bases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """Two base folders and a folder outside both, each holding a valid weights table."""
    first, second, outside = tmp_path / "weights", tmp_path / "more", tmp_path / "outside"
    for folder in (first, second, outside):
        folder.mkdir()
        (folder / "w.csv").write_text(ONE_ROW)
    monkeypatch.setenv(WEIGHTS_DIRS_ENV, f"{first}{os.pathsep}{os.pathsep}{second}{os.pathsep}")
    return first, second, outside


def _read(path: str | Path) -> dict[str, float]:
    snap = take_snapshot("file", as_of=dt.date(2021, 2, 1), data_folder="unused", options={"path": str(path)})
    return {i.symbol: i.weight for i in snap.items}


def test_weights_inside_any_base_folder_are_read(bases: tuple[Path, Path, Path]) -> None:
    first, second, _ = bases
    assert weights_dirs() == (first.resolve(), second.resolve())  # empty entries are skipped
    (first / "sub").mkdir()
    (first / "sub" / "w.csv").write_text(ONE_ROW)
    for path in (first / "w.csv", second / "w.csv", first / "sub" / "w.csv", first / "sub" / ".." / "w.csv"):
        assert _read(path) == {"SPY": 1.0}, path


def test_a_relative_weights_path_is_taken_in_the_first_base_folder(
    bases: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _, outside = bases
    monkeypatch.chdir(outside)  # never the worker's current directory, which also holds a w.csv
    assert confine_weights_file("w.csv") == (first / "w.csv").resolve()
    assert _read("w.csv") == {"SPY": 1.0}


@pytest.mark.parametrize("how", ["absolute", "dotdot", "relative dotdot", "symlink file", "symlink folder"])
def test_a_weights_path_outside_every_base_folder_is_refused_unread(bases: tuple[Path, Path, Path], how: str) -> None:
    first, second, outside = bases
    if how == "absolute":
        path: str | Path = outside / "w.csv"
    elif how == "dotdot":
        path = first / ".." / "outside" / "w.csv"
    elif how == "relative dotdot":
        path = "../outside/w.csv"
    elif how == "symlink file":
        path = first / "link.csv"
        path.symlink_to(outside / "w.csv")
    else:
        (first / "linked").symlink_to(outside, target_is_directory=True)
        path = first / "linked" / "w.csv"
    with pytest.raises(WeightsFileLocationError) as info:
        _read(path)
    message = str(info.value)
    # Names the path as given, where it resolves to, and every base folder; still a SnapshotError.
    assert repr(str(path)) in message and str((outside / "w.csv").resolve()) in message
    assert str(first.resolve()) in message and str(second.resolve()) in message
    assert "LEAN_AIRFLOW_WEIGHTS_DIRS" in message and isinstance(info.value, SnapshotError)


def test_a_base_folder_itself_and_its_parent_are_no_weights_file(bases: tuple[Path, Path, Path]) -> None:
    first, _, _ = bases
    for path in (first, first.parent / "w.csv"):
        with pytest.raises(WeightsFileLocationError):
            confine_weights_file(path)


def test_the_default_weights_folder_is_the_repo_weights_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEIGHTS_DIRS_ENV)
    assert weights_dirs() == (DEFAULT_WEIGHTS_DIR.resolve(),) == (REPO_ROOT / "weights",)
    with pytest.raises(WeightsFileLocationError, match="outside every weights base folder"):
        confine_weights_file("/etc/passwd")
