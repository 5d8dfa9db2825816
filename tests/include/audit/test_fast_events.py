"""The msgspec fast path must never accept what :class:`LeanOrderEvent` rejects, nor read it differently."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from include.audit import fast_events, ingest
from include.audit.db import OrderEventRow
from include.audit.fast_events import (
    STRUCT_COLUMNS,
    DirectionValue,
    LeanOrderEventStruct,
    NotCanonicalError,
    StatusValue,
    iter_fast_batches,
)
from include.contracts.lean_events import LeanOrderEvent, OrderDirection, OrderStatus
from include.errors import OrderEventsFileError

ALGO = "1234567890"


def _event(order_id: int, event_id: int, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"{ALGO}-{order_id}-{event_id}",
        "algorithmId": ALGO,
        "orderId": order_id,
        "orderEventId": event_id,
        "symbol": "SPY R735QTJ8XC9X",
        "symbolValue": "SPY",
        "symbolPermtick": "SPY",
        "time": 1617134400.0 + order_id,
        "status": "filled",
        "orderFeeAmount": 1.5,
        "orderFeeCurrency": "USD",
        "fillPrice": 396.1,
        "fillPriceCurrency": "USD",
        "fillQuantity": 10.0,
        "direction": "buy",
        "isAssignment": False,
        "quantity": 10.0,
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not _DROP}


_DROP = object()


def _write(path: Path, events: list[Any], separator: str = ",") -> Path:
    path.write_text("[" + separator.join(json.dumps(e) for e in events) + "]", encoding="utf-8")
    return path


def _fast(path: Path, chunk_bytes: int | None = None) -> list[LeanOrderEventStruct]:
    return [e for batch in iter_fast_batches(path, chunk_bytes) for e in batch]


def _values(event: LeanOrderEvent | LeanOrderEventStruct) -> dict[str, Any]:
    """Field values as stored: both paths keep an absent or empty message as NULL."""
    values = {name: getattr(event, name) for name in LeanOrderEventStruct.__struct_fields__}
    values["message"] = values["message"] or None
    return values


def test_struct_mirrors_the_model_and_the_table() -> None:
    assert set(LeanOrderEventStruct.__struct_fields__) == set(LeanOrderEvent.model_fields) - {"schema_version"}
    assert set(typing.get_args(StatusValue)) == {s.value for s in OrderStatus}
    assert set(typing.get_args(DirectionValue)) == {d.value for d in OrderDirection}
    columns = set(OrderEventRow.__table__.columns.keys())
    assert set(STRUCT_COLUMNS) - {"id"} <= columns
    assert STRUCT_COLUMNS[-1] == "id"  # not stored: the row drops it


def test_canonical_file_reads_the_same_through_both_paths(tmp_path: Path) -> None:
    events = [
        _event(1, 1, status="submitted", orderFeeAmount=_DROP, orderFeeCurrency=_DROP, fillPrice=0.0),
        _event(1, 2, message='partial }, {fill] \\" quoted'),
        _event(2, 1, direction="sell", quantity=-5.0, fillQuantity=-5.0, limitPrice=390.5, isInTheMoney=True),
        _event(3, 1, status="invalid", message='Insufficient buying power {"x": 1}, [2]'),
    ]
    path = _write(tmp_path / "e.json", events, separator=",\n  ")
    models = [LeanOrderEvent.parse(dict(e)) for e in events]
    for chunk in (None, 120, 301, 997):  # tiny windows cut inside strings and objects
        fast = _fast(path, chunk)
        assert [_values(e) for e in fast] == [_values(m) for m in models], chunk


@pytest.mark.parametrize(
    ("label", "events_json"),
    [
        ("legacy kebab-case names", json.dumps([{**_event(1, 1), "order-id": 1}])),
        ("unknown field kept as extra", json.dumps([_event(1, 1, newLeanField=3)])),
        ("case-folded enum", json.dumps([_event(1, 1, status="Filled")])),
        ("unknown enum", json.dumps([_event(1, 1, direction="sideways")])),
        ("string where a number goes", json.dumps([_event(1, 1, orderId="1", id=f"{ALGO}-1-1")])),
        ("id mismatch", json.dumps([_event(1, 1, id="x-1-1")])),
        ("fee amount without currency", json.dumps([_event(1, 1, orderFeeCurrency=_DROP)])),
        ("orderEventId 0", json.dumps([_event(1, 0)])),
        ("number beyond float range", json.dumps([_event(1, 1)]).replace("396.1", "1e999")),
        ("trailing comma", json.dumps([_event(1, 1)])[:-1] + ",]"),
        ("truncated", json.dumps([_event(1, 1), _event(2, 1)])[:-40]),
        ("garbled", json.dumps([_event(1, 1)]).replace('"buy"', "buy")),
        ("data after the array", json.dumps([_event(1, 1)]) + " x"),
        ("not an array", json.dumps(_event(1, 1))),
    ],
)
def test_anything_not_canonical_goes_to_the_model(tmp_path: Path, label: str, events_json: str) -> None:
    path = tmp_path / "e.json"
    path.write_text(events_json, encoding="utf-8")
    with pytest.raises(NotCanonicalError):
        _fast(path, 64)


_texts = st.text(alphabet=st.sampled_from(list('ab}{],["\\: \n')), max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(
        st.fixed_dictionaries(
            {
                "message": _texts,
                "status": st.sampled_from(["filled", "submitted", "canceled", "FILLED", "weird"]),
                "quantity": st.one_of(*[st.floats(allow_nan=False, width=32), st.integers(-5, 5)] * 2, st.just("3")),
                "extra": st.sampled_from([False, False, False, True]),
            }
        ),
        min_size=1,
        max_size=6,
    ),
    chunk=st.integers(120, 900),
)
def test_fast_path_accepts_only_what_the_model_accepts_and_reads_it_identically(
    tmp_path: Path, data: list[dict[str, Any]], chunk: int
) -> None:
    events = [
        _event(
            i + 1,
            1,
            message=d["message"],
            status=d["status"],
            quantity=d["quantity"],
            **({"x": 1} if d["extra"] else {}),
        )
        for i, d in enumerate(data)
    ]
    path = _write(tmp_path / "p.json", events)
    try:
        fast = _fast(path, chunk)
    except NotCanonicalError:
        return  # the caller re-reads through the model; nothing to compare
    models = [LeanOrderEvent.parse(json.loads(json.dumps(e))) for e in events]
    assert all(not m.extras for m in models)
    assert [_values(e) for e in fast] == [_values(m) for m in models]


def test_fast_and_model_paths_store_identical_rows(tmp_path: Path, db_engine: Engine) -> None:
    events = [_event(1, 1, message=""), _event(2, 1, message="Insufficient buying power"), _event(3, 1)]
    fast_dir, slow_dir = tmp_path / "fast", tmp_path / "slow"
    fast_dir.mkdir()
    slow_dir.mkdir()
    _write(fast_dir / f"{ALGO}-order-events.json", events)
    # One extra field sends the whole file down the model path; the rows must still match.
    _write(slow_dir / f"{ALGO}-order-events.json", [*events[:-1], {**events[-1], "laterField": 1}])
    for folder, key in ((fast_dir, "fast"), (slow_dir, "slow")):
        ingest.ingest_order_events(engine=db_engine, results_dir=folder, algorithm_id=ALGO, run_key=key)
    columns = [c for c in OrderEventRow.__table__.columns if c.key not in {"id", "run_id", "extras", "source_file"}]
    with db_engine.connect() as conn:
        rows = {
            key: conn.execute(
                select(*columns)
                .join_from(OrderEventRow, ingest.RebalanceRun)
                .where(ingest.RebalanceRun.run_key == key)
                .order_by(OrderEventRow.order_id)
            ).all()
            for key in ("fast", "slow")
        }
    assert rows["fast"] == rows["slow"] and len(rows["fast"]) == 3
    assert rows["fast"][0].message is None  # an explicit "" is stored as NULL on both paths


def test_fallback_after_partial_fast_write_counts_each_event_once(
    tmp_path: Path, db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_events, "CHUNK_BYTES", 600)  # several batches before the odd event
    events = [_event(i, 1) for i in range(1, 30)] + [_event(30, 1, laterField=True)]
    _write(tmp_path / f"{ALGO}-order-events.json", events)
    summary = ingest.ingest_order_events(engine=db_engine, results_dir=tmp_path, algorithm_id=ALGO, run_key="k")
    assert (summary.events, summary.inserted, summary.already_present) == (30, 30, 0)
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OrderEventRow)).scalar_one() == 30


def test_duplicate_event_in_a_fresh_file_is_ignored_not_fatal(tmp_path: Path, db_engine: Engine) -> None:
    # On PostgreSQL the first batch of a fresh run is COPYed straight in; a duplicate must fall
    # back to the staging merge instead of failing the ingestion.
    events = [_event(1, 1), _event(2, 1), _event(1, 1)]
    _write(tmp_path / f"{ALGO}-order-events.json", events)
    summary = ingest.ingest_order_events(engine=db_engine, results_dir=tmp_path, algorithm_id=ALGO, run_key="k")
    assert (summary.events, summary.inserted, summary.already_present) == (3, 2, 1)


def test_a_broken_file_still_gets_the_models_named_error(tmp_path: Path, db_engine: Engine) -> None:
    text = json.dumps([_event(1, 1), _event(2, 1)])
    (tmp_path / f"{ALGO}-order-events.json").write_text(text[:-30], encoding="utf-8")
    with pytest.raises(OrderEventsFileError, match=r"truncated JSON after 1 complete events"):
        ingest.ingest_order_events(engine=db_engine, results_dir=tmp_path, algorithm_id=ALGO, run_key="k")
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OrderEventRow)).scalar_one() == 0
