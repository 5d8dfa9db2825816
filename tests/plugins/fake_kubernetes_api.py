"""A fake of the Kubernetes API the cncf-kubernetes provider calls (``CoreV1Api``), with a kubelet that runs
the pod for real on this machine: no cluster here.

``create_namespaced_pod`` records the pod and runs it: each ``emptyDir`` is a folder, a PVC is the folder the
test maps its claim to, and the containers run in order as processes: the init containers, then the
containers (stage-out after Lean: the exit marker is already there). A staging container runs its
``python -m include.cli ...`` command with this interpreter, its mount paths mapped to the folders; Lean's
container runs its ``bash -c`` entry script with the stand-in ``dotnet`` of test_entry_script.py and the
container paths passed through the script's overrides. Secrets come from the Secrets created through the API.
Everything else answers as the API server would for a pod that ran to its end.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient  # type: ignore[import-untyped]
from kubernetes.client import models as k8s
from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped]

from tests.conftest import REPO_ROOT

LEAN_PATH_ENV = {
    "/Lean/Launcher/bin/Debug/config.json": "LEAN_CONFIG_FILE",
    "/Results": "LEAN_RESULTS_DIR",
    "/Storage": "LEAN_STORAGE_DIR",
}


class _LogResponse:
    """What ``read_namespaced_pod_log(..., _preload_content=False)`` returns: a stream of timestamped lines."""

    def __init__(self, text: str) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self._data = "".join(f"{stamp} {line}\n" for line in text.splitlines()).encode()

    def stream(self, amt: int | None = None, decode_content: bool = True) -> Iterator[bytes]:
        yield self._data

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeKubernetesAPI:
    def __init__(self, home: Path, claims: Mapping[str, Path], lean_env: Mapping[str, str]) -> None:
        self.home = home
        self.claims = dict(claims)
        self.lean_env = dict(lean_env)  # PATH with the stand-in dotnet, its home, its mode
        self.api_client = ApiClient()
        self.created: list[dict[str, Any]] = []
        self.pods: dict[str, k8s.V1Pod] = {}
        self.logs: dict[tuple[str, str], str] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.secret_calls: list[tuple[str, str]] = []
        self.deleted: list[tuple[str, int | None]] = []
        self.exit_codes: dict[str, int] = {}
        self.container_env: dict[str, dict[str, str]] = {}

    # ------------------------------------------------------------------ pods

    def create_namespaced_pod(self, body: dict[str, Any], namespace: str, **_: Any) -> k8s.V1Pod:
        from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

        self.created.append(body)
        pod = PodGenerator.deserialize_model_dict(body)
        pod.metadata.namespace = namespace
        pod.status = self._run(body)
        self.pods[pod.metadata.name] = pod
        return pod

    def list_namespaced_pod(self, namespace: str, label_selector: str = "", **_: Any) -> k8s.V1PodList:
        return k8s.V1PodList(items=[p for p in self.pods.values() if _matches(p.metadata.labels or {}, label_selector)])

    def read_namespaced_pod(self, name: str, namespace: str, **_: Any) -> k8s.V1Pod:
        if name not in self.pods:
            raise ApiException(status=404, reason="Not Found")
        return self.pods[name]

    def read_namespaced_pod_log(
        self, name: str, namespace: str, container: str, _preload_content: bool = True, **kwargs: Any
    ) -> Any:
        text = self.logs.get((name, container), "")
        if _preload_content:
            tail = kwargs.get("tail_lines")
            return "\n".join(text.splitlines()[-tail:] if tail else text.splitlines())
        return _LogResponse(text)

    def list_namespaced_event(self, namespace: str, **_: Any) -> k8s.CoreV1EventList:
        return k8s.CoreV1EventList(items=[], metadata=k8s.V1ListMeta(resource_version="1"))

    def patch_namespaced_pod(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> None:
        self.pods[name].metadata.labels.update(body["metadata"]["labels"])

    def delete_namespaced_pod(
        self, name: str, namespace: str, grace_period_seconds: int | None = None, **_: Any
    ) -> None:
        self.deleted.append((name, grace_period_seconds))
        self.pods.pop(name, None)

    # ------------------------------------------------------------------ secrets

    def create_namespaced_secret(self, namespace: str, body: k8s.V1Secret, **_: Any) -> None:
        name = body.metadata.name
        self.secret_calls.append(("create", name))
        if name in self.secrets:
            raise ApiException(status=409, reason="AlreadyExists")
        self.secrets[name] = self.api_client.sanitize_for_serialization(body)

    def replace_namespaced_secret(self, name: str, namespace: str, body: k8s.V1Secret, **_: Any) -> None:
        self.secret_calls.append(("replace", name))
        self.secrets[name] = self.api_client.sanitize_for_serialization(body)

    def delete_namespaced_secret(self, name: str, namespace: str, **_: Any) -> None:
        self.secret_calls.append(("delete", name))
        if self.secrets.pop(name, None) is None:
            raise ApiException(status=404, reason="Not Found")

    # ------------------------------------------------------------------ the kubelet

    def _run(self, body: dict[str, Any]) -> k8s.V1PodStatus:
        spec = body["spec"]
        root = self.home / body["metadata"]["name"]
        volumes: dict[str, Path] = {}
        for volume in spec["volumes"]:
            if "emptyDir" in volume:
                volumes[volume["name"]] = root / volume["name"]
                volumes[volume["name"]].mkdir(parents=True)
            else:
                volumes[volume["name"]] = self.claims[volume["persistentVolumeClaim"]["claimName"]]
        now = dt.datetime.now(dt.UTC)
        init_statuses, statuses = [], []
        failed = False
        for kind, containers in (("init", spec.get("initContainers", [])), ("main", spec["containers"])):
            for container in containers:
                name = container["name"]
                if failed:
                    state = k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason="PodInitializing"))
                else:
                    code = self._run_container(body["metadata"]["name"], container, volumes, root)
                    self.exit_codes[name] = code
                    failed = failed or (kind == "init" and code != 0)
                    state = k8s.V1ContainerState(
                        terminated=k8s.V1ContainerStateTerminated(exit_code=code, finished_at=now, started_at=now)
                    )
                status = k8s.V1ContainerStatus(
                    name=name,
                    image=container["image"],
                    image_id=f"{container['image']}-id",
                    ready=False,
                    restart_count=0,
                    state=state,
                )
                (init_statuses if kind == "init" else statuses).append(status)
        succeeded = not failed and all(s.state.terminated and s.state.terminated.exit_code == 0 for s in statuses)
        return k8s.V1PodStatus(
            phase="Succeeded" if succeeded else "Failed",
            init_container_statuses=init_statuses,
            container_statuses=statuses,
            conditions=[k8s.V1PodCondition(type="PodScheduled", status="True")],
        )

    def _env(self, container: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            env.update(self.secrets[source["secretRef"]["name"]]["stringData"])
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = self.secrets[ref["name"]]["stringData"][ref["key"]]
        return env

    def _run_container(self, pod: str, container: dict[str, Any], volumes: dict[str, Path], root: Path) -> int:
        mounts = {
            m["mountPath"]: volumes[m["name"]] / m["subPath"] if m.get("subPath") else volumes[m["name"]]
            for m in container.get("volumeMounts", [])
        }

        def host(text: str) -> str:
            for target in sorted(mounts, key=len, reverse=True):
                if text == target or text.startswith(target + "/"):
                    return str(mounts[target]) + text[len(target) :]
            return text

        env = {key: host(value) for key, value in self._env(container).items()}
        self.container_env[container["name"]] = env
        command = [host(part) for part in container["command"] + container.get("args", [])]
        base = {"HOME": str(root), "LANG": "C.UTF-8"}
        if command[:1] == ["python"]:  # a staging container: the project's image
            command[0] = sys.executable
            base.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), PYTHONPATH=str(REPO_ROOT))
        else:  # Lean's: the entry script with the container paths mapped, the stand-in Lean on PATH
            base.update(self.lean_env)
            base.update({variable: str(mounts[target]) for target, variable in LEAN_PATH_ENV.items()})
            base["LEAN_PRIVATE_CONFIG_FILE"] = str(root / "lean-private-config.json")
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.logs[(pod, container["name"])] = done.stdout + done.stderr
        return done.returncode


def _matches(labels: Mapping[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!") and term[1:] in labels:
            return False
    return True
