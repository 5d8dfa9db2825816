"""A fast reader for Lean's canonical order-events files, with :class:`LeanOrderEvent` as the judge.

Validating every event through the pydantic model costs ~7 µs; ingestion must do 200k events/s.
Lean always writes the *canonical* form (camelCase names, canonical enum strings, no unknown
fields), and for that form msgspec decodes and validates a whole chunk of events in C at
~0.5M events/s. So ingestion reads each file in chunks through :func:`iter_fast_batches`, and
the moment anything is not canonical (legacy kebab-case names, extra fields, a case-folded enum,
a type the pydantic model would coerce, garbled JSON) it raises :class:`NotCanonicalError` and
the caller re-reads that file through the pydantic path, which either accepts it (with extras,
legacy names, ...) or raises the precise, named error with the byte offset.

The fast path must therefore never accept what the model rejects; ``LeanOrderEventStruct``
mirrors the model field by field, and a property test in ``tests/include/audit`` holds the two
together (same fields, and every event the struct accepts validates to the same values).

Chunks are cut at a ``}`` and decoded as ``[`` + chunk + ``]``. If the cut falls inside a string
or a nested object, the decode fails (an unterminated string or object), so a successful decode
always ends on a top-level item boundary; a failed one retries at an earlier ``}``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Annotated, Final, Literal

import msgspec

from include.contracts.lean_events import MAX_INT32, ORDER_EVENT_MAX_LENGTHS

CHUNK_BYTES = 4 << 20
# How many earlier "}" to try when a cut lands inside a string or a nested object.
_CUT_RETRIES: Final = 8
# pydantic's allow_inf_nan=False: JSON numbers beyond float range (1e999) decode to inf elsewhere.
Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
# The model's column limits (one home: include.contracts.lean_events), checked in C by msgspec. A
# string over its column's width fails the decode: the file goes to the model path, which names it.
_MAX: Final = ORDER_EVENT_MAX_LENGTHS
AlgorithmId = Annotated[str, msgspec.Meta(max_length=_MAX["algorithm_id"])]
SymbolText = Annotated[str, msgspec.Meta(max_length=_MAX["symbol"])]
SymbolValue = Annotated[str, msgspec.Meta(max_length=_MAX["symbol_value"])]
SymbolPermtick = Annotated[str, msgspec.Meta(max_length=_MAX["symbol_permtick"])]
FillCurrency = Annotated[str, msgspec.Meta(max_length=_MAX["fill_price_currency"])]
FeeCurrency = Annotated[str, msgspec.Meta(max_length=_MAX["order_fee_currency"])]
# A NUL can only reach a decoded string through this escape (JSON forbids a raw control character
# in a string); any chunk holding it goes to the model path, which refuses the NUL by name.
_NUL_ESCAPE: Final = b"\\u0000"


def _has_nul_escape(data: bytes) -> bool:
    # A backslash is rare in Lean's files, and a one-byte search (memchr) is ~10x faster than the
    # six-byte one: only a window with a backslash pays for the second.
    return b"\\" in data and _NUL_ESCAPE in data


class NotCanonicalError(Exception):
    """The file is not in Lean's canonical form (or is broken): read it through the pydantic path."""


# Plain strings, not the enums: a row needs the string, and msgspec checks a Literal in C.
# A test holds these equal to OrderStatus / OrderDirection.
StatusValue = Literal[
    "new", "submitted", "partiallyFilled", "filled", "canceled", "none", "invalid", "cancelPending", "updateSubmitted"
]
DirectionValue = Literal["buy", "sell", "hold"]


class LeanOrderEventStruct(
    msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True, gc=False, kw_only=True
):
    """The canonical camelCase form of :class:`include.contracts.lean_events.LeanOrderEvent`.

    The fields are in the order of the ``order_events`` columns (``id`` last, it is not stored),
    so ``msgspec.structs.astuple`` gives a ready row without a Python-level field-by-field copy.
    """

    algorithm_id: AlgorithmId
    order_id: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT32)]
    order_event_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_INT32)]
    symbol: SymbolText
    symbol_value: SymbolValue
    symbol_permtick: SymbolPermtick
    time: Finite
    status: StatusValue
    direction: DirectionValue
    fill_price: Finite
    fill_price_currency: FillCurrency
    fill_quantity: Finite
    order_fee_amount: Finite | None = None
    order_fee_currency: FeeCurrency | None = None
    quantity: Finite
    message: str | None = None
    is_assignment: bool
    is_in_the_money: bool = False
    limit_price: Finite | None = None
    stop_price: Finite | None = None
    id: str


# The order_events column of each struct field (two names differ).
STRUCT_COLUMNS: Final = tuple(
    {"order_fee_amount": "fee_amount", "order_fee_currency": "fee_currency"}.get(name, name)
    for name in LeanOrderEventStruct.__struct_fields__
)


_DECODER: Final = msgspec.json.Decoder(list[LeanOrderEventStruct])
_WHITESPACE: Final = b" \t\r\n"


def _check(events: list[LeanOrderEventStruct]) -> None:
    """The model's cross-field rules (its ``model_validator``)."""
    for e in events:
        if e.id != f"{e.algorithm_id}-{e.order_id}-{e.order_event_id}":
            raise NotCanonicalError(f"id {e.id!r} does not match algorithmId-orderId-orderEventId")
        if (e.order_fee_amount is None) != (e.order_fee_currency is None):
            raise NotCanonicalError("orderFeeAmount and orderFeeCurrency must be both present or both absent")


def _decode_prefix(pending: bytes) -> tuple[list[LeanOrderEventStruct], int] | None:
    """Decode the longest prefix of ``pending`` ending at a top-level ``}``; (events, end) or None."""
    cut = len(pending)
    for _ in range(_CUT_RETRIES):
        cut = pending.rfind(b"}", 0, cut)
        if cut < 0:
            return None
        try:
            return _DECODER.decode(b"[" + pending[: cut + 1] + b"]"), cut + 1
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue
    return None


def iter_fast_batches(
    path: str | os.PathLike[str], chunk_bytes: int | None = None
) -> Iterator[list[LeanOrderEventStruct]]:
    """Batches of events of one canonical file, read ``chunk_bytes`` (default :data:`CHUNK_BYTES`) at a time.

    Raises :class:`NotCanonicalError` for anything else (the caller falls back to the model).
    """
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    with open(path, "rb") as handle:
        head = handle.read(chunk_bytes).lstrip(_WHITESPACE)
        if not head.startswith(b"["):
            raise NotCanonicalError("not a JSON array")
        if _has_nul_escape(head):
            raise NotCanonicalError("a string holds a NUL escape")
        pending = head[1:]
        at_eof = after_comma = False
        while True:
            pending = pending.lstrip(_WHITESPACE)
            if pending.startswith(b"]"):
                if after_comma:
                    raise NotCanonicalError("trailing comma before ']'")
                if pending[1:].strip(_WHITESPACE) or handle.read(1 << 16).strip(_WHITESPACE):
                    raise NotCanonicalError("data after the closing bracket")
                return
            decoded = _decode_prefix(pending) if pending else None
            if decoded is not None:
                events, end = decoded
                _check(events)
                yield events
                pending = pending[end:].lstrip(_WHITESPACE)
                after_comma = pending.startswith(b",")
                if after_comma:
                    pending = pending[1:]
                elif pending and not pending.startswith(b"]"):
                    raise NotCanonicalError("expected ',' or ']' between events")
                continue
            if at_eof or len(pending) > 4 * chunk_bytes:
                # Truncated, garbled, or one event larger than the window: the slow path decides.
                raise NotCanonicalError("no complete event in the window")
            more = handle.read(chunk_bytes)
            at_eof = not more
            pending += more
            # The whole window: an escape split across two reads is found too (the tail left over
            # from the last window is a part of one event, so this stays linear).
            if _has_nul_escape(pending):
                raise NotCanonicalError("a string holds a NUL escape")
