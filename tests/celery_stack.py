"""A real Airflow 3 stack on the CeleryExecutor for tests and benchmarks: the api-server, the
dag-processor and the scheduler of tests/airflow_stack.py, plus N ``airflow celery worker``
processes, on this machine's Redis (the broker) and PostgreSQL (the metadata DB, Celery's result
backend and the audit DB).

Each worker is what one host of a Celery deployment is: its own name (``--celery-hostname``, and
the task instances' hostname through tests/celery_hostname.py), its own local scratch folder
(``LEAN_AIRFLOW_ARTIFACT_ROOT``) that no other process is told of, and the shared artifact store
(``LEAN_AIRFLOW_ARTIFACT_STORE``, a ``file://`` URI on a third path). The stack's own processes
get a scratch folder of their own too.

Isolation from other test sessions on the same servers: fresh PostgreSQL databases (dropped at
the end) and a Redis key prefix of this stack alone (Celery's ``global_keyprefix``) in
``REDIS_DB``, deleted at the end; a FLUSHDB could break a stack another session runs at the same time.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from tests.airflow_stack import AirflowStack, _reap, _signal, free_port
from tests.celery_hostname import WORKER_NAME_ENV
from tests.conftest import REPO_ROOT
from tests.db_fixtures import DEFAULT_PG_URL, PG_URL_ENV

# The server of the other PostgreSQL tests (tests/db_fixtures.py); its database serves to create ours.
PG_SERVER = make_url(os.environ.get(PG_URL_ENV, DEFAULT_PG_URL))
PG_ADMIN_URL = PG_SERVER.set(drivername="postgresql").render_as_string(hide_password=False)
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# No other test uses Redis; the Celery stacks keep to this database, each under its own key prefix.
REDIS_DB = 11
LEAN_QUEUE = "lean"
WORKER_QUEUES = f"default,{LEAN_QUEUE}"
FINISHED = ("success", "failed")
POLLING_INTERVAL_S = 30


def services_unreachable() -> str | None:
    """Why the stack cannot run here (Redis or PostgreSQL not answering), or None."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(16).startswith(b"+PONG"):
                return f"Redis on {REDIS_HOST}:{REDIS_PORT} does not answer PING"
    except OSError as error:
        return f"Redis unreachable on {REDIS_HOST}:{REDIS_PORT}: {error}"
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.Error as error:
        return f"PostgreSQL unreachable at {PG_ADMIN_URL}: {error}"
    return None


def _pg_url(database: str) -> str:
    return PG_SERVER.set(drivername="postgresql+psycopg", database=database).render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_databases(*names: str) -> Iterator[dict[str, str]]:
    """Create ``names`` (with a random suffix) on the PostgreSQL server; yield name -> SQLAlchemy URL; drop them."""
    suffix = secrets.token_hex(4)
    created = {name: f"lean_celery_{name}_{suffix}" for name in names}
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        for database in created.values():
            admin.execute(f'CREATE DATABASE "{database}"')
    try:
        yield {name: _pg_url(database) for name, database in created.items()}
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            for database in created.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _delete_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@dataclass(frozen=True)
class Worker:
    name: str
    scratch: Path


class CeleryStack(AirflowStack):
    """AirflowStack with the CeleryExecutor and ``workers``; see the module's docstring."""

    def __init__(
        self,
        home: Path,
        *,
        dags_folder: Path,
        metadata_url: str,
        audit_url: str,
        store: Path,
        workers: Sequence[Worker],
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.key_prefix = f"lean-celery-{secrets.token_hex(4)}:"
        self.metadata_url = metadata_url
        self.store = store
        self.workers = tuple(workers)
        self._token = ""
        super().__init__(
            home,
            dags_folder=dags_folder,
            extra_env={
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
                # Airflow's async engine would default to asyncpg, which is not installed; psycopg 3 does both.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url.replace("+psycopg:", "+psycopg_async:", 1),
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata_url}",
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": self.key_prefix,
                # One task at a time per worker, none reserved ahead: a free worker takes the next task.
                # Redis hands a message to the client that has waited longest in BRPOP; a long
                # BRPOP wait keeps that order (a 1 s wait re-queues the idle worker every second),
                # so the worker that has been idle takes the next task of a chain, not a coin toss.
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__POLLING_INTERVAL": str(POLLING_INTERVAL_S),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.celery_hostname.worker_hostname",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
                "LEAN_AIRFLOW_ARTIFACT_STORE": store.as_uri(),
                "LEAN_AIRFLOW_ARTIFACT_ROOT": str(home / "scratch"),
                "LEAN_AIRFLOW_DB_URL": audit_url,
                "LEAN_AIRFLOW_RUNTIME": "local",
                "LEAN_AIRFLOW_POOL": LEAN_QUEUE,
                **(extra_env or {}),
            },
        )

    def start(self, *, scheduler: bool = True, timeout: float = 180) -> None:
        from include.audit.db import upgrade_database

        # As airflow-init does: the audit DB's migrations and the pool of Lean runs, before any task.
        upgrade_database(self.env["LEAN_AIRFLOW_DB_URL"])
        super().start(scheduler=scheduler, timeout=timeout)
        self._token = self.token()
        self._request("POST", "/pools", {"name": LEAN_QUEUE, "slots": 2, "description": "Lean runs at once"})
        self.wait_for_workers()

    def start_more(self) -> None:
        # The workers start with the api-server: they wait for nothing but the broker.
        for worker in self.workers:
            self.start_worker(worker)

    def start_worker(self, worker: Worker) -> None:
        worker.scratch.mkdir(parents=True, exist_ok=True)
        env = {
            **self.env,
            WORKER_NAME_ENV: worker.name,
            "LEAN_AIRFLOW_ARTIFACT_ROOT": str(worker.scratch),
            # Each worker serves its task logs on a port of its own, as each host would.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
        self._spawn(
            worker.name,
            "celery",
            "worker",
            "--celery-hostname",
            worker.name,
            "--queues",
            WORKER_QUEUES,
            "--concurrency",
            "1",
            "--pid",
            str(self.home / f"{worker.name}.pid"),
            env=env,
        )

    def wait_for_workers(self, timeout: float = 180) -> None:
        """Until every worker answers a Celery ping (the broker and the worker are both up)."""
        from celery import Celery

        app = Celery(broker=self.env["AIRFLOW__CELERY__BROKER_URL"])
        app.conf.broker_transport_options = {"global_keyprefix": self.key_prefix}
        expected = {f"celery@{worker.name}" for worker in self.workers}
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.assert_alive()
                answered = {name for reply in app.control.ping(timeout=2) for name in reply}
                if expected <= answered:
                    return
                time.sleep(2)
        finally:
            app.close()
        raise AssertionError(f"Celery workers {sorted(expected)} did not answer in {timeout}s:\n{self.logs()}")

    def stop(self) -> None:
        # No task runs any more: the workers are killed. Their shutdown (warm on SIGTERM, cold on
        # SIGQUIT) sits out the long BRPOP wait (POLLING_INTERVAL_S) first.
        workers = [self._processes.pop(worker.name) for worker in self.workers if worker.name in self._processes]
        for process in workers:
            _signal(process, signal.SIGKILL)
        for process in workers:
            _reap(process, timeout=30)
        super().stop()
        _delete_redis_prefix(self.key_prefix)

    # --- the REST API, and the metadata DB read directly: no CLI process per call ----------------

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.metadata_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
            return conn.execute(sql, args).fetchall()

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One call of the REST API (``/api/v2`` + ``path``) as the admin; the decoded answer."""
        request = urllib.request.Request(
            f"{self.url}/api/v2{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has parsed ``dag_id`` (asked of the REST API: no CLI process per poll)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_alive()
            with contextlib.suppress(urllib.error.HTTPError):
                self._request("GET", f"/dags/{dag_id}")
                return
            time.sleep(2)
        raise AssertionError(f"DAG {dag_id} was not parsed in {timeout}s:\n{self.logs()}")

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        """Unpause ``dag_id`` (DAGs start paused unless they say otherwise) and trigger a manual run; its run_id."""
        if self._request("PATCH", f"/dags/{dag_id}", {"is_paused": False})["is_paused"]:
            raise AssertionError(f"{dag_id} is still paused")
        return str(
            self._request("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": dict(conf)})["dag_run_id"]
        )

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        state = "none"
        while time.monotonic() < deadline:
            self.assert_alive()
            rows = self.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", dag_id, run_id)
            state = rows[0][0] if rows else "none"
            if state in FINISHED:
                return str(state)
            time.sleep(3)
        raise AssertionError(f"{dag_id} {run_id} still {state} after {timeout}s:\n{self.logs()}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """task_id, map_index, state, hostname, queue and try_number of every task instance of one run."""
        rows = self.query(
            "SELECT task_id, map_index, state, hostname, queue, try_number FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s ORDER BY start_date NULLS LAST, task_id, map_index",
            dag_id,
            run_id,
        )
        keys = ("task_id", "map_index", "state", "hostname", "queue", "try_number")
        return [dict(zip(keys, row, strict=True)) for row in rows]


@contextlib.contextmanager
def running_celery_stack(
    tmp: Path, *, workers: int = 2, dags_folder: Path = REPO_ROOT / "dags", extra_env: Mapping[str, str] | None = None
) -> Iterator[CeleryStack]:
    """A CeleryStack under ``tmp`` with ``workers`` workers (``worker-1``, ...), on fresh databases."""
    with fresh_databases("airflow", "audit") as urls:
        stack = CeleryStack(
            tmp / "airflow",
            dags_folder=dags_folder,
            metadata_url=urls["airflow"],
            audit_url=urls["audit"],
            store=tmp / "store",
            workers=[Worker(f"worker-{n}", tmp / f"scratch-{n}") for n in range(1, workers + 1)],
            extra_env=extra_env,
        )
        stack.store.mkdir(parents=True, exist_ok=True)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
