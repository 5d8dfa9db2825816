"""Every finding carries the session it concerns and colours only its own (date, symbol) row (issue #17)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from include.audit.consistency import check_run_folder
from include.audit.db import ConsistencyResultRow
from include.audit.findings import Findings
from include.contracts.report import REPORT_SCHEMA_VERSION, ConsistencyReport, SymbolVerdict
from tests.include.audit.scenario import REBALANCE, ingest, make_run, reference_build_orders

MONDAY, TUESDAY = dt.date(2021, 3, 29), dt.date(2021, 3, 30)


def _row(day: dt.date, symbol: str = "SPY") -> SymbolVerdict:
    return SymbolVerdict(symbol=symbol, rebalance_date=day, verdict="pass", in_intent=True)


def test_a_finding_folds_into_its_own_row_only() -> None:
    """A fill finding of Tuesday's order fails Tuesday's SPY row; Monday's SPY row and the run-level
    finding stay as they were (the check used to fold a fill finding into every row of its symbol)."""
    findings = Findings()
    findings.add("slippage", "fail", "fill outside the band", symbol="SPY", day=TUESDAY, order_ids=[7])
    findings.add("fees", "pass", "all fills pass")
    findings.add("recomputation", "pass", "matches", symbol="SPY", day=MONDAY)
    folded = findings.fold([_row(MONDAY), _row(TUESDAY), _row(TUESDAY, "QQQ")])
    assert [(r.rebalance_date, r.symbol, r.verdict) for r in folded] == [
        (MONDAY, "SPY", "pass"),
        (TUESDAY, "SPY", "fail"),
        (TUESDAY, "QQQ", "pass"),
    ]
    assert folded[1].problems == ("slippage: fill outside the band",)
    assert [(c.check, c.date) for c in findings.results] == [
        ("slippage", TUESDAY),
        ("fees", None),
        ("recomputation", MONDAY),
    ]
    assert all("rebalance_date" not in c.details for c in findings.results)


def test_a_version_2_report_still_reads_with_its_findings_dated() -> None:
    """Version 2 kept a finding's date in ``details["rebalance_date"]`` (fill findings had none)."""
    old = {
        "schema_version": 2,
        "dag_id": "d",
        "run_key": "k",
        "policy": "warn",
        "verdict": "fail",
        "generated_at": "2021-03-31T00:00:00Z",
        "events": 0,
        "orders": 0,
        "symbols": [],
        "checks": [
            {
                "check": "recomputation",
                "symbol": "SPY",
                "verdict": "fail",
                "message": "m",
                "details": {"rebalance_date": "2021-03-30"},
            },
            {"check": "slippage", "symbol": "SPY", "verdict": "fail", "message": "m", "details": {}},
        ],
    }
    report = ConsistencyReport.model_validate(old)
    assert report.schema_version == REPORT_SCHEMA_VERSION == 3
    assert [c.date for c in report.checks] == [TUESDAY, None]
    assert ConsistencyReport.model_validate_json(report.model_dump_json()) == report


def test_the_checks_findings_are_dated_in_the_report_and_the_db(db_engine: Engine, tmp_path: Path) -> None:
    """The fixture run trades one rebalance (2021-03-30): every symbol's finding is dated on it, in
    report.json and in the DB rows' details (the DB keeps no date column); run-level ones are undated."""
    folder = make_run(tmp_path, "backtest")
    ingest(folder, db_engine)
    report = check_run_folder(folder, engine=db_engine, build_orders=reference_build_orders, policy="warn")
    assert {c.date for c in report.checks if c.symbol is not None} == {REBALANCE}
    assert {c.check for c in report.checks if c.date is None} >= {"unexpected_date", "order_sequence"}
    with db_engine.connect() as conn:
        rows = conn.execute(select(ConsistencyResultRow.symbol, ConsistencyResultRow.details)).all()
    assert len(rows) == len(report.checks)
    assert {(details or {}).get("date") for symbol, details in rows if symbol is not None} == {REBALANCE.isoformat()}
    saved = ConsistencyReport.model_validate_json(folder.report_json_path.read_text(encoding="utf-8"))
    assert [c.date for c in saved.checks] == [c.date for c in report.checks]
