from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from include.audit.parity import (
    DAILY_BACKTEST_DAG_ID,
    LIVE_DAG_ID,
    compare_runs,
    session_pair,
    update_session_parity,
)
from include.launch.config import Mode
from include.pipeline import ChainResult, run_chain, step_check
from include.run_folder import RunFolder, RunRef
from tests.conftest import manual_chain_request

FIXTURES = Path(__file__).with_name("fixtures")


def _orders_json(folder: Path, algorithm_id: str, order_type: int, adjustment: int) -> None:
    orders = {"1": {"type": order_type, "id": 1, "priceAdjustmentMode": adjustment, "quantity": 75.0, "status": 3}}
    (folder / f"{algorithm_id}.json").write_text(json.dumps({"orders": orders, "statistics": {}}), encoding="utf-8")


def test_backtest_vs_live_differences_have_causes(tmp_path: Path) -> None:
    backtest = tmp_path / "bt"
    shutil.copytree(FIXTURES / "legacy", backtest)
    live = tmp_path / "live"
    shutil.copytree(FIXTURES / "live" / "results", live)
    _orders_json(backtest, "1234567891", order_type=4, adjustment=1)
    _orders_json(live, "L-3123456789", order_type=0, adjustment=0)
    report = compare_runs(backtest, live)
    assert report.verdict == "equivalent"
    (diff,) = report.orders
    assert diff.symbol == "SPY" and diff.status == "differs"
    assert diff.backtest_order_type == "MarketOnOpen" and diff.live_order_type == "Market"
    assert set(diff.causes) == {"fill_timing", "price_adjustment"}
    assert diff.backtest_quantity == diff.live_quantity == 75


def test_missing_order_is_a_mismatch(tmp_path: Path) -> None:
    report = compare_runs(FIXTURES / "backtest" / "results", FIXTURES / "live" / "results")
    assert report.verdict == "mismatch"
    statuses = {(d.symbol, d.status) for d in report.orders}
    assert ("AAPL", "only_backtest") in statuses and ("QQQ", "only_backtest") in statuses


def test_same_run_is_identical() -> None:
    report = compare_runs(FIXTURES / "backtest", FIXTURES / "backtest")
    assert report.verdict == "identical" and report.summary == {"match": 3}


# ---------------------------------------------------------------------------- in the chain (step_check)

DAY = dt.date(2021, 3, 1)
OPTIONS = {"top_n": 2, "lookback_days": 10}


def _session_run(root: Path, mode: Mode, *, until: str | None = None, **overrides: Any) -> ChainResult:
    """The live or daily backtest run of ``DAY`` through the one chain, on the sample data."""
    dag_id = LIVE_DAG_ID if mode == "live" else DAILY_BACKTEST_DAG_ID
    fields: dict[str, Any] = {"options": OPTIONS, "root": root, **overrides}
    return run_chain(manual_chain_request(dag_id, {"as_of": DAY.isoformat()}, mode=mode, **fields), until=until)


def _folders(root: Path) -> tuple[RunFolder, RunFolder]:
    key = DAY.strftime("%Y%m%d")
    return (
        RunFolder.locate(RunRef(DAILY_BACKTEST_DAG_ID, key), root=root),
        RunFolder.locate(RunRef(LIVE_DAG_ID, key), root=root),
    )


def _expected(backtest: RunFolder, live: RunFolder) -> dict[str, Any]:
    return compare_runs(backtest.results_dir, live.results_dir).model_dump(mode="json")


@pytest.mark.slow
@pytest.mark.parametrize("first", ["live", "backtest"])
def test_the_run_checked_last_writes_the_live_runs_parity(chain_env: Path, first: Mode) -> None:
    second: Mode = "backtest" if first == "live" else "live"
    alone = _session_run(chain_env, first).outputs["consistency_check"]
    assert alone["parity"] is None and f"no {second} run" in alone["parity_note"]
    backtest, live = _folders(chain_env)
    assert not live.parity_path.exists() and not backtest.parity_path.exists()

    checked = _session_run(chain_env, second).outputs["consistency_check"]
    written = json.loads(live.parity_path.read_text(encoding="utf-8"))
    assert written == _expected(backtest, live)
    # Both size on D-1's close and fill market-on-close at D's close: the same orders at the same prices
    # (the backtest's on Adjusted prices, live on Raw ones, equal on a session with no later corporate event).
    assert checked["parity"] == written["verdict"] == "identical"
    assert {d["status"] for d in written["orders"]} == {"match"} and len(written["orders"]) == 2
    assert {(d["live_order_type"], d["backtest_order_type"]) for d in written["orders"]} == {
        ("MarketOnClose", "MarketOnClose")
    }
    assert all(d["price_diff_bps"] == 0 and d["time_diff_seconds"] == 0 for d in written["orders"])
    assert not backtest.parity_path.exists()  # one home: the live run's folder
    assert "Backtest ↔ live parity" in live.report_html_path.read_text(encoding="utf-8")
    assert "Backtest ↔ live parity" not in backtest.report_html_path.read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_lone_backtest_creates_no_live_folder(chain_env: Path) -> None:
    checked = _session_run(chain_env, "backtest").outputs["consistency_check"]
    assert checked["parity"] is None and checked["verdict"] in ("pass", "warn")
    backtest, live = _folders(chain_env)
    assert not live.path.parent.exists() and not backtest.parity_path.exists()


@pytest.mark.slow
def test_an_earlier_parity_is_replaced_or_removed_when_it_no_longer_applies(chain_env: Path) -> None:
    _session_run(chain_env, "live")
    _session_run(chain_env, "backtest")
    backtest, live = _folders(chain_env)
    before = json.loads(live.parity_path.read_text(encoding="utf-8"))

    # The backtest re-run with other inputs: its check replaces the diff with one of the new orders.
    _session_run(chain_env, "backtest", execution={"lot_size": 100})
    after = json.loads(live.parity_path.read_text(encoding="utf-8"))
    assert after == _expected(backtest, live) and after != before
    assert {d["backtest_quantity"] % 100 for d in after["orders"]} == {0}

    # The backtest re-run stops before its check (its folder is incomplete): its snapshot step
    # already withdraws the diff, from the file and from the live page; so does a retry of the live check.
    _session_run(chain_env, "backtest", until="snapshot")
    assert not live.parity_path.exists()
    assert "Backtest ↔ live parity" not in live.report_html_path.read_text(encoding="utf-8")
    _session_run(chain_env, "backtest", until="write_params")
    checked = step_check(live)
    assert checked["parity"] is None and "is incomplete" in checked["parity_note"]
    assert not live.parity_path.exists()
    assert "Backtest ↔ live parity" not in live.report_html_path.read_text(encoding="utf-8")

    # The backtest checked again: the diff is back; then an input of the backtest changes by hand
    # (stale): the live check removes the diff again.
    _session_run(chain_env, "backtest")
    assert live.parity_path.exists()
    backtest.params_path.write_text(backtest.params_path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    checked = step_check(live)
    assert checked["parity"] is None and "is stale" in checked["parity_note"]
    assert not live.parity_path.exists()


@pytest.mark.slow
def test_a_parity_file_without_a_backtest_is_removed(chain_env: Path) -> None:
    live = _session_run(chain_env, "live").folder
    live.parity_path.write_text('{"verdict": "identical", "orders": []}', encoding="utf-8")
    checked = step_check(live)
    assert checked["parity"] is None and "no backtest run" in checked["parity_note"]
    assert not live.parity_path.exists()


@pytest.mark.slow
def test_unreadable_results_of_the_other_run_never_fail_the_check(chain_env: Path) -> None:
    _session_run(chain_env, "backtest")
    backtest, _ = _folders(chain_env)
    (events,) = backtest.order_event_files()
    events.write_text('[{"orderId": ', encoding="utf-8")  # results are not in the manifest: still current
    checked = _session_run(chain_env, "live").outputs["consistency_check"]
    _, live = _folders(chain_env)
    assert checked["verdict"] in ("pass", "warn") and checked["parity"] is None
    assert checked["parity_note"].startswith("cannot compare") and not live.parity_path.exists()


def test_only_a_live_and_a_daily_backtest_run_of_one_session_pair_up(tmp_path: Path) -> None:
    live = RunFolder.locate(RunRef(LIVE_DAG_ID, "20210301"), root=tmp_path)
    backtest = RunFolder.locate(RunRef(DAILY_BACKTEST_DAG_ID, "20210301"), root=tmp_path)
    assert session_pair(live) == session_pair(backtest) == (backtest, live)
    for ref in (RunRef("lean_backtest_range", "20210301_20210305"), RunRef("other", "20210301")):
        folder = RunFolder.locate(ref, root=tmp_path)
        assert session_pair(folder) is None
        assert update_session_parity(folder).live is None
    # Neither run exists: nothing is written, nothing created.
    assert update_session_parity(live).verdict is None and not tmp_path.joinpath(LIVE_DAG_ID).exists()
