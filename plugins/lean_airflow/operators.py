"""``LeanRunOperator``: one operator for backtest and live, on Docker or the local runtime.

Both runtimes get the same generated launcher config (``include.lean_config``); only the
paths differ. The operator returns the results folder path, which is all XCom carries.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.log import mask_secret

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

    from include.lean_runtime import RunPaths

# include/ (pydantic contracts, the runtime) is imported inside the methods that run tasks: the
# DAG processor parses this module on every DAG-file parse and must not pay for it.

REPORT_BASE_URL_ENV = "LEAN_AIRFLOW_REPORT_BASE_URL"
REPORT_URL_PREFIX = "/lean-airflow"


def report_url(dag_id: str, run_key: str) -> str:
    base = os.environ.get(REPORT_BASE_URL_ENV, "http://localhost:8080").rstrip("/")
    return f"{base}{REPORT_URL_PREFIX}/runs/{dag_id}/{run_key}"


class LeanReportLink(BaseOperatorLink):
    """Opens the run's report page served by the lean-airflow UI plugin."""

    name = "Lean report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        run_dir = str(getattr(operator, "run_dir", "") or "")
        if not run_dir or "{{" in run_dir:
            return report_url(ti_key.dag_id, "").rstrip("/")
        return report_url(ti_key.dag_id, Path(run_dir).name)


def broker_secret_config(conn_id: str | None) -> dict[str, str]:
    """Lean config keys holding broker credentials, from an Airflow connection.

    The connection's extra ``lean_config`` maps Lean keys to values (e.g. ``ib-account``);
    ``login_key`` / ``password_key`` name the Lean keys that get its login and password.
    Every value is registered with the secrets masker before anything can log it.
    """
    if not conn_id:
        return {}
    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson or {}
    values: dict[str, str] = {str(k): str(v) for k, v in (extra.get("lean_config") or {}).items()}
    if extra.get("login_key") and conn.login:
        values[str(extra["login_key"])] = conn.login
    if extra.get("password_key") and conn.password:
        values[str(extra["password_key"])] = conn.password
    for value in values.values():
        mask_secret(value)
    return values


class LeanRunOperator(BaseOperator):
    """Run Lean on one run folder.

    :param mode: ``backtest`` or ``live`` (selects Lean's environment block).
    :param runtime: ``docker`` (the quantconnect/lean image through DockerOperator) or
        ``local`` (``python -m include.lean_local`` in a subprocess).
    :param run_dir: the run folder; intent, params and config live there (templated).
    :param broker_conn_id: Airflow connection with broker credentials (Docker only; they
        reach Lean through ``private_environment``, never a file).
    :param live_as_of: live mode on the local runtime: the session its paper broker trades at
        (templated; the DAGs pass the run's date). Lean itself ignores it.
    """

    template_fields: Sequence[str] = (
        "run_dir",
        "intent_path",
        "params_path",
        "initial_state_path",
        "parameters",
        "runtime",
        "image",
        "live_as_of",
    )
    template_fields_renderers = {"parameters": "json"}
    operator_extra_links = (LeanReportLink(),)
    ui_color = "#d8e7f5"

    def __init__(
        self,
        *,
        mode: str,
        run_dir: str,
        intent_path: str,
        params_path: str,
        runtime: str = "local",
        initial_state_path: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        algorithm_path: str | None = None,
        data_path: str | None = None,
        image: str | None = None,
        docker_url: str | None = None,
        network_mode: str | None = None,
        host_path_map: Mapping[str, str] | None = None,
        broker_conn_id: str | None = None,
        live_as_of: str | None = None,
        engine_timeout: dt.timedelta = dt.timedelta(hours=2),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in ("backtest", "live"):
            raise ValueError(f"LeanRunOperator mode={mode!r}: expected 'backtest' or 'live'")
        self.mode = mode
        self.runtime = runtime
        self.run_dir = run_dir
        self.intent_path = intent_path
        self.params_path = params_path
        self.initial_state_path = initial_state_path
        self.parameters = dict(parameters or {})
        self.algorithm_path = algorithm_path
        self.data_path = data_path
        self.image = image
        self.docker_url = docker_url
        self.network_mode = network_mode
        self.host_path_map = dict(host_path_map) if host_path_map is not None else None
        self.broker_conn_id = broker_conn_id
        self.live_as_of = live_as_of
        self.engine_timeout = engine_timeout

    def _paths(self) -> RunPaths:
        from include.artifacts import ALGORITHM_PATH, confine, data_folder
        from include.lean_runtime import RunPaths

        folder = confine(self.run_dir)
        return RunPaths(
            run_dir=folder,
            intent_path=confine(self.intent_path, folder),
            params_path=confine(self.params_path, folder),
            initial_state_path=confine(self.initial_state_path, folder) if self.initial_state_path else None,
            algorithm_path=Path(self.algorithm_path or ALGORITHM_PATH).resolve(),
            data_folder=Path(self.data_path).resolve() if self.data_path else data_folder(),
            algorithm_id=folder.name,
        )

    def execute(self, context: Context) -> str:
        runtime = str(self.runtime).strip().lower()
        if runtime not in ("docker", "local"):
            raise AirflowException(f"LeanRunOperator runtime={self.runtime!r}: expected 'docker' or 'local'")
        paths = self._paths()
        secrets = broker_secret_config(self.broker_conn_id)
        run = self._run_docker if runtime == "docker" else self._run_local
        engine = run(paths, context, secrets)
        context["ti"].xcom_push(key="engine", value=engine)
        return str(paths.results_dir)

    def _run_local(self, paths: RunPaths, context: Context, secrets: Mapping[str, str]) -> dict[str, str]:
        from include.lean_runtime import SECRET_CONFIG_ENV, LeanRunError, lean_log_tail, run_lean_local

        self.log.info("Running the local Lean runtime on %s", paths.config_path)
        try:
            return run_lean_local(
                paths,
                mode=self.mode,  # type: ignore[arg-type]
                parameters=self.parameters,
                timeout_s=self.engine_timeout.total_seconds(),
                on_line=lambda line: self.log.info("[lean] %s", line),
                env={SECRET_CONFIG_ENV: json.dumps(secrets)} if secrets else None,
                live_as_of=self.live_as_of or None,
            )
        except LeanRunError as exc:
            raise AirflowException(str(exc)) from None
        except subprocess.TimeoutExpired:
            tail = lean_log_tail(paths.results_dir, paths.algorithm_id)
            raise AirflowException(
                f"local Lean runtime exceeded {self.engine_timeout} and was killed. Last log lines:\n{tail}"
            ) from None

    def _run_docker(self, paths: RunPaths, context: Context, secrets: Mapping[str, str]) -> dict[str, str]:
        from airflow.providers.docker.exceptions import DockerContainerFailedException
        from airflow.providers.docker.operators.docker import DockerOperator

        from include.lean_runtime import (
            SECRET_CONFIG_ENV,
            LeanRunError,
            container_spec,
            host_path_map_from_env,
            lean_log_tail,
            resolve_image,
            write_engine_config,
        )

        host_map = self.host_path_map if self.host_path_map is not None else host_path_map_from_env()
        spec = container_spec(paths, image=resolve_image(self.image), host_path_map=host_map)
        write_engine_config(
            paths,
            mode=self.mode,
            runtime="docker",
            parameters=self.parameters,  # type: ignore[arg-type]
            live_as_of=self.live_as_of or None,
        )
        container = DockerOperator(
            task_id=f"{self.task_id}__container",
            image=spec.image,
            mounts=list(spec.mounts),
            entrypoint=spec.entrypoint,
            environment=dict(spec.environment),
            private_environment={SECRET_CONFIG_ENV: json.dumps(secrets)} if secrets else None,
            mount_tmp_dir=False,
            auto_remove="success",
            privileged=False,
            docker_url=self.docker_url,
            network_mode=self.network_mode,
            do_xcom_push=False,
            retrieve_output=False,
        )
        try:
            container.execute(context)
        except DockerContainerFailedException as exc:
            tail = lean_log_tail(paths.results_dir, paths.algorithm_id)
            if tail.startswith("(no Lean log") and exc.logs:
                tail = "\n".join(str(line) for line in list(exc.logs)[-40:])
            code = _status_code(str(exc))
            raise AirflowException(str(LeanRunError("docker", code, tail))) from None
        return {"runtime": "docker", "engine": spec.image}


def _status_code(message: str) -> int:
    found = re.search(r"'StatusCode': (-?\d+)", message)
    return int(found.group(1)) if found else -1
