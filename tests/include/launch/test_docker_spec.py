"""The container request (``include.launch.docker``), the image check and the engine banner
(``include.launch.image``), and the pre-run cleanup's named error (``include.launch.config``)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from include.errors import LeanConfigError, LeanImageTooOldError, RunFolderNotWritableError
from include.launch.config import LeanJob, launcher_config_for, write_launcher_config
from include.launch.docker import (
    CONFIG_SHA_LABEL,
    CONTAINER_ENTRY_SCRIPT,
    CPUS_ENV,
    MASK,
    MEMORY_ENV,
    OWNER_ENV,
    SECRET_CONFIG_ENV,
    config_sha256,
    container_name,
    container_spec,
    memory_limit,
    nano_cpus,
)
from include.launch.image import (
    REQUIRED_AFTER,
    ImageIdentity,
    check_image_age,
    identity_from_inspect,
    lean_version_from_log,
    parse_created,
)
from include.run_folder import RunFolder, RunRef
from tests.plugins.airflow_user import GID, OWNER, UID, python_for_user, run_as_user, user_home

IMAGE = "quantconnect/lean@sha256:" + "ab" * 32


@pytest.fixture(autouse=True)
def _no_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    monkeypatch.delenv(CPUS_ENV, raising=False)


@pytest.fixture
def job(tmp_path: Path) -> LeanJob:
    folder = RunFolder.create(RunRef("lean_backtest_range", "20210201_20210226"), root=tmp_path / "artifacts")
    folder.intent_path.write_text("{}")
    folder.params_path.write_text("{}")
    data = tmp_path / "data"
    data.mkdir()
    return LeanJob(folder=folder, mode="backtest", data_folder=data)


# ---------------------------------------------------------------------------- the request


def test_backtest_request_mounts_read_only_inputs_and_runs_without_network(job: LeanJob) -> None:
    spec = container_spec(job, image=IMAGE, owner="50000:0")
    mounts = {m["Target"]: (m["Source"], m["ReadOnly"]) for m in spec.mounts}
    # Root-run Lean must not write into the repository (algorithms/) or the shared data folder.
    assert mounts["/LeanCLI"] == (str(job.algorithm_path.parent), True)
    assert mounts["/Lean/Data"] == (str(job.data_folder), True)
    assert mounts["/Results"] == (str(job.folder.results_dir), False)
    assert mounts["/Storage"] == (str(job.folder.storage_dir), False)
    assert all(read_only for target, (_, read_only) in mounts.items() if target.startswith(("/Files/", "/Lean/La")))
    assert spec.environment == {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", OWNER_ENV: "50000:0"}
    assert spec.private_environment == {}
    assert spec.network_mode == "none"
    assert spec.stop_signal == "SIGINT" and spec.stop_grace_s == 60
    assert spec.entrypoint == ["bash", "-c", CONTAINER_ENTRY_SCRIPT]
    assert spec.name == "lean-lean_backtest_range-20210201_20210226"
    assert spec.labels == {
        "lean-airflow.dag-id": "lean_backtest_range",
        "lean-airflow.run-key": "20210201_20210226",
        "lean-airflow.mode": "backtest",
        CONFIG_SHA_LABEL: config_sha256(job),
    }
    host = spec.host_config()
    assert host["privileged"] is False and host["auto_remove"] is False
    assert (host["mem_limit"], host["nano_cpus"], host["network_mode"]) == (8 << 30, 2_000_000_000, "none")


def test_the_config_label_is_the_sha256_of_the_file_the_run_writes(job: LeanJob) -> None:
    import hashlib

    expected = config_sha256(job)
    write_launcher_config(job, "docker")
    assert hashlib.sha256(job.folder.config_path.read_bytes()).hexdigest() == expected
    assert json.loads(job.folder.config_path.read_text()) == launcher_config_for(job, "docker")


def test_live_request_keeps_the_network_and_carries_the_secret_privately(job: LeanJob) -> None:
    live = LeanJob(folder=job.folder, mode="live", data_folder=job.data_folder, local_now="2021-02-26T20:10:00+00:00")
    spec = container_spec(live, image=IMAGE, secrets={"ib-password": "CANARY-x"})
    assert spec.network_mode is None and "network_mode" not in spec.host_config()
    assert spec.labels["lean-airflow.mode"] == "live"
    assert json.loads(spec.private_environment[SECRET_CONFIG_ENV]) == {"ib-password": "CANARY-x"}
    assert "CANARY-x" not in json.dumps(spec.environment)
    preview = spec.preview()
    assert preview["environment"][SECRET_CONFIG_ENV] == MASK
    assert "CANARY-x" not in json.dumps(preview)


@pytest.mark.parametrize(
    ("dag_id", "run_key", "expected"),
    [
        ("lean_live_rebalance", "20240305", "lean-lean_live_rebalance-20240305"),
        ("my dag/x", "k", "lean-my-dag-x-k"),
    ],
)
def test_container_names_are_what_docker_accepts(dag_id: str, run_key: str, expected: str) -> None:
    assert container_name(dag_id, run_key) == expected


def test_a_long_name_is_cut_and_stays_unique() -> None:
    first, second = container_name("d" * 250, "a" * 100), container_name("d" * 250, "b" * 100)
    assert len(first) == len(second) == 200 and first != second
    assert all(c.isalnum() or c in "_.-" for c in first)


def test_limits_come_from_the_arguments_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (memory_limit(None), nano_cpus(None)) == (8 << 30, 2_000_000_000)
    monkeypatch.setenv(MEMORY_ENV, "512m")
    monkeypatch.setenv(CPUS_ENV, "0.5")
    assert (memory_limit(None), nano_cpus(None)) == (512 << 20, 500_000_000)
    assert (memory_limit("2g"), nano_cpus(4)) == (2 << 30, 4_000_000_000)
    monkeypatch.setenv(MEMORY_ENV, "none")
    monkeypatch.setenv(CPUS_ENV, "none")
    assert (memory_limit(None), nano_cpus(None)) == (None, None)


@pytest.mark.parametrize(
    ("memory", "cpus", "message"),
    [
        ("lots", None, "LEAN_AIRFLOW_CONTAINER_MEMORY"),
        ("1k", None, "at least 6m"),
        (None, "fast", "LEAN_AIRFLOW_CONTAINER_CPUS"),
        (None, "0", "above 0"),
    ],
)
def test_bad_limits_are_refused_by_name(memory: str | None, cpus: str | None, message: str) -> None:
    with pytest.raises(LeanConfigError, match=message):
        memory_limit(memory)
        nano_cpus(cpus)


# ---------------------------------------------------------------------------- the image and its Lean


def test_docker_timestamps_are_read_to_the_microsecond() -> None:
    assert parse_created("2026-06-16T16:08:57.123456789Z") == dt.datetime(2026, 6, 16, 16, 8, 57, 123456, dt.UTC)
    assert parse_created("2026-06-16T18:08:57+02:00") == REQUIRED_AFTER


@pytest.mark.parametrize(
    ("created", "refused"),
    [
        ("2026-06-16T16:08:56.999999999Z", True),  # a second before Lean's MarketOnClose change was merged
        ("2025-11-03T10:00:00Z", True),
        ("not a time", True),
        ("2026-06-16T16:08:57Z", False),
        ("2026-08-20T09:15:42.5Z", False),
    ],
)
def test_an_image_built_before_the_daily_market_on_close_change_is_refused(created: str, refused: bool) -> None:
    identity = ImageIdentity(reference=IMAGE, image_id="sha256:" + "1" * 64, digest=IMAGE, created=created)
    if not refused:
        check_image_age(identity)
        return
    with pytest.raises(LeanImageTooOldError) as info:
        check_image_age(identity)
    message = str(info.value)
    assert IMAGE in message and "62d63010a" in message and "#9534" in message and "MarketOnClose" in message
    assert "LEAN_IMAGE" in message  # what to do


def test_the_identity_names_the_pinned_digest() -> None:
    other = "quantconnect/lean@sha256:" + "cd" * 32
    inspected = {"Id": "sha256:" + "2" * 64, "Created": "2026-08-01T00:00:00Z", "RepoDigests": [other, IMAGE]}
    identity = identity_from_inspect(IMAGE, inspected)
    assert identity.engine_fields() == {
        "image_id": "sha256:" + "2" * 64,
        "image_created": "2026-08-01T00:00:00Z",
        "image_digest": IMAGE,
    }


def test_the_lean_version_is_read_from_the_engine_banner(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text(
        "2026-08-21T10:00:00.0000000Z TRACE:: Config.Get(): Configuration key not found. Key: version-id\n"
        "2026-08-21T10:00:00.1000000Z TRACE:: Engine.Main(): LEAN ALGORITHMIC TRADING ENGINE v2.5.0.17734 "
        "Mode: DEBUG (64bit) Host: 3f2a\n"
    )
    assert lean_version_from_log(log) == "2.5.0.17734"
    log.write_text("TRACE:: Engine.Main(): LEAN ALGORITHMIC TRADING ENGINE (lean_local 1.0) started\n")
    assert lean_version_from_log(log) is None
    assert lean_version_from_log(tmp_path / "missing.txt") is None


# ---------------------------------------------------------------------------- the pre-run cleanup


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to write as 'the container' and run as another user")
def test_a_root_owned_output_folder_gets_a_named_error_with_the_fix() -> None:
    """What a Docker run left before its entry script handed files back: a re-run as the Airflow user
    cannot empty ``storage/``; it says which file, whose, and the command that fixes it."""
    python = python_for_user()
    if python is None:
        pytest.skip("no Python the unprivileged test user may run")
    with user_home() as home:
        folder = RunFolder.create(RunRef("lean_backtest_range", "20210201_20210226"), root=home / "artifacts")
        for path in (home / "artifacts", *(home / "artifacts").rglob("*")):
            os.chown(path, UID, GID)
        root_owned = folder.storage_dir / "lean-airflow"
        root_owned.mkdir(parents=True)  # as root: as Lean in the image
        (root_owned / "final-state.json").write_text("{}")
        script = (
            "import sys\n"
            "from pathlib import Path\n"
            "from include.errors import RunFolderNotWritableError\n"
            "from include.launch.config import remove_output_tree\n"
            "try:\n"
            "    remove_output_tree(Path(sys.argv[1]), Path(sys.argv[2]))\n"
            "except RunFolderNotWritableError as exc:\n"
            "    print(type(exc).__name__, exc)\n"
        )
        done = run_as_user(python, ["-c", script, str(folder.storage_dir), str(folder.path)], {})
        assert done.returncode == 0, done.stderr
        message = done.stdout
        assert message.startswith(RunFolderNotWritableError.__name__), message
        assert str(root_owned / "final-state.json") in message
        assert "belongs to uid:gid 0:0" in message and f"runs as {OWNER}" in message
        assert f"sudo chown -R {OWNER} {folder.path}" in message
        assert (root_owned / "final-state.json").exists()
