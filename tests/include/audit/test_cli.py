from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.cli import main
from tests.include.audit.scenario import RUN_KEY, make_run

FIXTURES = Path(__file__).with_name("fixtures")


def test_db_upgrade_ingest_check(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", db_url)
    assert main(["db", "upgrade"]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == "0001_audit_tables"
    run_dir = make_run(tmp_path, "backtest")
    assert main(["ingest", str(run_dir / "results"), "--run-key", RUN_KEY]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["inserted"], summary["linked"], summary["dag_id"]) == (5, 5, "audit_test_dag")
    assert main(["ingest", str(run_dir / "results"), "--run-key", RUN_KEY]) == 0
    assert json.loads(capsys.readouterr().out)["already_present"] == 5
    assert main(["check", str(run_dir), "--policy", "warn"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "fail"
    assert main(["check", str(run_dir)]) == 1
    captured = capsys.readouterr()
    assert "ConsistencyCheckFailed" in captured.err and (run_dir / "report.html").exists()


def test_ingest_cli_reports_garbled_file(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "42-order-events.json").write_text('[{"id":', encoding="utf-8")
    assert main(["ingest", str(folder), "--run-key", "k", "--url", db_url]) == 1
    assert "OrderEventsFileError" in capsys.readouterr().err


def test_parity_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["parity", str(FIXTURES / "backtest"), str(FIXTURES / "live")])
    assert code == 2 and json.loads(capsys.readouterr().out)["verdict"] == "mismatch"
