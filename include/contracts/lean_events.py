"""`LeanOrderEvent`: one item of Lean's ``<id>-order-events.json`` (lean-contract.md §3.2).

Lean serializes ``OrderEvent`` through ``SerializedOrderEvent`` with camelCase names; the
kebab-case names of the ``#region BackwardsCompatibility`` setters (``order-id``,
``fill-price``, ...) are accepted on read, as Lean itself does. Python attribute names are
snake_case; ``model_dump(by_alias=True)`` gives Lean's camelCase back.

Unlike our other contracts this model uses ``extra="allow"``: the file is written by Lean, not
by us, and Lean adds fields over time (``isInTheMoney`` came later than the rest). Rejecting an
unknown field would make a newer engine fail ingestion; dropping it would lose data. So unknown
fields are kept, exposed read-only as :attr:`LeanOrderEvent.extras`, and stored by ingestion in
the ``order_events.extras`` JSON column. Everything Lean documents is still typed and checked.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from include.contracts._base import check_no_nul
from include.contracts.validation import describe_validation_error
from include.errors import LeanOrderEventError, UnknownEnumValueError

LEAN_EVENTS_SCHEMA_VERSION: Final = 1


class OrderStatus(enum.StrEnum):
    """``OrderStatus`` as Lean's camelCase ``StringEnumConverter`` writes it."""

    NEW = "new"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partiallyFilled"
    FILLED = "filled"
    CANCELED = "canceled"
    NONE = "none"
    INVALID = "invalid"
    CANCEL_PENDING = "cancelPending"
    UPDATE_SUBMITTED = "updateSubmitted"


class OrderDirection(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


# Order.Status.IsClosed() in Lean: filled, canceled, invalid.
TERMINAL_STATUSES: Final = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.INVALID})

# camelCase name -> legacy kebab-case name (SerializedOrderEvent.cs, #region BackwardsCompatibility).
LEGACY_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "algorithmId": "algorithm-id",
        "orderId": "order-id",
        "orderEventId": "order-event-id",
        "symbolValue": "symbol-value",
        "symbolPermtick": "symbol-permtick",
        "orderFeeAmount": "order-fee-amount",
        "orderFeeCurrency": "order-fee-currency",
        "fillPrice": "fill-price",
        "fillPriceCurrency": "fill-price-currency",
        "fillQuantity": "fill-quantity",
        "isAssignment": "is-assignment",
        "stopPrice": "stop-price",
        "limitPrice": "limit-price",
        "isInTheMoney": "is-in-the-money",
    }
)

# Newtonsoft's StringEnumConverter reads enum names case-insensitively; we do the same.
_STATUS_BY_LOWER: Final = {s.value.lower(): s.value for s in OrderStatus}
_DIRECTION_BY_LOWER: Final = {d.value.lower(): d.value for d in OrderDirection}
_STATUS_VALUES: Final = frozenset(_STATUS_BY_LOWER.values())
_DIRECTION_VALUES: Final = frozenset(_DIRECTION_BY_LOWER.values())


# What the audit database can store, refused here (before any insert) the same on SQLite and
# PostgreSQL: SQLite would store a longer string, a NUL or a 64-bit id that PostgreSQL refuses.
# The widths of the order_events text columns (include/audit/db.py declares the same numbers;
# tests/faults/test_sql_limits.py holds them equal), by snake_case field name.
ORDER_EVENT_MAX_LENGTHS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "algorithm_id": 128,
        "symbol": 64,
        "symbol_value": 32,
        "symbol_permtick": 32,
        "fill_price_currency": 8,
        "order_fee_currency": 8,
    }
)
# order_id and order_event_id are INTEGER columns: PostgreSQL's is 32-bit.
MAX_INT32: Final = 2**31 - 1

# The text fields checked for NUL (PostgreSQL text cannot hold one), by name and camelCase name:
# one loop in the model validator, cheaper than a validator call per field.
_NUL_CHECKED: Final = (
    ("algorithm_id", "algorithmId"),
    ("symbol", "symbol"),
    ("symbol_value", "symbolValue"),
    ("symbol_permtick", "symbolPermtick"),
    ("fill_price_currency", "fillPriceCurrency"),
    ("order_fee_currency", "orderFeeCurrency"),
    ("message", "message"),
)


def _field(camel: str, default: Any = ..., **constraints: Any) -> Any:
    """A field read from its camelCase name or its legacy kebab-case name, written camelCase."""
    legacy = LEGACY_NAMES.get(camel)
    choices = AliasChoices(camel, legacy) if legacy else AliasChoices(camel)
    return Field(default, validation_alias=choices, serialization_alias=camel, **constraints)


def _refuse_nul(camel: str, value: str) -> None:
    """``ValueError`` naming the field when ``value`` holds a NUL."""
    try:
        check_no_nul(value)
    except ValueError as exc:
        raise ValueError(f"{camel}={value!r}: {exc}") from None


def _text(camel: str, name: str, default: Any = ...) -> Any:
    """A text field no longer than its order_events column."""
    return _field(camel, default, max_length=ORDER_EVENT_MAX_LENGTHS[name])


class LeanOrderEvent(BaseModel):
    """One serialized Lean order event. Frozen; unknown fields kept in :attr:`extras`."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False, serialize_by_alias=True)

    # Our contract version of this model (Lean's file itself carries no version).
    schema_version: Literal[1] = Field(default=LEAN_EVENTS_SCHEMA_VERSION, exclude=True)

    id: str = _field("id")
    algorithm_id: str = _text("algorithmId", "algorithm_id")
    order_id: int = _field("orderId", le=MAX_INT32)
    order_event_id: int = _field("orderEventId", le=MAX_INT32)
    symbol: str = _text("symbol", "symbol")
    symbol_value: str = _text("symbolValue", "symbol_value")
    symbol_permtick: str = _text("symbolPermtick", "symbol_permtick")
    time: float = _field("time")
    status: OrderStatus = _field("status")
    order_fee_amount: float | None = _field("orderFeeAmount", None)
    order_fee_currency: str | None = _text("orderFeeCurrency", "order_fee_currency", None)
    fill_price: float = _field("fillPrice")
    fill_price_currency: str = _text("fillPriceCurrency", "fill_price_currency")
    fill_quantity: float = _field("fillQuantity")
    direction: OrderDirection = _field("direction")
    message: str = _field("message", "")
    is_assignment: bool = _field("isAssignment")
    quantity: float = _field("quantity")
    stop_price: float | None = _field("stopPrice", None)
    limit_price: float | None = _field("limitPrice", None)
    is_in_the_money: bool = _field("isInTheMoney", False)

    @model_validator(mode="after")
    def _presence_rules(self) -> LeanOrderEvent:
        expected_id = f"{self.algorithm_id}-{self.order_id}-{self.order_event_id}"
        if self.id != expected_id:
            raise ValueError(f"id={self.id!r} does not match algorithmId-orderId-orderEventId {expected_id!r}")
        if (self.order_fee_amount is None) != (self.order_fee_currency is None):
            raise ValueError("orderFeeAmount and orderFeeCurrency must be both present or both absent")
        if self.order_event_id < 1 or self.order_id < 0:
            raise ValueError(f"orderId={self.order_id}/orderEventId={self.order_event_id}: out of range")
        for name, camel in _NUL_CHECKED:
            value = getattr(self, name)
            if value is not None and "\x00" in value:
                _refuse_nul(camel, value)
        return self

    @property
    def extras(self) -> Mapping[str, Any]:
        """Fields Lean wrote that this contract does not know, read-only."""
        extra = self.model_extra or {}
        return MappingProxyType({k: v for k, v in extra.items() if k not in KNOWN_KEYS})

    @property
    def utc_time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time, dt.UTC)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def parse(cls, raw: Any) -> LeanOrderEvent:
        """Validate one decoded JSON object; named errors (``UnknownEnumValueError`` for enums)."""
        if not isinstance(raw, dict):
            raise LeanOrderEventError([f"<root>={type(raw).__name__}: expected a JSON object"])
        normalise_enums(raw)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise LeanOrderEventError(describe_validation_error(exc)) from None


def _normalise(raw: dict[str, Any], key: str, canonical: frozenset[str], by_lower: Mapping[str, str]) -> None:
    value = raw.get(key)
    if value is None or value in canonical:
        return
    fixed = by_lower.get(value.lower()) if isinstance(value, str) else None
    if fixed is None:
        raise UnknownEnumValueError(key, value, sorted(canonical))
    raw[key] = fixed


def normalise_enums(raw: dict[str, Any]) -> None:
    """Case-fold ``status``/``direction`` in place; ``UnknownEnumValueError`` names field, value, allowed set."""
    _normalise(raw, "status", _STATUS_VALUES, _STATUS_BY_LOWER)
    _normalise(raw, "direction", _DIRECTION_VALUES, _DIRECTION_BY_LOWER)


# Every key a known field may arrive under (camelCase and legacy): never an "extra".
KNOWN_KEYS: Final = frozenset(
    {"id", "symbol", "time", "status", "direction", "message", "quantity"}
    | set(LEGACY_NAMES)
    | set(LEGACY_NAMES.values())
)
