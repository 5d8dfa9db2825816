"""The seed plan's five tests, their bodies verbatim, against the functions' homes in this project.

The seed's modules are gone; its functions live on under the names its tests call:
``write_execution_params`` and ``_build_execution_params_payload`` (include/contracts/params.py),
``build_intent_orders`` (include/contracts/intent.py), ``_should_skip_order_build``
(include/pipeline.py) and ``_apply_execution_constraints`` (algorithms/lean_trend_rotation.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from algorithms.lean_trend_rotation import _apply_execution_constraints
from include.contracts.intent import build_intent_orders
from include.contracts.params import _build_execution_params_payload, write_execution_params
from include.pipeline import _should_skip_order_build


def test_write_execution_params(tmp_path: Path) -> None:
    path = write_execution_params(
        output_dir=tmp_path, run_id=123, params={"min_qty": 1, "lot_size": 5, "cash_buffer_ratio": 0.1}
    )
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    assert data["min_qty"] == 1
    assert data["lot_size"] == 5
    assert data["cash_buffer_ratio"] == 0.1


def test_build_intent_orders() -> None:
    orders = build_intent_orders([{"symbol": "AAPL", "weight": 0.02}, {"symbol": "MSFT", "weight": -0.01}])
    assert orders[0]["side"] == "BUY"
    assert orders[1]["side"] == "SELL"
    assert orders[0]["quantity"] == 0
    assert orders[1]["quantity"] == 0


def test_should_skip_order_build() -> None:
    assert _should_skip_order_build("lean") is True
    assert _should_skip_order_build("non_lean") is False


def test_build_execution_params_payload() -> None:
    payload = _build_execution_params_payload({})
    assert payload["min_qty"] == 1
    assert payload["lot_size"] == 1


def test_apply_execution_constraints() -> None:
    assert _apply_execution_constraints(raw_qty=0.2, lot_size=1, min_qty=1) == 1
