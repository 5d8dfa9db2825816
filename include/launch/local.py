"""The local runtime in a subprocess: ``python -m include.lean_local --config <run>/config.json``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping

from include.errors import LeanRunError
from include.launch.config import LeanJob, Runtime, write_launcher_config
from include.run_folder import NO_LOG_TAIL, REPO_ROOT

LOCAL_RUNTIME: Runtime = "local"


def local_engine_command(config_path: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "include.lean_local", "--config", os.fspath(config_path)]


def run_local_engine(
    config_path: str | os.PathLike[str],
    *,
    timeout_s: float,
    on_line: Callable[[str], None],
    env: Mapping[str, str] | None = None,
) -> int:
    """Run the local runtime in a subprocess, streaming its output line by line; return its exit code.

    On timeout the process is killed and ``subprocess.TimeoutExpired`` propagates.
    """
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), child_env.get("PYTHONPATH", "")]))
    child_env["PYTHONUNBUFFERED"] = "1"
    with subprocess.Popen(
        local_engine_command(config_path),
        cwd=REPO_ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        stream = process.stdout

        def pump() -> None:
            for line in stream:
                on_line(line.rstrip("\n"))

        reader = threading.Thread(target=pump, name="lean-local-output", daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            reader.join(timeout=5)
    return code


def run_lean_local(
    job: LeanJob,
    *,
    timeout_s: float,
    on_line: Callable[[str], None],
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Write the config and run the local runtime; LeanRunError on a non-zero exit.

    Returns the engine identity, also recorded in the run folder's ``engine.json``.
    """
    from include.lean_local import __version__ as local_version

    config_path = write_launcher_config(job, LOCAL_RUNTIME)
    # The engine's own output: the only trace of a failure before any log file is written
    # (a bad config, an engine killed by a signal).
    recent: deque[str] = deque(maxlen=40)

    def relay(line: str) -> None:
        recent.append(line)
        on_line(line)

    code = run_local_engine(config_path, timeout_s=timeout_s, on_line=relay, env=env)
    if code != 0:
        tail = job.folder.log_tail()
        if tail == NO_LOG_TAIL and recent:
            tail = "\n".join(recent)
        raise LeanRunError(LOCAL_RUNTIME, code, tail)
    identity = {"runtime": LOCAL_RUNTIME, "engine": f"lean_local {local_version}"}
    job.folder.record_engine_identity(identity)
    return identity
