"""lean_trend_rotation's live session, run unmodified by the local runtime: today's intent only, one submission per
session (a second run of a done session trades nothing; a restart after a lost paper submission sizes again from
the account), and the deadline that cancels what did not fill, then ``done-<D>.json`` and ``quit()``."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from include.contracts.intent import write_order_intent
from include.contracts.params import write_execution_params
from include.errors import LeanRunError
from include.launch.config import LeanJob
from include.launch.local import run_lean_local
from include.lean_local.live import BAR_WAIT_ENV
from include.live_session import session_start_utc
from include.run_folder import DEFAULT_DATA_FOLDER, RunFolder, RunRef
from include.trading_calendar import session_close_utc

DAY = dt.date(2021, 3, 3)
WEIGHTS = [{"symbol": "ZZSA", "weight": 0.4}, {"symbol": "ZZSC", "weight": 0.3}]
PARAMS = {"lot_size": 1, "min_qty": 1, "cash_buffer_ratio": 0.02, "fee_bps": 1.0, "slippage_close_bps": 2.0}


@pytest.fixture(autouse=True)
def _no_wait_for_missing_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BAR_WAIT_ENV, "0")


def _folder(root: Path, intent_day: dt.date = DAY) -> RunFolder:
    folder = RunFolder.create(RunRef("lean_live_rebalance", DAY.strftime("%Y%m%d")), root=root)
    write_order_intent(output_dir=folder.path, run_key=folder.run_key, rebalances={intent_day: WEIGHTS}, source="test")
    write_execution_params(output_dir=folder.path, run_id=folder.run_key, params=PARAMS)
    return folder


def _run(folder: RunFolder, *, data: Path = DEFAULT_DATA_FOLDER, now: str | None = None) -> dict[str, str]:
    job = LeanJob(
        folder=folder,
        mode="live",
        parameters={"starting-cash": 100000},
        data_folder=data,
        local_now=now or session_start_utc(DAY).isoformat(),
    )
    return run_lean_local(job, timeout_s=300, on_line=lambda _: None)


def _done(folder: RunFolder) -> dict[str, Any]:
    return json.loads((folder.results_dir / f"done-{DAY}.json").read_text(encoding="utf-8"))


def _events(folder: RunFolder) -> list[dict[str, Any]]:
    return [e for path in folder.order_event_files() for e in json.loads(path.read_text(encoding="utf-8"))]


def _log(folder: RunFolder) -> str:
    return (folder.results_dir / f"{folder.run_key}-log.txt").read_text(encoding="utf-8")


def test_a_session_fills_at_its_close_then_quits_and_a_second_run_trades_nothing(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    _run(folder)
    done = _done(folder)
    assert done["reason"] == "terminal" and {o["symbol"] for o in done["orders"]} == {"ZZSA", "ZZSC"}
    assert {o["status"] for o in done["orders"]} == {"Filled"}
    fills = [e for e in _events(folder) if e["status"] == "filled"]
    assert {e["time"] for e in fills} == {session_close_utc(DAY).timestamp()}
    assert "Quit(): rebalance 2021-03-03 done (terminal)" in _log(folder)
    events_before = _events(folder)

    # the same session again (a clear of the whole run, a second trigger): the day's record says done
    _run(folder)
    again = _done(folder)
    assert again["reason"] == "already-done" and again["orders"] == done["orders"]
    assert _events(folder) == events_before  # no order placed, no events file rewritten
    assert "already done by an earlier run" in _log(folder)


def test_an_intent_not_dated_today_is_refused_by_name(tmp_path: Path) -> None:
    folder = _folder(tmp_path, intent_day=dt.date(2021, 3, 2))
    with pytest.raises(LeanRunError) as info:
        _run(folder)
    assert "IntentNotForTodayError" in str(info.value) and "no rebalance dated today, 2021-03-03" in str(info.value)
    assert not folder.order_event_files() and not (folder.results_dir / f"done-{DAY}.json").exists()


def test_a_restart_after_a_lost_paper_submission_sizes_again_from_the_account(tmp_path: Path) -> None:
    """The paper brokerage keeps no order across processes: the day's record says "submitted", the brokerage has
    no order of the day, so the restarted algorithm sizes again from the (persisted) account and says so."""
    folder = _folder(tmp_path)
    job_storage = tmp_path / "lean_live_rebalance" / "_deployments" / "paper" / "storage" / "lean-airflow" / "live"
    job_storage.mkdir(parents=True)
    (job_storage / f"{DAY}.json").write_text(json.dumps({"date": str(DAY), "status": "submitted", "orders": []}))
    _run(folder)
    assert "an earlier process submitted orders the brokerage no longer has: sizing again" in _log(folder)
    assert {o["status"] for o in _done(folder)["orders"]} == {"Filled"}
    assert len([e for e in _events(folder) if e["status"] == "submitted"]) == 2  # one per symbol


def test_a_close_bar_missing_from_the_data_fills_at_the_stale_close_as_lean_and_the_check_fails_it(
    chain_env: Path,
) -> None:
    """No bar of the session for ZZSC reaches the data folder: Lean's MarketOnClose fill takes the last cached
    bar's close (``Common/Orders/Fills/EquityFillModel.cs`` MarketOnCloseFill), a stale price, and so does the
    local runtime; the consistency check fails that fill."""
    from include.pipeline import step_check, step_ingest

    data = chain_env.parent / "data"
    shutil.copytree(DEFAULT_DATA_FOLDER, data)
    zzsc = data / "equity" / "usa" / "daily" / "zzsc.zip"
    with zipfile.ZipFile(zzsc) as archive:
        (name,) = archive.namelist()
        lines = archive.read(name).decode().splitlines()
    with zipfile.ZipFile(zzsc, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, "\n".join(line for line in lines if not line.startswith(f"{DAY:%Y%m%d}")) + "\n")
    folder = _folder(chain_env)
    _run(folder, data=data)
    assert {o["status"] for o in _done(folder)["orders"]} == {"Filled"}
    step_ingest(folder)
    checked = step_check(folder, policy="warn")
    assert checked["verdict"] == "fail"
    report = json.loads(folder.report_json_path.read_text(encoding="utf-8"))
    failed = [c for c in report["checks"] if c["verdict"] == "fail"]
    assert any("ZZSC" in json.dumps(f) for f in failed), failed


def test_the_deadline_cancels_what_did_not_fill_then_quits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A brokerage that does not fill by ten minutes after the close (the local paper brokerage made to never
    fill): the algorithm cancels the open orders, writes done-<D>.json with the deadline, and quits."""
    from include.launch.config import write_launcher_config
    from include.lean_local.runner import run
    from include.lean_local.transactions import TransactionHandler

    monkeypatch.setattr(TransactionHandler, "process_orders", lambda self, only=None: None)
    folder = _folder(tmp_path)
    job = LeanJob(
        folder=folder,
        mode="live",
        parameters={"starting-cash": 100000},
        data_folder=DEFAULT_DATA_FOLDER,
        local_now=session_start_utc(DAY).isoformat(),
    )
    assert run(str(write_launcher_config(job, "local"))) == 0
    done = _done(folder)
    assert done["reason"] == "deadline"
    assert {o["symbol"]: o["status"] for o in done["orders"]} == {"ZZSA": "Canceled", "ZZSC": "Canceled"}
    canceled = [e for e in _events(folder) if e["status"] == "canceled"]
    deadline = session_close_utc(DAY) + dt.timedelta(minutes=10)
    assert {e["time"] for e in canceled} == {deadline.timestamp()} and len(canceled) == 2
    assert "Quit(): rebalance 2021-03-03 done (deadline)" in _log(folder)
