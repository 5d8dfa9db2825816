"""Missing or stale data is a hard failure (issue #17), for live and backtest alike.

A run whose data has no bar for the session it sizes on (the rebalance session in a backtest; the
previous session for a live run, which trades before the close) fails before Lean starts, under either
consistency policy, with ``MarketDataMissingError`` naming each symbol and the last date its data has:
nothing is traded, no events or results are written. A symbol with weight 0 that is not held needs no
data. The normal paths (a live run on a session the data covers) still trade.

Before this, a live run two years past the end of the sample data traded at two-year-old prices and
the consistency check only warned, even with ``consistency_policy=fail``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from include.errors import MarketDataMissingError
from include.pipeline import TASKS, ChainRequest, Policy, resolve_run, run_chain
from include.run_folder import DEFAULT_DATA_FOLDER, RunFolder
from tests.faults.helpers import EXECUTION, STARTING_CASH

SAMPLE_END = "2021-12-31"  # the last session of the bundled sample data (include/sample_data/README.md)
LATE = "2023-12-29"  # two years past it
OPTIONS: dict[str, Any] = {"top_n": 2, "lookback_days": 10, "universe": []}


@pytest.fixture
def audit_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", url)
    return url


def _request(
    root: Path,
    *,
    mode: str,
    as_of: str,
    dag_id: str,
    policy: Policy = "fail",
    data: Path = DEFAULT_DATA_FOLDER,
    provider: str = "trend_rotation",
    options: dict[str, Any] | None = None,
) -> ChainRequest:
    ref, dates = resolve_run(
        dag_id=dag_id,
        kind="daily",
        run_type="manual",
        interval_session=None,
        params={"as_of": as_of},
        mode=mode,  # type: ignore[arg-type]
    )
    return ChainRequest(
        ref=ref,
        dates=tuple(dates),
        mode=mode,  # type: ignore[arg-type]
        provider=provider,
        options=OPTIONS if options is None else options,
        execution=EXECUTION,
        starting_cash=STARTING_CASH,
        policy=policy,
        data_folder=data,
        root=root,
    )


def _targets(folder: RunFolder) -> list[str]:
    return sorted(i.symbol for r in folder.load_intent().rebalances for i in r.items if i.weight)


def _nothing_ran(folder: RunFolder) -> None:
    assert not folder.config_path.exists()  # written when Lean is launched
    assert not folder.results_dir.exists() or not any(folder.results_dir.iterdir())
    assert folder.order_event_files() == []
    assert not folder.engine_path.exists() and not folder.manifest_path.exists()
    assert not folder.report_json_path.exists()


@pytest.mark.parametrize("policy", ["fail", "warn"])
def test_a_live_run_past_the_end_of_the_data_fails_before_lean_starts(
    tmp_path: Path, audit_db: str, policy: Policy
) -> None:
    root = tmp_path / "artifacts"
    request = _request(root, mode="live", as_of=LATE, dag_id="lean_live_rebalance", policy=policy)
    steps: list[str] = []
    with pytest.raises(MarketDataMissingError) as caught:
        run_chain(request, progress=lambda step, _info: steps.append(step))
    assert "run_lean" not in steps and steps[-1] == "write_params"  # failed in run_lean, before any line of Lean
    folder = RunFolder.open(root / "lean_live_rebalance" / "20231229", root=root)
    targets = _targets(folder)
    assert targets  # the stale snapshot still picked symbols: the run would have traded them
    message = str(caught.value)
    assert caught.value.symbols == targets
    for symbol in targets:
        assert f"{symbol}: no bar on 2023-12-28" in message
    assert f"last date available {SAMPLE_END}" in message
    _nothing_ran(folder)
    assert not Path(audit_db.removeprefix("sqlite:///")).exists()  # nothing ingested: the DB was never opened


def test_a_live_run_on_a_session_the_data_covers_still_trades(tmp_path: Path, audit_db: str) -> None:
    root = tmp_path / "artifacts"
    result = run_chain(_request(root, mode="live", as_of="2021-03-02", dag_id="lean_live_rebalance"))
    assert result.outputs["consistency_check"]["verdict"] in ("pass", "warn")
    assert result.folder.order_event_files()


def _truncate(data: Path, ticker: str, before: dt.date) -> None:
    """Drop the ticker's bars dated ``before`` and later (its data ends the session before)."""
    path = data / "equity" / "usa" / "daily" / f"{ticker.lower()}.zip"
    with zipfile.ZipFile(path) as archive:
        (name,) = archive.namelist()
        lines = archive.read(name).decode().splitlines()
    kept = [line for line in lines if line and int(line[:8]) < int(before.strftime("%Y%m%d"))]
    assert len(kept) < len(lines)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, "\n".join(kept) + "\n")


def test_a_backtest_without_a_bar_on_its_session_fails_naming_the_symbol(tmp_path: Path, audit_db: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_FOLDER, data)
    day = "2021-03-03"
    probe = run_chain(
        _request(tmp_path / "probe", mode="backtest", as_of=day, dag_id="lean_backtest_daily", data=data),
        until="write_intent",
    )
    missing, *others = _targets(probe.folder)
    # The snapshot reads closes strictly before the session: cutting the session's bar off leaves it unchanged.
    _truncate(data, missing, dt.date(2021, 3, 3))
    root = tmp_path / "artifacts"
    with pytest.raises(MarketDataMissingError) as caught:
        run_chain(_request(root, mode="backtest", as_of=day, dag_id="lean_backtest_daily", data=data))
    folder = RunFolder.open(root / "lean_backtest_daily" / "20210303", root=root)
    assert _targets(folder) == [missing, *others]
    assert caught.value.symbols == [missing]
    assert caught.value.problems == [
        f"{missing}: no bar on 2021-03-03 (the close the backtest's rebalance of 2021-03-03 fills at); "
        "last date available 2021-03-02"
    ]
    _nothing_ran(folder)


@pytest.mark.parametrize("mode", ["backtest", "live"])
def test_a_weight_zero_symbol_without_data_that_is_not_held_does_not_fail(
    tmp_path: Path, audit_db: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_WEIGHTS_DIRS", str(tmp_path))  # the file provider reads only there
    weights = tmp_path / "weights.csv"
    weights.write_text("date,symbol,weight\n2021-03-03,ZZSA,0.5\n2021-03-03,ZZNODATA,0.0\n", encoding="utf-8")
    root = tmp_path / "artifacts"
    request = _request(
        root,
        mode=mode,
        as_of="2021-03-03",
        dag_id=f"lean_{mode}_weights",
        provider="file",
        options={"path": str(weights)},
    )
    result = run_chain(request)
    assert {i.symbol for r in result.folder.load_intent().rebalances for i in r.items} == {"ZZSA", "ZZNODATA"}
    assert result.outputs["consistency_check"]["verdict"] in ("pass", "warn")
    assert result.folder.order_event_files()


# ---------------------------------------------------------------- the DAG: a failed run_lean task


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["fail", "warn"])
def test_the_live_dag_fails_its_run_lean_task_under_either_policy(
    dagbag: Any,
    lean_env: dict[str, str],
    policy: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = dagbag.dags["lean_live_rebalance"].test(
        run_conf={"as_of": LATE, "top_n": 2, "lookback_days": 10, "consistency_policy": policy}
    )
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert {task: states[task] for task in TASKS[:3]} == dict.fromkeys(TASKS[:3], "success"), states
    assert states["run_lean"] == "failed", states
    assert states["ingest_events"] == states["consistency_check"] == "upstream_failed", states
    assert str(run.state) == "failed"
    captured = capfd.readouterr()
    output = captured.out + captured.err + "\n".join(r.getMessage() for r in caplog.records)
    assert "MarketDataMissingError" in output and f"last date available {SAMPLE_END}" in output
    root = Path(lean_env["root"])
    folder = RunFolder.open(root / "lean_live_rebalance" / "20231229", root=root)
    _nothing_ran(folder)
    engine = sa.create_engine(lean_env["db_url"])
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM order_events")).scalar_one() == 0
    finally:
        engine.dispose()
