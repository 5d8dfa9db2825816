"""lean_trend_rotation run unmodified by the local runtime on the bundled sample data.

The events file is compared byte for byte with a golden file (regenerate: UPDATE_GOLDEN=1).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from include.contracts.intent import write_order_intent
from include.contracts.params import write_execution_params
from include.launch.config import LeanJob
from include.launch.local import run_lean_local
from include.run_folder import DEFAULT_DATA_FOLDER, RunFolder, RunRef

GOLDEN = Path(__file__).with_name("golden") / "lean_trend_rotation-order-events.json"
PARAMS = {
    "lot_size": 5,
    "min_qty": 10,
    "cash_buffer_ratio": 0.02,
    "fee_bps": 1.5,
    "slippage_open_bps": 3.0,
    "slippage_close_bps": 2.0,
}
REBALANCES = {
    dt.date(2021, 3, 1): [
        {"symbol": "ZZSA", "weight": 0.4},
        {"symbol": "ZZSC", "weight": 0.3},
        {"symbol": "ZZSE", "weight": 0.2},
    ],
    dt.date(2021, 3, 2): [
        {"symbol": "ZZSA", "weight": 0.1},
        {"symbol": "ZZSC", "weight": 0.5},
        {"symbol": "ZZSE", "weight": 0.0},
    ],
    dt.date(2021, 3, 3): [
        {"symbol": "ZZSA", "weight": 0.0},
        {"symbol": "ZZSC", "weight": 0.0},
        {"symbol": "ZZSE", "weight": 0.6},
    ],
}


def _run(root: Path) -> Path:
    folder = RunFolder.create(RunRef("golden_test", "golden"), root=root)
    write_order_intent(output_dir=folder.path, run_key="golden", rebalances=REBALANCES, source="golden-test")
    write_execution_params(output_dir=folder.path, run_id="golden", params=PARAMS)
    job = LeanJob(folder=folder, mode="backtest", parameters={"starting-cash": 100000}, data_folder=DEFAULT_DATA_FOLDER)
    run_lean_local(job, timeout_s=300, on_line=lambda _: None)
    return folder.results_dir


def test_orders_follow_the_intent_and_the_params(tmp_path: Path) -> None:
    results = _run(tmp_path / "run")
    events = json.loads((results / "golden-order-events.json").read_text())
    fills = [e for e in events if e["status"] == "filled"]
    assert fills, "the algorithm traded nothing"
    day1 = {e["symbolValue"]: e for e in fills if dt.datetime.fromtimestamp(e["time"], dt.UTC).date().day == 1}
    assert set(day1) == {"ZZSA", "ZZSC", "ZZSE"} and all(e["direction"] == "buy" for e in day1.values())
    for event in fills:
        qty = abs(event["fillQuantity"])
        assert qty % PARAMS["lot_size"] == 0 and qty >= PARAMS["min_qty"]
        notional = qty * event["fillPrice"]
        # The fee model charges fee_bps on the security price at the fill; the fill price adds slippage bps.
        assert event["orderFeeAmount"] == pytest.approx(PARAMS["fee_bps"] / 1e4 * notional, rel=5e-4)
    last_day = [e for e in fills if dt.datetime.fromtimestamp(e["time"], dt.UTC).date().day == 3]
    assert {e["symbolValue"]: e["direction"] for e in last_day if e["symbolValue"] != "ZZSE"} == {
        "ZZSA": "sell",
        "ZZSC": "sell",
    }
    final = json.loads((results / "final-state.json").read_text())
    assert set(final["holdings"]) == {"ZZSE"}
    assert final["cash"] >= 0


def test_events_file_is_byte_identical_to_the_golden_file(tmp_path: Path) -> None:
    produced = (_run(tmp_path / "a") / "golden-order-events.json").read_bytes()
    again = (_run(tmp_path / "b") / "golden-order-events.json").read_bytes()
    assert produced == again  # same inputs, same bytes
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_bytes(produced)
    assert produced == GOLDEN.read_bytes()
