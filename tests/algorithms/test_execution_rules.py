"""The execution rules: the seed's case, its fixed defects, and property tests of every rule."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from algorithms.execution_rules import (
    FeeRule,
    PlannedOrder,
    SlippageRule,
    apply_risk_overrides,
    build_orders,
    trim_buys_to_cash,
    validate_intent,
    validate_params,
)
from algorithms.lean_trend_rotation import _apply_execution_constraints
from include.contracts.intent import OrderIntent
from include.contracts.params import ExecutionParams


def test_seed_case() -> None:
    assert _apply_execution_constraints(raw_qty=0.2, lot_size=1, min_qty=1) == 1


def test_seed_defects_are_fixed() -> None:
    assert _apply_execution_constraints(raw_qty=-0.2, lot_size=1, min_qty=1) == -1  # a sell stays a sell
    assert _apply_execution_constraints(raw_qty=0, lot_size=1, min_qty=1) == 0  # no order
    assert _apply_execution_constraints(raw_qty=250, lot_size=100, min_qty=1) == 200  # whole lots, toward zero
    assert _apply_execution_constraints(raw_qty=-250, lot_size=100, min_qty=1) == -200
    assert _apply_execution_constraints(raw_qty=3, lot_size=10, min_qty=25) == 30  # min rounded up to the lot
    assert _apply_execution_constraints(raw_qty=2.9999999999, lot_size=1, min_qty=1) == 3  # float noise


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"raw_qty": 1.0, "lot_size": 0, "min_qty": 1}, "lot_size=0"),
        ({"raw_qty": 1.0, "lot_size": 1.5, "min_qty": 1}, "lot_size=1.5"),
        ({"raw_qty": 1.0, "lot_size": 1, "min_qty": 0}, "min_qty=0"),
        ({"raw_qty": math.nan, "lot_size": 1, "min_qty": 1}, "raw_qty=nan"),
        ({"raw_qty": math.inf, "lot_size": 1, "min_qty": 1}, "raw_qty=inf"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _apply_execution_constraints(**kwargs)


quantities = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False)
lots = st.integers(min_value=1, max_value=500)
minimums = st.integers(min_value=1, max_value=1000)


@given(quantities, lots, minimums)
def test_property_constraints(raw: float, lot: int, min_qty: int) -> None:
    q = _apply_execution_constraints(raw_qty=raw, lot_size=lot, min_qty=min_qty)
    if raw == 0:
        assert q == 0
        return
    assert q != 0 and math.copysign(1, q) == math.copysign(1, raw)  # sign kept
    assert abs(q) % lot == 0  # whole lots
    assert abs(q) >= math.ceil(min_qty / lot) * lot  # at least the minimum, rounded up to the lot
    assert abs(q) <= max(abs(raw) + 1e-6 * lot, math.ceil(min_qty / lot) * lot)  # never beyond both


weights_st = st.dictionaries(
    st.sampled_from(["AAA", "BBB", "CCC", "DDD", "EEE"]), st.floats(min_value=-1, max_value=1), min_size=1
)


@given(
    weights_st,
    st.one_of(st.none(), st.floats(min_value=0.01, max_value=1)),
    st.one_of(st.none(), st.floats(min_value=0.01, max_value=1)),
    st.lists(st.sampled_from(["AAA", "BBB"]), unique=True),
)
def test_property_risk_overrides_only_reduce(
    weights: dict[str, float], cap: float | None, gross: float | None, blocked: list[str]
) -> None:
    overrides = {
        "max_weight": cap,
        "max_gross_exposure": gross,
        "blocked_symbols": blocked,
        "max_weight_by_symbol": {"CCC": 0.1},
    }
    out = apply_risk_overrides(weights, overrides)
    assert set(out) == set(weights)
    for symbol, w in out.items():
        assert abs(w) <= abs(weights[symbol]) + 1e-12
        assert math.copysign(1, w) == math.copysign(1, weights[symbol]) or w == 0
        if cap is not None:
            assert abs(w) <= cap + 1e-12
        if symbol in blocked:
            assert w == 0
        if symbol == "CCC":
            assert abs(w) <= 0.1 + 1e-12
    if gross is not None:
        assert sum(abs(w) for w in out.values()) <= gross + 1e-9


def test_fee_and_slippage_rules() -> None:
    assert FeeRule(2.5).fee(-100, 50.0) == pytest.approx(1.25)
    slip = SlippageRule(open_bps=10, close_bps=4)
    assert slip.amount(100.0, at_open=True) == pytest.approx(0.1)
    assert slip.amount(100.0, at_open=False) == pytest.approx(0.04)
    assert slip.fill_price(100.0, 5, at_open=False) == pytest.approx(100.04)  # buys pay more
    assert slip.fill_price(100.0, -5, at_open=False) == pytest.approx(99.96)  # sells receive less


PARAMS = {
    "min_qty": 1,
    "lot_size": 1,
    "cash_buffer_ratio": 0.0,
    "fee_bps": 0.0,
    "slippage_open_bps": 0.0,
    "slippage_close_bps": 0.0,
    "risk_overrides": {},
}


def test_build_orders_sells_first_and_targets() -> None:
    orders = build_orders(
        weights={"AAA": 0.5, "BBB": 0.0, "CCC": 0.25},
        prices={"AAA": 10.0, "BBB": 20.0, "CCC": 40.0},
        holdings={"BBB": 100.0, "DDD": 5.0},
        cash=8000.0,
        portfolio_value=10_000.0,
        params={**PARAMS, "cash_buffer_ratio": 0.1},
    )
    # DDD has no price: no order. Sells first (BBB), then buys in symbol order.
    assert [(o.symbol, o.quantity) for o in orders] == [("BBB", -100), ("AAA", 450), ("CCC", 56)]


@given(
    st.dictionaries(st.sampled_from(["AAA", "BBB", "CCC", "DDD"]), st.floats(min_value=0, max_value=0.25), min_size=1),
    st.floats(min_value=0.0, max_value=0.5),
    st.floats(min_value=0.0, max_value=50.0),
    st.floats(min_value=0.0, max_value=50.0),
    lots,
)
def test_property_cash_never_below_buffer(
    weights: dict[str, float], buffer: float, fee_bps: float, slip_bps: float, lot: int
) -> None:
    params = {
        **PARAMS,
        "lot_size": lot,
        "cash_buffer_ratio": buffer,
        "fee_bps": fee_bps,
        "slippage_close_bps": slip_bps,
    }
    prices = {"AAA": 11.0, "BBB": 23.5, "CCC": 7.25, "DDD": 101.0}
    cash = 100_000.0
    orders = build_orders(weights=weights, prices=prices, holdings={}, cash=cash, portfolio_value=cash, params=params)
    fee, slip = FeeRule(fee_bps), SlippageRule(0.0, slip_bps)
    spent = 0.0
    for order in orders:
        assert order.quantity > 0 and order.quantity % lot == 0
        price = slip.fill_price(order.reference_price, order.quantity, at_open=False)
        spent += order.quantity * price + fee.fee(order.quantity, price)
    assert cash - spent >= buffer * cash - 1e-6


def test_trim_drops_a_buy_below_the_minimum() -> None:
    buys = [PlannedOrder("AAA", 10, 100.0, 0.5, 10.0)]
    kept = trim_buys_to_cash(buys, cash=450.0, portfolio_value=1000.0, params={**PARAMS, "min_qty": 5})
    assert kept == []  # 4 affordable shares < min 5


GOOD_INTENT = {
    "schema_version": 2,
    "run_key": "k",
    "source": "test",
    "rebalances": [{"date": "2024-03-05", "items": [{"symbol": "SPY", "weight": 0.5}]}],
    "intent_orders": [
        {
            "rebalance_date": "2024-03-05",
            "symbol": "SPY",
            "side": "BUY",
            "weight": 0.5,
            "quantity": 0,
            "order_type": "MKT",
            "limit_price": None,
        }
    ],
}

BAD_PARAMS = [
    {"min_qty": 0},
    {"lot_size": -1},
    {"lot_size": 2.5},
    {"lot_size": True},
    {"cash_buffer_ratio": 1.0},
    {"cash_buffer_ratio": -0.1},
    {"fee_bps": float("nan")},
    {"fee_bps": -1},
    {"slippage_open_bps": float("inf")},
    {"slippage_close_bps": "2"},
    {"lot": 1},
    {"schema_version": 2},
    {"risk_overrides": {"max_weight": 0}},
    {"risk_overrides": {"max_weight": 1.5}},
    {"risk_overrides": {"oops": 1}},
    {"risk_overrides": {"blocked_symbols": ["SPY", "spy"]}},
    {"risk_overrides": {"max_weight_by_symbol": {"SPY": 2}}},
]
GOOD_PARAMS = [
    {},
    {"lot_size": 100, "min_qty": 3},
    {"cash_buffer_ratio": 0.05, "fee_bps": 1.0},
    {"risk_overrides": {"max_weight": 0.4, "blocked_symbols": ["SPY"]}},
]


@pytest.mark.parametrize("raw", BAD_PARAMS + GOOD_PARAMS)
def test_params_loader_mirrors_the_pydantic_contract(raw: dict[str, Any]) -> None:
    try:
        ExecutionParams.model_validate(raw)
        pydantic_ok = True
    except ValidationError:
        pydantic_ok = False
    try:
        validate_params(raw)
        plain_ok = True
    except ValueError:
        plain_ok = False
    assert plain_ok == pydantic_ok == (raw in GOOD_PARAMS)


def _intent(**changes: Any) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(GOOD_INTENT)
    out.update(changes)
    return out


BAD_INTENTS = [
    _intent(schema_version=1),
    _intent(schema_version=3),
    _intent(rebalances=[]),
    _intent(extra=1),
    _intent(rebalances=[{"date": "2024-13-01", "items": []}]),
    _intent(rebalances=[{"date": "2024-03-05", "items": [{"symbol": "../x", "weight": 0.1}]}]),
    _intent(rebalances=[{"date": "2024-03-05", "items": [{"symbol": "SPY", "weight": float("nan")}]}]),
    _intent(rebalances=[{"date": "2024-03-05", "items": [{"symbol": "SPY", "weight": 1.5}]}]),
    _intent(
        rebalances=[
            {"date": "2024-03-05", "items": [{"symbol": "SPY", "weight": 0.6}, {"symbol": "QQQ", "weight": 0.6}]}
        ]
    ),
    _intent(
        rebalances=[
            {"date": "2024-03-05", "items": [{"symbol": "SPY", "weight": 0.1}, {"symbol": "SPY", "weight": 0.1}]}
        ]
    ),
    _intent(rebalances=[{"date": "2024-03-06", "items": []}, {"date": "2024-03-05", "items": []}]),
    {k: v for k, v in GOOD_INTENT.items() if k != "source"},
]


@pytest.mark.parametrize("raw", BAD_INTENTS)
def test_intent_loader_rejects_what_the_contract_rejects(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OrderIntent.model_validate(raw)
    with pytest.raises(ValueError):
        validate_intent(raw)


def test_intent_loader_accepts_a_good_intent() -> None:
    OrderIntent.model_validate(GOOD_INTENT)
    parsed = validate_intent(GOOD_INTENT)
    assert parsed["rebalances"][0]["weights"] == {"SPY": 0.5}
