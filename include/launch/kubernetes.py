"""The Lean pod of ``LeanRunOperator(runtime="kubernetes")``: the Docker runtime's container, as a pod.

Built here as ``kubernetes.client`` models and nothing else (no Airflow, no cluster), so the exact
pod is asserted in tests; the operator hands it to the cncf-kubernetes provider's
``KubernetesPodOperator`` as its ``full_pod_spec``.

The Lean container is the Docker runtime's (``include.launch.docker``): the same image, entry
script, mount points and config; only where the files come from differs. A pod cannot bind the
Airflow worker's disk, so the run folder travels through the artifact store:

* ``stage-in`` (init container, the project's Airflow image): downloads the run folder from the
  store into an ``emptyDir``, writes the launcher config the worker checked, and copies the
  algorithms folder of its image; the Lean container mounts those files where Docker binds them.
* ``lean``: ``bash -c CONTAINER_ENTRY_SCRIPT``; the Lean data folder is a read-only PVC. The
  script's exit hook (``LEAN_EXIT_MARKER``) writes Lean's exit code into a shared ``emptyDir``.
* ``stage-out`` (a regular container beside Lean): waits for that marker, then uploads the run
  folder back. A regular container, not a native sidecar (an init container with
  ``restartPolicy: Always``): a sidecar's exit code does not count towards the pod's phase, so a
  failed upload would pass for a successful run; a regular container that fails fails the pod.
  It also works on clusters older than 1.29, where native sidecars do not exist.

Stopping: Lean stops cleanly only on SIGINT (Lean ``Launcher/Program.cs`` L98 registers
``Console.CancelKeyPress += ExitKeyPress``; L118-126 ``ExitKeyPress`` cancels the termination and
sets the algorithm ``Stopped``; ``Engine/AlgorithmManager.cs`` L683-688 then gives the algorithm
a minute before cancelling it). Nothing in Lean handles SIGTERM (no ``PosixSignalRegistration``,
no ``AppDomain.ProcessExit`` in Launcher, Engine or Common), so .NET's default ends the process on
it, unflushed. Kubernetes stops a pod with SIGTERM (and SIGKILL after
``terminationGracePeriodSeconds``), and a pod spec has no stop signal: the entry script traps TERM
and sends Lean SIGINT, as it does for ``docker stop``. The grace is the operator's stop grace plus
the time ``stage-out`` needs to upload what Lean wrote, since both happen within it.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes.client import models as k8s  # type: ignore[import-untyped]

from include.atomic_io import dumps_canonical
from include.errors import LeanConfigError
from include.launch.config import (
    CONTAINER_ALGORITHM_DIR,
    CONTAINER_CONFIG_PATH,
    CONTAINER_DATA_DIR,
    CONTAINER_FILES_DIR,
    CONTAINER_RESULTS_DIR,
    CONTAINER_STORAGE_DIR,
    LeanJob,
    launcher_config_for,
)
from include.launch.docker import (
    CONFIG_SHA_LABEL,
    CONTAINER_ENTRY_SCRIPT,
    DAG_ID_LABEL,
    DEFAULT_STOP_GRACE_S,
    MODE_LABEL,
    OWNER_ENV,
    RUN_KEY_LABEL,
    SECRET_CONFIG_ENV,
    memory_limit,
    nano_cpus,
    resolve_image,
)
from include.run_folder import ARTIFACT_ROOT_ENV

# Settings (each also an operator argument, which wins).
NAMESPACE_ENV = "LEAN_AIRFLOW_K8S_NAMESPACE"
CONN_ID_ENV = "LEAN_AIRFLOW_K8S_CONN_ID"
DATA_PVC_ENV = "LEAN_AIRFLOW_K8S_DATA_PVC"
STAGING_IMAGE_ENV = "LEAN_AIRFLOW_K8S_STAGING_IMAGE"
SECRET_ENV = "LEAN_AIRFLOW_K8S_SECRET_NAME"
STORE_SECRET_ENV = "LEAN_AIRFLOW_K8S_STORE_SECRET_NAME"
DEFAULT_CONN_ID = "kubernetes_default"
DEFAULT_DATA_PVC = "lean-data"
# The store the staging containers read and write (the same variable as the worker's).
ARTIFACT_STORE_ENV = "LEAN_AIRFLOW_ARTIFACT_STORE"
# The launcher config the worker checked, handed to stage-in (it holds no secret).
LAUNCHER_CONFIG_ENV = "LEAN_AIRFLOW_LAUNCHER_CONFIG"
# Read by CONTAINER_ENTRY_SCRIPT: where its exit hook writes Lean's exit code.
EXIT_MARKER_ENV = "LEAN_EXIT_MARKER"

LEAN_CONTAINER = "lean"
STAGE_IN_CONTAINER = "stage-in"
STAGE_OUT_CONTAINER = "stage-out"
RUN_VOLUME = "run"
ALGORITHMS_VOLUME = "algorithms"
STATUS_VOLUME = "status"
DATA_VOLUME = "lean-data"
# Mount points of the staging containers (the Lean container keeps Docker's).
STAGE_DIR = "/stage"
STAGE_ALGORITHMS_DIR = "/algorithms"
STATUS_DIR = "/lean-airflow-status"
EXIT_MARKER_PATH = f"{STATUS_DIR}/exit-code"
# Time stage-out has, after Lean stopped, to upload the results (added to the termination grace).
DEFAULT_UPLOAD_GRACE_S = 120.0
# Time stage-in may take before Lean starts (added to the engine timeout for activeDeadlineSeconds).
DEFAULT_STAGING_ALLOWANCE_S = 600.0
# uid:gid of the staging containers: the official Airflow image's user (AIRFLOW_UID 50000, group 0). Lean
# runs as root; the entry script hands its output to this user ($LEAN_OWNER, as it does to the Docker
# worker's), so stage-out can read every file Lean wrote, whatever its mode.
DEFAULT_STAGING_OWNER = "50000:0"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_POD_NAME_PART = re.compile(r"[^a-z0-9-]+")
# Leaves room for the provider's random suffix ("-" + 8 characters) within a 63-character hostname.
MAX_POD_NAME_LENGTH = 54


def pod_name(dag_id: str, run_key: str) -> str:
    """``lean-<dag_id>-<run_key>`` as a DNS label, ending in a hash of the raw pair, so two runs whose
    names differ only in characters Kubernetes refuses (``_``, ``.``, case) never share a pod name."""
    raw = f"{dag_id}/{run_key}"
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
    slug = _POD_NAME_PART.sub("-", f"{dag_id}-{run_key}".lower()).strip("-")
    slug = slug[: MAX_POD_NAME_LENGTH - len("lean--") - len(digest)].strip("-")
    return f"lean-{slug}-{digest}" if slug else f"lean-{digest}"


def _setting(value: str | None, env: str, default: str | None = None) -> str | None:
    text = value if value is not None else os.environ.get(env, "")
    return text.strip() or default


def _dns_name(value: str | None, what: str) -> str | None:
    if value is not None and (len(value) > 253 or not all(_DNS_LABEL.fullmatch(part) for part in value.split("."))):
        raise LeanConfigError([f"{what}={value!r}: not a Kubernetes object name (lower-case DNS subdomain)"])
    return value


def staging_image(image: str | None) -> str:
    """The project's Airflow image (it has ``include.cli`` and the algorithms): the argument, else
    ``$LEAN_AIRFLOW_K8S_STAGING_IMAGE``."""
    ref = _setting(image, STAGING_IMAGE_ENV)
    if not ref:
        raise LeanConfigError(
            [f"no staging image: set {STAGING_IMAGE_ENV} to the project's Airflow image (it stages the run folder)"]
        )
    return ref


def quantity_of_bytes(value: int) -> str:
    """A byte count in Kubernetes' notation (``8Gi``, ``512Mi``, or bytes)."""
    for suffix, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if value % size == 0:
            return f"{value // size}{suffix}"
    return str(value)


def lean_resources(
    mem_limit: str | int | None = None,
    cpus: float | str | None = None,
    resources: Mapping[str, Mapping[str, str]] | None = None,
) -> k8s.V1ResourceRequirements:
    """The Lean container's resources: ``resources`` as given (``{"requests": {...}, "limits": {...}}``),
    else the Docker runtime's limits (``$LEAN_AIRFLOW_CONTAINER_MEMORY``/``_CPUS``, 8g and 2 CPUs),
    requested as much as limited: the scheduler reserves what Lean may use, and the pod is in the
    Guaranteed QoS class, the last to be evicted (a live run must not be)."""
    if resources is not None:
        unknown = sorted(set(resources) - {"requests", "limits"})
        if unknown:
            raise LeanConfigError([f"resources: unknown keys {unknown} (expected 'requests' and 'limits')"])
        return k8s.V1ResourceRequirements(
            requests=dict(resources.get("requests") or {}) or None, limits=dict(resources.get("limits") or {}) or None
        )
    amounts: dict[str, str] = {}
    memory = memory_limit(mem_limit)
    if memory is not None:
        amounts["memory"] = quantity_of_bytes(memory)
    nano = nano_cpus(cpus)
    if nano is not None:
        amounts["cpu"] = f"{math.ceil(nano / 1_000_000)}m"
    return k8s.V1ResourceRequirements(requests=dict(amounts) or None, limits=dict(amounts) or None)


def _run_path(job: LeanJob, path: Path) -> str:
    """``path`` (in the worker's copy of the run folder) relative to the staging root: the same
    ``<dag_id>/<run key>/...`` layout stage-in recreates in the pod."""
    folder = job.folder
    return str(Path(folder.dag_id, folder.run_key, path.relative_to(folder.path)))


def _storage_path(job: LeanJob) -> str:
    """Lean's object store in the staging root: the run's ``storage/``, or a live deployment's."""
    folder = job.folder
    if job.mode == "live":
        return str(Path(folder.dag_id, "_deployments", job.broker.deployment, "storage"))
    return _run_path(job, folder.storage_dir)


def pod_spec(
    job: LeanJob,
    *,
    run_uri: str,
    store_uri: str,
    image: str | None = None,
    stage_image: str | None = None,
    namespace: str | None = None,
    data_pvc: str | None = None,
    secret_name: str | None = None,
    store_secret_name: str | None = None,
    service_account_name: str | None = None,
    mem_limit: str | int | None = None,
    cpus: float | str | None = None,
    resources: Mapping[str, Mapping[str, str]] | None = None,
    stop_grace_s: float = DEFAULT_STOP_GRACE_S,
    upload_grace_s: float = DEFAULT_UPLOAD_GRACE_S,
    engine_timeout_s: float | None = None,
    staging_allowance_s: float = DEFAULT_STAGING_ALLOWANCE_S,
    staging_owner: str = DEFAULT_STAGING_OWNER,
) -> k8s.V1Pod:
    """The pod that runs ``job``: stage-in, Lean (Docker's container), stage-out.

    ``run_uri`` is the run folder in the store (``store_uri``). ``secret_name`` names a Kubernetes
    Secret whose key ``LEAN_SECRET_CONFIG`` holds the JSON object of Lean key -> secret value (the
    broker's credentials, the QuantConnect licence); the pod only refers to it, so no secret value
    is ever part of the spec. ``store_secret_name`` names a Secret whose keys become the staging
    containers' environment (the store's credentials, e.g. ``AWS_ACCESS_KEY_ID``); a service
    account with workload identity needs none.
    """
    folder = job.folder
    problems: list[str] = []
    for what, value in (("run_uri", run_uri), ("store_uri", store_uri)):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{what}={value!r}: the store URI is required (the pod stages the run through the store)")
    if not stop_grace_s > 0 or not upload_grace_s > 0:
        problems.append(f"stop_grace_s={stop_grace_s!r}, upload_grace_s={upload_grace_s!r}: expected seconds above 0")
    uid, _, gid = staging_owner.partition(":")
    if not (uid.isdigit() and gid.isdigit()):
        problems.append(f"staging_owner={staging_owner!r}: expected uid:gid (numbers)")
    if problems:
        raise LeanConfigError(problems)
    staging_user = k8s.V1SecurityContext(run_as_user=int(uid), run_as_group=int(gid))
    lean_image = resolve_image(image)
    stager = staging_image(stage_image)
    claim = _dns_name(_setting(data_pvc, DATA_PVC_ENV, DEFAULT_DATA_PVC), "data_pvc")
    secret = _dns_name(_setting(secret_name, SECRET_ENV), "secret_name")
    store_secret = _dns_name(_setting(store_secret_name, STORE_SECRET_ENV), "store_secret_name")
    config = launcher_config_for(job, "docker")
    config_text = dumps_canonical(config)

    run_rel = _run_path(job, folder.path)
    # The store, and the pod's emptyDir as the local scratch root it is staged into.
    store_env = [
        k8s.V1EnvVar(name=ARTIFACT_STORE_ENV, value=store_uri),
        k8s.V1EnvVar(name=ARTIFACT_ROOT_ENV, value=STAGE_DIR),
    ]
    store_env_from = None
    if store_secret:
        store_env_from = [k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=store_secret))]
    stage_args = ["--run", run_uri, "--scratch", STAGE_DIR, "--mode", job.mode]
    if job.mode == "live":
        stage_args += ["--deployment", job.broker.deployment]

    stage_in = k8s.V1Container(
        name=STAGE_IN_CONTAINER,
        image=stager,
        command=["python", "-m", "include.cli", "stage", "in", *stage_args],
        args=[
            *("--config-env", LAUNCHER_CONFIG_ENV),
            *("--algorithms", str(job.algorithm_path.parent), "--algorithms-to", STAGE_ALGORITHMS_DIR),
        ],
        env=[*store_env, k8s.V1EnvVar(name=LAUNCHER_CONFIG_ENV, value=config_text)],
        env_from=store_env_from,
        security_context=staging_user,
        volume_mounts=[
            k8s.V1VolumeMount(name=RUN_VOLUME, mount_path=STAGE_DIR),
            k8s.V1VolumeMount(name=ALGORITHMS_VOLUME, mount_path=STAGE_ALGORITHMS_DIR),
        ],
    )

    def run_file(path: Path, target: str, read_only: bool) -> k8s.V1VolumeMount:
        return k8s.V1VolumeMount(name=RUN_VOLUME, mount_path=target, sub_path=_run_path(job, path), read_only=read_only)

    lean_env = [
        k8s.V1EnvVar(name="PYTHONUNBUFFERED", value="1"),
        k8s.V1EnvVar(name="PYTHONDONTWRITEBYTECODE", value="1"),
        k8s.V1EnvVar(name=OWNER_ENV, value=staging_owner),
        k8s.V1EnvVar(name=EXIT_MARKER_ENV, value=EXIT_MARKER_PATH),
    ]
    if secret:
        lean_env.append(
            k8s.V1EnvVar(
                name=SECRET_CONFIG_ENV,
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(name=secret, key=SECRET_CONFIG_ENV, optional=False)
                ),
            )
        )
    lean = k8s.V1Container(
        name=LEAN_CONTAINER,
        image=lean_image,
        command=["bash", "-c", CONTAINER_ENTRY_SCRIPT],
        env=lean_env,
        resources=lean_resources(mem_limit, cpus, resources),
        # Docker's mounts, same targets and modes (include.launch.docker.container_spec).
        volume_mounts=[
            k8s.V1VolumeMount(name=ALGORITHMS_VOLUME, mount_path=CONTAINER_ALGORITHM_DIR, read_only=True),
            k8s.V1VolumeMount(name=DATA_VOLUME, mount_path=CONTAINER_DATA_DIR, read_only=True),
            run_file(folder.results_dir, CONTAINER_RESULTS_DIR, False),
            k8s.V1VolumeMount(
                name=RUN_VOLUME, mount_path=CONTAINER_STORAGE_DIR, sub_path=_storage_path(job), read_only=False
            ),
            run_file(folder.config_path, CONTAINER_CONFIG_PATH, True),
            *(run_file(path, f"{CONTAINER_FILES_DIR}/{path.name}", True) for path in folder.input_files),
            k8s.V1VolumeMount(name=STATUS_VOLUME, mount_path=STATUS_DIR),
        ],
    )
    stage_out = k8s.V1Container(
        name=STAGE_OUT_CONTAINER,
        image=stager,
        command=["python", "-m", "include.cli", "stage", "out", *stage_args],
        args=["--exit-marker", EXIT_MARKER_PATH, "--stop-grace", f"{math.ceil(stop_grace_s)}"],
        env=store_env,
        env_from=store_env_from,
        security_context=staging_user,
        volume_mounts=[
            k8s.V1VolumeMount(name=RUN_VOLUME, mount_path=STAGE_DIR),
            k8s.V1VolumeMount(name=STATUS_VOLUME, mount_path=STATUS_DIR),
        ],
    )
    deadline = None
    if engine_timeout_s is not None and engine_timeout_s > 0:
        deadline = math.ceil(engine_timeout_s + staging_allowance_s)
    return k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(
            name=pod_name(folder.dag_id, folder.run_key),
            namespace=_setting(namespace, NAMESPACE_ENV),
            # Annotations, not labels: a label value is at most 63 characters (a dag_id may have 250,
            # the sha256 has 64). The provider labels the pod with the task instance for finding it.
            annotations={
                DAG_ID_LABEL: folder.dag_id,
                RUN_KEY_LABEL: folder.run_key,
                MODE_LABEL: job.mode,
                CONFIG_SHA_LABEL: hashlib.sha256(config_text.encode("utf-8")).hexdigest(),
                "lean-airflow.run-dir": run_rel,
            },
        ),
        spec=k8s.V1PodSpec(
            restart_policy="Never",
            service_account_name=service_account_name,
            init_containers=[stage_in],
            containers=[lean, stage_out],
            volumes=[
                k8s.V1Volume(name=RUN_VOLUME, empty_dir=k8s.V1EmptyDirVolumeSource()),
                k8s.V1Volume(name=ALGORITHMS_VOLUME, empty_dir=k8s.V1EmptyDirVolumeSource()),
                k8s.V1Volume(name=STATUS_VOLUME, empty_dir=k8s.V1EmptyDirVolumeSource()),
                k8s.V1Volume(
                    name=DATA_VOLUME,
                    persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=claim, read_only=True),
                ),
            ],
            termination_grace_period_seconds=math.ceil(stop_grace_s + upload_grace_s),
            active_deadline_seconds=deadline,
        ),
    )


def pod_manifest(pod: k8s.V1Pod) -> dict[str, Any]:
    """The pod as the JSON the API server receives (camelCase keys, no empty fields)."""
    from kubernetes.client import ApiClient

    manifest: dict[str, Any] = ApiClient().sanitize_for_serialization(pod)
    return manifest
