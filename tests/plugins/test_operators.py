"""LeanRunOperator: the Docker path against a scripted fake Docker API; the config for both runtimes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from include.execution_params import write_execution_params
from include.intent import write_order_intent
from include.lean_runtime import CONTAINER_ENTRY_SCRIPT
from tests.airflow_fixtures import RecordingTI
from tests.plugins.fake_docker_api import ContainerScript, FakeDockerAPI

# A syntactically valid digest for tests only; real deployments set LEAN_IMAGE (see README).
TEST_IMAGE = "quantconnect/lean@sha256:" + "ab" * 32
CANARY = "CANARY-broker-secret-7f3a9c"


@pytest.fixture
def run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    import datetime as dt

    root = tmp_path / "artifacts"
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(root))
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEAN_BROKER",
        json.dumps(
            {
                "conn_type": "generic",
                "login": "trader-login",
                "password": CANARY,
                "extra": {
                    "login_key": "ib-user-name",
                    "password_key": "ib-password",
                    "lean_config": {"ib-account": "DU1"},
                },
            }
        ),
    )
    run_dir = root / "lean_live_rebalance" / "20240305"
    run_dir.mkdir(parents=True)
    intent = write_order_intent(
        output_dir=run_dir, run_id="20240305", rebalances={dt.date(2024, 3, 5): [{"symbol": "SPY", "weight": 0.5}]}
    )
    params = write_execution_params(output_dir=run_dir, run_id="20240305", params={"lot_size": 1})
    return {"run_dir": str(run_dir), "intent": intent, "params": params, "data": str(tmp_path / "data")}


def _operator(folder: dict[str, str], docker_url: str, **overrides: Any) -> Any:
    from lean_airflow.operators import LeanRunOperator

    kwargs: dict[str, Any] = {
        "task_id": "run_lean",
        "mode": "live",
        "runtime": "docker",
        "run_dir": folder["run_dir"],
        "intent_path": folder["intent"],
        "params_path": folder["params"],
        "data_path": folder["data"],
        "image": TEST_IMAGE,
        "docker_url": docker_url,
        "broker_conn_id": "lean_broker",
        "parameters": {"starting-cash": 100000},
    }
    kwargs.update(overrides)
    return LeanRunOperator(**kwargs)


def _all_files_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_docker_container_request_is_exact(run_folder: dict[str, str]) -> None:
    run_dir = Path(run_folder["run_dir"])
    with FakeDockerAPI() as fake:
        ti = RecordingTI()
        result = _operator(run_folder, fake.url).execute({"ti": ti})
    assert result == str(run_dir / "results")
    assert ti.xcom["engine"] == {"runtime": "docker", "engine": TEST_IMAGE}
    (request,) = fake.state.created
    assert request["Image"] == TEST_IMAGE
    assert request["Entrypoint"] == ["bash", "-c", CONTAINER_ENTRY_SCRIPT]
    host = request["HostConfig"]
    # docker-py omits false flags: no privileged mode, no added capabilities.
    assert host.get("Privileged", False) is False
    assert not host.get("CapAdd")
    assert host.get("AutoRemove") in (None, False)
    repo = Path(__file__).resolve().parents[2]
    assert host["Mounts"] == [
        {"Target": "/LeanCLI", "Source": str(repo / "algorithms"), "Type": "bind", "ReadOnly": False},
        {"Target": "/Lean/Data", "Source": str(Path(run_folder["data"]).resolve()), "Type": "bind", "ReadOnly": False},
        {"Target": "/Results", "Source": str(run_dir / "results"), "Type": "bind", "ReadOnly": False},
        {"Target": "/Storage", "Source": str(run_dir / "storage"), "Type": "bind", "ReadOnly": False},
        {
            "Target": "/Lean/Launcher/bin/Debug/config.json",
            "Source": str(run_dir / "config.json"),
            "Type": "bind",
            "ReadOnly": True,
        },
        {
            "Target": "/Files/order_intent_run_20240305.json",
            "Source": run_folder["intent"],
            "Type": "bind",
            "ReadOnly": True,
        },
        {
            "Target": "/Files/execution_params_run_20240305.json",
            "Source": run_folder["params"],
            "Type": "bind",
            "ReadOnly": True,
        },
    ]
    env = dict(item.split("=", 1) for item in request["Env"])
    assert json.loads(env["LEAN_SECRET_CONFIG"]) == {
        "ib-account": "DU1",
        "ib-user-name": "trader-login",
        "ib-password": CANARY,
    }
    assert fake.state.removed == ["fakecontainer"]
    # The mounted config has container paths, the live environment, and no secret.
    config = json.loads((run_dir / "config.json").read_text())
    assert config["environment"] == "live-paper"
    assert config["algorithm-location"] == "/LeanCLI/lean_trend_rotation.py"
    assert config["data-folder"] == "/Lean/Data"
    assert config["results-destination-folder"] == "/Results"
    assert config["object-store-root"] == "/Storage"
    assert config["parameters"]["execution-intent-path"] == "/Files/order_intent_run_20240305.json"
    assert config["parameters"]["execution-params-path"] == "/Files/execution_params_run_20240305.json"
    assert config["parameters"]["final-state-path"] == "/Results/final-state.json"
    assert CANARY not in _all_files_text(run_dir)
    assert "trader-login" not in _all_files_text(run_dir)


def test_docker_exit_code_one_fails_with_log_tail(run_folder: dict[str, str]) -> None:
    from airflow.sdk.exceptions import AirflowException

    def lean_writes_log(request: dict[str, Any]) -> None:
        results = next(m["Source"] for m in request["HostConfig"]["Mounts"] if m["Target"] == "/Results")
        Path(results, "log.txt").write_text("Engine.Main(): starting\nRuntime Error: division by zero in on_data\n")

    script = ContainerScript(log_lines=["streamed line 1", "boom"], exit_code=1, on_run=lean_writes_log)
    with FakeDockerAPI(script) as fake, pytest.raises(AirflowException) as info:
        _operator(run_folder, fake.url, broker_conn_id=None).execute({"ti": RecordingTI()})
    message = str(info.value)
    assert "Lean (docker) exited with code 1" in message
    assert "Runtime Error: division by zero in on_data" in message
    assert fake.state.removed == ["fakecontainer"]


def test_docker_exit_code_one_without_log_file_uses_streamed_lines(run_folder: dict[str, str]) -> None:
    from airflow.sdk.exceptions import AirflowException

    script = ContainerScript(log_lines=["streamed line 1", "Unhandled exception: config missing"], exit_code=1)
    with FakeDockerAPI(script) as fake, pytest.raises(AirflowException, match="config missing"):
        _operator(run_folder, fake.url, broker_conn_id=None).execute({"ti": RecordingTI()})
    assert "LEAN_SECRET_CONFIG" not in "".join(fake.state.created[0]["Env"])


def test_host_path_map_rewrites_bind_sources(run_folder: dict[str, str]) -> None:
    root = str(Path(run_folder["run_dir"]).parents[1])
    with FakeDockerAPI() as fake:
        _operator(run_folder, fake.url, broker_conn_id=None, host_path_map={root: "/srv/host-artifacts"}).execute(
            {"ti": RecordingTI()}
        )
    sources = {m["Target"]: m["Source"] for m in fake.state.created[0]["HostConfig"]["Mounts"]}
    assert sources["/Results"] == "/srv/host-artifacts/lean_live_rebalance/20240305/results"
    config_source = sources["/Lean/Launcher/bin/Debug/config.json"]
    assert config_source == "/srv/host-artifacts/lean_live_rebalance/20240305/config.json"


@pytest.mark.parametrize("image", ["quantconnect/lean:latest", "quantconnect/lean", "quantconnect/lean@sha256:abc"])
def test_unpinned_image_is_refused(run_folder: dict[str, str], image: str) -> None:
    from include.errors import LeanConfigError

    with pytest.raises(LeanConfigError, match="pinned by digest"):
        _operator(run_folder, "tcp://127.0.0.1:9", image=image, broker_conn_id=None).execute({"ti": RecordingTI()})


def test_paths_outside_the_artifact_root_are_refused(run_folder: dict[str, str], tmp_path: Path) -> None:
    from include.errors import ArtifactPathError

    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    with pytest.raises(ArtifactPathError, match="outside"):
        _operator(run_folder, "tcp://127.0.0.1:9", intent_path=str(outside)).execute({"ti": RecordingTI()})


def test_mode_is_checked_at_construction() -> None:
    from lean_airflow.operators import LeanRunOperator

    with pytest.raises(ValueError, match="mode='paper'"):
        LeanRunOperator(task_id="x", mode="paper", run_dir="r", intent_path="i", params_path="p")
