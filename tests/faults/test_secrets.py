"""A canary broker secret in an Airflow connection never appears in an artifact file, the audit DB,
an XCom value, a rendered template field, any other table of Airflow's metadata DB, a task log
line, captured output or a report. This holds on both runtimes:

* local: a real live-mode ``dag.test()`` of ``lean_live_rebalance``; the secret reaches the engine
  subprocess only through its environment (``LEAN_SECRET_CONFIG``);
* docker: the same DAG run with ``runtime=docker`` against the fake Docker API. The fake container
  does what the image's entry script does (merges ``$LEAN_SECRET_CONFIG`` into a private copy of
  the read-only config inside the container) and runs the local engine on the mounted folders. The
  secret must arrive only through ``private_environment``: not in the visible ``environment``,
  the command, the labels, a mounted file or the config mount (read-only), and never privileged.

Every scan is first shown to find a planted canary, and each run checks that the secret really
went where it is needed, so a leak could not hide behind a scan that looks at nothing.

The report pages' refusal of anonymous requests: every route of the plugin's app is checked here
in-process; ``tests/plugins/test_ui_browser.py`` checks the run page in Chromium against a real
``airflow standalone``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import REPO_ROOT
from tests.plugins.fake_docker_api import ContainerScript, FakeDockerAPI

pytestmark = pytest.mark.slow

TASKS = {"snapshot", "write_intent", "write_params", "run_lean", "ingest_events", "consistency_check"}
TEST_IMAGE = "quantconnect/lean@sha256:" + "5e" * 32
RUN_CONF = {"as_of": "2021-03-01", "top_n": 2, "lookback_days": 10}
SECRET_ENV = "LEAN_SECRET_CONFIG"


# ------------------------------------------------------------------ scanners


def _files_containing(needles: Iterable[str], root: Path) -> tuple[list[str], int]:
    """(hits, number of files read): every regular file under ``root``, as bytes."""
    encoded = [(n, n.encode()) for n in needles]
    hits, scanned = [], 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            scanned += 1
            hits.extend(f"{path}: {needle}" for needle, raw in encoded if raw in data)
    return hits, scanned


def _cell_contains(value: Any, needle: str) -> bool:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return needle.encode() in bytes(value)
    return needle in str(value)


def _rows_containing(needles: Iterable[str], url: str, tables: Iterable[str] | None = None) -> tuple[list[str], int]:
    """(hits, number of rows read) over ``tables``, or every table of the database."""
    engine = sa.create_engine(url)
    hits, scanned = [], 0
    try:
        names = list(tables) if tables is not None else sa.inspect(engine).get_table_names()
        with engine.connect() as conn:
            for table in names:
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                    scanned += 1
                    hits.extend(f"{table}: {n}" for n in needles for v in row if _cell_contains(v, n))
    finally:
        engine.dispose()
    return hits, scanned


def _log_folder() -> Path:
    from airflow.configuration import conf

    return Path(conf.get("logging", "base_log_folder", fallback=str(Path(os.environ["AIRFLOW_HOME"]) / "logs")))


def _metadata_url() -> str:
    from airflow.configuration import conf

    return conf.get("database", "sql_alchemy_conn")


def _xcom_values(run_id: str) -> list[Any]:
    engine = sa.create_engine(_metadata_url())
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT value FROM xcom WHERE run_id = :r"), {"r": run_id}).all()
    finally:
        engine.dispose()
    return [row[0] for row in rows]


def test_the_scanners_find_a_planted_canary(tmp_path: Path) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "x.bin").write_bytes(b"\x00prefix" + canary.encode() + b"suffix")
    (tmp_path / "clean.txt").write_text("nothing here")
    hits, scanned = _files_containing([canary], tmp_path)
    assert len(hits) == 1 and scanned == 2
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (v TEXT)"))
        conn.execute(sa.text("CREATE TABLE b (v BLOB)"))
        conn.execute(sa.text("INSERT INTO t VALUES (:v)"), {"v": json.dumps({"k": canary})})
        conn.execute(sa.text("INSERT INTO b VALUES (:v)"), {"v": b"\x01" + canary.encode()})
    engine.dispose()
    hits, scanned = _rows_containing([canary], url)  # every table, text and binary columns
    assert sorted(hits) == [f"b: {canary}", f"t: {canary}"] and scanned == 2


# ------------------------------------------------------------------ the broker connection


def _broker_connection(monkeypatch: pytest.MonkeyPatch, runtime: str) -> dict[str, str]:
    """A broker connection whose secrets are random canaries; returns the Lean config keys (and values) the
    operator must hand to the engine. Local: the paper broker on the default feed, with the QuantConnect
    licence as its secrets. Docker: the paper broker fed by polygon (the image has no local feed), whose API
    key and the licence are the secrets."""
    user, token, organization, api_key = (f"CANARY-{part}-{uuid.uuid4().hex}" for part in ("user", "tok", "org", "key"))
    extra: dict[str, Any] = {"job_user_id": user, "api_access_token": token, "job_organization_id": organization}
    secret = {"job-user-id": user, "api-access-token": token, "job-organization-id": organization}
    if runtime == "docker":
        extra |= {"data_provider": "polygon", "polygon_api_key": api_key}
        secret["polygon-api-key"] = api_key
    monkeypatch.setenv("AIRFLOW_CONN_LEAN_BROKER_CANARY", json.dumps({"conn_type": "generic", "extra": extra}))
    monkeypatch.setenv("LEAN_AIRFLOW_BROKER_CONN_ID", "lean_broker_canary")
    return secret


def _live_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))  # re-parsed: the broker conn id is read at parse time
    dag = bag.dags["lean_live_rebalance"]
    assert getattr(dag.get_task("run_lean"), "broker_conn_id", None) == "lean_broker_canary"
    return dag


def _run_and_scan(
    dag: Any,
    run_conf: dict[str, Any],
    canaries: list[str],
    lean_env: dict[str, str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    task_log_line: str,
) -> list[str]:
    """Run the DAG, then every place a secret could land; returns the leaks found."""
    run = dag.test(run_conf=run_conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == dict.fromkeys(TASKS, "success"), states

    captured = capfd.readouterr()
    output = captured.out + captured.err + "\n".join(r.getMessage() for r in caplog.records)
    assert task_log_line in output, "the task logs were not captured: the log scan would prove nothing"
    leaks = [f"task output / log record: {c}" for c in canaries if c in output]

    artifacts = Path(lean_env["root"])
    assert (artifacts / "lean_live_rebalance" / "20210301" / "report.html").exists()
    hits, scanned = _files_containing(canaries, artifacts)
    assert scanned >= 10, scanned
    leaks += hits
    hits, scanned = _rows_containing(canaries, lean_env["db_url"])
    assert scanned > 0
    leaks += hits
    assert _xcom_values(run.run_id), "no XCom of this run: the metadata scan would prove nothing"
    hits, _ = _rows_containing(canaries, _metadata_url())  # xcom, rendered fields, dag_run conf, log, ...
    leaks += hits
    if _log_folder().exists():
        leaks += _files_containing(canaries, _log_folder())[0]

    # The artifact scan really covers the root: a planted canary is found.
    planted = artifacts / "lean_live_rebalance" / "planted.bin"
    planted.write_bytes(canaries[0].encode())
    assert f"{planted}: {canaries[0]}" in _files_containing(canaries[:1], artifacts)[0]
    planted.unlink()
    return leaks


# ------------------------------------------------------------------ local runtime


@pytest.mark.parametrize("raw_db_url", ["sqlite"], indirect=True)
def test_canary_broker_secret_never_leaks_from_a_live_rebalance(
    airflow_db: None,
    lean_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import include.launch.local as lean_local_launch

    secret = _broker_connection(monkeypatch, "local")
    caplog.set_level(logging.DEBUG)
    engine_env: list[dict[str, str]] = []
    real_engine = lean_local_launch.run_local_engine

    def spy(config_path: str | os.PathLike[str], **kwargs: Any) -> int:
        engine_env.append(dict(kwargs.get("env") or {}))
        return real_engine(config_path, **kwargs)

    monkeypatch.setattr(lean_local_launch, "run_local_engine", spy)
    leaks = _run_and_scan(
        _live_dag(), RUN_CONF, list(secret.values()), lean_env, capfd, caplog, "Running the local Lean runtime"
    )
    assert not leaks, leaks
    # The secret did reach the engine (only through its environment): the scans had something to miss.
    assert [json.loads(env[SECRET_ENV]) for env in engine_env] == [secret]


# ------------------------------------------------------------------ docker runtime (fake Docker API)


def _host_view(value: Any, mounts: dict[str, Path]) -> Any:
    """A config value with container paths turned into the host paths bound there."""
    if isinstance(value, dict):
        return {k: _host_view(v, mounts) for k, v in value.items()}
    if isinstance(value, list):
        return [_host_view(v, mounts) for v in value]
    if isinstance(value, str):
        for target in sorted(mounts, key=len, reverse=True):
            if value == target or value.startswith(target + "/"):
                return str(mounts[target]) + value[len(target) :]
    return value


class _Container:
    """The fake container: the image's entry script, then Lean (the local engine on the mounts)."""

    def __init__(self, home: Path) -> None:
        self.home = home  # the container's own filesystem (its /tmp): outside every mount
        self.requests: list[dict[str, Any]] = []
        self.exit_codes: list[int] = []
        self.mounted_hits_at_start: list[str] = []

    def __call__(self, request: dict[str, Any]) -> None:
        from include.launch.config import CONTAINER_CONFIG_PATH
        from include.launch.local import run_local_engine

        self.requests.append(request)
        mounts = {m["Target"]: Path(m["Source"]) for m in request["HostConfig"]["Mounts"]}
        env = dict(item.split("=", 1) for item in request["Env"])
        secret = json.loads(env.get(SECRET_ENV, "{}"))
        self.mounted_hits_at_start = [hit for source in mounts.values() for hit in _scan_mount(source, secret.values())]
        # CONTAINER_ENTRY_SCRIPT: the secret merged into the selected environment's block and the top level
        # of a private copy, never the mounted file.
        config = _host_view(json.loads(mounts[CONTAINER_CONFIG_PATH].read_text(encoding="utf-8")), mounts)
        config["environments"][config["environment"]].update(secret)
        config.update(secret)
        self.home.mkdir(parents=True, exist_ok=True)
        private = self.home / "lean-config.json"
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        self.exit_codes.append(run_local_engine(private, timeout_s=300, on_line=lambda _line: None))


def _scan_mount(source: Path, needles: Iterable[str]) -> list[str]:
    if source.is_dir():
        return _files_containing(needles, source)[0]
    if source.is_file():
        data = source.read_bytes()
        return [f"{source}: {n}" for n in needles if n.encode() in data]
    return []


@pytest.fixture
def recorded_container_specs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every container request LeanRunOperator hands the Docker lifecycle."""
    from include.launch.lifecycle import DockerLeanRun

    made: list[Any] = []
    real_init = DockerLeanRun.__init__

    def init(self: Any, client: Any, job: Any, spec: Any, **kwargs: Any) -> None:
        made.append(spec)
        real_init(self, client, job, spec, **kwargs)

    monkeypatch.setattr(DockerLeanRun, "__init__", init)
    yield made


@pytest.mark.parametrize("raw_db_url", ["sqlite"], indirect=True)
def test_canary_broker_secret_reaches_only_the_containers_private_environment(
    airflow_db: None,
    lean_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    recorded_container_specs: list[Any],
) -> None:
    from include.launch.config import CONTAINER_CONFIG_PATH, CONTAINER_FILES_DIR

    secret = _broker_connection(monkeypatch, "docker")
    canaries = list(secret.values())
    caplog.set_level(logging.DEBUG)
    container = _Container(tmp_path / "container-home")
    monkeypatch.setenv("LEAN_IMAGE", TEST_IMAGE)
    script = ContainerScript(log_lines=["Lean engine starting", "Analysis Complete."], on_run=container)
    with FakeDockerAPI(script) as fake:
        monkeypatch.setenv("DOCKER_HOST", fake.url)
        leaks = _run_and_scan(
            _live_dag(),
            {**RUN_CONF, "runtime": "docker"},
            canaries,
            lean_env,
            capfd,
            caplog,
            f"Starting docker container from image {TEST_IMAGE}",
        )
    assert not leaks, leaks
    assert container.exit_codes == [0], "the engine in the fake container failed"

    # The request the daemon got: the secret only in the one private variable.
    (request,) = fake.state.created
    env = dict(item.split("=", 1) for item in request["Env"])
    assert json.loads(env[SECRET_ENV]) == secret  # delivered, so the checks below had something to find
    assert [k for k, v in env.items() if any(c in v for c in canaries)] == [SECRET_ENV]
    visible = {**request, "Env": [item for item in request["Env"] if not item.startswith(f"{SECRET_ENV}=")]}
    assert not [c for c in canaries if c in json.dumps(visible)], "the secret is in the visible container request"
    for method, path, body in fake.state.requests:
        if body is not request:
            assert not [c for c in canaries if c in f"{method} {path} {json.dumps(body)}"], path
    host = request["HostConfig"]
    assert not host.get("Privileged"), "the Lean container must never be privileged"
    assert not host.get("CapAdd") and not host.get("Devices")
    mounts = {m["Target"]: m for m in host["Mounts"]}
    assert mounts[CONTAINER_CONFIG_PATH]["ReadOnly"] is True
    assert all(m["ReadOnly"] for target, m in mounts.items() if target.startswith(f"{CONTAINER_FILES_DIR}/"))

    # No mounted file held the secret when the container started, nor after it ran.
    assert container.mounted_hits_at_start == []
    assert [hit for m in mounts.values() for hit in _scan_mount(Path(m["Source"]), canaries)] == []
    # The container's private copy has it: the fake entry script did merge it.
    assert _files_containing(canaries, container.home)[1] == 1
    assert len(_files_containing(canaries, container.home)[0]) == len(canaries)

    # The container request as the operator built it: the secret only in private_environment,
    # which neither its repr (what a log line would show) nor the lean-config preview carries.
    (spec,) = recorded_container_specs
    assert list(spec.private_environment) == [SECRET_ENV] and json.loads(spec.private_environment[SECRET_ENV]) == secret
    for shown in (repr(spec), json.dumps(spec.preview()), json.dumps(spec.environment)):
        assert not [c for c in canaries if c in shown]
    assert spec.preview()["environment"][SECRET_ENV] == "***"


# ------------------------------------------------------------------ the report pages


@pytest.mark.parametrize("raw_db_url", ["sqlite"], indirect=True)
def test_every_report_route_refuses_anonymous_and_forged_requests(airflow_db: None, lean_env: dict[str, str]) -> None:
    """All routes of the plugin's app (enumerated, so a new route is covered too) answer 401 without
    credentials and 403 with a forged token, and the refusal carries no run data."""
    from airflow.api_fastapi.app import create_app
    from fastapi.routing import APIRoute
    from fastapi.testclient import TestClient
    from lean_airflow.ui import URL_PREFIX
    from lean_airflow.ui import app as ui_app

    canary = f"CANARY-report-{uuid.uuid4().hex}"
    folder = Path(lean_env["root"]) / "lean_live_rebalance" / "20210301"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"verdict": "pass", "note": canary}), encoding="utf-8")
    values = {
        "dag_id": "lean_live_rebalance",
        "run_key": "20210301",
        "run_id": "manual__2021-03-01T21:30:00+00:00",
        "sweep_hash": "0123abcd",  # the sweep comparison pages
    }
    # Starlette's path parameters, "{name}" or "{name:convertor}", filled with the run's values.
    routes = [
        re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], r.path)
        for r in ui_app.routes
        if isinstance(r, APIRoute)
    ]
    assert {"/", "/runs/lean_live_rebalance/20210301", "/runs/lean_live_rebalance/20210301/report.json"} <= set(routes)

    client = TestClient(create_app(apps="all"))
    for route in routes:
        url = URL_PREFIX + route
        for headers, status in (
            ({}, 401),
            ({"accept": "text/html"}, 401),
            ({"Authorization": "Bearer forged.token.value"}, 403),
        ):
            answer = client.get(url, headers=headers)
            assert answer.status_code == status, (url, headers, answer.status_code, answer.text[:200])
            assert canary not in answer.text and "20210301" not in answer.text.replace(url, "")
