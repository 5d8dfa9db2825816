from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from include.audit.consistency import check_run_dir
from include.audit.db import ConsistencyResultRow, RebalanceRun
from include.audit.manifest import build_run_manifest
from include.contracts.report import ConsistencyReport
from include.errors import ConsistencyCheckFailed
from tests.include.audit.scenario import make_run, reference_build_orders


def _by(report: ConsistencyReport, check: str, verdict: str = "fail") -> dict[str | None, str]:
    return {c.symbol: c.message for c in report.checks if c.check == check and c.verdict == verdict}


def test_clean_run_passes_and_writes_report(db_engine: Engine, tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "clean", weights={"SPY": 0.5, "AAPL": 0.0})
    build_run_manifest(run_dir, engine_identity="lean-local 2.5.0")
    report = check_run_dir(run_dir, engine=db_engine, build_orders=reference_build_orders)
    assert report.verdict == "pass", report.failures
    assert (report.events, report.orders) == (4, 2)
    spy = next(s for s in report.symbols if s.symbol == "SPY")
    assert spy.expected_quantity == 75 and spy.filled_quantity == 75 and spy.achieved_weight == pytest.approx(0.5)
    saved = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    assert saved["verdict"] == "pass" and saved["schema_version"] == 1
    assert set(saved["manifest_files"]) >= {"intent", "params", "config", "algorithm", "data"}
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "http" not in page and saved["manifest_sha256"] in page
    with db_engine.connect() as conn:
        assert conn.execute(select(RebalanceRun.status)).scalar_one() == "checked:pass"
        assert conn.execute(select(ConsistencyResultRow.verdict)).scalars().all()


def test_insufficient_buying_power_is_flagged_with_leans_message(db_engine: Engine, tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "backtest")
    report = check_run_dir(run_dir, engine=db_engine, policy="warn", build_orders=reference_build_orders)
    assert report.verdict == "fail"
    invalid = _by(report, "terminal_state")
    assert "Insufficient buying power" in invalid["QQQ"]
    assert "QQQ" in _by(report, "achieved_weight") and "SPY" not in _by(report, "achieved_weight")
    assert next(s for s in report.symbols if s.symbol == "QQQ").verdict == "fail"
    assert next(s for s in report.symbols if s.symbol == "SPY").verdict == "pass"


def test_inconsistent_run_fails_for_the_right_reasons(db_engine: Engine, tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "inconsistent")
    with pytest.raises(ConsistencyCheckFailed) as info:
        check_run_dir(run_dir, engine=db_engine, policy="fail", build_orders=reference_build_orders)
    report = ConsistencyReport.model_validate_json((run_dir / "report.json").read_text(encoding="utf-8"))
    assert info.value.report_path == str(run_dir / "report.json")
    assert "expected quantity 75" in _by(report, "recomputation")["SPY"]
    assert "Lean ordered 80" in _by(report, "recomputation")["SPY"]
    assert "SPY" in _by(report, "fees") and "AAPL" not in _by(report, "fees")
    assert "IBM" in _by(report, "unexpected_symbol")
    assert "ended submitted" in _by(report, "terminal_state")["QQQ"]
    assert "SPY" in _by(report, "achieved_weight")
    assert not _by(report, "slippage") and not _by(report, "lot_size")
    with db_engine.connect() as conn:
        stored = conn.execute(
            select(ConsistencyResultRow.check_name, ConsistencyResultRow.symbol).where(
                ConsistencyResultRow.verdict == "fail"
            )
        ).all()
    assert ("unexpected_symbol", "IBM") in stored and ("recomputation", "SPY") in stored


def test_check_is_rerunnable(db_engine: Engine, tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "backtest")
    first = check_run_dir(run_dir, engine=db_engine, policy="warn", build_orders=reference_build_orders)
    second = check_run_dir(run_dir, engine=db_engine, policy="warn", build_orders=reference_build_orders)
    assert first.events == second.events == 5
    with db_engine.connect() as conn:
        assert len(conn.execute(select(ConsistencyResultRow.id)).all()) == len(second.checks)


def test_html_escapes_everything(db_engine: Engine, tmp_path: Path) -> None:
    import json

    from include.reporting.html import render_run_page
    from include.reporting.run_view import load_run_view

    run_dir = make_run(tmp_path, "backtest")
    check_run_dir(run_dir, engine=db_engine, policy="warn", build_orders=reference_build_orders)
    report_path = Path(run_dir) / "report.json"
    report = json.loads(report_path.read_text())
    report["checks"][0]["message"] = "<script>alert(1)</script>"
    report_path.write_text(json.dumps(report))
    page = render_run_page(load_run_view(run_dir))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_uses_the_real_execution_rules_when_available(db_engine: Engine, tmp_path: Path) -> None:
    pytest.importorskip("algorithms.execution_rules")
    run_dir = make_run(tmp_path, "clean", weights={"SPY": 0.5, "AAPL": 0.0})
    report = check_run_dir(run_dir, engine=db_engine, policy="warn")
    assert not [c for c in report.checks if c.check == "recomputation" and c.verdict == "warn"]
