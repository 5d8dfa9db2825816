"""What the consistency check must fail (issue #18, "the check fails what it must"), and the
run without orders it must explain: each scenario is a run folder around the hand-written
fixtures (``scenario.make_run``) whose events file is replaced, ingested into SQLite and
PostgreSQL, then checked."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from include.audit.consistency import check_run_folder
from include.audit.findings import Findings
from include.audit.ingest import NEW_YORK
from include.audit.order_checks import check_sequence
from include.audit.orders import events_frame, order_frame
from include.contracts.params import write_execution_params
from include.contracts.report import ConsistencyReport
from include.errors import ConsistencyCheckFailed
from include.run_folder import RunFolder
from tests.include.audit.scenario import ALGORITHM_ID, PARAMS, REBALANCE, RUN_KEY, ingest, make_run

DAY_BEFORE = dt.date(2021, 3, 29)
DAY_AFTER = dt.date(2021, 3, 31)  # no bar in the scenario's data


def _at(day: dt.date, hour: int, minute: int = 0) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=NEW_YORK).timestamp()


def _event(
    order_id: int,
    event_id: int,
    symbol: str,
    time: float,
    status: str,
    quantity: float,
    fill_quantity: float = 0.0,
    fill_price: float = 0.0,
) -> dict[str, Any]:
    """One Lean order event as Lean writes it (fee: the scenario's fee_bps 1 of the fill notional)."""
    event: dict[str, Any] = {
        "id": f"{ALGORITHM_ID}-{order_id}-{event_id}",
        "algorithmId": ALGORITHM_ID,
        "orderId": order_id,
        "orderEventId": event_id,
        "symbol": f"{symbol} R735QTJ8XC9X",
        "symbolValue": symbol,
        "symbolPermtick": symbol,
        "time": time,
        "status": status,
        "fillPrice": fill_price,
        "fillPriceCurrency": "USD",
        "fillQuantity": fill_quantity,
        "direction": "buy" if quantity > 0 else "sell",
        "isAssignment": False,
        "quantity": quantity,
    }
    if fill_quantity:
        event["orderFeeAmount"] = round(1e-4 * abs(fill_quantity) * fill_price, 10)
        event["orderFeeCurrency"] = "USD"
    return event


SUBMIT = _at(REBALANCE, 0)
OPEN = _at(REBALANCE, 9, 30)
SPY_OPEN_BUY = 401.2005  # the open 401 plus 5 bp slippage
AAPL_SELL = _event(1, 1, "AAPL", SUBMIT, "submitted", -100.0)
AAPL_FILL = _event(1, 2, "AAPL", OPEN, "filled", -100.0, -100.0, 99.95)
SPY_SUBMIT = _event(2, 1, "SPY", SUBMIT, "submitted", 75.0)


def _run(tmp_path: Path, events: list[dict[str, Any]], weights: dict[str, float] | None = None) -> RunFolder:
    folder = make_run(tmp_path, "clean", weights=weights or {"SPY": 0.5, "AAPL": 0.0})
    (folder.results_dir / f"{ALGORITHM_ID}-order-events.json").write_text(json.dumps(events), encoding="utf-8")
    return folder


def _check(folder: RunFolder, engine: Engine, policy: str = "warn") -> ConsistencyReport:
    ingest(folder, engine)
    return check_run_folder(folder, engine=engine, policy=policy)  # type: ignore[arg-type]


def _fails(report: ConsistencyReport, check: str) -> list[str]:
    return [f"{c.symbol}: {c.message}" for c in report.checks if c.check == check and c.verdict == "fail"]


def _clean_events(*spy: dict[str, Any]) -> list[dict[str, Any]]:
    return [AAPL_SELL, AAPL_FILL, SPY_SUBMIT, *spy]


SPY_FILLED = _event(2, 2, "SPY", OPEN, "filled", 75.0, 75.0, SPY_OPEN_BUY)


def test_the_clean_scenario_passes(db_engine: Engine, tmp_path: Path) -> None:
    """The baseline every scenario below changes one thing of."""
    report = _check(_run(tmp_path, _clean_events(SPY_FILLED)), db_engine, policy="fail")
    assert report.verdict == "pass", report.failures
    assert {c.check for c in report.checks} >= {"unexpected_date", "order_sequence", "overfill"}


# ---------------------------------------------------------------------------- 1. outside the intent


def test_an_event_before_the_first_rebalance_fails(db_engine: Engine, tmp_path: Path) -> None:
    """An order on the session before the first rebalance: unlinked, it used to pass unchecked."""
    early = [
        _event(3, 1, "SPY", _at(DAY_BEFORE, 10), "submitted", 1.0),
        _event(3, 2, "SPY", _at(DAY_BEFORE, 16), "filled", 1.0, 1.0, 400.2),  # the close 400 + 5 bp
    ]
    report = _check(_run(tmp_path, _clean_events(SPY_FILLED, *early)), db_engine)
    assert report.verdict == "fail"
    assert _fails(report, "unexpected_date") == [
        "SPY: order 3 (SPY, 2021-03-29): event before the first rebalance 2021-03-30"
    ]


def test_an_order_in_a_symbol_of_no_rebalance_fails(db_engine: Engine, tmp_path: Path) -> None:
    """IBM is in no rebalance and was not held at the start: Lean's algorithm never subscribes it.
    Before the first rebalance it used to pass; on a rebalance day it names the order now."""
    ibm = [
        _event(3, 1, "IBM", _at(DAY_BEFORE, 10), "submitted", 10.0),
        _event(3, 2, "IBM", _at(DAY_BEFORE, 16), "filled", 10.0, 10.0, 130.065),
        _event(4, 1, "IBM", SUBMIT, "submitted", 10.0),
        _event(4, 2, "IBM", OPEN, "filled", 10.0, 10.0, 130.065),
    ]
    report = _check(_run(tmp_path, _clean_events(SPY_FILLED, *ibm)), db_engine)
    messages = _fails(report, "unexpected_symbol")
    assert messages == [
        "IBM: order 3 (IBM, 2021-03-29): symbol in no rebalance of the intent and not held at the start",
        "IBM: order 4 (IBM, 2021-03-30): symbol in no rebalance of the intent and not held at the start",
    ]
    assert next(s for s in report.symbols if s.symbol == "IBM").verdict == "fail"


def test_selling_a_starting_holding_outside_the_intent_is_expected(db_engine: Engine, tmp_path: Path) -> None:
    """AAPL is held at the start and left out of the intent: the rules sell it, no unexpected_symbol."""
    report = _check(_run(tmp_path, _clean_events(SPY_FILLED), weights={"SPY": 0.5}), db_engine)
    assert not _fails(report, "unexpected_symbol") and report.verdict == "pass", report.failures


# ---------------------------------------------------------------------------- 2. fills above the quantity


def test_fills_above_the_order_quantity_fail(db_engine: Engine, tmp_path: Path) -> None:
    fills = [
        _event(2, 2, "SPY", OPEN, "partiallyFilled", 75.0, 40.0, SPY_OPEN_BUY),
        _event(2, 3, "SPY", OPEN + 60, "filled", 75.0, 36.0, SPY_OPEN_BUY),
    ]
    report = _check(_run(tmp_path, _clean_events(*fills)), db_engine)
    assert _fails(report, "overfill") == ["SPY: order 2 (SPY, 2021-03-30): filled 76 shares on a 75-share order"]
    assert not _fails(report, "order_sequence")


def test_an_order_reported_filled_with_fewer_shares_fails(db_engine: Engine, tmp_path: Path) -> None:
    """Lean's Filled means the whole quantity; fewer shares would be PartiallyFilled."""
    short = _event(2, 2, "SPY", OPEN, "filled", 75.0, 70.0, SPY_OPEN_BUY)
    report = _check(_run(tmp_path, _clean_events(short)), db_engine)
    assert _fails(report, "overfill") == [
        "SPY: order 2 (SPY, 2021-03-30): filled 70 shares on a 75-share order that Lean reports as filled"
    ]


# ---------------------------------------------------------------------------- 3. after a terminal state


def test_a_fill_after_filled_fails_twice(db_engine: Engine, tmp_path: Path) -> None:
    late = _event(2, 3, "SPY", OPEN + 3600, "filled", 75.0, 1.0, SPY_OPEN_BUY)
    report = _check(_run(tmp_path, _clean_events(SPY_FILLED, late)), db_engine)
    assert _fails(report, "order_sequence") == [
        "SPY: order 2 (SPY, 2021-03-30): event 3 filled after the order was filled"
    ]
    assert _fails(report, "overfill") == ["SPY: order 2 (SPY, 2021-03-30): filled 76 shares on a 75-share order"]


def test_canceled_after_filled_fails(db_engine: Engine, tmp_path: Path) -> None:
    """It used to end as a canceled order: a warning."""
    cancel = _event(2, 3, "SPY", OPEN + 60, "canceled", 75.0)
    with pytest.raises(ConsistencyCheckFailed):
        _check(_run(tmp_path, _clean_events(SPY_FILLED, cancel)), db_engine, policy="fail")


def test_canceled_after_filled_names_the_order(db_engine: Engine, tmp_path: Path) -> None:
    cancel = _event(2, 3, "SPY", OPEN + 60, "canceled", 75.0)
    report = _check(_run(tmp_path, _clean_events(SPY_FILLED, cancel)), db_engine)
    assert _fails(report, "order_sequence") == [
        "SPY: order 2 (SPY, 2021-03-30): event 3 canceled after the order was filled"
    ]


def test_a_fill_on_an_order_never_submitted_fails(db_engine: Engine, tmp_path: Path) -> None:
    unsubmitted = _event(2, 1, "SPY", OPEN, "filled", 75.0, 75.0, SPY_OPEN_BUY)
    report = _check(_run(tmp_path, [AAPL_SELL, AAPL_FILL, unsubmitted]), db_engine)
    assert _fails(report, "order_sequence") == [
        "SPY: order 2 (SPY, 2021-03-30): event 1 filled but the order was never submitted"
    ]


def _sequence(*statuses: str | tuple[str, float]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for i, item in enumerate(statuses, start=1):
        status, fill = (item, 0.0) if isinstance(item, str) else item
        rows.append((1, i, "SPY", SUBMIT + i, status, "buy", 400.0 if fill else 0.0, fill, None, 10.0, None, None))
    return rows


@pytest.mark.parametrize(
    ("statuses", "why"),
    [
        (("submitted", ("filled", 10.0)), None),
        (("new", "submitted", ("partiallyFilled", 4.0), "updateSubmitted", ("filled", 6.0)), None),
        (("submitted", "cancelPending", ("partiallyFilled", 4.0), "canceled"), None),
        (("submitted", "cancelPending", ("filled", 10.0)), None),
        (("invalid",), None),
        (("submitted", "invalid"), None),
        (("new", "canceled"), None),
        (("submitted", ("filled", 10.0), "canceled"), "event 3 canceled after the order was filled"),
        (("invalid", "submitted"), "event 2 submitted after the order was invalid"),
        (("submitted", "canceled", ("filled", 10.0)), "event 3 filled after the order was canceled"),
        ((("partiallyFilled", 4.0), "submitted"), "event 1 partiallyFilled but the order was never submitted"),
        (("new", ("filled", 10.0)), "event 2 filled but the order was never submitted"),
        (("submitted", "new"), "event 2 new after submitted"),
        (("submitted", ("submitted", 10.0)), "event 2 fills 10 with status submitted"),
    ],
)
def test_lean_status_sequences(statuses: tuple[str | tuple[str, float], ...], why: str | None) -> None:
    events = events_frame(_sequence(*statuses))
    findings = Findings()
    check_sequence(events, order_frame(events, rebalance_dates=[REBALANCE]), findings)
    (result,) = findings.results
    if why is None:
        assert result.verdict == "pass", result.message
    else:
        assert (result.verdict, result.message) == ("fail", f"order 1 (SPY, 2021-03-30): {why}")


# ---------------------------------------------------------------------------- 4. the fill's session


@pytest.mark.parametrize("policy", ["warn", "fail"])
def test_a_fill_on_a_session_without_a_bar_fails_in_both_policies(
    db_engine: Engine, tmp_path: Path, policy: str
) -> None:
    late = _event(2, 2, "SPY", _at(DAY_AFTER, 16), "filled", 75.0, 75.0, SPY_OPEN_BUY)
    folder = _run(tmp_path, _clean_events(late))
    if policy == "fail":
        with pytest.raises(ConsistencyCheckFailed, match="slippage"):
            _check(folder, db_engine, policy="fail")
        report = ConsistencyReport.model_validate_json(folder.report_json_path.read_text(encoding="utf-8"))
    else:
        report = _check(folder, db_engine)
    assert report.verdict == "fail"
    assert _fails(report, "slippage") == [
        "SPY: 1 fills on a session without a daily bar; first: order 2 (SPY, 2021-03-31): no daily bar for "
        "that session, fill price 401.2 not checked"
    ]


def test_a_fill_stamped_at_midnight_is_judged_against_the_session_it_ends(db_engine: Engine, tmp_path: Path) -> None:
    """Lean without daily precise end times stamps a daily-bar fill at the bar's end, the next
    New York midnight: that fill belongs to the session before (here the rebalance day's close 402)."""
    at_close = _event(2, 2, "SPY", _at(DAY_AFTER, 0), "filled", 75.0, 75.0, 402.201)
    report = _check(_run(tmp_path, _clean_events(at_close)), db_engine)
    assert not _fails(report, "slippage"), report.failures
    assert [c.verdict for c in report.checks if c.check == "slippage"] == ["pass"]


# ---------------------------------------------------------------------------- 5. recomputation per symbol


def test_a_zero_weight_symbol_without_data_skips_only_itself(db_engine: Engine, tmp_path: Path) -> None:
    """MSFT (target 0, not held) has no bars: SPY is still recomputed, and Lean's 80 caught."""
    wrong = [
        _event(2, 1, "SPY", SUBMIT, "submitted", 80.0),
        _event(2, 2, "SPY", OPEN, "filled", 80.0, 80.0, SPY_OPEN_BUY),
    ]
    weights = {"SPY": 0.5, "AAPL": 0.0, "MSFT": 0.0}
    report = _check(_run(tmp_path, [AAPL_SELL, AAPL_FILL, *wrong], weights=weights), db_engine)
    assert _fails(report, "recomputation") == ["SPY: expected quantity 75 (build_orders), Lean ordered 80"]
    warned = [c for c in report.checks if c.check == "recomputation" and c.verdict == "warn"]
    assert [(c.symbol, c.message) for c in warned] == [
        ("MSFT", "no reference price for MSFT before 2021-03-30 (target 0, not held): MSFT not recomputed, "
         "the other symbols are")
    ]  # fmt: skip
    rows = {s.symbol: s for s in report.symbols}
    assert rows["SPY"].expected_quantity == 75 and rows["AAPL"].expected_quantity == -100
    assert rows["MSFT"].expected_quantity is None


def test_a_zero_weight_symbol_without_data_does_not_fail_a_clean_run(db_engine: Engine, tmp_path: Path) -> None:
    weights = {"SPY": 0.5, "AAPL": 0.0, "MSFT": 0.0}
    report = _check(_run(tmp_path, _clean_events(SPY_FILLED), weights=weights), db_engine)
    assert report.verdict == "warn", report.failures  # MSFT is not checked: said, not failed
    assert [c.message for c in report.checks if c.check == "recomputation" and c.symbol == "SPY"] == [
        "quantity 75 matches"
    ]


# ---------------------------------------------------------------------------- 6. a run without orders


@pytest.mark.parametrize(
    ("weights", "params", "reason"),
    [
        (
            {"SPY": 0.001},
            {},
            "target 0.125 shares of SPY (weight 0.001 x 50,000.00 USD investable / 400 USD) rounds to 0 with "
            "lot_size 1",
        ),
        (
            {"SPY": 0.5, "QQQ": 0.3},
            {"lot_size": 100, "min_qty": 100},
            "target 62.5 shares of SPY (weight 0.5 x 50,000.00 USD investable / 400 USD) rounds to 0 with lot_size 100",
        ),
        (
            {"SPY": 0.5},
            {"cash_buffer_ratio": 0.999},
            "target 0.0625 shares of SPY (weight 0.5 x 50.00 USD investable / 400 USD) rounds to 0 with lot_size 1; "
            "cash_buffer_ratio 0.999 holds back 49,950.00 of 50,000.00 USD",
        ),
        (
            {"SPY": 0.05},
            {"min_qty": 100, "cash_buffer_ratio": 0.3},
            "a buy of 100 shares of SPY is dropped: the cash left after the cash buffer (0.3 x 50,000.00 USD held "
            "back) and the orders before it is 35,000.00 USD, below the 40,024.00 USD that min_qty 100 (lot_size 1) "
            "costs at 400.2 USD",
        ),
    ],
)
def test_a_run_without_orders_is_explained_per_symbol(
    db_engine: Engine, tmp_path: Path, weights: dict[str, float], params: dict[str, Any], reason: str
) -> None:
    """Zero events for the run, non-zero targets: the rules (algorithms.execution_rules) say why."""
    folder = _run(tmp_path, [], weights=weights)
    folder.initial_state_path.write_text(json.dumps({"cash": 50_000.0, "holdings": {}}), encoding="utf-8")
    write_execution_params(output_dir=folder.path, run_id=RUN_KEY, params={**PARAMS, **params})
    report = _check(folder, db_engine, policy="fail")
    assert (report.events, report.orders, report.verdict) == (0, 0, "pass"), report.failures
    spy = [c.message for c in report.checks if c.check == "recomputation" and c.symbol == "SPY"]
    assert spy == [f"no order, as the rules give: {reason}"]
    assert any(
        c.check == "recomputation" and c.symbol is None and c.message.startswith("Lean placed no order")
        for c in report.checks
    )
    assert all(s.orders == 0 and s.expected_quantity == 0 for s in report.symbols)
