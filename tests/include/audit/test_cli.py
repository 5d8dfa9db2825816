from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from include.cli import main
from tests.include.audit.scenario import DAG_ID, RUN_KEY, make_run

FIXTURES = Path(__file__).with_name("fixtures")


def test_db_upgrade_ingest_check(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", db_url)
    assert main(["db", "upgrade"]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == "0002_run_attempts"
    folder = make_run(tmp_path, "backtest")
    assert main(["ingest", str(folder.results_dir), "--run-key", RUN_KEY]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["inserted"], summary["linked"], summary["dag_id"]) == (5, 5, DAG_ID)
    assert main(["ingest", str(folder.results_dir), "--run-key", RUN_KEY]) == 0
    assert json.loads(capsys.readouterr().out)["already_present"] == 5
    assert main(["check", str(folder.path), "--policy", "warn"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "fail"
    assert main(["check", str(folder.path)]) == 1
    captured = capsys.readouterr()
    assert "ConsistencyCheckFailed" in captured.err and folder.report_html_path.exists()


def test_check_ingests_a_run_folder_first(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", db_url)
    folder = make_run(tmp_path, "clean", weights={"SPY": 0.5, "AAPL": 0.0})
    assert main(["check", str(folder.path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["verdict"], shown["events"], shown["orders"]) == ("pass", 4, 2)
    assert main(["report", str(folder.path)]) == 0
    assert json.loads(capsys.readouterr().out)["orders"] == 2


def test_ingest_refuses_a_run_key_other_than_its_run_folders(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_run(tmp_path, "backtest")
    assert main(["ingest", str(folder.results_dir), "--run-key", "20210330", "--url", db_url]) == 1
    assert f"belongs to run {DAG_ID}/{RUN_KEY}" in capsys.readouterr().err


def test_ingest_cli_reports_garbled_file(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "42-order-events.json").write_text('[{"id":', encoding="utf-8")
    assert main(["ingest", str(folder), "--run-key", "k", "--url", db_url]) == 1
    assert "OrderEventsFileError" in capsys.readouterr().err


def test_ingest_cli_outside_a_run_folder(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "loose" / "results"
    shutil.copytree(FIXTURES / "legacy", results)
    assert main(["ingest", str(results), "--run-key", "legacy", "--url", db_url]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["dag_id"], summary["algorithm_id"], summary["inserted"]) == ("manual", "1234567891", 2)


def test_parity_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["parity", str(FIXTURES / "backtest"), str(FIXTURES / "live")])
    assert code == 2 and json.loads(capsys.readouterr().out)["verdict"] == "mismatch"
