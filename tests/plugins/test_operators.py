"""LeanRunOperator: the Docker path against a scripted fake Docker API, the local runtime for real;
the config for both runtimes, and the engine identity from engine.json into manifest.json.
The container's lifecycle (kill, timeout, adoption, the real entry script) is in test_docker_lifecycle.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from include.contracts.intent import write_order_intent
from include.contracts.params import write_execution_params
from include.launch.docker import CONTAINER_ENTRY_SCRIPT, SECRET_CONFIG_ENV
from include.lean_local import __version__ as local_version
from include.pipeline import run_chain, step_ingest
from include.run_folder import ALGORITHM_PATH, DEFAULT_DATA_FOLDER, RunFolder, RunRef
from tests.airflow_fixtures import RecordingTI
from tests.conftest import manual_chain_request
from tests.lean_data_factory import write_closes
from tests.plugins.fake_docker_api import RECENT_CREATED, ContainerScript, FakeDockerAPI

# A syntactically valid digest for tests only; real deployments set LEAN_IMAGE (see README).
TEST_IMAGE = "quantconnect/lean@sha256:" + "ab" * 32
CANARY = "CANARY-broker-secret-7f3a9c"
TOKEN = "CANARY-qc-token-51d0"
QC_LICENCE = {"job_user_id": "77", "api_access_token": TOKEN, "job_organization_id": "org-1"}
BROKER_SECRETS = {
    "ib-user-name": "trader-login",
    "ib-password": CANARY,
    "job-user-id": "77",
    "api-access-token": TOKEN,
    "job-organization-id": "org-1",
}
IB_STORE = Path("lean_live_rebalance", "_deployments", "interactive-brokers-DU1", "storage")


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The artifact root, the audit DB (SQLite) and the broker connection of one test."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(root))
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEAN_BROKER",
        json.dumps(
            {
                "conn_type": "generic",
                "login": "trader-login",
                "password": CANARY,
                "extra": {"broker": "interactive-brokers", "account": "DU1", **QC_LICENCE},
            }
        ),
    )
    # The paper broker fed by a named data provider (the real image has no local-data-folder feed).
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEAN_PAPER",
        json.dumps(
            {"conn_type": "generic", "extra": {"data_provider": "polygon", "polygon_api_key": CANARY, **QC_LICENCE}}
        ),
    )
    return root


@pytest.fixture
def run_folder(root: Path, tmp_path: Path) -> RunFolder:
    """A live run folder as write_intent and write_params leave it (no initial state)."""
    folder = RunFolder.create(RunRef("lean_live_rebalance", "20240305"), root=root)
    write_order_intent(
        output_dir=folder.path, run_key="20240305", rebalances={dt.date(2024, 3, 5): [{"symbol": "SPY", "weight": 0.5}]}
    )
    write_execution_params(output_dir=folder.path, run_id="20240305", params={"lot_size": 1})
    # A data folder the operator's preflights accept: Lean's two databases, and SPY's bars of the
    # session a live run sizes on and of the one a backtest fills at (the market-data coverage check).
    write_closes(tmp_path / "data", {"SPY": {dt.date(2024, 3, 4): 500.0, dt.date(2024, 3, 5): 501.0}})
    return folder


def _operator(folder: RunFolder, docker_url: str, **overrides: Any) -> Any:
    from lean_airflow.operators import LeanRunOperator

    kwargs: dict[str, Any] = {
        "task_id": "run_lean",
        "mode": "live",
        "runtime": "docker",
        "run_dir": str(folder.path),
        "data_path": str(folder.path.parents[2] / "data"),
        "image": TEST_IMAGE,
        "docker_url": docker_url,
        "broker_conn_id": "lean_broker",
        "parameters": {"starting-cash": 100000},
    }
    kwargs.update(overrides)
    return LeanRunOperator(**kwargs)


def _all_files_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_docker_container_request_is_exact(run_folder: RunFolder) -> None:
    run_dir = run_folder.path
    with FakeDockerAPI() as fake:
        ti = RecordingTI()
        result = _operator(run_folder, fake.url).execute({"ti": ti})
    assert result == (run_dir / "results").as_uri()  # a store URI (file:// in the embedded default)
    assert ti.xcom == {}  # no "engine" XCom: the identity is in the run folder
    identity = {
        "runtime": "docker",
        "engine": TEST_IMAGE,
        "image_id": "sha256:" + "1" * 64,
        "image_digest": TEST_IMAGE,
        "image_created": RECENT_CREATED,
        "lean_version": "unknown",  # this scripted container writes no log.txt, so no banner
    }
    assert run_folder.engine_identity() == identity
    assert json.loads((run_dir / "engine.json").read_text()) == identity
    (request,) = fake.state.created
    assert request["Image"] == TEST_IMAGE
    assert request["Entrypoint"] == ["bash", "-c", CONTAINER_ENTRY_SCRIPT]
    assert request["Labels"] == {
        "lean-airflow.dag-id": "lean_live_rebalance",
        "lean-airflow.run-key": "20240305",
        "lean-airflow.mode": "live",
        "lean-airflow.config-sha256": hashlib.sha256((run_dir / "config.json").read_bytes()).hexdigest(),
    }
    assert (request["StopSignal"], request["StopTimeout"]) == ("SIGINT", 60)
    create = next(path for method, path, body in fake.state.requests if body is request)
    assert create.endswith("/containers/create?name=lean-lean_live_rebalance-20240305")
    host = request["HostConfig"]
    # docker-py omits false flags: no privileged mode, no added capabilities.
    assert host.get("Privileged", False) is False
    assert not host.get("CapAdd")
    assert host.get("AutoRemove") in (None, False)
    assert (host["Memory"], host["NanoCpus"]) == (8 << 30, 2_000_000_000)
    assert (
        host["NetworkMode"] == "default"
    )  # live: Docker's default network (docker-py says so; a backtest gets "none")
    repo = Path(__file__).resolve().parents[2]
    assert host["Mounts"] == [
        {"Target": "/LeanCLI", "Source": str(repo / "algorithms"), "Type": "bind", "ReadOnly": True},
        {
            "Target": "/Lean/Data",
            "Source": str(run_dir.parents[2] / "data"),
            "Type": "bind",
            "ReadOnly": True,
        },
        {"Target": "/Results", "Source": str(run_dir / "results"), "Type": "bind", "ReadOnly": False},
        # The live deployment's persistent object store, not the run's.
        {"Target": "/Storage", "Source": str(run_dir.parents[1] / IB_STORE), "Type": "bind", "ReadOnly": False},
        {
            "Target": "/Lean/Launcher/bin/Debug/config.json",
            "Source": str(run_dir / "config.json"),
            "Type": "bind",
            "ReadOnly": True,
        },
        {
            "Target": "/Files/order_intent_run_20240305.json",
            "Source": str(run_dir / "order_intent_run_20240305.json"),
            "Type": "bind",
            "ReadOnly": True,
        },
        {
            "Target": "/Files/execution_params_run_20240305.json",
            "Source": str(run_dir / "execution_params_run_20240305.json"),
            "Type": "bind",
            "ReadOnly": True,
        },
    ]
    env = dict(item.split("=", 1) for item in request["Env"])
    assert set(env) == {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "LEAN_OWNER", SECRET_CONFIG_ENV}
    assert env["PYTHONUNBUFFERED"] == env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["LEAN_OWNER"] == f"{os.getuid()}:{os.getgid()}"
    assert json.loads(env[SECRET_CONFIG_ENV]) == BROKER_SECRETS
    # Removed once it succeeded; it was never signalled.
    assert fake.state.containers == {} and len(fake.state.removed) == 1 and fake.state.signals() == []
    # The mounted config has container paths, the live environment, and no secret.
    config = json.loads((run_dir / "config.json").read_text())
    assert config["environment"] == "live-interactive"
    block = config["environments"]["live-interactive"]
    assert block["live-mode-brokerage"] == "InteractiveBrokersBrokerage"
    assert block["data-queue-handler"] == ["InteractiveBrokersBrokerage"]
    assert block["transaction-handler"].endswith(".BrokerageTransactionHandler")
    assert (block["ib-account"], block["ib-trading-mode"]) == ("DU1", "paper")
    assert "live-cash-balance" not in config and "live-holdings" not in config  # the broker's account is the truth
    assert config["algorithm-id"] == "20240305"
    assert config["algorithm-location"] == "/LeanCLI/lean_trend_rotation.py"
    assert config["data-folder"] == "/Lean/Data"
    assert config["results-destination-folder"] == "/Results"
    assert config["object-store-root"] == "/Storage"
    assert config["parameters"]["execution-intent-path"] == "/Files/order_intent_run_20240305.json"
    assert config["parameters"]["execution-params-path"] == "/Files/execution_params_run_20240305.json"
    assert config["parameters"]["final-state-path"] == "/Results/final-state.json"
    assert config["parameters"]["starting-cash"] == 100000
    assert "initial-state-path" not in config["parameters"]
    assert "live-as-of" not in config
    for secret in (CANARY, TOKEN, "trader-login"):
        assert secret not in _all_files_text(run_dir.parent)


def test_docker_live_paper_starts_from_the_initial_state_not_a_parameter(run_folder: RunFolder) -> None:
    run_folder.initial_state_path.write_text('{"cash": 5.0, "holdings": {}}', encoding="utf-8")
    with FakeDockerAPI() as fake:
        _operator(run_folder, fake.url, broker_conn_id="lean_paper").execute({"ti": RecordingTI()})
    mounts = fake.state.created[0]["HostConfig"]["Mounts"]
    assert mounts[-1]["Target"] == "/Files/initial_state.json" and mounts[-1]["ReadOnly"] is True
    stores = [m["Source"] for m in mounts if m["Target"] == "/Storage"]
    assert stores == [str(run_folder.path.parent / "_deployments" / "paper" / "storage")]
    config = run_folder.read_config()
    assert "initial-state-path" not in config.parameters  # live: Lean's own mechanism instead
    assert config.raw["live-cash-balance"] == [{"amount": 5.0, "currency": "USD"}]
    assert config.environment == "live-paper"
    assert config.get("data-queue-handler") == ["QuantConnect.Lean.DataSource.Polygon.PolygonDataProvider"]
    env = dict(item.split("=", 1) for item in fake.state.created[0]["Env"])
    assert json.loads(env[SECRET_CONFIG_ENV]) == {
        "polygon-api-key": CANARY,
        "job-user-id": "77",
        "api-access-token": TOKEN,
        "job-organization-id": "org-1",
    }


def test_docker_engine_identity_reaches_the_manifest(run_folder: RunFolder) -> None:
    """engine.json (written by the launch) is what the ingestion puts into manifest.json."""

    def lean_writes_events(request: dict[str, Any]) -> None:
        results = next(m["Source"] for m in request["HostConfig"]["Mounts"] if m["Target"] == "/Results")
        Path(results, "20240305-2024-03-05-order-events.json").write_text("[]")
        # The live algorithm's marker of a finished session (a live run is ingested only with it).
        done = {"version": 1, "date": "2024-03-05", "algorithmId": "20240305", "reason": "terminal", "orders": []}
        Path(results, "done-2024-03-05.json").write_text(json.dumps(done))

    with FakeDockerAPI(ContainerScript(on_run=lean_writes_events)) as fake:
        _operator(run_folder, fake.url, broker_conn_id="lean_paper").execute({"ti": RecordingTI()})
    summary = step_ingest(run_folder)
    assert summary["files"] == ["20240305-2024-03-05-order-events.json"]
    manifest = json.loads(run_folder.manifest_path.read_text())
    assert (manifest["runtime"], manifest["engine_identity"]) == ("docker", TEST_IMAGE)
    assert (manifest["image_digest"], manifest["image_created"]) == (TEST_IMAGE, RECENT_CREATED)
    assert manifest["mode"] == "live"


def test_docker_exit_code_one_fails_with_log_tail(run_folder: RunFolder) -> None:
    from airflow.sdk.exceptions import AirflowException

    def lean_writes_log(request: dict[str, Any]) -> None:
        results = next(m["Source"] for m in request["HostConfig"]["Mounts"] if m["Target"] == "/Results")
        Path(results, "log.txt").write_text("Engine.Main(): starting\nRuntime Error: division by zero in on_data\n")

    script = ContainerScript(log_lines=["streamed line 1", "boom"], exit_code=1, on_run=lean_writes_log)
    with FakeDockerAPI(script) as fake, pytest.raises(AirflowException) as info:
        _operator(run_folder, fake.url, broker_conn_id="lean_paper").execute({"ti": RecordingTI()})
    message = str(info.value)
    assert "Lean (docker) exited with code 1" in message
    assert "Runtime Error: division by zero in on_data" in message
    # A failed container is kept for inspection, under a dated name that frees the run's name.
    (kept,) = fake.state.containers.values()
    assert fake.state.removed == [] and kept.name.startswith("lean-lean_live_rebalance-20240305-")
    assert f"container kept as {kept.name}" in message
    assert not run_folder.engine_path.exists(), "a failed launch records no engine identity"


def test_docker_exit_code_one_without_log_file_uses_streamed_lines(run_folder: RunFolder) -> None:
    from airflow.sdk.exceptions import AirflowException

    script = ContainerScript(log_lines=["streamed line 1", "Unhandled exception: config missing"], exit_code=1)
    with FakeDockerAPI(script) as fake, pytest.raises(AirflowException, match="config missing"):
        _operator(run_folder, fake.url, broker_conn_id="lean_paper").execute({"ti": RecordingTI()})
    assert len(fake.state.created) == 1


def test_host_path_map_rewrites_bind_sources(run_folder: RunFolder) -> None:
    root = str(run_folder.path.parents[1])
    with FakeDockerAPI() as fake:
        _operator(
            run_folder, fake.url, broker_conn_id="lean_paper", host_path_map={root: "/srv/host-artifacts"}
        ).execute({"ti": RecordingTI()})
    sources = {m["Target"]: m["Source"] for m in fake.state.created[0]["HostConfig"]["Mounts"]}
    assert sources["/Results"] == "/srv/host-artifacts/lean_live_rebalance/20240305/results"
    config_source = sources["/Lean/Launcher/bin/Debug/config.json"]
    assert config_source == "/srv/host-artifacts/lean_live_rebalance/20240305/config.json"
    assert sources["/Files/order_intent_run_20240305.json"] == (
        "/srv/host-artifacts/lean_live_rebalance/20240305/order_intent_run_20240305.json"
    )


@pytest.mark.parametrize("image", ["quantconnect/lean:latest", "quantconnect/lean", "quantconnect/lean@sha256:abc"])
def test_unpinned_image_is_refused(run_folder: RunFolder, image: str) -> None:
    from include.errors import LeanConfigError

    with pytest.raises(LeanConfigError, match="pinned by digest"):
        _operator(run_folder, "tcp://127.0.0.1:9", image=image, broker_conn_id="lean_paper").execute(
            {"ti": RecordingTI()}
        )
    assert not run_folder.config_path.exists()


def test_paths_outside_the_artifact_root_are_refused(run_folder: RunFolder, tmp_path: Path) -> None:
    from include.errors import ArtifactPathError

    outside = tmp_path / "elsewhere" / "lean_live_rebalance" / "20240305"
    outside.mkdir(parents=True)
    with pytest.raises(ArtifactPathError, match="outside"):
        _operator(run_folder, "tcp://127.0.0.1:9", run_dir=str(outside)).execute({"ti": RecordingTI()})
    escaping = run_folder.path / ".." / ".." / ".." / "elsewhere" / "lean_live_rebalance" / "20240305"
    with pytest.raises(ArtifactPathError, match="outside"):
        _operator(run_folder, "tcp://127.0.0.1:9", run_dir=str(escaping)).execute({"ti": RecordingTI()})
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("mode", "runtime", "name"),
    [
        pytest.param("live", "docker", "intent"),
        pytest.param("live", "docker", "params"),
        pytest.param("live", "docker", "initial_state"),
        pytest.param("backtest", "docker", "intent"),
        pytest.param("backtest", "docker", "params"),
        pytest.param("backtest", "local", "params"),
    ],
)
def test_an_input_symlinked_out_of_the_run_folder_is_refused(
    run_folder: RunFolder, tmp_path: Path, mode: str, runtime: str, name: str
) -> None:
    from include.errors import ArtifactPathError

    path = {
        "intent": run_folder.intent_path,
        "params": run_folder.params_path,
        "initial_state": run_folder.initial_state_path,
    }[name]
    outside = tmp_path / "outside" / path.name
    outside.parent.mkdir()
    outside.write_text(path.read_text() if path.exists() else '{"cash": 1.0, "holdings": {}}')
    path.unlink(missing_ok=True)
    path.symlink_to(outside)
    with FakeDockerAPI() as fake:
        operator = _operator(run_folder, fake.url, mode=mode, runtime=runtime, broker_conn_id="lean_paper")
        try:
            operator.execute({"ti": RecordingTI()})
        except ArtifactPathError as exc:
            assert "outside" in str(exc)
        except Exception as exc:  # e.g. the engine failing on the file it was pointed at
            raise AssertionError(f"not refused as outside the run folder: {exc!r}") from exc
        else:
            mounts = [m["Source"] for c in fake.state.created for m in c["HostConfig"]["Mounts"]]
            used = f"bound: {mounts}" if runtime == "docker" else "the local engine ran on it"
            raise AssertionError(f"{name} symlinked out of the run folder was used ({used})")
    assert fake.state.created == []


def test_live_docker_without_a_connection_is_refused_before_any_docker_request(run_folder: RunFolder) -> None:
    """No connection: the paper broker on the local runtime's feed, which the real image does not have."""
    from include.errors import BrokerRuntimeError

    with FakeDockerAPI() as fake, pytest.raises(BrokerRuntimeError, match="data provider 'local-data-folder'") as info:
        _operator(run_folder, fake.url, broker_conn_id=None).execute({"ti": RecordingTI()})
    assert "interactive-brokers, iqfeed, polygon" in str(info.value)
    assert fake.state.requests == [] and fake.state.created == []
    assert not run_folder.config_path.exists()


def test_a_live_environment_without_a_data_queue_handler_creates_no_container(
    run_folder: RunFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from include.errors import LiveDataQueueMissingError
    from include.launch.brokers import BrokerSelection

    real = BrokerSelection.environment_block

    def without_feed(self: BrokerSelection) -> dict[str, Any]:
        return {k: v for k, v in real(self).items() if k != "data-queue-handler"}

    monkeypatch.setattr(BrokerSelection, "environment_block", without_feed)
    with FakeDockerAPI() as fake, pytest.raises(LiveDataQueueMissingError, match="without 'data-queue-handler'"):
        _operator(run_folder, fake.url).execute({"ti": RecordingTI()})
    assert fake.state.requests == [] and fake.state.created == []
    assert not run_folder.config_path.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"broker": "robinhood"}, "extra 'broker'='robinhood': unknown; allowed: paper, interactive-brokers"),
        ({"lean_config": {"ib-account": "DU1"}}, "extra 'lean_config': not a field of broker 'paper'"),
        ({"broker": "interactive-brokers", "account": "DU1"}, "extra 'api_access_token': required"),
    ],
)
def test_a_bad_broker_connection_is_named_and_starts_nothing(
    run_folder: RunFolder, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], message: str
) -> None:
    from include.errors import BrokerConnectionError

    monkeypatch.setenv(
        "AIRFLOW_CONN_LEAN_BAD", json.dumps({"conn_type": "generic", "login": "u", "password": CANARY, "extra": extra})
    )
    with FakeDockerAPI() as fake, pytest.raises(BrokerConnectionError, match=re.escape(message)) as info:
        _operator(run_folder, fake.url, broker_conn_id="lean_bad").execute({"ti": RecordingTI()})
    assert "broker connection 'lean_bad'" in str(info.value) and CANARY not in str(info.value)
    assert fake.state.requests == []


def test_mode_and_runtime_are_checked() -> None:
    from airflow.sdk.exceptions import AirflowException
    from lean_airflow.operators import LeanRunOperator

    with pytest.raises(ValueError, match="mode='paper'"):
        LeanRunOperator(task_id="x", mode="paper", run_dir="r")  # type: ignore[arg-type]
    with pytest.raises(AirflowException, match="runtime='podman'"):
        LeanRunOperator(task_id="x", mode="live", run_dir="r", runtime="podman").execute({"ti": RecordingTI()})


@pytest.mark.parametrize("removed", ["intent_path", "params_path", "initial_state_path", "local_now"])
def test_inputs_come_from_the_run_folder_only(removed: str) -> None:
    """The intent, params, initial state and live session are derived from the run folder."""
    from lean_airflow.operators import LeanRunOperator

    with pytest.raises(TypeError, match=removed):
        LeanRunOperator(task_id="x", mode="live", run_dir="r", **{removed: "x"})


# ---------------------------------------------------------------------------- the local runtime


@pytest.mark.slow
def test_local_runtime_on_an_artifact_store_stages_the_folder_and_uploads_the_results(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_lean on another worker than the steps before it: the run folder comes from the store into this
    worker's scratch, Lean runs there, and its results are in the store when execute returns its URI."""
    import shutil

    from lean_airflow.operators import LeanRunOperator

    from include.pipeline import resolve_run, task_snapshot, task_write_intent, task_write_params

    store = tmp_path / "store"
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_STORE", store.as_uri())
    ref, dates = resolve_run(
        dag_id="lean_backtest_range",
        kind="range",
        run_type="manual",
        interval_session=None,
        params={"start_date": "2021-02-01", "end_date": "2021-02-12"},
    )
    options = {"top_n": 2, "lookback_days": 10}
    out = task_snapshot(ref, dates, provider="trend_rotation", options=options, data_folder=DEFAULT_DATA_FOLDER)
    out = task_write_params(task_write_intent(out["run_dir"])["run_dir"], None)
    shutil.rmtree(root)
    worker = tmp_path / "worker-b"
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(worker))
    result = LeanRunOperator(
        task_id="run_lean",
        mode="backtest",
        runtime="local",
        run_dir=out["run_dir"],
        data_path=str(DEFAULT_DATA_FOLDER),
        parameters={"starting-cash": 100000},
    ).execute({"ti": RecordingTI()})
    stored = store / ref.dag_id / ref.run_key
    assert out["run_dir"] == stored.resolve().as_uri()
    assert result == f"{out['run_dir']}/results"
    assert json.loads((stored / "engine.json").read_text())["runtime"] == "local"
    assert (stored / "results" / "final-state.json").is_file()
    assert (stored / "results" / f"{ref.run_key}-order-events.json").is_file()
    # Lean ran in this worker's scratch: the config names its paths.
    config = json.loads((stored / "config.json").read_text())
    scratch = worker.resolve() / ref.dag_id / ref.run_key
    assert config["results-destination-folder"] == str(scratch / "results")
    with pytest.raises(Exception, match="outside the artifact store"):
        LeanRunOperator(task_id="run_lean", mode="backtest", runtime="local", run_dir=f"s3://elsewhere/{ref}").execute(
            {"ti": RecordingTI()}
        )


@pytest.mark.slow
def test_local_runtime_runs_the_folder_and_records_its_identity(root: Path) -> None:
    request = manual_chain_request(
        "lean_backtest_range",
        {"start_date": "2021-02-01", "end_date": "2021-02-12"},
        options={"top_n": 2, "lookback_days": 10},
    )
    folder = run_chain(request, until="write_params").folder
    assert folder.path.parent.parent == root.resolve()
    ti = RecordingTI()
    result = _operator(
        folder,
        "unused",
        mode="backtest",
        runtime="local",
        image=None,
        data_path=str(DEFAULT_DATA_FOLDER),
        parameters={"starting-cash": 100000},
    ).execute({"ti": ti})
    assert result == folder.results_dir.as_uri()
    assert ti.xcom == {}
    identity = {"runtime": "local", "engine": f"lean_local {local_version}"}
    assert json.loads(folder.engine_path.read_text()) == identity
    # The same config as Docker's, with host paths.
    config = json.loads(folder.config_path.read_text())
    assert config["environment"] == "backtesting" and config["algorithm-id"] == folder.run_key
    assert config["algorithm-location"] == str(ALGORITHM_PATH)
    assert config["data-folder"] == str(DEFAULT_DATA_FOLDER)
    assert config["results-destination-folder"] == str(folder.results_dir)
    assert config["object-store-root"] == str(folder.storage_dir)
    assert config["parameters"]["execution-intent-path"] == str(folder.intent_path)
    assert config["parameters"]["execution-params-path"] == str(folder.params_path)
    assert config["parameters"]["final-state-path"] == str(folder.final_state_path)
    assert "live-as-of" not in config
    assert folder.final_state_path.exists() and folder.order_event_files()
    # The broker secrets reached the engine through its environment only: no file holds them.
    assert CANARY not in _all_files_text(folder.path) and "trader-login" not in _all_files_text(folder.path)
    # The ingestion takes the identity from engine.json into manifest.json.
    step_ingest(folder)
    manifest = json.loads(folder.manifest_path.read_text())
    assert (manifest["runtime"], manifest["engine_identity"]) == (identity["runtime"], identity["engine"])
