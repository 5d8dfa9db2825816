"""A live run's results as Lean live leaves them, built by hand: per-UTC-day event files, a LiveResult
``<id>.json`` (no summary), the algorithm's ``done-<D>.json`` and ``final-state.json``.

Session D = 2021-03-30 (New York, UTC-4): the run starts at 15:10, submits market-on-close orders
(Lean order type 5), they fill at D's close; the SPY fill is reported after UTC midnight, so SPY's
order spans the files of two UTC days (its submitted event is in both, as Lean's rewrite at the
UTC date roll leaves it).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from include.audit.consistency import check_run_folder
from include.audit.db import OrderEventRow
from include.audit.ingest import ingest_and_record_run
from include.contracts.intent import write_order_intent
from include.contracts.live import LiveRunFileError, LiveSessionNotDoneError, read_live_result
from include.contracts.params import write_execution_params
from include.errors import OrderEventsFileError
from include.reporting.html import render_run_page
from include.reporting.run_view import load_run_view
from include.run_folder import RunFolder, RunRef
from tests.include.audit.scenario import BARS, PARAMS, reference_build_orders
from tests.lean_data_factory import write_daily_zip

D = dt.date(2021, 3, 30)
RUN_KEY = "20210330"
DAG_ID = "lean_live_rebalance"
SUBMIT = dt.datetime(2021, 3, 30, 19, 10, tzinfo=dt.UTC).timestamp()  # 15:10 New York
CLOSE = dt.datetime(2021, 3, 30, 20, 0, tzinfo=dt.UTC).timestamp()  # 16:00 New York
LATE = dt.datetime(2021, 3, 31, 0, 5, tzinfo=dt.UTC).timestamp()  # 20:05 New York, the next UTC day
DEADLINE = dt.datetime(2021, 3, 30, 20, 10, tzinfo=dt.UTC).timestamp()  # close + 10 min
WEIGHTS = {"SPY": 0.5, "AAPL": 0.3}
SIDS = {"SPY": "SPY R735QTJ8XC9X", "AAPL": "AAPL R735QTJ8XC9X"}
# Sized on D-1's close (SPY 400, AAPL 100) from 50,000 USD: 62 SPY, 150 AAPL; filled at D's close.
SPY_FILL, AAPL_FILL = 402.1, 100.5


def _event(order_id: int, event_id: int, symbol: str, time: float, status: str, quantity: float, **fill: Any) -> dict:
    price, filled = fill.get("price", 0.0), fill.get("filled", 0.0)
    event = {
        "id": f"{RUN_KEY}-{order_id}-{event_id}",
        "algorithmId": RUN_KEY,
        "orderId": order_id,
        "orderEventId": event_id,
        "symbol": SIDS[symbol],
        "symbolValue": symbol,
        "symbolPermtick": symbol,
        "time": time,
        "status": status,
        "fillPrice": price,
        "fillPriceCurrency": "USD",
        "fillQuantity": filled,
        "direction": "buy" if quantity > 0 else "sell",
        "isAssignment": False,
        "quantity": quantity,
    }
    if filled:
        event |= {
            "orderFeeAmount": round(abs(filled) * price * PARAMS["fee_bps"] / 10_000, 6),
            "orderFeeCurrency": "USD",
        }
    return event


def _account(aapl_filled: bool) -> dict[str, Any]:
    cash = 50_000.0 - 62 * SPY_FILL * 1.0001
    holdings = {"SPY": {"quantity": 62.0, "average_price": SPY_FILL}}
    if aapl_filled:
        cash -= 150 * AAPL_FILL * 1.0001
        holdings["AAPL"] = {"quantity": 150.0, "average_price": AAPL_FILL}
    return {"cash": cash, "holdings": holdings}


def make_live_run(tmp_path: Path, *, aapl_filled: bool = True, brokerage: str = "PaperBrokerage") -> RunFolder:
    """A live run of D whose engine finished: SPY and AAPL bought with MOC orders (AAPL canceled at the
    deadline unless ``aapl_filled``)."""
    folder = RunFolder.create(RunRef(DAG_ID, RUN_KEY), root=tmp_path / "artifacts")
    data = tmp_path / "data"
    for ticker in ("SPY", "AAPL"):
        write_daily_zip(data, ticker, BARS[ticker])
    write_order_intent(
        output_dir=folder.path,
        run_key=RUN_KEY,
        rebalances={D: [{"symbol": s, "weight": w} for s, w in WEIGHTS.items()]},
        source="test",
    )
    write_execution_params(output_dir=folder.path, run_id=RUN_KEY, params=PARAMS)
    algorithm = tmp_path / "algo" / "main.py"
    algorithm.parent.mkdir(exist_ok=True)
    algorithm.write_text("# algorithm under audit\n", encoding="utf-8")
    config = {
        "environment": "live-airflow",
        "algorithm-id": RUN_KEY,
        "algorithm-location": str(algorithm),
        "data-folder": str(data),
        "parameters": {"starting-cash": "50000"},
        "live-cash-balance": [{"amount": 50_000.0, "currency": "USD"}],
        "environments": {"live-airflow": {"live-mode": True, "live-mode-brokerage": brokerage}},
    }
    folder.config_path.write_text(json.dumps(config), encoding="utf-8")
    folder.snapshots_path.write_text("{}\n", encoding="utf-8")
    results = folder.results_dir
    results.mkdir()
    spy_submitted = _event(1, 1, "SPY", SUBMIT, "submitted", 62)
    aapl = [_event(2, 1, "AAPL", SUBMIT, "submitted", 150)]
    if aapl_filled:
        aapl.append(_event(2, 2, "AAPL", CLOSE, "filled", 150, price=AAPL_FILL, filled=150))
    else:
        aapl.append(_event(2, 2, "AAPL", DEADLINE, "canceled", 150))
    day_one = [spy_submitted, *aapl]
    day_two = [spy_submitted, _event(1, 2, "SPY", LATE, "filled", 62, price=SPY_FILL, filled=62)]
    (results / f"{RUN_KEY}-2021-03-30-order-events.json").write_text(json.dumps(day_one), encoding="utf-8")
    (results / f"{RUN_KEY}-2021-03-31-order-events.json").write_text(json.dumps(day_two), encoding="utf-8")
    account = _account(aapl_filled)
    (results / "final-state.json").write_text(json.dumps(account), encoding="utf-8")
    orders = [
        {"id": 1, "symbol": "SPY", "quantity": 62.0, "status": "Filled", "tag": f"rebalance {D}"},
        {"id": 2, "symbol": "AAPL", "quantity": 150.0, "status": "Filled" if aapl_filled else "Canceled"},
    ]
    done = {
        "version": 1,
        "date": D.isoformat(),
        "algorithmId": RUN_KEY,
        "reason": "terminal" if aapl_filled else "deadline",
        "orders": orders,
        "account": account,
    }
    (results / f"done-{D.isoformat()}.json").write_text(json.dumps(done), encoding="utf-8")
    live_result = {
        "orders": {str(i): {"id": i, "type": 5, "priceAdjustmentMode": 0} for i in (1, 2)},
        "holdings": {
            SIDS[s]: {"c": "$", "a": h["average_price"], "q": h["quantity"], "p": 402.0}
            for s, h in account["holdings"].items()
        },
        "cash": {"USD": {"symbol": "USD", "amount": account["cash"], "conversionRate": 1.0}},
        "accountCurrency": "USD",
        "accountCurrencySymbol": "$",
        "charts": {},
        "profitLoss": {},
        "statistics": {"Net Profit": "0.012%", "Total Orders": "2", "Total Fees": "$4.00"},
        "runtimeStatistics": {"Equity": "$50,006.20", "Holdings": "$40,000.00", "Net Profit": "$6.20"},
        "state": {"Status": "Completed", "OrderCount": "2"},
    }
    (results / f"{RUN_KEY}.json").write_text(json.dumps(live_result), encoding="utf-8")
    (results / "log.txt").write_text("engine log\n", encoding="utf-8")
    return folder


def _stored(engine: Engine) -> list[tuple[int, int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(OrderEventRow.order_id, OrderEventRow.order_event_id, OrderEventRow.status).order_by(
                OrderEventRow.order_id, OrderEventRow.order_event_id
            )
        )
        return [(int(a), int(b), str(c)) for a, b, c in rows]


def test_events_of_every_utc_day_are_ingested_once_also_on_reingest(tmp_path: Path, db_engine: Engine) -> None:
    folder = make_live_run(tmp_path)
    summary = ingest_and_record_run(db_engine, folder)
    assert summary.files == [f"{RUN_KEY}-2021-03-30-order-events.json", f"{RUN_KEY}-2021-03-31-order-events.json"]
    # SPY's submitted event is in both files: read 5 times, stored once; the order spans two UTC days.
    assert (summary.events, summary.inserted, summary.already_present) == (5, 4, 1)
    assert summary.live_done == "terminal"
    assert _stored(db_engine) == [(1, 1, "submitted"), (1, 2, "filled"), (2, 1, "submitted"), (2, 2, "filled")]
    again = ingest_and_record_run(db_engine, folder)
    assert (again.inserted, again.already_present, again.audit_run_id) == (0, 5, summary.audit_run_id)
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OrderEventRow)).scalar_one() == 4


def test_a_live_run_without_its_done_file_is_a_named_error_and_stores_nothing(
    tmp_path: Path, db_engine: Engine
) -> None:
    folder = make_live_run(tmp_path)
    (folder.results_dir / f"done-{D.isoformat()}.json").unlink()
    with pytest.raises(LiveSessionNotDoneError, match="did not finish the session") as caught:
        ingest_and_record_run(db_engine, folder)
    message = str(caught.value)
    assert "done-2021-03-30.json" in message and "Completed" in message and "clear" in message
    assert str(tmp_path) not in message.splitlines()[0]  # names the run, not the machine's path
    assert _stored(db_engine) == [] and not folder.manifest_path.exists()


def test_a_done_file_of_another_session_is_refused(tmp_path: Path, db_engine: Engine) -> None:
    folder = make_live_run(tmp_path)
    path = folder.results_dir / f"done-{D.isoformat()}.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"date": "2021-03-29"}), encoding="utf-8")
    with pytest.raises(LiveRunFileError, match="expected the run's session 2021-03-30"):
        ingest_and_record_run(db_engine, folder)


def test_a_truncated_live_events_file_after_exit_is_a_named_error(tmp_path: Path, db_engine: Engine) -> None:
    folder = make_live_run(tmp_path)
    day_two = folder.results_dir / f"{RUN_KEY}-2021-03-31-order-events.json"
    day_two.write_bytes(day_two.read_bytes()[:-40])  # Lean's non-atomic rewrite, cut short
    with pytest.raises(OrderEventsFileError, match="truncated JSON"):
        ingest_and_record_run(db_engine, folder)
    assert _stored(db_engine) == []


def test_a_filled_live_session_passes_with_moc_fills_at_the_close(tmp_path: Path, db_engine: Engine) -> None:
    folder = make_live_run(tmp_path)
    ingest_and_record_run(db_engine, folder)
    report = check_run_folder(folder, engine=db_engine, policy="warn", build_orders=reference_build_orders)
    by_check = {c.check: c for c in report.checks if c.verdict != "pass"}
    assert "live_session" not in by_check and "live_account" not in by_check, by_check
    assert {c.check for c in report.checks} >= {"live_session", "live_account", "slippage", "recomputation"}
    assert not [c for c in report.checks if c.check in ("slippage", "recomputation", "fees") and c.verdict == "fail"]
    # Sized on D-1's close (the reference price), as the algorithm does before D's close.
    assert {r.symbol: r.reference_price for r in report.symbols} == {"AAPL": 100.0, "SPY": 400.0}


def test_a_moc_fill_away_from_the_close_fails_slippage(tmp_path: Path, db_engine: Engine) -> None:
    folder = make_live_run(tmp_path)
    day_two = folder.results_dir / f"{RUN_KEY}-2021-03-31-order-events.json"
    events = json.loads(day_two.read_text())
    events[1] |= {"fillPrice": 403.0, "orderFeeAmount": round(62 * 403.0 / 10_000, 6)}  # D's high, not its close
    day_two.write_text(json.dumps(events), encoding="utf-8")
    ingest_and_record_run(db_engine, folder)
    report = check_run_folder(folder, engine=db_engine, policy="warn", build_orders=reference_build_orders)
    failed = [c for c in report.checks if c.check == "slippage" and c.verdict == "fail"]
    assert [c.symbol for c in failed] == ["SPY"] and "close 402.0" in failed[0].message


def test_an_order_canceled_at_the_deadline_fails_the_check(tmp_path: Path, db_engine: Engine) -> None:
    folder = make_live_run(tmp_path, aapl_filled=False)
    ingest_and_record_run(db_engine, folder)
    report = check_run_folder(folder, engine=db_engine, policy="warn", build_orders=reference_build_orders)
    assert report.verdict == "fail"
    failed = [c for c in report.checks if c.check == "live_session" and c.verdict == "fail"]
    assert len(failed) == 1
    assert failed[0].symbol == "AAPL" and failed[0].date == D
    assert "Canceled" in failed[0].message and "deadline" in failed[0].message
    assert failed[0].details["status"] == "Canceled"
    aapl = next(r for r in report.symbols if r.symbol == "AAPL")
    assert aapl.verdict == "fail" and any("live_session" in p for p in aapl.problems)


def test_the_account_is_compared_with_final_state_and_the_brokers_holdings(tmp_path: Path, db_engine: Engine) -> None:
    folder = make_live_run(tmp_path, brokerage="InteractiveBrokersBrokerage")
    result_path = folder.results_dir / f"{RUN_KEY}.json"
    result = json.loads(result_path.read_text())
    result["holdings"][SIDS["SPY"]]["q"] = 60.0  # the broker holds 60, the fills say 62
    result_path.write_text(json.dumps(result), encoding="utf-8")
    final_path = folder.results_dir / "final-state.json"
    final = json.loads(final_path.read_text())
    final["holdings"]["AAPL"]["quantity"] = 149.0
    final_path.write_text(json.dumps(final), encoding="utf-8")
    ingest_and_record_run(db_engine, folder)
    report = check_run_folder(folder, engine=db_engine, policy="warn", build_orders=reference_build_orders)
    failed = [c for c in report.checks if c.check == "live_account" and c.verdict == "fail"]
    assert [(c.symbol, c.date) for c in failed] == [("AAPL", D), ("SPY", D)]
    assert "final-state.json holds 149 shares, the start and the fills give 150" in failed[0].message
    assert "the broker holds 60 shares" in failed[1].message and failed[1].details["real_broker"] is True


def test_the_report_page_of_a_live_run_renders_from_the_live_result(tmp_path: Path, db_engine: Engine) -> None:
    folder = make_live_run(tmp_path)
    assert not (folder.results_dir / f"{RUN_KEY}-summary.json").exists()
    live = read_live_result(folder.results_dir / f"{RUN_KEY}.json")
    assert live is not None and live.holdings == {"SPY": 62.0, "AAPL": 150.0}
    ingest_and_record_run(db_engine, folder)
    check_run_folder(folder, engine=db_engine, policy="warn", build_orders=reference_build_orders)
    view = load_run_view(folder)
    assert view.live and view.statistics["Total Orders"] == "2" and view.runtime_statistics["Equity"] == "$50,006.20"
    page = render_run_page(view)
    assert 'id="run-header"' in page and "Live run: Lean writes no results summary" in page
    assert 'data-statistic="Total Orders"' in page and 'id="runtime-statistics"' in page
    assert 'id="live-holdings"' in page and "SPY" in page and "Lean runtime statistics" in page
    assert folder.report_html_path.exists() and "Live run" in folder.report_html_path.read_text(encoding="utf-8")


def test_a_live_run_without_statistics_still_renders(tmp_path: Path) -> None:
    folder = make_live_run(tmp_path)
    result_path = folder.results_dir / f"{RUN_KEY}.json"
    result = json.loads(result_path.read_text())
    for key in ("statistics", "runtimeStatistics"):
        result.pop(key)
    result_path.write_text(json.dumps(result), encoding="utf-8")
    page = render_run_page(load_run_view(folder))
    assert "No statistics in Lean's LiveResult" in page and "Live run" in page
    shutil.rmtree(folder.results_dir)
    assert "No statistics: Lean wrote no results summary." in render_run_page(load_run_view(folder))
