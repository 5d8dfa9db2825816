"""The seed's intent rules, ported, plus the fixed defects and the bad-input table (``include.contracts.intent``)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include.contracts.intent import (
    OrderIntent,
    SkippedRow,
    build_intent_orders,
    build_order_intent,
    load_order_intent,
    write_order_intent,
)
from include.contracts.snapshot import DecisionSnapshot, WeightItem
from include.errors import ArtifactPathError, OrderIntentError
from include.run_folder import intent_filename

D1 = dt.date(2024, 3, 5)
D2 = dt.date(2024, 3, 6)


def test_seed_rules_symbol_side_quantity_type() -> None:
    orders = build_intent_orders(
        [
            {"symbol": " aapl ", "weight": "0.5"},
            {"symbol": "MSFT", "weight": 0},
            {"symbol": "spy", "weight": -0.25},
        ]
    )
    assert orders == [
        {"symbol": "AAPL", "side": "BUY", "quantity": 0, "order_type": "MKT", "limit_price": None, "weight": 0.5},
        {"symbol": "MSFT", "side": "BUY", "quantity": 0, "order_type": "MKT", "limit_price": None, "weight": 0.0},
        {"symbol": "SPY", "side": "SELL", "quantity": 0, "order_type": "MKT", "limit_price": None, "weight": -0.25},
    ]


def test_seed_skips_blank_symbol_and_unparseable_weight_and_reports_them() -> None:
    skipped: list[SkippedRow] = []
    orders = build_intent_orders(
        [
            {"symbol": "  ", "weight": 0.1},
            {"symbol": None, "weight": 0.1},
            {"symbol": "QQQ", "weight": "abc"},
            {"symbol": "IWM", "weight": None},
            {"symbol": "SPY", "weight": 0.2},
        ],
        skipped=skipped,
    )
    assert [o["symbol"] for o in orders] == ["SPY"]
    assert [(s.index, s.reason) for s in skipped] == [
        (0, "blank symbol"),
        (1, "blank symbol"),
        (2, "weight 'abc' does not parse as a number"),
        (3, "weight None does not parse as a number"),
    ]


BAD_ROWS: list[tuple[str, list[dict[str, Any]], str]] = [
    ("nan weight", [{"symbol": "SPY", "weight": math.nan}], r"items\[0\]\.weight=nan: must be finite"),
    ("nan string weight", [{"symbol": "SPY", "weight": "nan"}], r"items\[0\]\.weight='nan'"),
    ("inf weight", [{"symbol": "SPY", "weight": math.inf}], r"items\[0\]\.weight=inf"),
    ("-inf weight", [{"symbol": "SPY", "weight": "-inf"}], r"items\[0\]\.weight='-inf'"),
    ("duplicate symbol", [{"symbol": "SPY", "weight": 0.1}, {"symbol": "spy ", "weight": 0.2}], r"duplicate"),
    ("weight above one", [{"symbol": "SPY", "weight": 1.5}], r"items\[0\]\.weight=1\.5"),
    ("weight below minus one", [{"symbol": "SPY", "weight": -2}], r"items\[0\]\.weight=-2"),
    ("path traversal symbol", [{"symbol": "../etc", "weight": 0.1}], r"not a ticker"),
    ("slash symbol", [{"symbol": "A/B", "weight": 0.1}], r"not a ticker"),
    ("unicode symbol", [{"symbol": "ÄPPL", "weight": 0.1}], r"not a ticker"),
    ("space inside symbol", [{"symbol": "BRK B", "weight": 0.1}], r"not a ticker"),
    ("too long symbol", [{"symbol": "ABCDEFGHIJKLMN", "weight": 0.1}], r"not a ticker"),
    ("digit first symbol", [{"symbol": "1ABC", "weight": 0.1}], r"not a ticker"),
]


@pytest.mark.parametrize(("rows", "message"), [c[1:] for c in BAD_ROWS], ids=[c[0] for c in BAD_ROWS])
def test_bad_rows_give_named_error_and_leave_no_file(tmp_path: Path, rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(OrderIntentError, match=message):
        build_intent_orders(rows)
    with pytest.raises(OrderIntentError, match=message):
        write_order_intent(output_dir=tmp_path, run_key="r1", rebalances={D1: rows})
    assert list(tmp_path.iterdir()) == []


BAD_INTENTS: list[tuple[str, Any, str]] = [
    ("gross above one", {D1: [{"symbol": "SPY", "weight": 0.6}, {"symbol": "QQQ", "weight": 0.5}]}, r"gross weight"),
    (
        "gross shorts above one",
        {D1: [{"symbol": "SPY", "weight": -0.6}, {"symbol": "QQQ", "weight": 0.5}]},
        r"gross weight 1\.1",
    ),
    ("no rebalances", {}, r"at least one dated rebalance"),
]


@pytest.mark.parametrize(("rebalances", "message"), [c[1:] for c in BAD_INTENTS], ids=[c[0] for c in BAD_INTENTS])
def test_bad_intents_give_named_error_and_leave_no_file(tmp_path: Path, rebalances: Any, message: str) -> None:
    with pytest.raises(OrderIntentError, match=message):
        write_order_intent(output_dir=tmp_path, run_key="r1", rebalances=rebalances)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("run_key", ["../up", "a/b", "", "..", "ü", "k\n"])
def test_unsafe_run_key(tmp_path: Path, run_key: str) -> None:
    with pytest.raises(ArtifactPathError, match="is not a safe path component"):
        write_order_intent(output_dir=tmp_path, run_key=run_key, rebalances={D1: [{"symbol": "SPY", "weight": 1}]})
    assert list(tmp_path.iterdir()) == []


def test_write_and_load_round_trip_with_two_dates(tmp_path: Path) -> None:
    path = write_order_intent(
        output_dir=tmp_path,
        run_key="demo_20240306",
        rebalances={
            D2: [{"symbol": "qqq", "weight": 0.4}, {"symbol": "SPY", "weight": 0.6}],
            D1: [{"symbol": "SPY", "weight": 1.0}],
        },
        source="unit-test",
    )
    assert Path(path).name == "order_intent_run_demo_20240306.json" == intent_filename("demo_20240306")
    intent = load_order_intent(path)
    assert [r.date for r in intent.rebalances] == [D1, D2]
    assert intent.symbols == ("QQQ", "SPY")
    assert [(o.rebalance_date, o.symbol, o.side, o.quantity) for o in intent.intent_orders] == [
        (D1, "SPY", "BUY", 0),
        (D2, "QQQ", "BUY", 0),
        (D2, "SPY", "BUY", 0),
    ]
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    assert raw["schema_version"] == 2
    assert raw["run_key"] == intent.run_key == "demo_20240306" and "run_id" not in raw
    assert raw["intent_orders"][0] == {
        "rebalance_date": "2024-03-05",
        "symbol": "SPY",
        "side": "BUY",
        "weight": 1.0,
        "quantity": 0,
        "order_type": "MKT",
        "limit_price": None,
    }


def test_snapshot_input_and_source() -> None:
    snap = DecisionSnapshot(as_of=D1, source="trend-rotation", items=(WeightItem(symbol="spy", weight=0.5),))
    intent = build_order_intent(run_key="k", rebalances=snap)
    assert intent.source == "trend-rotation"
    assert intent.intent_orders[0].symbol == "SPY"


def test_intent_model_rejects_orders_that_disagree_with_rebalances() -> None:
    good = build_order_intent(run_key="k", rebalances={D1: [{"symbol": "SPY", "weight": 0.5}]}).model_dump()
    good["intent_orders"][0]["side"] = "SELL"
    with pytest.raises(ValueError, match="differing"):
        OrderIntent.model_validate(good)
    good["intent_orders"] = []
    with pytest.raises(ValueError, match="missing"):
        OrderIntent.model_validate(good)


def test_write_refuses_an_intent_of_another_run(tmp_path: Path) -> None:
    intent = build_order_intent(run_key="k", rebalances={D1: [{"symbol": "SPY", "weight": 0.5}]})
    with pytest.raises(OrderIntentError, match="does not match the requested run key 'other'"):
        write_order_intent(output_dir=tmp_path, run_key="other", rebalances=intent)
    assert list(tmp_path.iterdir()) == []
    written = write_order_intent(output_dir=tmp_path, run_key="k", rebalances=intent)
    assert Path(written).name == "order_intent_run_k.json"


def test_load_refuses_a_schema_version_1_file(tmp_path: Path) -> None:
    """Version 1 named the run ``run_id``: such a file is refused by name, not misread."""
    path = Path(write_order_intent(output_dir=tmp_path, run_key="k", rebalances={D1: [{"symbol": "SPY", "weight": 1}]}))
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["schema_version"] = 1
    raw["run_id"] = raw.pop("run_key")
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(OrderIntentError, match=r"schema_version=1") as info:
        load_order_intent(path)
    assert "run_id" in str(info.value) and str(path) in str(info.value)


def test_load_rejects_tampered_file(tmp_path: Path) -> None:
    path = Path(write_order_intent(output_dir=tmp_path, run_key="k", rebalances={D1: [{"symbol": "SPY", "weight": 1}]}))
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["intent_orders"][0]["quantity"] = 10
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(OrderIntentError, match=r"intent_orders\.0\.quantity=10"):
        load_order_intent(path)


_symbols = st.from_regex(r"[A-Z][A-Z0-9]{0,4}", fullmatch=True)
_weights = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)


@given(st.dictionaries(_symbols, _weights, min_size=1, max_size=12))
def test_property_sides_and_placeholders(weights: dict[str, float]) -> None:
    rows = [{"symbol": f" {s.lower()} ", "weight": w} for s, w in weights.items()]
    orders = build_intent_orders(rows)
    assert [o["symbol"] for o in orders] == list(weights)
    for order in orders:
        assert order["side"] == ("BUY" if weights[order["symbol"]] >= 0 else "SELL")
        assert order["quantity"] == 0 and order["order_type"] == "MKT" and order["limit_price"] is None


@given(st.dictionaries(_symbols, st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=12))
def test_property_normalised_weights_always_make_a_valid_intent(raw: dict[str, float]) -> None:
    total = sum(raw.values())
    weights = {s: (w / total if total > 0 else 0.0) for s, w in raw.items()}
    intent = build_order_intent(run_key="p", rebalances={D1: [{"symbol": s, "weight": w} for s, w in weights.items()]})
    assert len(intent.intent_orders) == len(weights)
    assert OrderIntent.model_validate(intent.model_dump(mode="json")) == intent
