from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.contracts.lean_events import LEGACY_NAMES, LeanOrderEvent, OrderDirection, OrderStatus
from include.errors import LeanOrderEventError, UnknownEnumValueError

FIXTURES = Path(__file__).resolve().parents[1] / "audit" / "fixtures"


def _events(relative: str) -> list[dict[str, object]]:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def test_camel_case_fixture_parses_with_presence_rules() -> None:
    events = [LeanOrderEvent.parse(e) for e in _events("backtest/results/1234567890-order-events.json")]
    submitted, filled, invalid = events[1], events[4], events[2]
    assert submitted.status is OrderStatus.SUBMITTED and submitted.order_fee_amount is None
    assert filled.status is OrderStatus.FILLED and filled.order_fee_currency == "USD"
    assert filled.fill_quantity == 75 and filled.direction is OrderDirection.BUY and filled.is_terminal
    assert invalid.status is OrderStatus.INVALID and "Insufficient buying power" in invalid.message
    assert events[0].fill_quantity == 0 and events[0].direction is OrderDirection.SELL
    assert filled.utc_time.isoformat() == "2021-03-30T13:30:00+00:00"


def test_round_trip_is_lean_camel_case_in_lean_order() -> None:
    raw = _events("backtest/results/1234567890-order-events.json")[4]
    dumped = LeanOrderEvent.parse(dict(raw)).model_dump(mode="json", exclude_none=True)
    assert [k for k in dumped if k in raw] == list(raw)
    assert {k: dumped[k] for k in raw} == raw
    assert set(dumped) - set(raw) == {"message", "isInTheMoney"}


def test_legacy_kebab_case_names_are_accepted() -> None:
    events = [LeanOrderEvent.parse(e) for e in _events("legacy/1234567891-order-events.json")]
    assert events[1].order_id == 1 and events[1].fill_price == 401.2005 and events[1].limit_price == 402.0
    assert events[1].order_fee_amount == 3.00900375 and dict(events[1].extras) == {}
    assert set(LEGACY_NAMES.values()) >= {"order-id", "fill-price", "order-fee-amount", "is-in-the-money"}


def test_unknown_fields_are_kept_as_extras() -> None:
    event = LeanOrderEvent.parse(_events("live/results/L-3123456789-2021-03-31-order-events.json")[0])
    assert dict(event.extras) == {"orderTag": "rebalance"}
    with pytest.raises(TypeError):
        event.extras["x"] = 1  # type: ignore[index]


@pytest.mark.parametrize(("field", "value"), [("status", "exploded"), ("direction", "sideways"), ("status", 3)])
def test_unknown_enum_value_is_a_named_error(field: str, value: object) -> None:
    raw = _events("backtest/results/1234567890-order-events.json")[0]
    raw[field] = value
    with pytest.raises(UnknownEnumValueError) as info:
        LeanOrderEvent.parse(raw)
    assert info.value.field == field and info.value.value == value
    assert "filled" in info.value.allowed or "buy" in info.value.allowed
    assert field in str(info.value)


def test_enum_case_is_folded_like_newtonsoft() -> None:
    raw = _events("backtest/results/1234567890-order-events.json")[0]
    raw["status"] = "Submitted"
    assert LeanOrderEvent.parse(raw).status is OrderStatus.SUBMITTED


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.pop("orderId"),
        lambda e: e.update(id="other-1-1"),
        lambda e: e.update(orderFeeAmount=1.0),
        lambda e: e.update(fillPrice="abc"),
    ],
)
def test_contract_violations_are_named(mutate: object) -> None:
    raw = _events("backtest/results/1234567890-order-events.json")[0]
    mutate(raw)  # type: ignore[operator]
    with pytest.raises(LeanOrderEventError):
        LeanOrderEvent.parse(raw)


def test_model_is_frozen() -> None:
    event = LeanOrderEvent.parse(_events("backtest/results/1234567890-order-events.json")[0])
    with pytest.raises(ValueError):
        event.order_id = 5  # type: ignore[misc]
