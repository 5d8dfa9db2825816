"""The Lean container's lifecycle against the fake Docker daemon, with the real entry script and a
stand-in Lean (``fake_lean.py``) in each container.

* a backtest runs in one named, labelled, limited container without network, removed on success,
  and records which engine ran (image id, digest, build time, Lean version) in the manifest;
* a task killed mid-run (``AirflowTaskTimeout``, or SIGTERM -> ``on_kill`` as Airflow's task runner
  does) stops Lean with SIGINT, keeps the container, and the retry ends with the same audit rows as
  a clean run; the engine timeout does the same; a Lean that ignores SIGINT is killed after the grace;
* a retry after the worker itself died adopts the running container instead of starting a second;
* leftovers under the run's name are removed (success) or kept renamed (failure, other config);
* an image older than Lean's daily MarketOnClose change is refused, an absent one pulled by digest;
* re-runs, retries and cleared runs by an unprivileged worker succeed on root-written output;
* the DAGs' ``run_lean`` gets a pool and an ``execution_timeout`` above the engine's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest

from include.run_folder import DEFAULT_DATA_FOLDER, RunFolder
from tests.airflow_fixtures import RecordingTI
from tests.conftest import REPO_ROOT
from tests.faults.helpers import (
    STARTING_CASH,
    assert_db_matches_run,
    check,
    db_events,
    empty_counts,
    ingest,
    prepare_run,
    table_counts,
)
from tests.plugins.airflow_user import OWNER, python_for_user, run_as_user, user_home
from tests.plugins.fake_docker_api import (
    LEAN_VERSION,
    ContainerScript,
    EntryScriptRun,
    FakeContainer,
    FakeDockerAPI,
    FakeDockerState,
    FakeImage,
)
from tests.plugins.fake_lean import OBSERVED

IMAGE = "quantconnect/lean@sha256:" + "5a" * 32
KEPT = re.compile(r"^lean-(?P<dag>.+)-(?P<key>\d{8}_\d{8})-\d{8}T\d{6}Z$")
# The audit DB is not what is tested here (tests/faults runs both): SQLite.
SQLITE = pytest.mark.parametrize("raw_db_url", ["sqlite"], indirect=True)


def _operator(run: RunFolder, url: str, **overrides: Any) -> Any:
    from lean_airflow.operators import LeanRunOperator

    kwargs: dict[str, Any] = {
        "task_id": "run_lean",
        "mode": "backtest",
        "runtime": "docker",
        "run_dir": str(run.path),
        "data_path": str(DEFAULT_DATA_FOLDER),
        "parameters": {"starting-cash": STARTING_CASH},
        "image": IMAGE,
        "docker_url": url,
    }
    kwargs.update(overrides)
    return LeanRunOperator(**kwargs)


def _lean_is_running(state: FakeDockerState) -> bool:
    """A container runs and its stand-in Lean has its SIGINT handler in place."""
    return any((c.home / OBSERVED).exists() for c in state.running())


def _observed(container: FakeContainer) -> dict[str, Any]:
    return dict(json.loads((container.home / OBSERVED).read_text()))


def _clean_run(db_url: str, dag_id: str = "lean_backtest_range") -> RunFolder:
    """A Docker backtest that nobody interrupts: the reference rows."""
    run = prepare_run(dag_id=dag_id)
    with FakeDockerAPI(EntryScriptRun()) as fake:
        _operator(run, fake.url).execute({"ti": RecordingTI()})
    ingest(run)
    check(run)
    assert_db_matches_run(db_url, run, checked=True)
    return run


# ---------------------------------------------------------------------------- a clean run


@SQLITE
def test_a_backtest_runs_in_one_named_limited_offline_container_and_records_its_engine(
    lean_env: dict[str, str],
) -> None:
    run = prepare_run()
    with FakeDockerAPI(EntryScriptRun()) as fake:
        assert _operator(run, fake.url).execute({"ti": RecordingTI()}) == run.results_dir.as_uri()
    (request,) = fake.state.created
    assert fake.state.requests[[r[2] for r in fake.state.requests].index(request)][1].endswith(
        "/containers/create?name=lean-lean_backtest_range-20210201_20210226"
    )
    labels = request["Labels"]
    assert labels["lean-airflow.dag-id"] == "lean_backtest_range"
    assert labels["lean-airflow.run-key"] == "20210201_20210226"
    assert labels["lean-airflow.mode"] == "backtest"
    import hashlib

    assert labels["lean-airflow.config-sha256"] == hashlib.sha256(run.config_path.read_bytes()).hexdigest()
    assert (request["StopSignal"], request["StopTimeout"]) == ("SIGINT", 60)
    host = request["HostConfig"]
    assert (host["NetworkMode"], host["Memory"], host["NanoCpus"]) == ("none", 8 << 30, 2_000_000_000)
    assert not host.get("Privileged") and not host.get("AutoRemove") and not host.get("CapAdd")
    read_only = {m["Target"]: m["ReadOnly"] for m in host["Mounts"]}
    assert read_only["/LeanCLI"] and read_only["/Lean/Data"] and not read_only["/Results"]
    env = dict(item.split("=", 1) for item in request["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["LEAN_OWNER"] == f"{os.getuid()}:{os.getgid()}"
    # Removed on success; nothing left running.
    assert fake.state.containers == {} and len(fake.state.removed) == 1
    assert fake.state.signals() == []
    engine = run.engine_identity()
    assert engine == {
        "runtime": "docker",
        "engine": IMAGE,
        "image_id": "sha256:" + "1" * 64,
        "image_digest": IMAGE,
        "image_created": "2026-08-20T09:15:42.123456789Z",
        "lean_version": LEAN_VERSION,
    }
    ingest(run)
    manifest = json.loads(run.manifest_path.read_text())
    assert manifest["schema_version"] == 2
    assert (manifest["runtime"], manifest["engine_identity"]) == ("docker", IMAGE)
    assert (manifest["image_id"], manifest["image_digest"]) == (engine["image_id"], IMAGE)
    assert (manifest["image_created"], manifest["lean_version"]) == (engine["image_created"], LEAN_VERSION)
    check(run)
    assert_db_matches_run(lean_env["db_url"], run, checked=True)


# ---------------------------------------------------------------------------- killed, timed out, hung


def _kill_with_task_timeout(operator: Any) -> None:
    """What Airflow's task runner does with ``execution_timeout``: SIGALRM raises AirflowTaskTimeout
    inside ``execute``; the runner then calls ``on_kill`` and fails the try."""
    from airflow.sdk.exceptions import AirflowTaskTimeout
    from airflow.sdk.execution_time.timeout import timeout

    with pytest.raises(AirflowTaskTimeout):
        try:
            with timeout(3):
                operator.execute({"ti": RecordingTI()})
        except AirflowTaskTimeout:
            operator.on_kill()
            raise


def _kill_with_sigterm(operator: Any, fake: FakeDockerAPI) -> None:
    """What Airflow's task runner does on SIGTERM (a task marked failed, a worker shutting down):
    its handler calls ``on_kill`` on the thread running ``execute``."""
    from airflow.sdk.exceptions import AirflowException

    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: operator.on_kill())

    def send_sigterm() -> None:
        fake.wait_until(_lean_is_running)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=send_sigterm, daemon=True).start()
    try:
        with pytest.raises(AirflowException) as info:
            operator.execute({"ti": RecordingTI()})
    finally:
        signal.signal(signal.SIGTERM, previous)
    message = str(info.value)
    assert "was stopped before it finished: the Airflow task was killed" in message
    assert "results are partial" in message and "Program.ExitKeyPress()" in message


@SQLITE
@pytest.mark.parametrize("kill", ["task_timeout", "sigterm"])
def test_a_killed_task_stops_lean_with_sigint_and_its_retry_gives_the_rows_of_a_clean_run(
    lean_env: dict[str, str], kill: str
) -> None:
    clean = _clean_run(lean_env["db_url"])
    killed = prepare_run(dag_id="lean_backtest_killed")
    with FakeDockerAPI(EntryScriptRun(hold=True)) as fake:
        operator = _operator(killed, fake.url)
        if kill == "task_timeout":
            _kill_with_task_timeout(operator)
        else:
            _kill_with_sigterm(operator, fake)
        (first,) = fake.state.containers.values()
        # Lean got SIGINT (and finished: exit 0), never SIGTERM or SIGKILL; the daemon was given the grace.
        assert not first.running and first.exit_code == 0
        assert "SIGINT" in first.signals and not {"SIGTERM", "SIGKILL"} & set(first.signals)
        assert _observed(first)["signals"][0] == "SIGINT"
        assert first.stop_timeouts == [60]
        # The failed attempt is kept for inspection under a dated name; its name is free again.
        match = KEPT.fullmatch(first.name)
        assert match and match["dag"] == "lean_backtest_killed", first.name
        assert not killed.engine_path.exists(), "a stopped run records no engine identity"

        fake.state.script = EntryScriptRun()
        _operator(killed, fake.url).execute({"ti": RecordingTI()})  # the retry
        assert list(fake.state.containers.values()) == [first]  # the retry's own container was removed
        assert len(fake.state.created) == 2 and fake.state.max_running == 1
    ingest(killed)
    check(killed)
    assert db_events(lean_env["db_url"], killed.dag_id, killed.run_key) == db_events(
        lean_env["db_url"], clean.dag_id, clean.run_key
    )
    assert_db_matches_run_pair(lean_env["db_url"], clean, killed)


def assert_db_matches_run_pair(db_url: str, clean: RunFolder, retried: RunFolder) -> None:
    """Both runs are in the DB exactly as their files say, with the same numbers of rows."""
    from tests.faults.helpers import file_events, intent_orders

    assert file_events(clean.results_dir, clean.run_key) == file_events(retried.results_dir, retried.run_key)
    assert intent_orders(clean) == intent_orders(retried)
    checks = len(json.loads(clean.report_json_path.read_text())["checks"])
    assert checks == len(json.loads(retried.report_json_path.read_text())["checks"])
    events = len(file_events(clean.results_dir, clean.run_key))
    assert table_counts(db_url) == {
        "rebalance_runs": 2,
        "intent_orders": 2 * intent_orders(clean),
        "order_events": 2 * events,
        "consistency_results": 2 * checks,
    }


@SQLITE
def test_the_engine_timeout_stops_lean_with_sigint_and_fails_the_task(lean_env: dict[str, str]) -> None:
    from airflow.sdk.exceptions import AirflowException

    run = prepare_run()
    with FakeDockerAPI(EntryScriptRun(hold=True)) as fake:
        with pytest.raises(AirflowException) as info:
            _operator(run, fake.url, engine_timeout=dt.timedelta(seconds=2)).execute({"ti": RecordingTI()})
        (container,) = fake.state.containers.values()
    message = str(info.value)
    assert "it ran longer than the engine timeout of 0:00:02" in message
    assert f"kept for inspection as {container.name}" in message
    assert "SIGINT" in container.signals and "SIGKILL" not in container.signals
    assert container.exit_code == 0 and not container.running
    assert table_counts(lean_env["db_url"]) == empty_counts()


@SQLITE
def test_a_lean_that_ignores_sigint_is_killed_by_the_daemon_after_the_grace(lean_env: dict[str, str]) -> None:
    from airflow.sdk.exceptions import AirflowException

    run = prepare_run()
    hung = ContainerScript(log_lines=["Lean hangs on shutdown"], hold_until_signal=True, ignored_signals=("SIGINT",))
    with FakeDockerAPI(hung) as fake:
        operator = _operator(run, fake.url, engine_timeout=dt.timedelta(seconds=1), stop_grace=dt.timedelta(seconds=1))
        with pytest.raises(AirflowException, match=r"exited with code 137 \(killed by signal SIGKILL\)"):
            operator.execute({"ti": RecordingTI()})
        (container,) = fake.state.containers.values()
    assert container.signals == ["SIGINT", "SIGKILL"]  # docker stop: the StopSignal, then the kill after the grace
    assert container.stop_timeouts == [1] and not container.running


# ---------------------------------------------------------------------------- finding the run's container


@SQLITE
def test_a_retry_after_the_worker_died_adopts_the_running_container(lean_env: dict[str, str]) -> None:
    run = prepare_run()
    spec = {"run_dir": str(run.path), "image": IMAGE}
    with FakeDockerAPI(EntryScriptRun(delay_s=3)) as fake:
        spec["docker_url"] = fake.url
        # The first try's worker: killed with SIGKILL once Lean runs (no on_kill, no finally).
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.plugins.worker_steps", "run_lean", json.dumps(spec)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins")])},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            fake.wait_until(_lean_is_running)
        finally:
            worker.kill()
            worker.wait()
        (running,) = fake.state.running()
        config_before = run.config_path.stat().st_mtime_ns

        _operator(run, fake.url).execute({"ti": RecordingTI()})  # the retry
        assert len(fake.state.created) == 1, "the retry started a second Lean"
        assert running.signals == [] and running.exit_code == 0
        assert fake.state.containers == {}  # removed once it succeeded
    # Adopting touched nothing under the running Lean: the config was not rewritten.
    assert run.config_path.stat().st_mtime_ns == config_before
    assert run.engine_identity()["lean_version"] == LEAN_VERSION
    ingest(run)
    check(run)
    assert_db_matches_run(lean_env["db_url"], run, checked=True)


def _leftover(fake: FakeDockerAPI, run: RunFolder, *, config_sha: str, exit_code: int | None) -> FakeContainer:
    """A container under the run's name, left by an earlier attempt: running (exit_code None) or exited."""
    import docker

    from include.launch.docker import container_name

    client = docker.APIClient(base_url=fake.url)
    name = container_name(run.dag_id, run.run_key)
    labels = {
        "lean-airflow.dag-id": run.dag_id,
        "lean-airflow.run-key": run.run_key,
        "lean-airflow.config-sha256": config_sha,
    }
    created = client.create_container(IMAGE, name=name, labels=labels, stop_signal="SIGINT")
    client.start(created["Id"])
    if exit_code is not None:
        client.wait(created["Id"])
    return fake.state.containers[created["Id"]]


@SQLITE
@pytest.mark.parametrize(("exit_code", "kept"), [(0, False), (1, True)])
def test_an_exited_container_of_the_run_is_removed_or_kept_and_a_new_one_runs(
    lean_env: dict[str, str], exit_code: int, kept: bool
) -> None:
    run = prepare_run()
    with FakeDockerAPI(ContainerScript(exit_code=exit_code)) as fake:
        old = _leftover(fake, run, config_sha="0" * 64, exit_code=exit_code)
        fake.state.script = EntryScriptRun()
        _operator(run, fake.url).execute({"ti": RecordingTI()})
        assert len(fake.state.created) == 2
        if kept:
            assert list(fake.state.containers.values()) == [old] and KEPT.fullmatch(old.name)
        else:
            assert fake.state.containers == {} and old.id in fake.state.removed
    assert run.engine_identity()["runtime"] == "docker"


@SQLITE
def test_a_running_container_of_the_run_with_another_config_is_stopped_and_kept(lean_env: dict[str, str]) -> None:
    run = prepare_run()
    with FakeDockerAPI(ContainerScript(hold_until_signal=True)) as fake:
        stale = _leftover(fake, run, config_sha="0" * 64, exit_code=None)
        fake.state.script = EntryScriptRun()
        _operator(run, fake.url).execute({"ti": RecordingTI()})
        assert stale.signals[0] == "SIGINT" and not stale.running
        assert list(fake.state.containers.values()) == [stale] and KEPT.fullmatch(stale.name)
        assert len(fake.state.created) == 2 and fake.state.max_running == 1


# ---------------------------------------------------------------------------- the image


@SQLITE
def test_an_image_built_before_lean_converted_daily_market_orders_is_refused(lean_env: dict[str, str]) -> None:
    from include.errors import LeanImageTooOldError

    run = prepare_run()
    old = {IMAGE: FakeImage(IMAGE, created="2026-05-29T07:00:00.5Z")}
    with FakeDockerAPI(EntryScriptRun(), images=old) as fake:
        with pytest.raises(LeanImageTooOldError, match=r"built 2026-05-29T07:00:00\.5Z, before Lean commit 62d63010a"):
            _operator(run, fake.url).execute({"ti": RecordingTI()})
        assert fake.state.created == []
    assert not run.config_path.exists() and not run.results_dir.exists()  # the folder is untouched


@SQLITE
def test_an_absent_image_is_pulled_by_its_digest(lean_env: dict[str, str]) -> None:
    run = prepare_run()
    with FakeDockerAPI(EntryScriptRun(), images={}, registry={IMAGE: FakeImage(IMAGE)}) as fake:
        _operator(run, fake.url).execute({"ti": RecordingTI()})
        assert fake.state.pulls == [IMAGE]
    assert run.engine_identity()["image_digest"] == IMAGE


# ---------------------------------------------------------------------------- the log


@SQLITE
def test_the_log_is_streamed_line_by_line_and_only_its_tail_is_kept(lean_env: dict[str, str]) -> None:
    """Every line reaches the task log as it comes; the error names only the last 40."""
    import docker

    from include.errors import LeanRunError
    from include.launch.docker import container_spec
    from include.launch.lifecycle import TAIL_LINES, DockerLeanRun
    from include.pipeline import lean_job

    run = prepare_run()
    job = lean_job(run, mode="backtest", parameters={"starting-cash": STARTING_CASH}, data_folder=DEFAULT_DATA_FOLDER)
    lines = [f"line {i:04d}" for i in range(2000)]
    seen: list[str] = []
    with FakeDockerAPI(ContainerScript(log_lines=lines, exit_code=3)) as fake:
        lean_run = DockerLeanRun(
            docker.APIClient(base_url=fake.url),
            job,
            container_spec(job, image=IMAGE),
            timeout_s=60,
            on_line=seen.append,
        )
        with pytest.raises(LeanRunError) as info:
            lean_run.run()
    assert [line for line in seen if line.startswith("line ")] == lines
    tail = info.value.log_tail
    assert "line 1999" in tail and f"line {2000 - TAIL_LINES:04d}" in tail
    assert f"line {2000 - TAIL_LINES - 1:04d}" not in tail
    assert info.value.exit_code == 3


# ---------------------------------------------------------------------------- an unprivileged worker


@pytest.mark.skipif(os.geteuid() != 0, reason="the containers must write as root, the worker as another user")
def test_reruns_retries_and_cleared_runs_by_an_unprivileged_worker_succeed_on_root_written_output() -> None:
    """Lean (root in the image) writes results/ and storage/lean-airflow/; the Airflow worker (uid
    12345) must delete them at the next run. Each step runs as that user, as in a deployment."""
    python = python_for_user()
    if python is None:
        pytest.skip("no Python the unprivileged test user may run")
    with user_home() as home, FakeDockerAPI(EntryScriptRun()) as fake:
        (home / "airflow").mkdir()
        os.chown(home / "airflow", *map(int, OWNER.split(":")))
        env = {
            "HOME": str(home),
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "LEAN_AIRFLOW_ARTIFACT_ROOT": str(home / "artifacts"),
            "LEAN_AIRFLOW_DB_URL": f"sqlite:///{home / 'audit.db'}",
        }
        migrated = run_as_user(python, ["-m", "include.cli", "db", "upgrade"], env)
        assert migrated.returncode == 0, migrated.stderr
        spec: dict[str, Any] = {"dag_id": "lean_backtest_range", "docker_url": fake.url, "image": IMAGE}

        def steps(names: str, **extra: Any) -> list[dict[str, Any]]:
            done = run_as_user(python, ["-m", "tests.plugins.worker_steps", names, json.dumps({**spec, **extra})], env)
            results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
            assert done.returncode == 0, (results, done.stderr[-3000:])
            return results

        spec["run_dir"] = steps("prepare,run_lean,ingest,check")[0]["result"]["run_dir"]
        run = RunFolder.open(spec["run_dir"])
        first = db_events(env["LEAN_AIRFLOW_DB_URL"], run.dag_id, run.run_key)
        outputs = [p for folder in (run.results_dir, run.storage_dir) for p in (folder, *folder.rglob("*"))]
        assert any(p.is_dir() and p.parent == run.storage_dir for p in outputs)  # storage/lean-airflow/
        assert {f"{p.stat().st_uid}:{p.stat().st_gid}" for p in outputs} == {OWNER}

        # A retry of run_lean after a stopped attempt: its partial output is handed back too.
        fake.state.script = EntryScriptRun(hold=True)
        stopped = run_as_user(
            python, ["-m", "tests.plugins.worker_steps", "run_lean", json.dumps({**spec, "engine_timeout_s": 2})], env
        )
        assert stopped.returncode == 1 and "ran longer than the engine timeout" in stopped.stdout, stopped.stderr
        fake.state.script = EntryScriptRun()
        steps("run_lean,ingest,check")
        # A re-run of the whole chain (a cleared DAG run, a backfill with reprocessing).
        steps("prepare,run_lean,ingest,check")
        assert db_events(env["LEAN_AIRFLOW_DB_URL"], run.dag_id, run.run_key) == first
        assert_db_matches_run(env["LEAN_AIRFLOW_DB_URL"], run, checked=True)
        assert {c.labels["lean-airflow.run-key"] for c in fake.state.containers.values()} <= {run.run_key}
        assert [c.exit_code for c in fake.state.containers.values()] == [0]  # only the stopped try is kept


# ---------------------------------------------------------------------------- the DAGs' run_lean task


def test_run_lean_gets_the_pool_and_an_execution_timeout_beyond_the_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    from lean_airflow.dag_factory import POOL_ENV, build_lean_dag
    from lean_airflow.operators import DEFAULT_ENGINE_TIMEOUT, DEFAULT_STOP_GRACE

    def run_lean() -> Any:
        dag = build_lean_dag(dag_id="d", kind="range", mode="backtest", description="", doc_md="")
        return dag.get_task("run_lean")

    monkeypatch.setenv(POOL_ENV, "lean")
    task = run_lean()
    assert task.pool == "lean"
    assert task.execution_timeout > DEFAULT_ENGINE_TIMEOUT + DEFAULT_STOP_GRACE
    assert task.engine_timeout == DEFAULT_ENGINE_TIMEOUT and task.stop_grace == DEFAULT_STOP_GRACE
    monkeypatch.delenv(POOL_ENV)
    assert run_lean().pool == "default_pool"


@SQLITE
@pytest.mark.parametrize("case", ["no data queue handler", "local-data-folder feed"])
def test_a_live_job_lean_would_refuse_sends_nothing_to_the_daemon(
    lean_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The lifecycle checks the job itself (not only the operator): no request at all, no container."""
    import dataclasses

    import docker

    from include.errors import BrokerRuntimeError, LiveDataQueueMissingError
    from include.launch.brokers import BrokerSelection, parse_broker_connection
    from include.launch.config import LeanJob
    from include.launch.docker import container_spec
    from include.launch.lifecycle import DockerLeanRun

    run = prepare_run()
    job = LeanJob(folder=run, mode="live", parameters={"starting-cash": STARTING_CASH}, data_folder=DEFAULT_DATA_FOLDER)
    expected: type[Exception] = BrokerRuntimeError
    if case == "no data queue handler":
        qc = {"job_user_id": "1", "api_access_token": "t", "job_organization_id": "o"}
        fields = {"extra": {"data_provider": "polygon", "polygon_api_key": "k", **qc}}
        job = dataclasses.replace(job, broker=parse_broker_connection("c", fields).selection)
        real = BrokerSelection.environment_block
        monkeypatch.setattr(
            BrokerSelection,
            "environment_block",
            lambda self: {k: v for k, v in real(self).items() if k != "data-queue-handler"},
        )
        expected = LiveDataQueueMissingError
    with FakeDockerAPI() as fake:
        lean_run = DockerLeanRun(
            docker.APIClient(base_url=fake.url, version="1.43"),
            job,
            container_spec(job, image=IMAGE),
            timeout_s=60,
            on_line=lambda _line: None,
        )
        with pytest.raises(expected):
            lean_run.run()
    assert [path for _method, path, _body in fake.state.requests] == []
    assert fake.state.created == [] and not run.config_path.exists()
