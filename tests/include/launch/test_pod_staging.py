"""The Kubernetes pod's staging commands (``python -m include.cli stage in|out``, include.launch.pod_staging)
against a real ``file://`` artifact store, the pod's emptyDir being a temporary folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from include.artifact_store import ARTIFACT_STORE_ENV
from include.errors import LeanConfigError
from include.launch.pod_staging import stage_in, stage_out, wait_for_exit_code
from include.run_folder import ARTIFACT_ROOT_ENV, RunFolder, RunRef
from tests.conftest import REPO_ROOT

REF = RunRef("lean_backtest_range", "20210201_20210226")
CONFIG = json.dumps({"algorithm-id": REF.run_key, "results-destination-folder": "/Results"})


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store holding a backtest run with an earlier attempt's output; the pod's scratch is the current root."""
    root = tmp_path / "store"
    folder = RunFolder.create(REF, root=root)
    folder.intent_path.write_text('{"intent": 1}')
    folder.params_path.write_text('{"params": 1}')
    (folder.results_dir / "old").mkdir(parents=True)
    (folder.results_dir / "old" / "log.txt").write_text("an earlier attempt")
    (folder.storage_dir).mkdir()
    (folder.storage_dir / "stale.json").write_text("{}")
    folder.engine_path.write_text("{}")
    monkeypatch.setenv(ARTIFACT_STORE_ENV, root.as_uri())
    monkeypatch.setenv(ARTIFACT_ROOT_ENV, str(tmp_path / "pod-stage"))
    return root


def _uri(store: Path) -> str:
    return f"{store.as_uri()}/{REF.dag_id}/{REF.run_key}"


def test_stage_in_prepares_the_folder_as_write_launcher_config_and_stage_out_mirrors_it_back(
    store: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "pod-stage"
    summary = stage_in(
        _uri(store),
        scratch,
        mode="backtest",
        config_text=CONFIG,
        algorithms=REPO_ROOT / "algorithms",
        algorithms_to=tmp_path / "algorithms",
    )
    local = scratch / REF.dag_id / REF.run_key
    # The inputs are staged, the checked config written, a backtest's old output and engine.json removed.
    assert (local / "config.json").read_text() == CONFIG
    assert sorted(summary["files"]) == [
        "config.json",
        "execution_params_run_20210201_20210226.json",
        "order_intent_run_20210201_20210226.json",
    ]
    assert sorted(p.name for p in (local / "results").iterdir()) == [] and (local / "storage").is_dir()
    assert (tmp_path / "algorithms" / "lean_trend_rotation.py").is_file()
    assert not list((tmp_path / "algorithms").rglob("__pycache__"))
    # Lean runs; the entry script marks its exit; stage-out uploads.
    (local / "results" / "log.txt").write_text("this run")
    marker = tmp_path / "exit-code"
    marker.write_text("0\n")
    out = stage_out(_uri(store), scratch, mode="backtest", exit_marker=marker, stop_grace_s=60)
    assert out["lean_exit_code"] == 0
    run = store / REF.dag_id / REF.run_key
    assert (run / "results" / "log.txt").read_text() == "this run"
    assert (run / "config.json").read_text() == CONFIG
    # What stage-in removed is removed from the store, as a Docker re-run leaves no old output.
    assert not (run / "results" / "old" / "log.txt").exists() and not (run / "storage" / "stale.json").exists()
    assert not (run / "engine.json").exists()
    assert (run / "order_intent_run_20210201_20210226.json").read_text() == '{"intent": 1}'


def test_a_live_run_keeps_its_results_and_stages_its_deployment_store(store: Path, tmp_path: Path) -> None:
    deployment = store / REF.dag_id / "_deployments" / "paper" / "storage"
    deployment.mkdir(parents=True)
    (deployment / "executed.json").write_text("[1]")
    scratch = tmp_path / "pod-stage"
    stage_in(_uri(store), scratch, mode="live", deployment="paper", config_text=CONFIG)
    local_deployment = scratch / REF.dag_id / "_deployments" / "paper" / "storage"
    assert (local_deployment / "executed.json").read_text() == "[1]"
    assert (scratch / REF.dag_id / REF.run_key / "results" / "old" / "log.txt").is_file()  # live: kept
    (local_deployment / "executed.json").write_text("[1, 2]")
    marker = tmp_path / "exit-code"
    marker.write_text("0\n")
    stage_out(_uri(store), scratch, mode="live", deployment="paper", exit_marker=marker, stop_grace_s=60)
    assert (deployment / "executed.json").read_text() == "[1, 2]"
    with pytest.raises(LeanConfigError, match="--deployment"):
        stage_in(_uri(store), scratch, mode="live", config_text=CONFIG)


def test_stage_in_refuses_a_run_outside_the_store_and_a_config_that_is_not_json(store: Path, tmp_path: Path) -> None:
    from include.errors import ArtifactPathError

    with pytest.raises(ArtifactPathError):
        stage_in(
            (tmp_path / "elsewhere" / "d" / "k").as_uri(), tmp_path / "pod-stage", mode="backtest", config_text="{}"
        )
    with pytest.raises(LeanConfigError, match="not JSON"):
        stage_in(_uri(store), tmp_path / "pod-stage", mode="backtest", config_text="{")


def test_the_exit_code_is_waited_for_and_a_stop_bounds_the_wait(tmp_path: Path) -> None:
    marker = tmp_path / "exit-code"
    threading.Timer(0.3, lambda: marker.write_text("7\n")).start()
    assert wait_for_exit_code(marker, stop_grace_s=60, terminated=lambda: None, poll_s=0.02) == 7
    marker.unlink()
    stopped_long_ago = time.monotonic() - 10
    assert wait_for_exit_code(marker, stop_grace_s=5, terminated=lambda: stopped_long_ago, poll_s=0.02) is None
    marker.write_text("garbage")
    with pytest.raises(LeanConfigError, match="exit code"):
        wait_for_exit_code(marker, stop_grace_s=5, terminated=lambda: None)


def _stage_out_process(store: Path, tmp_path: Path, marker: Path, grace: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "include.cli", "stage", "out", "--run", _uri(store)]
    command += ["--scratch", str(tmp_path / "pod-stage"), "--mode", "backtest"]
    command += ["--exit-marker", str(marker), "--stop-grace", grace]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _started(process: subprocess.Popen[str]) -> None:
    # The CLI installs its SIGTERM handler before it waits; give it the time to import and get there.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        status = Path(f"/proc/{process.pid}/status").read_text()
        caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.05)


def test_stage_out_outlives_the_pods_sigterm_until_lean_has_finished(store: Path, tmp_path: Path) -> None:
    """Deleting the pod signals every container at once: stage-out must wait for Lean (which gets SIGINT from
    its entry script and may take the stop grace to finish), then upload."""
    stage_in(_uri(store), tmp_path / "pod-stage", mode="backtest", config_text=CONFIG)
    marker = tmp_path / "exit-code"
    process = _stage_out_process(store, tmp_path, marker, "60")
    _started(process)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert process.poll() is None, "stage-out died of SIGTERM"
    (tmp_path / "pod-stage" / REF.dag_id / REF.run_key / "results" / "log.txt").write_text("stopped cleanly")
    marker.write_text("0\n")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert json.loads(out)["lean_exit_code"] == 0
    assert (store / REF.dag_id / REF.run_key / "results" / "log.txt").read_text() == "stopped cleanly"


def test_stage_out_uploads_what_exists_when_lean_outlasts_the_grace(store: Path, tmp_path: Path) -> None:
    stage_in(_uri(store), tmp_path / "pod-stage", mode="backtest", config_text=CONFIG)
    (tmp_path / "pod-stage" / REF.dag_id / REF.run_key / "results" / "log.txt").write_text("partial")
    process = _stage_out_process(store, tmp_path, tmp_path / "exit-code", "0.2")
    _started(process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1 and "did not finish within 0.2 s" in err
    assert json.loads(out)["lean_exit_code"] is None
    assert (store / REF.dag_id / REF.run_key / "results" / "log.txt").read_text() == "partial"
