"""The identity of an attempt (issue #18): a re-run of a run key with changed inputs replaces that
run's intent and events and keeps the superseded attempt as history; identical inputs change
nothing; two versions of one event are an error naming both; a run in which Lean correctly places
no order is a result, not a missing file. Each runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from include.audit.db import make_engine, upgrade_database
from include.audit.ingest import ingest_order_events
from include.errors import OrderEventConflictError, OrderEventsMissingError
from include.pipeline import resolve_run, run_chain
from include.run_folder import RunFolder
from tests.faults.helpers import (
    DAG_ID,
    END,
    START,
    connect,
    db_events,
    file_events,
    range_request,
    table_counts,
)


def _chain(options: dict[str, Any], *, provider: str = "trend_rotation") -> Any:
    return run_chain(range_request(provider=provider, options=options))


def _attempts(db_url: str, run_key: str) -> list[tuple[int, str, bool, int, int]]:
    """(attempt, status, superseded, intent orders, events) per attempt row of the run."""
    query = sa.text(
        "SELECT r.attempt, r.status, r.superseded_at IS NOT NULL, "
        "(SELECT count(*) FROM intent_orders i WHERE i.run_id = r.id), "
        "(SELECT count(*) FROM order_events e WHERE e.run_id = r.id) "
        "FROM rebalance_runs r WHERE r.dag_id = :dag AND r.run_key = :key ORDER BY r.attempt"
    )
    with connect(db_url) as conn:
        rows = conn.execute(query, {"dag": DAG_ID, "key": run_key}).all()
    return [(int(a), str(s), bool(sup), int(i), int(e)) for a, s, sup, i, e in rows]


def _current_intent(db_url: str, run_key: str) -> list[tuple[str, str, float]]:
    query = sa.text(
        "SELECT i.rebalance_date, i.symbol, i.weight FROM intent_orders i JOIN rebalance_runs r ON r.id = i.run_id "
        "WHERE r.dag_id = :dag AND r.run_key = :key AND r.superseded_at IS NULL"
    )
    with connect(db_url) as conn:
        rows = conn.execute(query, {"dag": DAG_ID, "key": run_key}).all()
    return sorted((str(d)[:10], s, float(w)) for d, s, w in rows)


def _folder_intent(folder: RunFolder) -> list[tuple[str, str, float]]:
    return sorted((o.rebalance_date.isoformat(), o.symbol, o.weight) for o in folder.load_intent().intent_orders)


def test_a_rerun_with_changed_weights_replaces_the_runs_intent_and_events_and_keeps_the_old_attempt(
    lean_env: dict[str, str],
) -> None:
    db_url = lean_env["db_url"]
    first = _chain({"top_n": 2, "lookback_days": 10, "universe": []})
    assert first.outputs["consistency_check"]["verdict"] == "pass"
    folder = first.folder
    first_events = file_events(folder.results_dir, folder.algorithm_id)
    first_intent = _folder_intent(folder)

    second = _chain({"top_n": 3, "lookback_days": 10, "universe": []})  # same run key, other weights
    assert second.folder.path == folder.path
    second_events = file_events(folder.results_dir, folder.algorithm_id)
    second_intent = _folder_intent(folder)
    assert second_events != first_events and second_intent != first_intent

    # Exactly the new run's intent and events are the run's; its check passes on them.
    assert db_events(db_url, DAG_ID, folder.run_key) == second_events
    assert _current_intent(db_url, folder.run_key) == second_intent
    assert second.outputs["ingest_events"]["attempt"] == 2
    assert second.outputs["ingest_events"]["inserted"] == len(second_events)
    assert second.outputs["consistency_check"]["verdict"] == "pass"
    report = json.loads(folder.report_json_path.read_text())
    assert report["verdict"] == "pass"
    # The superseded attempt is history: its row, intent and events as they were.
    assert _attempts(db_url, folder.run_key) == [
        (1, "superseded", True, len(first_intent), len(first_events)),
        (2, "checked:pass", False, len(second_intent), len(second_events)),
    ]

    # The same inputs again: nothing changes (no third attempt, nothing inserted).
    third = _chain({"top_n": 3, "lookback_days": 10, "universe": []})
    assert third.outputs["ingest_events"]["attempt"] == 2
    assert third.outputs["ingest_events"]["inserted"] == 0
    assert [a[:3] for a in _attempts(db_url, folder.run_key)] == [(1, "superseded", True), (2, "checked:pass", False)]


def _event(order_id: int, event_id: int, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"A-{order_id}-{event_id}",
        "algorithmId": "A",
        "orderId": order_id,
        "orderEventId": event_id,
        "symbol": "ZZSA 2T",
        "symbolValue": "ZZSA",
        "symbolPermtick": "ZZSA",
        "time": 1612207800.0,
        "status": "filled",
        "direction": "buy",
        "fillPrice": 100.0,
        "fillPriceCurrency": "USD",
        "fillQuantity": 914.0,
        "orderFeeAmount": 9.14,
        "orderFeeCurrency": "USD",
        "quantity": 914.0,
        "isAssignment": False,
        "isInTheMoney": False,
    }
    event.update(changes)
    return event


def _write_events(results: Path, events: list[dict[str, Any]]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "A-order-events.json").write_text(json.dumps(events), encoding="utf-8")


@pytest.mark.parametrize("bogus_first", [True, False])
def test_two_versions_of_one_event_in_a_file_are_an_error_naming_both(
    db_url: str, tmp_path: Path, bogus_first: bool
) -> None:
    real = _event(1, 2)
    bogus = _event(1, 2, fillQuantity=920.0, fillPrice=10.0)
    events = [_event(1, 1, status="submitted", fillQuantity=0.0, fillPrice=0.0, orderFeeAmount=0.0)]
    events += [bogus, real] if bogus_first else [real, bogus]
    _write_events(tmp_path / "results", events)
    engine = make_engine(db_url)
    try:
        with pytest.raises(OrderEventConflictError) as caught:
            ingest_order_events(engine=engine, results_dir=tmp_path / "results", algorithm_id="A", run_key="k")
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "orderId=1, orderEventId=2" in message
    assert "fill_quantity=920.0" in message and "fill_quantity=914.0" in message
    assert "fill_price=10.0" in message and "fill_price=100.0" in message
    assert table_counts(db_url) == dict.fromkeys(
        ("rebalance_runs", "intent_orders", "order_events", "consistency_results"), 0
    )


def test_a_changed_results_file_reingested_under_the_same_inputs_is_an_error_not_already_present(
    db_url: str, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    _write_events(results, [_event(1, 1, status="submitted", fillQuantity=0.0, fillPrice=0.0), _event(1, 2)])
    engine = make_engine(db_url)
    try:
        first = ingest_order_events(
            engine=engine, results_dir=results, algorithm_id="A", run_key="k", inputs_sha256="a" * 64
        )
        assert first.inserted == 2
        again = ingest_order_events(
            engine=engine, results_dir=results, algorithm_id="A", run_key="k", inputs_sha256="a" * 64
        )
        assert (again.inserted, again.already_present, again.attempt) == (0, 2, 1)
        _write_events(
            results,
            [_event(1, 1, status="submitted", fillQuantity=0.0, fillPrice=0.0), _event(1, 2, status="canceled")],
        )
        with pytest.raises(OrderEventConflictError, match=r"status='filled'.*status='canceled'"):
            ingest_order_events(
                engine=engine, results_dir=results, algorithm_id="A", run_key="k", inputs_sha256="a" * 64
            )
        # Under other inputs the same file is a new attempt, stored beside the old one.
        other = ingest_order_events(
            engine=engine, results_dir=results, algorithm_id="A", run_key="k", inputs_sha256="b" * 64
        )
        assert (other.inserted, other.attempt, other.superseded_run_id) == (2, 2, first.audit_run_id)
    finally:
        engine.dispose()


def test_migration_to_attempts_keeps_every_row_of_an_existing_database(raw_db_url: str) -> None:
    upgrade_database(raw_db_url, "0001_audit_tables")
    engine = make_engine(raw_db_url)
    now = dt.datetime.now(dt.UTC)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO rebalance_runs (id, dag_id, run_key, mode, runtime, status, created_at, updated_at) "
                    "VALUES (7, 'd', 'k', 'backtest', 'local', 'checked:pass', :now, :now)"
                ),
                {"now": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO intent_orders (run_id, rebalance_date, symbol, side, weight) "
                    "VALUES (7, :day, 'ZZSA', 'BUY', 0.5)"
                ),
                {"day": dt.date(2021, 2, 1)},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO order_events (run_id, algorithm_id, order_id, order_event_id, symbol, symbol_value, "
                    "symbol_permtick, time, status, direction, fill_price, fill_price_currency, fill_quantity, "
                    "quantity, is_assignment, is_in_the_money, source_file) VALUES (7, 'a', 1, 1, 'ZZSA 2T', "
                    "'ZZSA', 'ZZSA', 1.0, 'submitted', 'buy', 0, 'USD', 0, 1, false, false, 'f.json')"
                )
            )
        upgrade_database(raw_db_url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id, attempt, superseded_at FROM rebalance_runs")).all() == [
                (7, 1, None)
            ]
            counts = [
                conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("intent_orders", "order_events")
            ]
            assert counts == [1, 1]
    finally:
        engine.dispose()


def test_a_run_where_lean_places_no_order_is_ingested_as_zero_events_and_checked(
    lean_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A weight worth a fraction of one share: Lean completes without an order and writes no events file."""
    monkeypatch.setenv("LEAN_AIRFLOW_WEIGHTS_DIRS", str(tmp_path))  # the file provider reads only there
    weights = tmp_path / "weights.csv"
    days = resolve_run(
        dag_id=DAG_ID,
        kind="range",
        run_type="manual",
        interval_session=None,
        params={"start_date": START, "end_date": END},
    )[1]
    weights.write_text("date,symbol,weight\n" + "".join(f"{d},ZZSA,0.00001\n" for d in days), encoding="utf-8")
    result = _chain({"path": str(weights)}, provider="file")
    folder = result.folder
    assert not list(folder.results_dir.glob("*order-events*.json"))
    ingested = result.outputs["ingest_events"]
    assert (ingested["events"], ingested["missing_file_ok"], ingested["lean_status"]) == (0, True, "Completed")
    assert result.outputs["consistency_check"]["verdict"] in ("pass", "warn")
    assert table_counts(lean_env["db_url"])["order_events"] == 0


def test_no_events_file_without_a_completed_lean_state_is_still_an_error(db_url: str, tmp_path: Path) -> None:
    from include.contracts.intent import build_order_intent

    intent = build_order_intent(run_key="k", rebalances={dt.date(2021, 2, 1): [{"symbol": "ZZSA", "weight": 0.5}]})
    results = tmp_path / "results"
    results.mkdir()
    engine = make_engine(db_url)
    try:
        with pytest.raises(OrderEventsMissingError, match="did Lean finish"):
            ingest_order_events(engine=engine, results_dir=results, algorithm_id="A", intent=intent)
        (results / "A-summary.json").write_text(json.dumps({"state": {"Status": "RuntimeError"}}))
        with pytest.raises(OrderEventsMissingError, match="'RuntimeError', not 'Completed'"):
            ingest_order_events(engine=engine, results_dir=results, algorithm_id="A", intent=intent)
        (results / "A-summary.json").write_text(json.dumps({"state": {"Status": "Completed", "OrderCount": "3"}}))
        with pytest.raises(OrderEventsMissingError, match="counts 3 orders"):
            ingest_order_events(engine=engine, results_dir=results, algorithm_id="A", intent=intent)
        (results / "A-summary.json").write_text(json.dumps({"state": {"Status": "Completed", "OrderCount": "0"}}))
        summary = ingest_order_events(engine=engine, results_dir=results, algorithm_id="A", intent=intent)
        assert (summary.events, summary.lean_status) == (0, "Completed")
    finally:
        engine.dispose()
