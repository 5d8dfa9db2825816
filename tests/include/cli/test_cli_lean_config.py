"""``include.cli lean-config``: the exact launcher config and container request a run would use, as a
user previews it before running (a real subprocess; nothing is written, no secret is shown)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from include.atomic_io import dumps_canonical
from include.launch.config import LeanJob, launcher_config_for, write_launcher_config
from include.pipeline import DEFAULT_STARTING_CASH
from include.run_folder import RunFolder, RunRef
from tests.conftest import REPO_ROOT

IMAGE = "quantconnect/lean@sha256:" + "ab" * 32


def _cli(tmp_path: Path, *args: str, image: str | None = IMAGE) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEAN_AIRFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts")}
    env.pop("LEAN_IMAGE", None)
    if image:
        env["LEAN_IMAGE"] = image
    return subprocess.run(
        [sys.executable, "-m", "include.cli", "lean-config", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def _preview(tmp_path: Path, *args: str) -> dict[str, Any]:
    done = _cli(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    preview: dict[str, Any] = json.loads(done.stdout)
    return preview


def test_the_docker_preview_is_the_config_the_run_writes_and_masks_the_broker_secret(tmp_path: Path) -> None:
    preview = _preview(
        tmp_path,
        *("--dag-id", "lean_backtest_daily", "--run-key", "20240105", "--runtime", "docker"),
        *("--secret-key", "ib-password"),
    )
    assert not (tmp_path / "artifacts").exists(), "a preview writes nothing"
    container = preview["container"]
    assert preview["mode"] == "backtest" and preview["lean_rule_problems"] == []
    assert container["name"] == "lean-lean_backtest_daily-20240105"
    assert container["network_mode"] == "none" and container["stop_signal"] == "SIGINT"
    assert container["environment"]["LEAN_SECRET_CONFIG"] == "***"
    assert "ib-password" not in json.dumps(container["environment"])
    assert {m["Target"]: m["ReadOnly"] for m in container["mounts"]}["/LeanCLI"] is True
    # The config a run of that key writes is byte for byte the one previewed (its sha256 is the label).
    folder = RunFolder.create(RunRef("lean_backtest_daily", "20240105"), root=tmp_path / "artifacts")
    job = LeanJob(folder=folder, mode="backtest", parameters={"starting-cash": DEFAULT_STARTING_CASH})
    assert preview["launcher_config"] == launcher_config_for(job, "docker")
    written = write_launcher_config(job, "docker").read_bytes()
    assert hashlib.sha256(written).hexdigest() == container["labels"]["lean-airflow.config-sha256"]
    assert written.decode("utf-8") == dumps_canonical(preview["launcher_config"])


def test_a_live_dag_previews_live_mode_and_names_what_lean_would_refuse(tmp_path: Path) -> None:
    preview = _preview(tmp_path, "--dag-id", "lean_live_rebalance", "--run-key", "20240105")
    config = preview["launcher_config"]
    assert preview["mode"] == "live" and preview["runtime"] == "local" and "container" not in preview
    # A past session: the local runtime replays it from its start (15:10 New York time).
    assert config["environment"] == "live-paper" and config["local-runtime-now"] == "2024-01-05T20:10:00+00:00"
    # The default live environment (paper on the local runtime's feed) passes Lean's rules.
    assert config["environments"]["live-paper"]["data-queue-handler"] == ["lean-airflow:local-data-folder"]
    assert preview["lean_rule_problems"] == []


def test_without_an_image_the_docker_preview_fails_by_name(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--dag-id", "d", "--run-key", "k", "--runtime", "docker", image=None)
    assert done.returncode == 1 and done.stdout == ""
    assert "LeanConfigError" in done.stderr and "no Lean image: set LEAN_IMAGE" in done.stderr


def test_an_unsafe_run_key_is_refused(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--dag-id", "d", "--run-key", "../../x")
    assert done.returncode == 1 and done.stdout == "" and "run" in done.stderr.lower()
