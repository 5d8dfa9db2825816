"""``backtest`` runs the whole chain without Airflow; ``report`` renders and points at the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from include.contracts.params import build_execution_params_payload
from tests.conftest import REPO_ROOT


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "include.cli", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        timeout=600,
    )


def test_backtest_then_report(tmp_path: Path) -> None:
    env = {"LEAN_AIRFLOW_ARTIFACT_ROOT": str(tmp_path / "art"), "LEAN_AIRFLOW_DB_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    result = _cli(
        env, "backtest", "--start", "2021-02-01", "--end", "2021-02-12", "--top-n", "2", "--lookback-days", "10"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["check"]["verdict"] == "pass"
    assert summary["ingest"]["inserted"] > 0 and summary["ingest"]["already_present"] == 0
    assert "verdict" in result.stderr and "report" in result.stderr  # the summary table
    # Without --params, the contract's defaults: the same file the DAG form's defaults write.
    params = Path(summary["run_dir"]) / f"execution_params_run_{summary['run_key']}.json"
    assert json.loads(params.read_text(encoding="utf-8")) == build_execution_params_payload(None)
    assert summary["run_key"] == "20210201_20210212"
    assert summary["engine"]["runtime"] == "local"
    again = json.loads(
        _cli(
            env, "backtest", "--start", "2021-02-01", "--end", "2021-02-12", "--top-n", "2", "--lookback-days", "10"
        ).stdout
    )
    assert again["ingest"]["inserted"] == 0  # re-run: everything already present (fresh results, same events)
    assert again["ingest"]["already_present"] == summary["ingest"]["inserted"]
    report = _cli(env, "report", summary["run_dir"])
    assert report.returncode == 0, report.stderr
    shown = json.loads(report.stdout)
    assert shown["verdict"] == "pass" and Path(shown["report_html"]).exists()
    assert shown["ui_url"].endswith("/lean-airflow/runs/lean_backtest_range/20210201_20210212")


def test_report_on_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = _cli({}, "report", str(tmp_path))
    assert result.returncode == 1
    assert "is not a run folder" in result.stderr
