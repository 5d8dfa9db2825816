from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from include.audit.db import IntentOrderRow, OrderEventRow, RebalanceRun
from include.audit.ingest import has_nonzero_target_delta, ingest_order_events, iter_order_events
from include.contracts.intent import OrderIntent, build_order_intent
from include.errors import OrderEventsFileError, OrderEventsMissingError

FIXTURES = Path(__file__).with_name("fixtures")
BACKTEST = FIXTURES / "backtest" / "results"
DAY = dt.date(2021, 3, 30)


def _intent(weights: dict[str, float], days: tuple[dt.date, ...] = (DAY,)) -> OrderIntent:
    rows = [{"symbol": s, "weight": w} for s, w in weights.items()]
    return build_order_intent(run_key="20210330", rebalances={d: rows for d in days}, source="test")


def _count(engine: Engine, table: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_ingest_then_reingest_is_a_no_op(db_engine: Engine) -> None:
    intent = _intent({"SPY": 0.5, "QQQ": 0.45, "AAPL": 0.0})
    first = ingest_order_events(
        engine=db_engine, results_dir=BACKTEST, algorithm_id="1234567890", intent=intent, dag_id="d"
    )
    assert (first.events, first.inserted, first.already_present) == (5, 5, 0)
    assert first.linked == 5 and first.run_key == "20210330"
    again = ingest_order_events(
        engine=db_engine, results_dir=BACKTEST, algorithm_id="1234567890", intent=intent, dag_id="d"
    )
    assert (again.audit_run_id, again.inserted, again.already_present) == (first.audit_run_id, 0, 5)
    assert _count(db_engine, OrderEventRow) == 5 and _count(db_engine, IntentOrderRow) == 3
    with db_engine.connect() as conn:
        rows = conn.execute(
            select(
                OrderEventRow.symbol_value,
                OrderEventRow.status,
                OrderEventRow.fee_amount,
                OrderEventRow.message,
                IntentOrderRow.symbol,
            )
            .join(IntentOrderRow, OrderEventRow.intent_order_id == IntentOrderRow.id)
            .order_by(OrderEventRow.order_id, OrderEventRow.order_event_id)
        ).all()
        status = conn.execute(select(RebalanceRun.status)).scalar_one()
    assert all(r[0] == r[4] for r in rows)
    assert rows[1][2] == pytest.approx(0.9995) and rows[0][2] is None
    assert rows[4][1] == "invalid" and str(rows[4][3]).startswith("Order Error: ids: [3], Insufficient buying power")
    assert status == "ingested"


def test_live_per_day_files_and_extras(db_engine: Engine) -> None:
    summary = ingest_order_events(
        engine=db_engine,
        results_dir=FIXTURES / "live" / "results",
        algorithm_id="L-3123456789",
        intent=_intent({"SPY": 0.5}),
        run_key="live1",
        mode="live",
    )
    assert summary.files == ["L-3123456789-2021-03-30-order-events.json", "L-3123456789-2021-03-31-order-events.json"]
    assert (summary.inserted, summary.linked) == (3, 3)
    with db_engine.connect() as conn:
        extras = conn.execute(select(OrderEventRow.extras).order_by(OrderEventRow.order_event_id)).scalars().all()
    assert extras == [None, None, {"orderTag": "rebalance"}]


def test_legacy_file_ingests(db_engine: Engine) -> None:
    summary = ingest_order_events(
        engine=db_engine, results_dir=FIXTURES / "legacy", algorithm_id="1234567891", run_key="legacy"
    )
    assert (summary.inserted, summary.unlinked) == (2, 2)
    with db_engine.connect() as conn:
        assert conn.execute(select(OrderEventRow.limit_price)).scalars().all() == [402.0, 402.0]


def test_links_to_latest_rebalance_on_or_before_event(db_engine: Engine) -> None:
    days = (dt.date(2021, 3, 29), DAY, dt.date(2021, 3, 31))
    intent = _intent({"SPY": 0.5, "QQQ": 0.45, "AAPL": 0.0}, days)
    ingest_order_events(engine=db_engine, results_dir=BACKTEST, algorithm_id="1234567890", intent=intent)
    with db_engine.connect() as conn:
        linked_days = set(
            conn.execute(
                select(IntentOrderRow.rebalance_date).join(
                    OrderEventRow, OrderEventRow.intent_order_id == IntentOrderRow.id
                )
            ).scalars()
        )
    assert linked_days == {DAY}


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    shutil.copytree(BACKTEST, folder)
    return folder


def test_truncated_file_names_offset_and_leaves_db_untouched(db_engine: Engine, tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "1234567890-order-events.json"
    data = path.read_bytes()
    path.write_bytes(data[:700])
    with pytest.raises(OrderEventsFileError) as info:
        ingest_order_events(engine=db_engine, results_dir=folder, algorithm_id="1234567890", run_key="t")
    assert info.value.byte_offset == 700 and "truncated" in info.value.reason
    assert str(path) in str(info.value) and "byte offset 700" in str(info.value)
    assert _count(db_engine, OrderEventRow) == 0 and _count(db_engine, RebalanceRun) == 0


def test_garbled_file_names_exact_offset(db_engine: Engine, tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "1234567890-order-events.json"
    data = bytearray(path.read_bytes())
    position = data.index(b'"orderId":2')
    data[position : position + 1] = b"@"
    path.write_bytes(bytes(data))
    with pytest.raises(OrderEventsFileError) as info:
        ingest_order_events(engine=db_engine, results_dir=folder, algorithm_id="1234567890", run_key="t")
    assert info.value.byte_offset == position and "garbled" in info.value.reason
    assert _count(db_engine, OrderEventRow) == 0


def test_invalid_event_rolls_back_earlier_batches(db_engine: Engine, tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "1234567890-order-events.json"
    path.write_bytes(path.read_bytes().replace(b'"status":"filled"', b'"status":"exploded"', 1))
    with pytest.raises(OrderEventsFileError) as info:
        ingest_order_events(engine=db_engine, results_dir=folder, algorithm_id="1234567890", run_key="t", batch_size=1)
    assert "status='exploded'" in str(info.value) and "event #3" in str(info.value)
    assert _count(db_engine, OrderEventRow) == 0


def test_not_an_array(tmp_path: Path) -> None:
    path = tmp_path / "x-order-events.json"
    path.write_bytes(b'  {"id": 1}')
    with pytest.raises(OrderEventsFileError) as info:
        list(iter_order_events(path))
    assert info.value.byte_offset == 2


def test_missing_file_depends_on_target_delta(db_engine: Engine, tmp_path: Path) -> None:
    empty = tmp_path / "results"
    empty.mkdir()
    with pytest.raises(OrderEventsMissingError):
        ingest_order_events(engine=db_engine, results_dir=empty, algorithm_id="1", intent=_intent({"SPY": 0.5}))
    assert _count(db_engine, RebalanceRun) == 0
    summary = ingest_order_events(engine=db_engine, results_dir=empty, algorithm_id="1", intent=_intent({"SPY": 0.0}))
    assert summary.missing_file_ok and summary.inserted == 0
    with pytest.raises(OrderEventsMissingError):
        ingest_order_events(
            engine=db_engine, results_dir=empty, algorithm_id="1", intent=_intent({"SPY": 0.0}), holdings={"AAPL": 5}
        )


def test_nonzero_target_delta_rule() -> None:
    assert has_nonzero_target_delta(_intent({"SPY": 0.1}))
    assert not has_nonzero_target_delta(_intent({"SPY": 0.0}))
    assert not has_nonzero_target_delta(_intent({"SPY": 0.0}), {"SPY": 0})
    assert has_nonzero_target_delta(_intent({"SPY": 0.0}), {"SPY": 3})
    assert not has_nonzero_target_delta(None, {"SPY": 3})


# ------------------------------------------------------------------ bounds of the events reader

_BOMB_SCRIPT = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB: the old reader needed ~21 GB
from include.audit.ingest import iter_order_events
from include.errors import OrderEventsFileError
try:
    list(iter_order_events(Path(sys.argv[1])))
except OrderEventsFileError as exc:
    print(exc)
"""


def test_a_200kb_file_of_nested_arrays_is_refused_by_name_within_a_memory_limit(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    bomb = tmp_path / "A-order-events.json"
    bomb.write_text("[" + "[" * 100_000 + "]" * 100_000 + "]")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    done = subprocess.run(
        [sys.executable, "-c", _BOMB_SCRIPT, str(bomb)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "nested deeper than 8 levels" in done.stdout and str(bomb) in done.stdout


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('[{"message": "' + "x" * ((1 << 20) + 1) + '"}]', "a string of 1048577 characters"),
        ("[{" + ",".join(f'"k{i}": 1' for i in range(1001)) + "}]", "more than 1000 keys"),
    ],
    ids=["long-string", "many-keys"],
)
def test_oversized_elements_are_refused_by_name(tmp_path: Path, payload: str, expected: str) -> None:
    path = tmp_path / "A-order-events.json"
    path.write_text(payload)
    with pytest.raises(OrderEventsFileError, match=expected):
        list(iter_order_events(path))


def test_the_bounded_reader_builds_items_as_ijson_does(tmp_path: Path) -> None:
    import json

    import ijson

    items = [
        {"a": 1, "b": [1, 2.5, {"c": None}], "d": {"e": [True, False, "s"]}},
        [],
        {},
        "x",
        3.25,
        None,
        [[1], [2, [3]]],
    ]
    path = tmp_path / "A-order-events.json"
    path.write_text(json.dumps(items))
    expected = list(ijson.items(path.open("rb"), "item", use_float=True))
    from include.audit.ingest import iter_raw_events

    assert [obj for _, obj, _ in iter_raw_events(path)] == expected == items
    path.write_text(json.dumps(items) + " [1]")
    with pytest.raises(OrderEventsFileError, match="garbled JSON"):
        list(iter_raw_events(path))
