"""The CLI as a user runs it: a real subprocess, JSON on stdout, errors on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from include.contracts.params import build_execution_params_payload
from tests.conftest import REPO_ROOT


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "include.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("flag", ["--run-key", "--run-id"])  # --run-id: the alias kept for old scripts
def test_params_command_writes_file(tmp_path: Path, flag: str) -> None:
    result = _cli("params", "--output-dir", str(tmp_path), flag, "r1", "--lot-size", "10", "--fee-bps", "2")
    assert result.returncode == 0, result.stderr
    path = Path(json.loads(result.stdout)["execution_params_path"])
    assert path == tmp_path / "execution_params_run_r1.json"
    assert json.loads(path.read_text()) == {**build_execution_params_payload(None), "lot_size": 10, "fee_bps": 2.0}


def test_params_command_bad_value_fails_with_named_error(tmp_path: Path) -> None:
    result = _cli("params", "--output-dir", str(tmp_path), "--run-id", "r1", "--cash-buffer-ratio", "1.5")
    assert result.returncode == 1
    assert "ExecutionParamsError" in result.stderr and "cash_buffer_ratio=1.5" in result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", ["--run-key", "--run-id"])
def test_intent_command_from_snapshots(tmp_path: Path, flag: str) -> None:
    snap = tmp_path / "snap.json"
    snap.write_text(
        json.dumps({"as_of": "2024-03-05", "source": "test", "items": [{"symbol": "SPY", "weight": 0.6}]}),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = _cli("intent", "--output-dir", str(out), flag, "k", "--snapshot", str(snap))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["intent_orders"] == 1 and summary["rebalances"] == 1
    assert Path(summary["order_intent_path"]) == out / "order_intent_run_k.json"
    written = json.loads(Path(summary["order_intent_path"]).read_text())
    assert written["run_key"] == "k" and written["schema_version"] == 2


def test_intent_command_bad_snapshot(tmp_path: Path) -> None:
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps({"as_of": "2024-03-05", "items": []}), encoding="utf-8")
    result = _cli("intent", "--output-dir", str(tmp_path / "out"), "--run-key", "k", "--snapshot", str(snap))
    assert result.returncode == 1
    assert "SnapshotError" in result.stderr and "source" in result.stderr
    assert not (tmp_path / "out").exists()
