"""The Kubernetes runtime's pod (``include.launch.kubernetes``), asserted as the Docker container request
is in test_docker_spec.py: mounts, env, secrets, resources, termination; and the real entry script,
run by bash with the stand-in Lean of test_entry_script.py, turning the pod's SIGTERM into SIGINT."""

from __future__ import annotations

import inspect
import json
import math
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from include.atomic_io import dumps_canonical
from include.cli import build_parser
from include.errors import LeanConfigError
from include.launch.brokers import BrokerSelection
from include.launch.config import LeanJob, launcher_config_for
from include.launch.docker import (
    CONFIG_SHA_LABEL,
    CONTAINER_ENTRY_SCRIPT,
    CPUS_ENV,
    MEMORY_ENV,
    OWNER_ENV,
    SECRET_CONFIG_ENV,
    config_sha256,
    container_spec,
)
from include.launch.kubernetes import (
    DATA_PVC_ENV,
    DEFAULT_UPLOAD_GRACE_S,
    EXIT_MARKER_ENV,
    EXIT_MARKER_PATH,
    LAUNCHER_CONFIG_ENV,
    SECRET_ENV,
    STAGING_IMAGE_ENV,
    STORE_SECRET_ENV,
    lean_resources,
    pod_manifest,
    pod_name,
    pod_spec,
)
from include.run_folder import RunFolder, RunRef
from tests.include.launch.test_entry_script import CANARY, _seen, _setup

IMAGE = "quantconnect/lean@sha256:" + "ab" * 32
STAGER = "registry.example/lean-airflow:2026.12"
STORE = "s3://bucket/lean"
RUN_URI = f"{STORE}/lean_backtest_range/20210201_20210226"


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (MEMORY_ENV, CPUS_ENV, DATA_PVC_ENV, STAGING_IMAGE_ENV, SECRET_ENV, STORE_SECRET_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def job(tmp_path: Path) -> LeanJob:
    folder = RunFolder.create(RunRef("lean_backtest_range", "20210201_20210226"), root=tmp_path / "artifacts")
    folder.intent_path.write_text("{}")
    folder.params_path.write_text("{}")
    folder.initial_state_path.write_text("{}")
    data = tmp_path / "data"
    data.mkdir()
    return LeanJob(folder=folder, mode="backtest", data_folder=data)


def _pod(job: LeanJob, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {"run_uri": RUN_URI, "store_uri": STORE, "image": IMAGE, "stage_image": STAGER}
    return pod_manifest(pod_spec(job, **{**arguments, **overrides}))


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"] if c["name"] == name]
    assert len(found) == 1, name
    return found[0]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


# ---------------------------------------------------------------------------- Lean's container


def test_lean_runs_the_docker_entry_script_with_dockers_mounts_on_the_staged_folder(job: LeanJob) -> None:
    pod = _pod(job)
    lean = _container(pod, "lean")
    assert lean["image"] == IMAGE
    assert lean["command"] == ["bash", "-c", CONTAINER_ENTRY_SCRIPT]  # the very script Docker runs
    docker = container_spec(job, image=IMAGE)
    root = job.folder.path.parent.parent
    mounts = {m["mountPath"]: m for m in lean["volumeMounts"]}
    # Every Docker bind has its mount, at the same target and with the same mode.
    for bind in docker.mounts:
        mount = mounts[bind["Target"]]
        assert mount.get("readOnly", False) == bind["ReadOnly"], bind["Target"]
        source = Path(bind["Source"])
        if source == job.algorithm_path.parent:
            assert (mount["name"], mount.get("subPath")) == ("algorithms", None)
        elif source == job.data_folder:
            assert (mount["name"], mount.get("subPath")) == ("lean-data", None)
        else:  # the run folder's files: the same path below the staging root as below the artifact root
            assert (mount["name"], mount["subPath"]) == ("run", str(source.relative_to(root))), bind["Target"]
    assert set(mounts) == {b["Target"] for b in docker.mounts} | {"/lean-airflow-status"}
    assert mounts["/Files/initial_state.json"]["subPath"] == "lean_backtest_range/20210201_20210226/initial_state.json"
    assert mounts["/Lean/Launcher/bin/Debug/config.json"]["readOnly"] is True
    assert not mounts["/Results"].get("readOnly") and not mounts["/Storage"].get("readOnly")


def test_the_volumes_are_empty_dirs_and_the_lean_data_claim_read_only(
    job: LeanJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    volumes = {v["name"]: v for v in _pod(job)["spec"]["volumes"]}
    assert volumes["run"] == {"name": "run", "emptyDir": {}}
    assert volumes["algorithms"] == {"name": "algorithms", "emptyDir": {}}
    assert volumes["status"] == {"name": "status", "emptyDir": {}}
    assert volumes["lean-data"]["persistentVolumeClaim"] == {"claimName": "lean-data", "readOnly": True}
    monkeypatch.setenv(DATA_PVC_ENV, "quantconnect-data")
    claim = {v["name"]: v for v in _pod(job)["spec"]["volumes"]}["lean-data"]["persistentVolumeClaim"]
    assert claim["claimName"] == "quantconnect-data"
    assert {v["name"]: v for v in _pod(job, data_pvc="mine")["spec"]["volumes"]}["lean-data"]["persistentVolumeClaim"][
        "claimName"
    ] == "mine"


def test_lean_gets_dockers_environment_and_the_exit_marker(job: LeanJob) -> None:
    pod = _pod(job)
    lean = _container(pod, "lean")
    # Docker's environment; the output goes to the staging containers' user instead of the worker's.
    docker = container_spec(job, image=IMAGE, owner="50000:0").environment
    assert _env(lean) == {**docker, EXIT_MARKER_ENV: EXIT_MARKER_PATH}
    assert SECRET_CONFIG_ENV not in _env(lean)
    for name in ("stage-in", "stage-out"):
        assert _container(pod, name)["securityContext"] == {"runAsUser": 50000, "runAsGroup": 0}
    custom = _pod(job, staging_owner="1000:1000")
    assert _env(_container(custom, "lean"))[OWNER_ENV] == "1000:1000"
    assert _container(custom, "stage-out")["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000}
    with pytest.raises(LeanConfigError, match="staging_owner"):
        _pod(job, staging_owner="airflow")


def test_a_live_run_reads_its_secrets_from_a_kubernetes_secret_by_reference(job: LeanJob) -> None:
    live = LeanJob(
        folder=job.folder,
        mode="live",
        data_folder=job.data_folder,
        broker=BrokerSelection(broker="interactive-brokers", account="DU1"),
    )
    pod = _pod(live, secret_name="lean-broker")
    lean = _container(pod, "lean")
    assert _env(lean)[SECRET_CONFIG_ENV] == {
        "secretKeyRef": {"name": "lean-broker", "key": SECRET_CONFIG_ENV, "optional": False}
    }
    # pod_spec takes no secret value at all: a secret cannot end up in the pod or its log.
    assert not [name for name in inspect.signature(pod_spec).parameters if name in ("secrets", "secret")]
    assert CANARY not in json.dumps(pod)
    # The live object store is the deployment's, staged beside the run folder.
    mounts = {m["mountPath"]: m for m in lean["volumeMounts"]}
    assert mounts["/Storage"]["subPath"] == "lean_backtest_range/_deployments/interactive-brokers-DU1/storage"
    stage_in = _container(pod, "stage-in")
    assert stage_in["command"][-4:] == ["--mode", "live", "--deployment", "interactive-brokers-DU1"]


def test_the_secret_name_comes_from_the_setting_and_must_be_a_kubernetes_name(
    job: LeanJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "lean-secrets")
    ref = _env(_container(_pod(job), "lean"))[SECRET_CONFIG_ENV]["secretKeyRef"]
    assert ref["name"] == "lean-secrets"
    with pytest.raises(LeanConfigError, match="secret_name='Bad_Name'"):
        _pod(job, secret_name="Bad_Name")


# ---------------------------------------------------------------------------- resources and termination


def test_resources_are_dockers_limits_requested_as_much_as_limited(
    job: LeanJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _container(_pod(job), "lean")["resources"] == {
        "requests": {"memory": "8Gi", "cpu": "2000m"},
        "limits": {"memory": "8Gi", "cpu": "2000m"},
    }
    monkeypatch.setenv(MEMORY_ENV, "1536m")
    monkeypatch.setenv(CPUS_ENV, "0.5")
    assert _container(_pod(job), "lean")["resources"]["limits"] == {"memory": "1536Mi", "cpu": "500m"}
    assert _container(_pod(job, mem_limit="2g", cpus=4), "lean")["resources"]["requests"] == {
        "memory": "2Gi",
        "cpu": "4000m",
    }
    monkeypatch.setenv(MEMORY_ENV, "none")
    monkeypatch.setenv(CPUS_ENV, "none")
    assert "resources" not in _container(_pod(job), "lean") or _container(_pod(job), "lean")["resources"] == {}
    given = {"requests": {"memory": "4Gi", "cpu": "1"}, "limits": {"memory": "6Gi"}}
    assert _container(_pod(job, resources=given), "lean")["resources"] == given
    with pytest.raises(LeanConfigError, match="unknown keys"):
        lean_resources(resources={"limit": {"cpu": "1"}})


@pytest.mark.parametrize(("stop_grace_s", "engine_timeout_s"), [(60.0, 7200.0), (12.5, 30.0)])
def test_the_termination_grace_is_the_stop_grace_plus_the_upload(
    job: LeanJob, stop_grace_s: float, engine_timeout_s: float
) -> None:
    spec = _pod(job, stop_grace_s=stop_grace_s, engine_timeout_s=engine_timeout_s)["spec"]
    # SIGTERM (turned into SIGINT) first; Lean has the stop grace to finish, stage-out then uploads.
    assert spec["terminationGracePeriodSeconds"] == math.ceil(stop_grace_s + DEFAULT_UPLOAD_GRACE_S)
    assert spec["activeDeadlineSeconds"] == math.ceil(engine_timeout_s + 600)
    assert spec["restartPolicy"] == "Never"
    stage_out = _container(_pod(job, stop_grace_s=stop_grace_s), "stage-out")
    assert stage_out["args"] == ["--exit-marker", EXIT_MARKER_PATH, "--stop-grace", str(math.ceil(stop_grace_s))]
    assert "activeDeadlineSeconds" not in _pod(job)["spec"]


# ---------------------------------------------------------------------------- staging


def test_stage_in_is_an_init_container_of_the_staging_image_with_the_checked_config(job: LeanJob) -> None:
    pod = _pod(job, store_secret_name="lean-store")
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["stage-in"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["lean", "stage-out"]
    stage_in = _container(pod, "stage-in")
    assert stage_in["image"] == STAGER
    assert stage_in["command"] == [
        *("python", "-m", "include.cli", "stage", "in"),
        *("--run", RUN_URI, "--scratch", "/stage", "--mode", "backtest"),
    ]
    assert stage_in["args"] == [
        *("--config-env", LAUNCHER_CONFIG_ENV),
        *("--algorithms", str(job.algorithm_path.parent), "--algorithms-to", "/algorithms"),
    ]
    env = _env(stage_in)
    assert env["LEAN_AIRFLOW_ARTIFACT_STORE"] == STORE and env["LEAN_AIRFLOW_ARTIFACT_ROOT"] == "/stage"
    # The config the Docker runtime would write, byte for byte; its sha256 annotates the pod.
    assert env[LAUNCHER_CONFIG_ENV] == dumps_canonical(launcher_config_for(job, "docker"))
    assert pod["metadata"]["annotations"][CONFIG_SHA_LABEL] == config_sha256(job)
    assert stage_in["envFrom"] == [{"secretRef": {"name": "lean-store"}}]
    mounts = {m["mountPath"]: m["name"] for m in stage_in["volumeMounts"]}
    assert mounts == {"/stage": "run", "/algorithms": "algorithms"}
    stage_out = _container(pod, "stage-out")
    assert stage_out["image"] == STAGER and stage_out["envFrom"] == stage_in["envFrom"]
    assert stage_out["command"][:5] == ["python", "-m", "include.cli", "stage", "out"]
    assert {m["mountPath"]: m["name"] for m in stage_out["volumeMounts"]} == {
        "/stage": "run",
        "/lean-airflow-status": "status",
    }


def test_the_staging_commands_are_the_clis(job: LeanJob) -> None:
    from include.cli import cmd_stage

    pod = _pod(job)
    for name, handler in (("stage-in", cmd_stage._stage_in), ("stage-out", cmd_stage._stage_out)):
        container = _container(pod, name)
        assert container["command"][:3] == ["python", "-m", "include.cli"]
        args = build_parser().parse_args(container["command"][3:] + container["args"])
        assert args.handler is handler and args.run == RUN_URI and args.scratch == Path("/stage")


def test_no_staging_image_or_store_is_a_named_error(job: LeanJob, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LeanConfigError, match=STAGING_IMAGE_ENV):
        _pod(job, stage_image=None)
    monkeypatch.setenv(STAGING_IMAGE_ENV, STAGER)
    assert _container(_pod(job, stage_image=None), "stage-in")["image"] == STAGER
    with pytest.raises(LeanConfigError, match="store URI is required"):
        _pod(job, run_uri="")
    with pytest.raises(LeanConfigError, match="data_pvc="):
        _pod(job, data_pvc="lean_data")


@pytest.mark.parametrize(
    ("dag_id", "run_key"),
    [("lean_backtest_range", "20210201_20210226"), ("D" * 250, "k" * 128), ("lean_backtest_sweep", "a.b_p01")],
)
def test_pod_names_are_dns_labels_unique_per_run(dag_id: str, run_key: str) -> None:
    name = pod_name(dag_id, run_key)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 54
    assert name != pod_name(dag_id, run_key + "x") and name != pod_name(dag_id.lower() + "x", run_key)


# ---------------------------------------------------------------------------- the entry script in the pod


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(["bash", "-c", CONTAINER_ENTRY_SCRIPT], env=env, stdout=subprocess.PIPE, text=True)


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_the_pods_sigterm_reaches_lean_as_sigint_and_the_exit_code_is_marked(tmp_path: Path) -> None:
    """Kubernetes deletes a pod with SIGTERM to every container's PID 1 (the entry script): Lean gets SIGINT,
    finishes, and the exit hook writes its code where stage-out waits for it."""
    marker = tmp_path / "status" / "exit-code"
    marker.parent.mkdir()
    env, home = _setup(tmp_path, {"ib-password": CANARY}, STANDIN_MODE="hold", **{EXIT_MARKER_ENV: str(marker)})
    process = _start(env)
    _wait_for(home / "seen.json")
    assert _seen(home)["sigint_ignored"] is False
    assert not marker.exists()  # not before Lean ends
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert _seen(home)["signals"] == ["SIGINT"]
    assert marker.read_text() == "0\n"
    assert EXIT_MARKER_ENV in _seen(home)["environ"]  # harmless to Lean; the secret is not there
    assert SECRET_CONFIG_ENV not in _seen(home)["environ"]


@pytest.mark.parametrize("code", [0, 3])
def test_the_exit_marker_holds_leans_exit_code(tmp_path: Path, code: int) -> None:
    marker = tmp_path / "exit-code"
    env, _ = _setup(tmp_path, STANDIN_EXIT=str(code), **{EXIT_MARKER_ENV: str(marker)})
    assert subprocess.run(["bash", "-c", CONTAINER_ENTRY_SCRIPT], env=env, timeout=60, check=False).returncode == code
    assert marker.read_text() == f"{code}\n"
    assert not list(tmp_path.glob("exit-code.tmp"))


def test_the_exit_marker_is_written_when_the_script_fails_before_lean(tmp_path: Path) -> None:
    """A secret with nowhere to go stops the script before Lean: stage-out must not wait forever."""
    marker = tmp_path / "exit-code"
    env, home = _setup(tmp_path, **{EXIT_MARKER_ENV: str(marker)})
    env[SECRET_CONFIG_ENV] = json.dumps(["not", "an", "object"])
    done = subprocess.run(
        ["bash", "-c", CONTAINER_ENTRY_SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0 and not (home / "seen.json").exists()
    assert marker.read_text() == f"{done.returncode}\n"


def test_without_the_marker_variable_docker_runs_are_unchanged(tmp_path: Path) -> None:
    env, _ = _setup(tmp_path)
    assert subprocess.run(["bash", "-c", CONTAINER_ENTRY_SCRIPT], env=env, timeout=60, check=False).returncode == 0
    assert not list(tmp_path.rglob("exit-code*"))


def test_lean_config_previews_the_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.cli.cmd_lean_config import lean_config_preview

    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    store = (tmp_path / "store").as_uri()  # (s3fs is not installed here)
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_STORE", store)
    monkeypatch.setenv(STAGING_IMAGE_ENV, STAGER)
    preview = lean_config_preview(
        "lean_backtest_range", "20210201_20210226", mode="backtest", runtime="kubernetes", image=IMAGE
    )
    docker = lean_config_preview(
        "lean_backtest_range", "20210201_20210226", mode="backtest", runtime="docker", image=IMAGE
    )
    assert preview["launcher_config"] == docker["launcher_config"]
    pod = preview["pod"]
    assert _container(pod, "lean")["command"] == docker["container"]["entrypoint"]
    assert _env(_container(pod, "stage-in"))[LAUNCHER_CONFIG_ENV] == dumps_canonical(preview["launcher_config"])
    command = _container(pod, "stage-in")["command"]
    assert command[command.index("--run") + 1] == f"{store}/lean_backtest_range/20210201_20210226"
