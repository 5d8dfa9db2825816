"""LeanRunOperator(runtime="kubernetes"): the provider's KubernetesPodOperator runs the pod of
include.launch.kubernetes. Only the provider's calls to the cluster are faked (the hook's ``CoreV1Api``,
tests/plugins/fake_kubernetes_api.py); its kubelet runs the pod's containers for real on this machine: the
stage-in CLI against a ``file://`` artifact store, the real entry script with a stand-in Lean, the stage-out
CLI. The hook itself loads a real kubeconfig (of a cluster that is never contacted)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from include.artifact_store import ARTIFACT_STORE_ENV, ArtifactStore
from include.contracts.intent import write_order_intent
from include.contracts.params import write_execution_params
from include.launch.docker import CONTAINER_ENTRY_SCRIPT, SECRET_CONFIG_ENV
from include.launch.kubernetes import EXIT_MARKER_PATH, STAGING_IMAGE_ENV
from include.run_folder import ARTIFACT_ROOT_ENV, RunFolder, RunRef
from tests.airflow_fixtures import RecordingTI
from tests.include.launch.test_entry_script import _setup
from tests.lean_data_factory import write_closes
from tests.plugins.fake_kubernetes_api import FakeKubernetesAPI

TEST_IMAGE = "quantconnect/lean@sha256:" + "ab" * 32
STAGER = "registry.example/lean-airflow:test"
CANARY = "CANARY-k8s-broker-secret-3e1d"
REF = RunRef("lean_live_rebalance", "20240305")
DEPLOYMENT = "interactive-brokers-DU1"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:9"}
users:
- name: nobody
  user: {token: not-a-token}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody, namespace: lean}
current-context: nowhere
"""


class PodTI(RecordingTI):
    """What the provider reads of the task instance (its pod labels)."""

    dag_id = REF.dag_id
    task_id = "run_lean"
    map_index = -1


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A file:// store holding a live run folder, this worker's scratch, the broker and cluster connections,
    and the fake API (patched into the provider's hook)."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    store_dir, scratch = tmp_path / "store", tmp_path / "scratch"
    monkeypatch.setenv(ARTIFACT_STORE_ENV, store_dir.as_uri())
    monkeypatch.setenv(ARTIFACT_ROOT_ENV, str(scratch))
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.delenv(STAGING_IMAGE_ENV, raising=False)
    licence = {"job_user_id": "77", "api_access_token": "CANARY-k8s-token", "job_organization_id": "org-1"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEAN_BROKER",
        json.dumps(
            {
                "conn_type": "generic",
                "login": "trader-login",
                "password": CANARY,
                "extra": {"broker": "interactive-brokers", "account": "DU1", **licence},
            }
        ),
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEAN_K8S",
        json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}),
    )
    folder = RunFolder.create(REF, root=store_dir)
    write_order_intent(
        output_dir=folder.path,
        run_key=REF.run_key,
        rebalances={dt.date(2024, 3, 5): [{"symbol": "SPY", "weight": 0.5}]},
    )
    write_execution_params(output_dir=folder.path, run_id=REF.run_key, params={"lot_size": 1})
    # An earlier session's state in the deployment's store: staged into the pod, kept.
    deployment = store_dir / REF.dag_id / "_deployments" / DEPLOYMENT / "storage"
    deployment.mkdir(parents=True)
    (deployment / "executed.json").write_text('{"2024-03-04": true}')
    data = tmp_path / "data"
    write_closes(data, {"SPY": {dt.date(2024, 3, 4): 500.0, dt.date(2024, 3, 5): 501.0}})
    (tmp_path / "standin").mkdir()
    lean_env, standin_home = _setup(tmp_path / "standin")
    fake = FakeKubernetesAPI(
        tmp_path / "pods",
        claims={"lean-data": data},
        lean_env={k: lean_env[k] for k in ("PATH", "STANDIN_HOME")},
    )
    monkeypatch.setattr(KubernetesHook, "core_v1_client", property(lambda self: fake))
    return {"fake": fake, "store": store_dir, "scratch": scratch, "data": data, "standin": standin_home}


def _operator(cluster: dict[str, Any], **overrides: Any) -> Any:
    from lean_airflow.operators import LeanRunOperator

    kwargs: dict[str, Any] = {
        "task_id": "run_lean",
        "mode": "live",
        "runtime": "kubernetes",
        "run_dir": ArtifactStore.from_env().run_uri(REF),
        "data_path": str(cluster["data"]),
        "image": TEST_IMAGE,
        "staging_image": STAGER,
        "broker_conn_id": "lean_broker",
        "kubernetes_conn_id": "lean_k8s",
        "namespace": "lean",
        "parameters": {"starting-cash": 100000},
    }
    kwargs.update(overrides)
    return LeanRunOperator(**kwargs)


def _context() -> dict[str, Any]:
    return {"ti": PodTI(), "run_id": "manual__2024-03-05", "dag": None}


def test_the_pod_runs_lean_on_the_staged_run_and_its_output_reaches_the_store(cluster: dict[str, Any]) -> None:
    fake: FakeKubernetesAPI = cluster["fake"]
    context = _context()
    result = _operator(cluster).execute(context)
    store_run = cluster["store"] / REF.dag_id / REF.run_key
    assert result == f"{cluster['store'].as_uri()}/{REF.dag_id}/{REF.run_key}/results"
    (body,) = fake.created
    # The provider's pod is ours: the containers, the volumes, the grace; its own labels on top.
    assert [c["name"] for c in body["spec"]["initContainers"]] == ["stage-in"]
    assert [c["name"] for c in body["spec"]["containers"]] == ["lean", "stage-out"]
    lean = body["spec"]["containers"][0]
    assert (lean["image"], lean["command"]) == (TEST_IMAGE, ["bash", "-c", CONTAINER_ENTRY_SCRIPT])
    assert body["spec"]["terminationGracePeriodSeconds"] == 60 + 120
    assert body["spec"]["restartPolicy"] == "Never"
    assert body["metadata"]["namespace"] == "lean"
    assert body["metadata"]["name"].startswith("lean-lean-live-rebalance-20240305-")
    assert body["metadata"]["labels"]["dag_id"] == REF.dag_id and body["metadata"]["labels"]["task_id"] == "run_lean"
    assert {v["name"]: v for v in body["spec"]["volumes"]}["lean-data"]["persistentVolumeClaim"] == {
        "claimName": "lean-data",
        "readOnly": True,
    }
    assert context["ti"].xcom["pod_name"] == body["metadata"]["name"]
    # Every container ran and succeeded: stage-in, Lean (the stand-in, through the real entry script), stage-out.
    assert fake.exit_codes == {"stage-in": 0, "lean": 0, "stage-out": 0}
    # Lean's output went through stage-out into the store; the config the pod used is the store's too.
    assert (store_run / "results" / "log.txt").read_text() == "written by Lean"
    assert (store_run / "results" / "lean-airflow" / "deeper" / "state.json").is_file()
    config = json.loads((store_run / "config.json").read_text())
    assert config["object-store-root"] == "/Storage" and config["environment"] == "live-interactive"
    deployment = cluster["store"] / REF.dag_id / "_deployments" / DEPLOYMENT / "storage"
    assert (deployment / "executed.json").read_text() == '{"2024-03-04": true}'  # kept, as a live store is
    assert (deployment / "lean-airflow" / "deeper" / "state.json").is_file()  # what Lean wrote there
    # Lean read the staged files at Docker's paths: the intent under /Files, the config from the run.
    seen = json.loads((cluster["standin"] / "seen.json").read_text())
    assert seen["config"]["parameters"]["execution-intent-path"] == "/Files/order_intent_run_20240305.json"
    assert seen["config"]["ib-password"] == CANARY  # merged by the entry script from the Secret
    # The engine identity, recorded by the operator and uploaded with the run.
    identity = json.loads((store_run / "engine.json").read_text())
    # The engine is the Docker runtime's (the audit records a Docker run); the launcher says Kubernetes.
    assert (identity["runtime"], identity["launcher"], identity["engine"]) == ("docker", "kubernetes", TEST_IMAGE)
    assert identity["image_digest"] == f"{TEST_IMAGE}-id" and identity["pod"] == f"lean/{body['metadata']['name']}"
    assert identity["lean_version"] == "unknown"  # the stand-in writes no start banner
    # Succeeded: deleted (delete_succeeded_pod).
    assert [name for name, _ in fake.deleted] == [body["metadata"]["name"]]


def test_broker_secrets_reach_lean_through_a_secret_of_the_run_never_the_pod(cluster: dict[str, Any]) -> None:
    fake: FakeKubernetesAPI = cluster["fake"]
    _operator(cluster).execute(_context())
    (body,) = fake.created
    lean = body["spec"]["containers"][0]
    (secret_env,) = [item for item in lean["env"] if item["name"] == SECRET_CONFIG_ENV]
    secret_name = secret_env["valueFrom"]["secretKeyRef"]["name"]
    assert secret_env["valueFrom"]["secretKeyRef"]["key"] == SECRET_CONFIG_ENV
    assert secret_name.endswith("-secret")
    # Created before the pod, deleted after it; its value is the broker's secrets, and no pod field holds one.
    assert fake.secret_calls == [("create", secret_name), ("delete", secret_name)]
    assert CANARY not in json.dumps(body)
    assert fake.secrets == {}
    assert json.loads(fake.container_env["lean"][SECRET_CONFIG_ENV])["ib-password"] == CANARY
    assert CANARY not in json.dumps(fake.container_env["stage-in"]) + json.dumps(fake.container_env["stage-out"])


def test_a_configured_secret_is_referenced_not_written(
    cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake: FakeKubernetesAPI = cluster["fake"]
    fake.secrets["lean-broker"] = {"stringData": {SECRET_CONFIG_ENV: json.dumps({"ib-password": "from-the-cluster"})}}
    _operator(cluster, k8s_secret_name="lean-broker").execute(_context())
    assert fake.secret_calls == []
    seen = json.loads((cluster["standin"] / "seen.json").read_text())
    assert seen["config"]["ib-password"] == "from-the-cluster"


def test_a_failed_lean_fails_the_task_with_its_log_tail_and_the_pod_is_kept(
    cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowException

    fake: FakeKubernetesAPI = cluster["fake"]
    fake.lean_env["STANDIN_EXIT"] = "3"
    with pytest.raises(AirflowException) as info:
        _operator(cluster).execute(_context())
    message = str(info.value)
    assert "Lean failed in Kubernetes (stage-in exited 0, lean exited 3, stage-out exited 0)" in message
    assert "returned a failure" in message
    assert "written by Lean" in message  # the tail of Lean's log.txt, uploaded by stage-out
    assert fake.exit_codes == {"stage-in": 0, "lean": 3, "stage-out": 0}
    assert fake.deleted == []  # kept for kubectl logs, as a failed container is kept
    assert CANARY not in message


def test_a_stage_in_failure_fails_the_task_with_the_containers_output(cluster: dict[str, Any]) -> None:
    from airflow.sdk.exceptions import AirflowException

    fake: FakeKubernetesAPI = cluster["fake"]
    original = fake._env

    def store_without_the_run(container: dict[str, Any]) -> dict[str, str]:
        values = original(container)
        if ARTIFACT_STORE_ENV in values:  # the pod's staging containers see another (empty) file:// store
            values[ARTIFACT_STORE_ENV] = (fake.home / "elsewhere").as_uri()
        return values

    fake._env = store_without_the_run  # type: ignore[method-assign]
    with pytest.raises(AirflowException) as info:
        _operator(cluster).execute(_context())
    assert fake.exit_codes["stage-in"] != 0 and "lean" not in fake.exit_codes
    message = str(info.value)
    assert "Lean failed in Kubernetes (stage-in exited 1)" in message
    # Lean wrote no log: the failed container's own output says why.
    assert "ArtifactPathError" in message and "is outside the artifact store" in message


def test_on_kill_deletes_the_pod_with_the_termination_grace(cluster: dict[str, Any]) -> None:
    fake: FakeKubernetesAPI = cluster["fake"]
    operator = _operator(cluster, on_finish_action="keep_pod")
    operator.execute(_context())
    assert fake.deleted == []
    operator.on_kill()
    ((name, grace),) = fake.deleted
    assert name == fake.created[0]["metadata"]["name"] and grace == 60 + 120
    assert fake.created[0]["spec"]["containers"][0]["env"][-2]["value"] == EXIT_MARKER_PATH


def test_the_embedded_default_store_is_refused_for_kubernetes(
    cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowException

    scratch_folder = RunFolder.create(REF, root=cluster["scratch"])
    for path in (cluster["store"] / REF.dag_id / REF.run_key).iterdir():
        if path.is_file():
            (scratch_folder.path / path.name).write_bytes(path.read_bytes())
    monkeypatch.delenv(ARTIFACT_STORE_ENV)
    with pytest.raises(AirflowException, match="LEAN_AIRFLOW_ARTIFACT_STORE"):
        _operator(cluster, run_dir=str(scratch_folder.path)).execute(_context())
    assert cluster["fake"].created == []
