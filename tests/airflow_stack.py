"""A real Airflow 3 stack for tests: the api-server, the dag-processor and (when asked) the
scheduler with the LocalExecutor, on SQLite, in their own AIRFLOW_HOME and on free ports.

Used where Airflow's own machinery must run (backfills, the UI plugin behind Airflow's auth).
The components run as separate processes, as in the compose deployment, so a test can start
the scheduler only after it has written to the DB (SQLite has a single writer).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowStack:
    def __init__(self, home: Path, *, dags_folder: Path, extra_env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # One JWT secret for every component, or task tokens fail signature checks.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "PYTHONPATH": str(REPO_ROOT),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **(extra_env or {}),
        }
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        # SQLite allows one writer: a CLI write can meet the scheduler's, so "locked" is retried.
        for attempt in range(6):
            result = subprocess.run(
                [str(VENV_BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=timeout
            )
            if "database is locked" not in result.stdout + result.stderr or attempt == 5:
                break
            time.sleep(2 + attempt)
        if check and result.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def _spawn(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> None:
        log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self._processes[name] = subprocess.Popen(
            [str(VENV_BIN / "airflow"), *args],
            env=self.env if env is None else env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def logs(self) -> str:
        tails = [(n, (self.home / f"{n}.log").read_text(errors="replace")[-3000:]) for n in self._processes]
        return "".join(f"--- {name}\n{tail}" for name, tail in tails)

    def start(self, *, scheduler: bool = True, timeout: float = 180) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate")
        self._spawn("api-server", "api-server", "--port", str(self.port), "--host", "127.0.0.1")
        self._spawn("dag-processor", "dag-processor")
        if scheduler:
            self.start_scheduler()
        self.start_more()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self._processes.items() if p.poll() is not None]
            if dead:
                raise AssertionError(f"airflow {dead} exited early:\n{self.logs()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/api/v2/version", timeout=2) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(1)
        raise AssertionError(f"api-server did not answer in {timeout}s:\n{self.logs()}")

    def start_more(self) -> None:
        """More processes to start beside the api-server (a subclass's), before it answers."""

    def start_scheduler(self) -> None:
        self._spawn("scheduler", "scheduler")

    def assert_alive(self) -> None:
        dead = [n for n, p in self._processes.items() if p.poll() is not None]
        if dead:
            raise AssertionError(f"airflow {dead} died:\n{self.logs()}")

    def stop_scheduler(self) -> None:
        """Stop the scheduler alone: on SQLite a backfill is created while no scheduler races it."""
        process = self._processes.pop("scheduler")
        _signal(process, signal.SIGTERM)
        _reap(process, timeout=60)

    def stop(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                _signal(process, signal.SIGTERM)
        for process in self._processes.values():
            _reap(process, timeout=30)

    def admin_password(self) -> str:
        path = self.home / "simple_auth_manager_passwords.json.generated"
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        return str(json.loads(path.read_text())["admin"])

    def token(self) -> str:
        body = json.dumps({"username": "admin", "password": self.admin_password()}).encode()
        request = urllib.request.Request(
            f"{self.url}/auth/token", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["access_token"])

    def api(self, path: str, token: str) -> Any:
        request = urllib.request.Request(f"{self.url}/api/v2{path}", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if dag_id in self.cli("dags", "list", "-o", "plain", check=False).stdout:
                return
            time.sleep(2)
        raise AssertionError(f"DAG {dag_id} was not parsed in {timeout}s:\n{self.logs()}")

    def dag_run_states(self, dag_id: str) -> dict[str, str]:
        """logical date -> state of every run of ``dag_id``."""
        out = self.cli("dags", "list-runs", dag_id, "-o", "json").stdout
        # Log lines may precede the JSON document; it starts a line with "[{" (or is "[]").
        found = re.search(r"^\[(\{|\])", out, re.MULTILINE)
        runs = json.loads(out[found.start() :].strip().splitlines()[0] if found else "[]") if found else []
        return {run["logical_date"]: run["state"] for run in runs}


@contextlib.contextmanager
def running_stack(
    home: Path, *, dags_folder: Path, extra_env: Mapping[str, str] | None = None, scheduler: bool = True
) -> Iterator[AirflowStack]:
    stack = AirflowStack(home, dags_folder=dags_folder, extra_env=extra_env)
    try:
        stack.start(scheduler=scheduler)
        yield stack
    finally:
        stack.stop()


def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _reap(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """Wait for a signalled process group; SIGKILL it if it outlives ``timeout``."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL)
        process.wait(timeout=30)
