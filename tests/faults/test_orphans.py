"""No orphan engines (issue #18): the local engine runs in a process group of its own, and its engine
timeout, a SIGTERM or SIGINT of the CLI command, and the operator's ``on_kill`` stop the whole group
(SIGINT, then SIGKILL after the grace), so no process of it outlives its task or command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from include.errors import LeanStoppedError
from include.launch.config import write_launcher_config
from include.launch.local import LocalLeanRun, run_local_engine
from include.pipeline import lean_job
from include.run_folder import DEFAULT_DATA_FOLDER, RunFolder
from tests.conftest import REPO_ROOT
from tests.faults.helpers import STARTING_CASH, prepare_run, write_algorithm

# Ignores SIGINT (as a hung engine would) and starts a grandchild that ignores it too; both pids go
# to <results>/engine.pids once they run. Only SIGKILL of the whole group ends them.
DEAF_ALGORITHM = """
from AlgorithmImports import *

import json
import os
import signal
import subprocess
import sys
import time


class DeafToStops(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2021, 2, 1)
        self.set_end_date(2021, 2, 26)
        self.set_cash(100000)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        child = subprocess.Popen(
            [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"]
        )
        results = os.path.dirname(self.get_parameter("final-state-path"))
        with open(os.path.join(results, "engine.pids.tmp"), "w") as handle:
            json.dump({"engine": os.getpid(), "grandchild": child.pid}, handle)
        os.replace(os.path.join(results, "engine.pids.tmp"), os.path.join(results, "engine.pids"))
        time.sleep(600)
"""


def _wait_for(predicate: Callable[[], Any], what: str, timeout_s: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _group_members(pgid: int) -> list[int]:
    members = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _assert_gone(pids: list[int], pgid: int, timeout_s: float = 15.0) -> None:
    """Every pid and every member of the group ends within a few seconds (killed ones are not waited for)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids) and not _group_members(pgid):
            return
        time.sleep(0.05)
    survivors = [p for p in pids if _alive(p)] + _group_members(pgid)
    for pid in survivors:  # never leave them behind, even when the test fails
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"processes of the engine's group survived: {sorted(set(survivors))}")


def _deaf_run(tmp_path: Path) -> tuple[RunFolder, Any]:
    folder = prepare_run(root=tmp_path / "artifacts")
    algorithm = write_algorithm(tmp_path / "algorithms", "deaf_to_stops", DEAF_ALGORITHM)
    job = lean_job(
        folder,
        mode="backtest",
        parameters={"starting-cash": STARTING_CASH},
        algorithm_path=algorithm,
        data_folder=DEFAULT_DATA_FOLDER,
    )
    return folder, job


def _pids(folder: RunFolder) -> dict[str, int]:
    marker = folder.results_dir / "engine.pids"
    found: dict[str, int] = _wait_for(lambda: marker.exists() and json.loads(marker.read_text()), "the engine")
    return found


# ------------------------------------------------------------------ the engine timeout


def test_the_engine_timeout_kills_the_whole_group_even_when_it_ignores_sigint(tmp_path: Path) -> None:
    folder, job = _deaf_run(tmp_path)
    config = write_launcher_config(job, "local")
    seen: dict[str, int] = {}
    watcher = threading.Thread(target=lambda: seen.update(_pids(folder)), daemon=True)
    watcher.start()
    lines: list[str] = []
    with pytest.raises(subprocess.TimeoutExpired):
        run_local_engine(config, timeout_s=20, on_line=lines.append, stop_grace_s=1)
    watcher.join(timeout=10)
    assert seen, "the engine never started its grandchild within the timeout"
    _assert_gone([seen["engine"], seen["grandchild"]], pgid=seen["engine"])
    assert any("SIGINT, then SIGKILL after 1 s" in line for line in lines), lines


# ------------------------------------------------------------------ the helper on_kill uses


def test_stopping_a_local_run_kills_its_group_and_names_the_stop(tmp_path: Path) -> None:
    folder, job = _deaf_run(tmp_path)
    run = LocalLeanRun(job, timeout_s=300, on_line=lambda _line: None, stop_grace_s=1)
    seen: dict[str, int] = {}

    def stop_once_running() -> None:
        seen.update(_pids(folder))
        run.stop("the Airflow task was killed")

    threading.Thread(target=stop_once_running, daemon=True).start()
    with pytest.raises(LeanStoppedError) as info:
        run.run()
    assert "was stopped before it finished: the Airflow task was killed" in str(info.value)
    assert info.value.exit_code == -signal.SIGKILL  # it ignored SIGINT: killed after the grace
    _assert_gone([seen["engine"], seen["grandchild"]], pgid=seen["engine"])


# ------------------------------------------------------------------ the operator's on_kill


@pytest.mark.parametrize("raw_db_url", ["sqlite"], indirect=True)
def test_on_kill_of_a_local_runtime_task_stops_the_engine_group(lean_env: dict[str, str], tmp_path: Path) -> None:
    """What Airflow's task runner does on SIGTERM: its handler calls ``on_kill`` on the thread running
    ``execute``, then lets ``execute`` go on; the task must fail and leave no engine behind."""
    import datetime as dt

    from airflow.sdk.exceptions import AirflowException

    from plugins.lean_airflow.operators import LeanRunOperator
    from tests.airflow_fixtures import RecordingTI

    folder = prepare_run()
    algorithm = write_algorithm(tmp_path / "algorithms", "deaf_to_stops", DEAF_ALGORITHM)
    operator = LeanRunOperator(
        task_id="run_lean",
        mode="backtest",
        run_dir=str(folder.path),
        runtime="local",
        algorithm_path=str(algorithm),
        engine_timeout=dt.timedelta(seconds=90),
        stop_grace=dt.timedelta(seconds=1),
    )
    seen: dict[str, int] = {}
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: operator.on_kill())

    def send_sigterm() -> None:
        seen.update(_pids(folder))
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=send_sigterm, daemon=True).start()
    try:
        with pytest.raises(AirflowException) as info:
            operator.execute({"ti": RecordingTI()})  # type: ignore[typeddict-item]
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert "was stopped before it finished: the Airflow task was killed" in str(info.value)
    assert "results are partial" in str(info.value)
    _assert_gone([seen["engine"], seen["grandchild"]], pgid=seen["engine"])


# ------------------------------------------------------------------ the CLI command


def _engine_of(cli: psutil.Process) -> int | None:
    try:
        for child in cli.children(recursive=True):
            if "include.lean_local" in " ".join(child.cmdline()):
                return child.pid
    except psutil.NoSuchProcess:
        return None
    return None


# On the engine's PYTHONPATH: the engine process (``-m include.lean_local --config ...``) stalls before it
# starts, as a long backtest would, and writes nothing, so only a stop can end it.
STALLING_ENGINE_SITE = """
import sys
import time

if sys.argv[:1] == ["-m"] and "--config" in sys.argv:
    time.sleep(600)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_a_signal_to_the_cli_backtest_leaves_no_engine_running(tmp_path: Path, signum: signal.Signals) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(STALLING_ENGINE_SITE, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(site)]),
        "LEAN_AIRFLOW_ARTIFACT_ROOT": str(tmp_path / "art"),
        "LEAN_AIRFLOW_DB_URL": f"sqlite:///{tmp_path / 'a.db'}",
    }
    cli = subprocess.Popen(
        [sys.executable, "-m", "include.cli", "backtest", "--start", "2021-02-01", "--end", "2021-02-12"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        engine = _wait_for(lambda: _engine_of(psutil.Process(cli.pid)), "the engine subprocess")
        cli.send_signal(signum)
        _out, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
    _assert_gone([engine], pgid=engine)
    if signum == signal.SIGKILL:  # nothing can be handled: the kernel kills the engine with its parent
        return
    assert cli.returncode == 128 + signum, err[-2000:]
    assert f"error: StopRequested: python -m include.cli backtest received {signum.name}" in err, err[-2000:]
    # No traceback of the CLI's own (the engine's output, echoed as "run_lean: ..." progress lines,
    # may show the engine's KeyboardInterrupt: that is the engine stopping, as asked).
    assert not [line for line in err.splitlines() if line.startswith("Traceback")], err[-2000:]


STALLING_IN_PROCESS = """
from AlgorithmImports import *

import os
import time


class Stalls(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2021, 2, 1)
        self.set_end_date(2021, 2, 26)
        self.set_cash(100000)
        open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "started"), "w").close()
        time.sleep(600)
"""


def test_sigterm_to_cli_run_ends_its_in_process_engine_with_a_named_message(tmp_path: Path) -> None:
    """``run --config`` runs the engine in its own process: SIGTERM ends both, with a named message
    and the shell's exit code for a signal (128 + 15), not a silent death."""
    algorithm = write_algorithm(tmp_path / "algorithms", "stalls", STALLING_IN_PROCESS)
    run = tmp_path / "run"
    run.mkdir()
    config = run / "config.json"
    config.write_text(
        json.dumps(
            {
                "algorithm-location": str(algorithm),
                "algorithm-id": "k",
                "data-folder": str(DEFAULT_DATA_FOLDER),
                "results-destination-folder": str(run / "results"),
                "object-store-root": str(run / "storage"),
            }
        ),
        encoding="utf-8",
    )
    cli = subprocess.Popen(
        [sys.executable, "-m", "include.cli", "run", "--config", str(config)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: (algorithm.parent / "started").exists(), "the algorithm to start")
        cli.send_signal(signal.SIGTERM)
        _out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "error: StopRequested: python -m include.cli run received SIGTERM" in err, err[-2000:]
    assert "Traceback" not in err
