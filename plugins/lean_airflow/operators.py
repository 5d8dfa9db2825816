"""``LeanRunOperator``: one operator for backtest and live, on Docker or the local runtime.

It only wires ``include.launch`` to Airflow: both runtimes get the same launcher config for the
same run folder; only the paths differ. The run folder is staged from the artifact store into local
scratch (``include.artifact_store.staged_run``; in place by default) and Lean's results are uploaded before
``execute`` returns the store URI of ``results/``, which is all XCom carries; the engine's identity goes to
the run folder's ``engine.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.log import mask_secret

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

    from include.artifact_store import ArtifactStore
    from include.launch.brokers import BrokerConnection
    from include.launch.config import LeanJob, Mode
    from include.launch.lifecycle import DockerLeanRun
    from include.launch.local import LocalLeanRun
    from include.run_folder import RunFolder

# include/ (pydantic contracts, the runtime) is imported inside the methods that run tasks: the
# DAG processor parses this module on every DAG-file parse and must not pay for it.

REPORT_BASE_URL_ENV = "LEAN_AIRFLOW_REPORT_BASE_URL"
REPORT_URL_PREFIX = "/lean-airflow"
DEFAULT_ENGINE_TIMEOUT = dt.timedelta(hours=2)
# How long Lean may take to finish after SIGINT before it is killed (lean-cli waits 60 s too).
DEFAULT_STOP_GRACE = dt.timedelta(seconds=60)
# The task's execution_timeout beyond the engine's: the stop grace, plus writing the config and
# inspecting (or, on a cold host, pulling) the image, so the engine limit always fires first.
TASK_TIMEOUT_MARGIN = dt.timedelta(minutes=15)
# The runtimes LeanRunOperator dispatches to (``_run`` has one branch each).
RUNTIMES: tuple[str, ...] = ("docker", "kubernetes", "local")


def artifact_store() -> ArtifactStore:
    """The run folders' store: ``$LEAN_AIRFLOW_ARTIFACT_STORE`` as an ``ObjectStoragePath`` with the
    credentials of ``$LEAN_AIRFLOW_ARTIFACT_CONN_ID`` (if any); unset, the local artifact root, in place."""
    from include.artifact_store import ARTIFACT_CONN_ID_ENV, ARTIFACT_STORE_ENV, ArtifactStore, parse_store_uri

    raw = (os.environ.get(ARTIFACT_STORE_ENV) or "").strip()
    if not raw:
        return ArtifactStore.from_env()
    from airflow.sdk import ObjectStoragePath

    conn_id = (os.environ.get(ARTIFACT_CONN_ID_ENV) or "").strip() or None
    return ArtifactStore.from_env(ObjectStoragePath(parse_store_uri(raw), conn_id=conn_id))


def task_execution_timeout(
    engine_timeout: dt.timedelta = DEFAULT_ENGINE_TIMEOUT, stop_grace: dt.timedelta = DEFAULT_STOP_GRACE
) -> dt.timedelta:
    """The ``execution_timeout`` of a ``run_lean`` task: the engine's limit, its stop grace and a margin."""
    return engine_timeout + stop_grace + TASK_TIMEOUT_MARGIN


def _api_root_path() -> str:
    """The path part of ``[api] base_url`` (``/airflow`` behind a proxy's sub-path), else empty."""
    from urllib.parse import urlsplit

    try:
        from airflow.configuration import conf

        base_url = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # no Airflow config here: the UI is at the host's root
        return ""
    return urlsplit(base_url).path.rstrip("/")


def report_url(dag_id: str, run_key: str) -> str:
    """The report page of a run: relative to the Airflow UI's host (whatever host the browser used).

    ``$LEAN_AIRFLOW_REPORT_BASE_URL``, when set and not empty, makes it absolute (reports served
    elsewhere); otherwise the path follows ``[api] base_url``'s sub-path, if Airflow has one.
    """
    base = (os.environ.get(REPORT_BASE_URL_ENV) or "").strip().rstrip("/") or _api_root_path()
    return f"{base}{REPORT_URL_PREFIX}/runs/{dag_id}/{run_key}"


def _run_dir_of(operator: BaseOperator) -> str:
    """The run folder a task worked on: ``LeanRunOperator.run_dir``, or the ``run_dir`` of a TaskFlow
    task's (rendered) input, the paths dict the previous task returned."""
    run_dir = getattr(operator, "run_dir", None)
    if run_dir:
        return str(run_dir)
    inputs = [*(getattr(operator, "op_args", None) or ()), *(getattr(operator, "op_kwargs", None) or {}).values()]
    for value in inputs:
        if isinstance(value, Mapping) and isinstance(value.get("run_dir"), str):
            return str(value["run_dir"])
    return ""


class LeanReportLink(BaseOperatorLink):
    """Opens the run's report page served by the lean-airflow UI plugin (on ``run_lean`` and
    ``consistency_check``). Evaluated on the worker when the task ends, from the rendered task."""

    name = "Lean report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        run_dir = _run_dir_of(operator)
        if not run_dir or "{{" in run_dir:
            return report_url(ti_key.dag_id, "").rstrip("/")
        return report_url(ti_key.dag_id, os.path.basename(run_dir.rstrip("/")))


def broker_connection(conn_id: str | None) -> BrokerConnection:
    """The broker selection and its secrets from an Airflow connection (no connection: the paper broker on
    the local runtime's feed from the Lean data folder).

    The fields (``include.launch.brokers``): ``login``/``password`` the broker's user and password,
    ``host``/``port`` its gateway, ``extra`` a JSON object with ``broker``, ``data_provider``, ``account``,
    the broker's settings (e.g. ``trading_mode``) and the QuantConnect licence ``job_user_id``,
    ``api_access_token``, ``job_organization_id``. Every secret is registered with the secrets masker
    before anything can log it; a bad field is a ``BrokerConnectionError`` naming the field.
    """
    from include.launch.brokers import DEFAULT_SELECTION, BrokerConnection, parse_broker_connection

    if not conn_id:
        return BrokerConnection(selection=DEFAULT_SELECTION)
    conn = BaseHook.get_connection(conn_id)
    for secret in (conn.login, conn.password):
        if secret:
            mask_secret(secret)
    fields = {
        "conn_type": conn.conn_type,
        "login": conn.login,
        "password": conn.password,
        "host": conn.host,
        "port": conn.port,
        "extra": conn.extra,
    }
    parsed = parse_broker_connection(conn_id, fields)
    for value in parsed.secrets.values():
        mask_secret(value)
    return parsed


class LeanRunOperator(BaseOperator):
    """Run Lean on one run folder.

    :param mode: ``backtest`` or ``live`` (selects Lean's environment block).
    :param run_dir: the run folder (templated); intent, params and config live there.
    :param runtime: ``docker`` (the quantconnect/lean image, through the Docker provider's hook),
        ``kubernetes`` (the same container in a pod, through the cncf-kubernetes provider's
        ``KubernetesPodOperator``; ``include.launch.kubernetes``) or ``local``
        (``python -m include.lean_local`` in a subprocess); templated.
    :param parameters: extra Lean ``parameters`` (templated), e.g. ``{"starting-cash": ...}``.
    :param broker_conn_id: live mode: the Airflow connection selecting the broker, its data provider and
        account (:func:`broker_connection`); its secrets reach Lean through the container's (or
        subprocess's) environment, never a file. None: the paper broker on the local runtime's feed.
    :param engine_timeout: wall-clock limit of one Lean run (both runtimes); a Docker run is then
        stopped with SIGINT and killed after ``stop_grace`` (the local engine: its whole process group).
    :param mem_limit: the container's memory limit (Docker notation, ``none`` for no limit);
        default ``$LEAN_AIRFLOW_CONTAINER_MEMORY``, else 8g.
    :param cpus: the container's CPU limit; default ``$LEAN_AIRFLOW_CONTAINER_CPUS``, else 2.
    :param network_mode: default ``none`` for a backtest, Docker's default network for live.
    :param docker_url: the daemon; default ``$DOCKER_HOST``, else the local socket.
    :param docker_conn_id: optional Airflow connection of a private registry to log in to.
    :param namespace: kubernetes: the pod's namespace; default ``$LEAN_AIRFLOW_K8S_NAMESPACE``, else the
        connection's.
    :param kubernetes_conn_id: kubernetes: the cluster's Airflow connection; default
        ``$LEAN_AIRFLOW_K8S_CONN_ID``, else ``kubernetes_default``.
    :param data_pvc: kubernetes: the PersistentVolumeClaim holding the Lean data folder (mounted read-only);
        default ``$LEAN_AIRFLOW_K8S_DATA_PVC``, else ``lean-data``.
    :param staging_image: kubernetes: the project's Airflow image, which stages the run folder in and out of
        the pod; default ``$LEAN_AIRFLOW_K8S_STAGING_IMAGE``.
    :param k8s_secret_name: kubernetes: a Secret whose key ``LEAN_SECRET_CONFIG`` holds Lean's secrets (JSON);
        default ``$LEAN_AIRFLOW_K8S_SECRET_NAME``. Unset, a live run's broker secrets go to a Secret of the run that
        the operator creates before the pod and deletes after it.
    :param store_secret_name: kubernetes: a Secret with the artifact store's credentials for the staging
        containers (``envFrom``); default ``$LEAN_AIRFLOW_K8S_STORE_SECRET_NAME``.
    :param service_account_name: kubernetes: the pod's service account (e.g. with workload identity).
    :param container_resources: kubernetes: the Lean container's ``{"requests": {...}, "limits": {...}}``; default the
        Docker limits (``mem_limit``, ``cpus``) as requests and limits.
    :param on_finish_action: kubernetes: the provider's ``delete_succeeded_pod`` (a failed pod is kept for
        ``kubectl logs``, as a failed container is), ``delete_pod`` or ``keep_pod``.
    """

    template_fields: Sequence[str] = ("run_dir", "runtime", "parameters", "image")
    template_fields_renderers = {"parameters": "json"}
    operator_extra_links = (LeanReportLink(),)
    ui_color = "#d8e7f5"

    def __init__(
        self,
        *,
        mode: Mode,
        run_dir: str,
        runtime: str = "local",
        parameters: Mapping[str, Any] | None = None,
        algorithm_path: str | None = None,
        data_path: str | None = None,
        image: str | None = None,
        docker_url: str | None = None,
        network_mode: str | None = None,
        host_path_map: Mapping[str, str] | None = None,
        broker_conn_id: str | None = None,
        engine_timeout: dt.timedelta = DEFAULT_ENGINE_TIMEOUT,
        stop_grace: dt.timedelta = DEFAULT_STOP_GRACE,
        mem_limit: str | None = None,
        cpus: float | None = None,
        docker_conn_id: str | None = None,
        namespace: str | None = None,
        kubernetes_conn_id: str | None = None,
        data_pvc: str | None = None,
        staging_image: str | None = None,
        k8s_secret_name: str | None = None,
        store_secret_name: str | None = None,
        service_account_name: str | None = None,
        container_resources: Mapping[str, Mapping[str, str]] | None = None,
        on_finish_action: str = "delete_succeeded_pod",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in ("backtest", "live"):
            raise ValueError(f"LeanRunOperator mode={mode!r}: expected 'backtest' or 'live'")
        self.mode: Mode = mode
        self.run_dir = run_dir
        self.runtime = runtime
        self.parameters = dict(parameters or {})
        self.algorithm_path = algorithm_path
        self.data_path = data_path
        self.image = image
        self.docker_url = docker_url
        self.network_mode = network_mode
        self.host_path_map = dict(host_path_map) if host_path_map is not None else None
        self.broker_conn_id = broker_conn_id
        self.engine_timeout = engine_timeout
        self.stop_grace = stop_grace
        self.mem_limit = mem_limit
        self.cpus = cpus
        self.docker_conn_id = docker_conn_id
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.data_pvc = data_pvc
        self.staging_image = staging_image
        self.k8s_secret_name = k8s_secret_name
        self.store_secret_name = store_secret_name
        self.service_account_name = service_account_name
        self.container_resources = container_resources
        self.on_finish_action = on_finish_action
        # The Docker or local run in progress, so that on_kill (Airflow's SIGTERM handler) can stop it.
        self._docker_run: DockerLeanRun | None = None
        self._local_run: LocalLeanRun | None = None
        self._pod_operator: KubernetesPodOperator | None = None

    def _job(self, folder: RunFolder) -> LeanJob:
        from pathlib import Path

        from include.pipeline import lean_job

        inputs: dict[str, Any] = {}
        if self.algorithm_path:
            inputs["algorithm_path"] = Path(self.algorithm_path).resolve()
        if self.data_path:
            inputs["data_folder"] = Path(self.data_path).resolve()
        return lean_job(folder, mode=self.mode, parameters=self.parameters, **inputs)

    def execute(self, context: Context) -> str:
        runtime = str(self.runtime).strip().lower()
        if runtime not in RUNTIMES:
            raise AirflowException(
                f"LeanRunOperator runtime={self.runtime!r}: expected one of {', '.join(map(repr, RUNTIMES))}"
            )
        from include.artifact_store import staged_run
        from include.pipeline import staged_lean_storage

        store = artifact_store()
        # The run folder in local scratch (the folder itself in the embedded default); what Lean wrote is
        # uploaded on the way out, also when it failed, so its logs are in the store.
        with staged_run(self.run_dir, store=store) as folder:
            job, secrets = self._prepared_job(folder, runtime)
            with staged_lean_storage(job, store=store):
                self._run(runtime, job, context, secrets)
            return store.file_uri(folder, folder.results_dir)

    def _prepared_job(self, folder: RunFolder, runtime: str) -> tuple[LeanJob, Mapping[str, str]]:
        """The job for the staged folder, its broker and secrets, after the preflight checks."""
        import dataclasses

        from include.launch.data_folder import require_lean_data_folder
        from include.launch.lean_rules import check_job_before_start

        job = self._job(folder)
        # Preflight: Lean stops at start without its market-hours and symbol-properties databases;
        # say which file is missing before a container or a subprocess is started.
        require_lean_data_folder(job.data_folder)
        secrets: Mapping[str, str] = {}
        if self.mode == "live":
            connection = broker_connection(self.broker_conn_id)
            job = dataclasses.replace(job, broker=connection.selection)
            secrets = connection.secrets
        # Preflight: the broker runs on this runtime and the config passes Lean's keys and live rules
        # (a live environment without a data queue handler is refused here, before anything starts).
        # The pod's Lean is the Docker runtime's container: the same config, brokers and rules.
        check_job_before_start(job, "docker" if runtime == "kubernetes" else runtime)  # type: ignore[arg-type]
        return job, secrets

    def _run(self, runtime: str, job: LeanJob, context: Context, secrets: Mapping[str, str]) -> None:
        """Run Lean on the staged job with the runtime's launcher (one method per runtime)."""
        if runtime == "docker":
            self._run_docker(job, context, secrets)
        elif runtime == "kubernetes":
            self._run_kubernetes(job, context, secrets)
        else:
            self._run_local(job, secrets)

    def _run_local(self, job: LeanJob, secrets: Mapping[str, str]) -> None:
        from include.errors import LeanRunError
        from include.launch.docker import SECRET_CONFIG_ENV
        from include.launch.local import LocalLeanRun

        self.log.info("Running the local Lean runtime on %s", job.folder.config_path)
        # Kept so that on_kill can stop it: the engine runs in a process group of its own, which
        # Airflow's kill of the task's group does not reach.
        self._local_run = LocalLeanRun(
            job,
            timeout_s=self.engine_timeout.total_seconds(),
            on_line=lambda line: self.log.info("[lean] %s", line),
            env={SECRET_CONFIG_ENV: json.dumps(secrets)} if secrets else None,
            stop_grace_s=self.stop_grace.total_seconds(),
        )
        try:
            self._local_run.run()
        except LeanRunError as exc:  # a failure, a stop (on_kill) or the engine timeout
            raise AirflowException(str(exc)) from None

    def _run_docker(self, job: LeanJob, context: Context, secrets: Mapping[str, str]) -> None:
        from airflow.providers.docker.hooks.docker import DockerHook

        from include.errors import LeanRunError
        from include.launch.docker import container_spec, host_path_map_from_env
        from include.launch.lifecycle import DockerLeanRun

        host_map = self.host_path_map if self.host_path_map is not None else host_path_map_from_env()
        spec = container_spec(
            job,
            image=self.image,
            host_path_map=host_map,
            secrets=secrets,
            mem_limit=self.mem_limit,
            cpus=self.cpus,
            network_mode=self.network_mode,
            stop_grace_s=self.stop_grace.total_seconds(),
        )
        # The low-level docker-py client, through the provider's hook (and its registry login).
        hook = DockerHook(
            docker_conn_id=self.docker_conn_id,
            base_url=self.docker_url or os.environ.get("DOCKER_HOST") or "unix://var/run/docker.sock",
        )
        self._docker_run = DockerLeanRun(
            hook.get_conn(),
            job,
            spec,
            timeout_s=self.engine_timeout.total_seconds(),
            on_line=lambda line: self.log.info("[lean] %s", line),
        )
        try:
            identity = self._docker_run.run()
        except LeanRunError as exc:
            raise AirflowException(str(exc)) from None
        self.log.info("Lean engine: %s", identity)

    def _run_kubernetes(self, job: LeanJob, context: Context, secrets: Mapping[str, str]) -> None:
        """Lean in a pod (``include.launch.kubernetes.pod_spec``) through the provider's KubernetesPodOperator.

        The pod stages the run folder from the artifact store and uploads Lean's output back; afterwards this
        worker's copy is refreshed from the store (the log tail of a failure, the engine identity). Broker
        secrets without a configured Secret go to a Secret of this run, deleted once the pod has ended.
        """
        import contextlib

        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
        from kubernetes.client import models as k8s  # type: ignore[import-untyped]
        from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped]

        from include.launch.docker import SECRET_CONFIG_ENV
        from include.launch.image import lean_version_from_log
        from include.launch.kubernetes import (
            CONN_ID_ENV,
            DEFAULT_CONN_ID,
            LEAN_CONTAINER,
            SECRET_ENV,
            STAGE_IN_CONTAINER,
            STAGE_OUT_CONTAINER,
            pod_name,
            pod_spec,
        )
        from include.launch.lifecycle import TAIL_LINES
        from include.run_folder import NO_LOG_TAIL

        store = artifact_store()
        if store.in_place:
            raise AirflowException(
                "runtime='kubernetes' needs an artifact store the pod can reach: set LEAN_AIRFLOW_ARTIFACT_STORE "
                "(s3://, gs://, abfs://); the embedded default keeps the run folders on this worker's disk"
            )
        folder = job.folder
        conn_id = self.kubernetes_conn_id or (os.environ.get(CONN_ID_ENV) or "").strip() or DEFAULT_CONN_ID
        secret_name = self.k8s_secret_name or (os.environ.get(SECRET_ENV) or "").strip() or None
        managed_secret = f"{pod_name(folder.dag_id, folder.run_key)}-secret" if secrets and not secret_name else None
        pod = pod_spec(
            job,
            run_uri=store.run_uri(folder.ref),
            store_uri=store.uri,
            image=self.image,
            stage_image=self.staging_image,
            namespace=self.namespace,
            data_pvc=self.data_pvc,
            secret_name=managed_secret or secret_name,
            store_secret_name=self.store_secret_name,
            service_account_name=self.service_account_name,
            mem_limit=self.mem_limit,
            cpus=self.cpus,
            resources=self.container_resources,
            stop_grace_s=self.stop_grace.total_seconds(),
            engine_timeout_s=self.engine_timeout.total_seconds(),
        )
        self._pod_operator = operator = KubernetesPodOperator(
            task_id=self.task_id,
            full_pod_spec=pod,
            kubernetes_conn_id=conn_id,
            namespace=pod.metadata.namespace,
            base_container_name=LEAN_CONTAINER,
            init_container_logs=[STAGE_IN_CONTAINER],
            container_logs=[LEAN_CONTAINER, STAGE_OUT_CONTAINER],
            get_logs=True,
            on_finish_action=self.on_finish_action,
            termination_grace_period=pod.spec.termination_grace_period_seconds,
            active_deadline_seconds=pod.spec.active_deadline_seconds,
            log_pod_spec_on_failure=False,
        )
        namespace = pod.metadata.namespace or operator.hook.get_namespace() or "default"
        pod.metadata.namespace = namespace
        if managed_secret:
            body = k8s.V1Secret(
                metadata=k8s.V1ObjectMeta(name=managed_secret, namespace=namespace),
                type="Opaque",
                string_data={SECRET_CONFIG_ENV: json.dumps(dict(secrets))},
            )
            try:
                operator.client.create_namespaced_secret(namespace=namespace, body=body)
            except ApiException as exc:
                if exc.status != 409:  # 409: an earlier attempt's Secret of this run: replaced
                    raise AirflowException(f"cannot create the Secret {managed_secret}: {exc.reason}") from None
                operator.client.replace_namespaced_secret(name=managed_secret, namespace=namespace, body=body)
        failure: str | None = None
        try:
            operator.execute(context)
        except AirflowException as exc:
            failure = str(exc)
        finally:
            if managed_secret:
                try:
                    operator.client.delete_namespaced_secret(name=managed_secret, namespace=namespace)
                except ApiException as exc:
                    if exc.status != 404:
                        self.log.warning("Could not delete the Secret %s: %s", managed_secret, exc.reason)
            # What the pod uploaded, so the log tail and the engine's version are read here.
            store.download_run(folder.ref, folder.path.parent.parent)
        remote = operator.remote_pod
        status = remote.status if remote is not None else None
        ran = [*(status.init_container_statuses or []), *(status.container_statuses or [])] if status else []
        exits = {c.name: c.state.terminated.exit_code for c in ran if c.state and c.state.terminated}
        if failure is not None:
            summary = ", ".join(f"{name} exited {code}" for name, code in exits.items()) or "no container ran"
            tail = folder.log_tail(TAIL_LINES)
            if tail == NO_LOG_TAIL and operator.pod is not None:
                # Lean wrote no log (stage-in or the entry script failed): the failed container's output.
                failed = next((name for name, code in exits.items() if code != 0), LEAN_CONTAINER)
                with contextlib.suppress(ApiException):
                    tail = str(
                        operator.client.read_namespaced_pod_log(
                            name=operator.pod.metadata.name,
                            namespace=namespace,
                            container=failed,
                            tail_lines=TAIL_LINES,
                        )
                    ).rstrip()
            raise AirflowException(f"Lean failed in Kubernetes ({summary}): {failure}\n{tail}")
        lean_status = next((c for c in ran if c.name == LEAN_CONTAINER), None)
        image_id = lean_status.image_id if lean_status is not None else None
        # The engine is the Docker runtime's (the Lean image, the same container): the audit and the
        # consistency check treat the run as a Docker run; the launcher and the pod say where it ran.
        identity = {"runtime": "docker", "launcher": "kubernetes", "engine": str(pod.spec.containers[0].image)}
        if image_id:  # the kubelet's imageID: the digest of the image it ran (name@sha256:...)
            identity["image_digest"] = str(image_id)
        if operator.pod is not None:
            identity["pod"] = f"{namespace}/{operator.pod.metadata.name}"
        identity["lean_version"] = lean_version_from_log(folder.results_dir / "log.txt") or "unknown"
        folder.record_engine_identity(identity)
        self.log.info("Lean engine: %s", identity)

    def on_kill(self) -> None:
        """Stop the Lean container or the local engine's process group (SIGINT, then SIGKILL after the
        grace): a killed task must not leave Lean running, or trading. Airflow calls it on SIGTERM and
        after an ``AirflowTaskTimeout``."""
        run = self._docker_run
        if run is not None:
            run.stop("the Airflow task was killed")
        local = self._local_run
        if local is not None:
            local.stop("the Airflow task was killed")
        pod = self._pod_operator
        if pod is not None:
            # Deletes the pod: Kubernetes sends SIGTERM, which the entry script turns into SIGINT for Lean,
            # and kills it after the termination grace (the stop grace plus the upload's).
            pod.on_kill()
