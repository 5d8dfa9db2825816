"""The one per-order aggregation: the same orders from the audit DB and from the events files."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from include.audit.consistency import check_run_folder
from include.audit.ingest import ingest_order_events
from include.audit.orders import (
    events_frame,
    lean_orders,
    load_event_columns,
    load_intent_days,
    order_frame,
    order_table,
    orders_from_files,
)
from include.contracts.intent import build_order_intent
from include.reporting.run_view import list_runs, load_run_view
from tests.include.audit.scenario import ALGORITHM_ID, FIXTURES, REBALANCE, WEIGHTS, ingest, make_run

NEW_YORK_MIDNIGHT = dt.datetime(2021, 3, 30, tzinfo=dt.timezone(dt.timedelta(hours=-4))).timestamp()


@pytest.mark.parametrize(
    ("fixture", "algorithm_id"),
    [("clean", ALGORITHM_ID), ("backtest", ALGORITHM_ID), ("inconsistent", ALGORITHM_ID), ("live", "L-3123456789")],
)
def test_db_and_files_give_the_same_orders(db_engine: Engine, fixture: str, algorithm_id: str) -> None:
    days = (dt.date(2021, 3, 29), REBALANCE)
    rows = [{"symbol": s, "weight": w} for s, w in WEIGHTS.items()]
    intent = build_order_intent(run_key="k", rebalances={d: rows for d in days}, source="test")
    results = FIXTURES / fixture / "results"
    summary = ingest_order_events(engine=db_engine, results_dir=results, algorithm_id=algorithm_id, intent=intent)
    frame = order_frame(
        load_event_columns(db_engine, summary.audit_run_id),
        rebalance_dates=days,
        intent_days=load_intent_days(db_engine, summary.audit_run_id),
    )
    from_db = order_table(frame)
    assert from_db == orders_from_files(results, algorithm_id, intent)
    assert len(from_db) == len(set(from_db.order_id)) > 0 and set(from_db.rebalance_date) <= set(days)


def _event(order_id: int, event_id: int, time: float, status: str, **fields: object) -> tuple[object, ...]:
    values: dict[str, object] = {"fill_price": 0.0, "fill_quantity": 0.0, "fee_amount": None, "quantity": 10.0}
    values.update(fields)
    return (
        order_id,
        event_id,
        str(fields.get("symbol", "spy")),
        time,
        status,
        "buy",
        values["fill_price"],
        values["fill_quantity"],
        values["fee_amount"],
        values["quantity"],
        fields.get("intent_order_id"),
        fields.get("message"),
    )


def test_one_row_per_order_from_its_events() -> None:
    t = NEW_YORK_MIDNIGHT + 10 * 3600
    events = events_frame(
        [
            _event(1, 1, t, "submitted", message="queued"),
            _event(1, 2, t + 60, "partiallyFilled", fill_price=100.0, fill_quantity=4.0, fee_amount=0.04),
            _event(1, 3, t + 120, "filled", fill_price=101.0, fill_quantity=6.0, fee_amount=0.06),
            _event(2, 1, t - 86_400, "submitted", symbol="QQQ", intent_order_id=7),
            _event(2, 2, t - 86_400, "canceled", symbol="QQQ", intent_order_id=7, quantity=5.0),
            _event(3, 1, t - 2 * 86_400, "invalid", message="Insufficient buying power"),
        ]
    )
    frame = order_frame(events, rebalance_dates=[REBALANCE], intent_days={7: dt.date(2021, 3, 1)})
    one, two, three = lean_orders(order_table(frame))
    assert (one.symbol, one.status, one.quantity, one.filled_quantity) == ("SPY", "filled", 10.0, 10.0)
    assert one.average_fill_price == pytest.approx((4 * 100 + 6 * 101) / 10) and one.fees == pytest.approx(0.1)
    assert (one.first_time, one.last_fill_time, one.rebalance_date, one.date) == (t, t + 120, REBALANCE, REBALANCE)
    assert one.message == ""  # the last event's: "queued" was said of an earlier status
    assert (two.status, two.quantity, two.average_fill_price, two.last_fill_time) == ("canceled", 5.0, None, None)
    assert two.rebalance_date == dt.date(2021, 3, 1)  # its intent link wins over its time
    assert (three.message, three.rebalance_date, three.fees) == ("Insufficient buying power", None, 0.0)
    assert math.isnan(frame["intent_order_id"][0]) and frame["intent_order_id"][1] == 7


def test_no_events_no_orders() -> None:
    table = order_table(order_frame(events_frame([]), rebalance_dates=[REBALANCE]))
    assert len(table) == 0 and lean_orders(table) == []


def test_page_orders_come_from_the_report_once_checked(db_engine: Engine, tmp_path: Path) -> None:
    folder = make_run(tmp_path, "backtest")
    before = load_run_view(folder.path)  # not checked yet: the events files
    assert [row.order.order_id for row in before.orders] == [1, 2, 3] and before.report is None
    # The side is the trade's (the sign of the order quantity), the weight the intent's target.
    assert [(row.trade_side, row.target_weight) for row in before.orders][:2] == [("sell", 0.0), ("buy", 0.5)]
    ingest(folder, db_engine)
    check_run_folder(folder, engine=db_engine, policy="warn")
    for path in folder.order_event_files():
        path.unlink()  # a checked run's page needs no events file
    after = load_run_view(folder.path)
    assert after.orders == before.orders and after.report is not None and "order_table" not in after.report
    assert list_runs(folder.path.parents[1]) == [
        {"dag_id": folder.dag_id, "run_key": folder.run_key, "verdict": "fail"}
    ]


def test_a_version_1_report_falls_back_to_the_events_files(db_engine: Engine, tmp_path: Path) -> None:
    folder = make_run(tmp_path, "clean", weights={"SPY": 0.5, "AAPL": 0.0})
    ingest(folder, db_engine)
    check_run_folder(folder, engine=db_engine, policy="warn")
    saved = json.loads(folder.report_json_path.read_text(encoding="utf-8"))
    del saved["order_table"]
    folder.report_json_path.write_text(json.dumps({**saved, "schema_version": 1}), encoding="utf-8")
    view = load_run_view(folder.path)
    assert [row.order.symbol for row in view.orders] == ["AAPL", "SPY"] and view.report is not None
