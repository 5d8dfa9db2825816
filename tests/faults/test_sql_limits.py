"""Both SQL dialects enforce the same limits before insert (issue #18).

SQLite stores a string longer than its VARCHAR, a NUL character or a 64-bit integer in an INTEGER
column; PostgreSQL refuses each. The contracts refuse them first, with the same named error on
both, and nothing reaches either database. The events fast path (msgspec) checks the same limits
or hands the file to the model path, which names the error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from include.audit.db import IntentOrderRow, OrderEventRow, RebalanceRun
from include.audit.fast_events import LeanOrderEventStruct, NotCanonicalError, iter_fast_batches
from include.audit.ingest import ingest_order_events
from include.contracts._base import SYMBOL_PATTERN
from include.contracts.intent import build_order_intent
from include.contracts.lean_events import (
    MAX_INT32,
    ORDER_EVENT_MAX_LENGTHS,
    LeanOrderEvent,
    OrderDirection,
    OrderStatus,
)
from include.contracts.snapshot import DecisionSnapshot
from include.errors import LeanOrderEventError, OrderEventsFileError, OrderIntentError
from tests.faults.helpers import lean_event

ALGO = "algo1"


def _event(**overrides: Any) -> dict[str, Any]:
    return lean_event(ALGO, **overrides)


# (case, the bad event's overrides, what the named error says)
OVER_LIMIT: list[tuple[str, dict[str, Any], str]] = [
    ("symbolValue over 32", {"symbolValue": "S" * 33}, r"symbolValue='S{33}': String should have at most 32"),
    ("symbol over 64", {"symbol": "S" * 65}, r"symbol='S{65}': String should have at most 64"),
    ("symbolPermtick over 32", {"symbolPermtick": "P" * 33}, r"symbolPermtick=.*at most 32"),
    ("fillPriceCurrency over 8", {"fillPriceCurrency": "USDOLLARS"}, r"fillPriceCurrency='USDOLLARS'.*at most 8"),
    ("orderFeeCurrency over 8", {"orderFeeAmount": 1.0, "orderFeeCurrency": "C" * 9}, r"orderFeeCurrency=.*at most 8"),
    ("NUL in message", {"message": "bad\x00byte"}, r"message='bad\\x00byte'.*NUL character"),
    ("NUL in symbolValue", {"symbolValue": "SP\x00Y"}, r"symbolValue='SP\\x00Y'.*NUL character"),
    ("orderId over int32", {"orderId": 2**31, "id": f"{ALGO}-{2**31}-1"}, r"orderId=2147483648.*less than or equal"),
]


def _write_events(folder: Path, bad: dict[str, Any]) -> Path:
    """A good event, then the bad one: the fast path has already decoded one batch when it meets it."""
    results = folder / "results"
    results.mkdir()
    events = [_event(), _event(**{"orderId": 2, "id": f"{ALGO}-2-1", **bad})]
    (results / f"{ALGO}-order-events.json").write_text(json.dumps(events), encoding="utf-8")
    return results


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize(("case", "bad", "message"), OVER_LIMIT, ids=[c[0] for c in OVER_LIMIT])
def test_the_same_bad_event_is_refused_by_name_on_both_dialects_before_any_insert(
    db_engine: Engine, tmp_path: Path, case: str, bad: dict[str, Any], message: str
) -> None:
    results = _write_events(tmp_path, bad)
    with pytest.raises(OrderEventsFileError, match=message) as info:
        ingest_order_events(engine=db_engine, results_dir=results, algorithm_id=ALGO, run_key="k", dag_id="d")
    # The same words on SQLite and PostgreSQL: the event #1 of the file, never a driver error.
    assert "event #1" in str(info.value), str(info.value)
    assert not isinstance(info.value.__cause__, Exception) or "sqlalchemy" not in type(info.value.__cause__).__module__
    assert _count(db_engine, OrderEventRow) == 0
    assert _count(db_engine, RebalanceRun) == 0


@pytest.mark.parametrize(("case", "bad", "message"), OVER_LIMIT, ids=[c[0] for c in OVER_LIMIT])
def test_the_fast_path_hands_an_over_limit_event_to_the_model(
    tmp_path: Path, case: str, bad: dict[str, Any], message: str
) -> None:
    results = _write_events(tmp_path, bad)
    with pytest.raises(NotCanonicalError):
        for _ in iter_fast_batches(results / f"{ALGO}-order-events.json"):
            pass
    with pytest.raises(LeanOrderEventError, match=message):
        LeanOrderEvent.parse(json.loads((results / f"{ALGO}-order-events.json").read_text(encoding="utf-8"))[1])


def test_a_nul_escape_split_across_two_reads_is_still_found(tmp_path: Path) -> None:
    events = [_event(orderId=i, id=f"{ALGO}-{i}-1") for i in range(1, 40)]
    events[20]["message"] = "x\x00y"
    path = tmp_path / "e.json"
    text = json.dumps(events)
    path.write_text(text, encoding="utf-8")
    at = text.index("\\u0000")
    for chunk in (at + 1, at + 3, at + 5, 97, 1000):  # cuts inside the escape and elsewhere
        with pytest.raises(NotCanonicalError):
            for _ in iter_fast_batches(path, chunk_bytes=chunk):
                pass


def test_events_at_the_limits_stay_on_the_fast_path(tmp_path: Path) -> None:
    at_limit = _event(
        symbolValue="V" * 32,
        symbolPermtick="P" * 32,
        symbol="S" * 64,
        fillPriceCurrency="C" * 8,
        orderFeeAmount=1.0,
        orderFeeCurrency="F" * 8,
        orderId=MAX_INT32,
        id=f"{ALGO}-{MAX_INT32}-1",
        message="a backslash \\ and \\\\u0000 as text are no NUL",
    )
    LeanOrderEvent.parse(dict(at_limit))
    path = tmp_path / "e.json"
    path.write_text(json.dumps([at_limit]), encoding="utf-8")
    try:
        batches = list(iter_fast_batches(path))
    except NotCanonicalError:  # "\\\\u0000" looks like the escape to the byte search: the model path takes it
        batches = []
    assert batches == [] or batches[0][0].symbol_value == "V" * 32
    path.write_text(json.dumps([{k: v for k, v in at_limit.items() if k != "message"}]), encoding="utf-8")
    assert [e.order_id for batch in iter_fast_batches(path) for e in batch] == [MAX_INT32]


def test_the_contract_limits_are_the_table_columns() -> None:
    """One set of numbers: the contract's limits are the widths of the order_events columns."""
    columns = OrderEventRow.__table__.c
    struct_to_column = {"order_fee_currency": "fee_currency"}
    for field, limit in ORDER_EVENT_MAX_LENGTHS.items():
        assert columns[struct_to_column.get(field, field)].type.length == limit, field
    # Every other text column of order_events is Text, an enum that fits, or written by the ingestion.
    assert columns["status"].type.length >= max(len(s.value) for s in OrderStatus)
    assert columns["direction"].type.length >= max(len(d.value) for d in OrderDirection)
    # The fast path's struct carries the same limits.
    import msgspec

    info = msgspec.inspect.type_info(LeanOrderEventStruct)
    assert isinstance(info, msgspec.inspect.StructType)
    lengths = {}
    for f in info.fields:
        t = f.type.types[0] if isinstance(f.type, msgspec.inspect.UnionType) else f.type
        if isinstance(t, msgspec.inspect.StrType) and t.max_length is not None:
            lengths[f.name] = t.max_length
    assert lengths == dict(ORDER_EVENT_MAX_LENGTHS)


def test_an_intent_symbol_always_fits_its_column() -> None:
    longest = int(SYMBOL_PATTERN.rsplit(",", 1)[1].split("}")[0]) + 1  # ^[A-Z][...]{0,11}$ -> 12
    assert longest <= IntentOrderRow.__table__.c.symbol.type.length
    with pytest.raises(OrderIntentError, match="is not a ticker"):
        build_order_intent(
            run_key="k", rebalances={__import__("datetime").date(2021, 3, 1): [{"symbol": "A" * 17, "weight": 0.1}]}
        )


def test_a_nul_in_the_snapshot_or_intent_source_is_refused() -> None:
    import datetime as dt

    with pytest.raises(ValidationError, match="NUL character"):
        DecisionSnapshot(as_of=dt.date(2021, 3, 1), source="bad\x00source", items=())
    with pytest.raises(OrderIntentError, match="NUL character"):
        build_order_intent(
            run_key="k", rebalances={dt.date(2021, 3, 1): [{"symbol": "SPY", "weight": 0.1}]}, source="a\x00b"
        )
