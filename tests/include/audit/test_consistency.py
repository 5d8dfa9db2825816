from __future__ import annotations

import builtins
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from include.atomic_io import atomic_write_json
from include.audit import ingest as ingest_module
from include.audit.consistency import check_run_folder
from include.audit.db import ConsistencyResultRow, OrderEventRow, RebalanceRun
from include.audit.manifest import build_run_manifest
from include.contracts.report import ConsistencyReport
from include.errors import AuditDatabaseError, ConsistencyCheckFailed
from include.run_folder import RunFolder
from tests.include.audit.scenario import ingest, make_run, reference_build_orders


def _by(report: ConsistencyReport, check: str, verdict: str = "fail") -> dict[str | None, str]:
    return {c.symbol: c.message for c in report.checks if c.check == check and c.verdict == verdict}


def _checked(folder: RunFolder, engine: Engine, **kwargs: Any) -> ConsistencyReport:
    ingest(folder, engine)
    return check_run_folder(folder, engine=engine, build_orders=reference_build_orders, **kwargs)


def test_clean_run_passes_and_writes_report(db_engine: Engine, tmp_path: Path) -> None:
    folder = make_run(tmp_path, "clean", weights={"SPY": 0.5, "AAPL": 0.0})
    manifest = build_run_manifest(folder, folder.read_config(), engine_identity="lean-local 2.5.0")
    atomic_write_json(folder.manifest_path, manifest.model_dump(mode="json"))
    report = _checked(folder, db_engine)
    assert report.verdict == "pass", report.failures
    assert (report.events, report.orders) == (4, 2)
    spy = next(s for s in report.symbols if s.symbol == "SPY")
    assert spy.expected_quantity == 75 and spy.filled_quantity == 75 and spy.achieved_weight == pytest.approx(0.5)
    saved = json.loads(folder.report_json_path.read_text(encoding="utf-8"))
    assert saved["verdict"] == "pass" and saved["schema_version"] == 3
    assert saved["order_table"]["symbol"] == ["AAPL", "SPY"] and saved["order_table"]["status"] == ["filled"] * 2
    assert set(saved["manifest_files"]) >= {"intent", "params", "config", "algorithm", "data"}
    page = folder.report_html_path.read_text(encoding="utf-8")
    assert "<script" not in page and "http" not in page and saved["manifest_sha256"] in page
    with db_engine.connect() as conn:
        assert conn.execute(select(RebalanceRun.status)).scalar_one() == "checked:pass"
        assert conn.execute(select(ConsistencyResultRow.verdict)).scalars().all()


def test_insufficient_buying_power_is_flagged_with_leans_message(db_engine: Engine, tmp_path: Path) -> None:
    report = _checked(make_run(tmp_path, "backtest"), db_engine, policy="warn")
    assert report.verdict == "fail"
    invalid = _by(report, "terminal_state")
    assert "Insufficient buying power" in invalid["QQQ"]
    assert "QQQ" in _by(report, "achieved_weight") and "SPY" not in _by(report, "achieved_weight")
    assert next(s for s in report.symbols if s.symbol == "QQQ").verdict == "fail"
    assert next(s for s in report.symbols if s.symbol == "SPY").verdict == "pass"


def test_inconsistent_run_fails_for_the_right_reasons(db_engine: Engine, tmp_path: Path) -> None:
    folder = make_run(tmp_path, "inconsistent")
    with pytest.raises(ConsistencyCheckFailed) as info:
        _checked(folder, db_engine, policy="fail")
    report = ConsistencyReport.model_validate_json(folder.report_json_path.read_text(encoding="utf-8"))
    assert info.value.report_path == str(folder.report_json_path)
    assert "expected quantity 75" in _by(report, "recomputation")["SPY"]
    assert "Lean ordered 80" in _by(report, "recomputation")["SPY"]
    assert "SPY" in _by(report, "fees") and "AAPL" not in _by(report, "fees")
    assert "IBM" in _by(report, "unexpected_symbol")
    assert "ended submitted" in _by(report, "terminal_state")["QQQ"]
    assert "SPY" in _by(report, "achieved_weight")
    assert not _by(report, "slippage") and not _by(report, "lot_size")
    assert folder.report_html_path.exists()  # saved before the policy raised
    with db_engine.connect() as conn:
        stored = conn.execute(
            select(ConsistencyResultRow.check_name, ConsistencyResultRow.symbol).where(
                ConsistencyResultRow.verdict == "fail"
            )
        ).all()
    assert ("unexpected_symbol", "IBM") in stored and ("recomputation", "SPY") in stored


def test_check_is_rerunnable(db_engine: Engine, tmp_path: Path) -> None:
    folder = make_run(tmp_path, "backtest")
    first = _checked(folder, db_engine, policy="warn")
    second = check_run_folder(folder, engine=db_engine, policy="warn", build_orders=reference_build_orders)
    assert first.events == second.events == 5
    assert first.order_table == second.order_table
    with db_engine.connect() as conn:
        assert len(conn.execute(select(ConsistencyResultRow.id)).all()) == len(second.checks)


def test_html_escapes_everything(db_engine: Engine, tmp_path: Path) -> None:
    from include.reporting.html import render_run_page
    from include.reporting.run_view import load_run_view

    folder = make_run(tmp_path, "backtest")
    _checked(folder, db_engine, policy="warn")
    report = json.loads(folder.report_json_path.read_text())
    report["checks"][0]["message"] = "<script>alert(1)</script>"
    report["order_table"]["message"][0] = "<b>Lean</b>"
    folder.report_json_path.write_text(json.dumps(report))
    page = render_run_page(load_run_view(folder.path))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page and "&lt;b&gt;Lean&lt;/b&gt;" in page


def test_uses_the_real_execution_rules_when_available(db_engine: Engine, tmp_path: Path) -> None:
    pytest.importorskip("algorithms.execution_rules")
    folder = make_run(tmp_path, "clean", weights={"SPY": 0.5, "AAPL": 0.0})
    ingest(folder, db_engine)
    report = check_run_folder(folder, engine=db_engine, policy="warn")
    assert not [c for c in report.checks if c.check == "recomputation" and c.verdict == "warn"]


def test_check_refuses_a_run_that_was_not_ingested(db_engine: Engine, tmp_path: Path) -> None:
    folder = make_run(tmp_path, "backtest")
    with pytest.raises(AuditDatabaseError, match="not ingested: run ingest_events first"):
        check_run_folder(folder, engine=db_engine, policy="warn")
    with db_engine.connect() as conn:  # and it did not ingest on its own
        assert conn.execute(select(func.count()).select_from(RebalanceRun)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(OrderEventRow)).scalar_one() == 0
    assert not folder.report_json_path.exists() and not folder.report_html_path.exists()


class _Reads:
    """Counts, per events file, the opens (any reader) and the passes of ingestion's two readers."""

    def __init__(self, files: set[Path]) -> None:
        self.files = files
        self.opens: Counter[Path] = Counter()
        self.passes: Counter[Path] = Counter()

    def _events_file(self, file: Any) -> Path | None:
        try:
            path = Path(os.fspath(file)).resolve()
        except TypeError:  # a file descriptor
            return None
        return path if path in self.files else None

    def open_wrapper(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
            if (path := self._events_file(file)) is not None:
                self.opens[path] += 1
            return real(file, *args, **kwargs)

        return counting_open

    def reader_wrapper(self, real: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        def counting_reader(path: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            if (found := self._events_file(path)) is not None:
                self.passes[found] += 1
            return real(path, *args, **kwargs)

        return counting_reader


def test_dag_path_reads_each_events_file_once(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ingest_events then consistency_check (report.json, rows, report.html): one read per events file."""
    from include.pipeline import step_check, step_ingest

    folder = make_run(tmp_path, "backtest")
    files = {path.resolve() for path in folder.order_event_files()}
    assert files
    reads = _Reads(files)
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", db_url)
    monkeypatch.setattr(builtins, "open", reads.open_wrapper(builtins.open))
    monkeypatch.setattr(io, "open", reads.open_wrapper(io.open))  # pathlib's open
    for name in ("iter_fast_batches", "iter_raw_events"):
        monkeypatch.setattr(ingest_module, name, reads.reader_wrapper(getattr(ingest_module, name)))
    step_ingest(folder)
    assert reads.opens == dict.fromkeys(files, 1) and reads.passes == dict.fromkeys(files, 1)
    checked = step_check(folder, policy="warn")
    assert checked["verdict"] == "fail"  # the fixture's invalid order
    assert reads.opens == dict.fromkeys(files, 1) and reads.passes == dict.fromkeys(files, 1)
    # report.html's audit table lists Lean's three orders (each traded or failed) from the report.
    audit = folder.report_html_path.read_text(encoding="utf-8").split('id="audit"')[1].split("</table>")[0]
    order_ids = re.findall(r'<td class="l">[A-Z]+</td>(?:<td>[^<]*</td>){2}<td>(\d+)</td>', audit)
    assert sorted(order_ids) == ["1", "2", "3"] and "Insufficient buying power" in audit
    # The counters do see a read: a page without report.json aggregates the events files.
    from include.reporting.run_view import load_run_view

    folder.report_json_path.unlink()
    assert len(load_run_view(folder.path).orders) == 3
    assert reads.opens == dict.fromkeys(files, 2)
