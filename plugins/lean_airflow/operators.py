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
RUNTIMES: tuple[str, ...] = ("docker", "local")


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
    :param runtime: ``docker`` (the quantconnect/lean image, through the Docker provider's hook) or
        ``local`` (``python -m include.lean_local`` in a subprocess); templated.
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
        # The Docker or local run in progress, so that on_kill (Airflow's SIGTERM handler) can stop it.
        self._docker_run: DockerLeanRun | None = None
        self._local_run: LocalLeanRun | None = None

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
        check_job_before_start(job, runtime)  # type: ignore[arg-type]
        return job, secrets

    def _run(self, runtime: str, job: LeanJob, context: Context, secrets: Mapping[str, str]) -> None:
        """Run Lean on the staged job with the runtime's launcher (one method per runtime)."""
        if runtime == "docker":
            self._run_docker(job, context, secrets)
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
