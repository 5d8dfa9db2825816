"""The local runtime in a subprocess: ``python -m include.lean_local --config <run>/config.json``.

The engine runs in a process group of its own, so a stop reaches every process it started: a
stop (its engine timeout, the task's ``on_kill``, a SIGTERM or SIGINT of the CLI command, any
exception while it runs) sends SIGINT to the group, as Lean is stopped (the local runtime, a
Python process, stops on SIGINT), then SIGKILL after the grace period. On Linux the engine is
also killed by the kernel if the process that started it dies (``PR_SET_PDEATHSIG``), so not
even a SIGKILLed task or command leaves it running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from types import FrameType

from include.errors import LeanEngineTimeoutError, LeanRunError, LeanStoppedError
from include.launch.config import LeanJob, Runtime, write_launcher_config
from include.run_folder import NO_LOG_TAIL, REPO_ROOT

LOCAL_RUNTIME: Runtime = "local"
# How long the engine may take to finish after SIGINT before its group is killed (the operator's
# DEFAULT_STOP_GRACE, and lean-cli's 60 s).
DEFAULT_STOP_GRACE_S = 60.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1


def local_engine_command(config_path: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "include.lean_local", "--config", os.fspath(config_path)]


class StopRequested(BaseException):
    """A SIGTERM or SIGINT received while :func:`stop_on_signals` was in force.

    A BaseException (like KeyboardInterrupt), so no ``except Exception`` on the way swallows it:
    it reaches the code that started the engine, which stops the engine's group and re-raises.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"received {self.signal_name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a command ended by a signal: 128 + its number."""
        return 128 + self.signum


def interrupted_message(command: str, stop: StopRequested, *, in_process: bool = False) -> str:
    """What a CLI command stopped by a signal prints (after ``error: ``)."""
    how = (
        "the Lean engine running in it stopped with it"
        if in_process
        else "the Lean engine was stopped with it (SIGINT to its process group, SIGKILL after the grace)"
    )
    return (
        f"StopRequested: python -m include.cli {command} received {stop.signal_name} and stopped; {how}, "
        "so the run is incomplete and its results are partial: re-run the command"
    )


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGINT raise :class:`StopRequested` in the main thread;
    the previous handlers are restored afterwards. Outside the main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise StopRequested(signum)

    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _engine_preexec() -> Callable[[], None]:
    """What the engine's child process does before it execs the engine: SIGINT back to its default
    (a parent that ignores SIGINT, e.g. a background job of a shell, would make the engine deaf to a
    stop) and, on Linux, SIGKILL when its parent dies."""
    prctl: Callable[..., int] | None = None
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None

    def preexec() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return preexec


class LocalEngine:
    """One engine subprocess in a process group of its own.

    :meth:`stop` may be called from a signal handler (Airflow calls ``on_kill`` in its SIGTERM
    handler, on the thread that runs :meth:`run`) or from another thread; it does not wait: it sends
    SIGINT to the group and arms a SIGKILL of the group after the grace. When :meth:`run` returns
    or raises, no process of the group is left.
    """

    def __init__(
        self,
        config_path: str | os.PathLike[str],
        *,
        on_line: Callable[[str], None],
        env: Mapping[str, str] | None = None,
        stop_grace_s: float = DEFAULT_STOP_GRACE_S,
    ) -> None:
        self.config_path = config_path
        self.on_line = on_line
        self.env = env
        self.stop_grace_s = stop_grace_s
        self.pid: int | None = None
        self.returncode: int | None = None
        self.stop_reason: str | None = None
        self.timed_out = False
        self._lock = threading.RLock()
        self._killer: threading.Timer | None = None

    def run(self, timeout_s: float) -> int:
        """Start the engine, stream its output line by line, return its exit code.

        On timeout the group is stopped and ``subprocess.TimeoutExpired`` propagates; on any other
        exception (a StopRequested, Airflow's task timeout...) the group is stopped and it propagates.
        """
        child_env = {**os.environ, **(self.env or {})}
        child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), child_env.get("PYTHONPATH", "")]))
        child_env["PYTHONUNBUFFERED"] = "1"
        with subprocess.Popen(
            local_engine_command(self.config_path),
            cwd=REPO_ROOT,
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
            # No lock is taken before the exec: a signal reset and one prctl call.
            preexec_fn=_engine_preexec(),
        ) as process:
            reader: threading.Thread | None = None
            # Everything after the start is inside the try: a signal may land on any line (a test
            # sends it as soon as the engine exists), and Popen's __exit__ would wait for an engine
            # nobody stopped.
            try:
                with self._lock:
                    self.pid = process.pid
                    early_stop = self.stop_reason
                if early_stop is not None:  # stopped while it was being started
                    self._signal_group(signal.SIGINT)
                    self._arm_kill()
                assert process.stdout is not None
                stream = process.stdout

                def pump() -> None:
                    for line in stream:
                        self.on_line(line.rstrip("\n"))

                reader = threading.Thread(target=pump, name="lean-local-output", daemon=True)
                reader.start()
                code = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.timed_out = True
                self.stop(f"it ran longer than its engine timeout of {timeout_s:g} s")
                self._reap(process)
                raise
            except BaseException as exc:
                with self._lock:
                    self.pid = process.pid  # the signal may have come before it was recorded
                detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self.stop(f"the run was interrupted ({detail})")
                self._reap(process)
                raise
            finally:
                self._finish(process)
                if reader is not None:
                    reader.join(timeout=5)
        return code

    def stop(self, reason: str) -> None:
        """SIGINT to the engine's group now, SIGKILL after the grace; idempotent, never waits."""
        with self._lock:
            if self.stop_reason is not None:
                return
            self.stop_reason = reason
            if self.pid is None or self.returncode is not None:
                return
            self.on_line(
                f"Stopping the local engine (process group {self.pid}): {reason}. "
                f"SIGINT, then SIGKILL after {self.stop_grace_s:g} s"
            )
            self._signal_group(signal.SIGINT)
            self._arm_kill()

    def _arm_kill(self) -> None:
        killer = threading.Timer(self.stop_grace_s, self._signal_group, args=(signal.SIGKILL,))
        killer.daemon = True
        killer.start()
        self._killer = killer

    def _signal_group(self, number: signal.Signals) -> None:
        if self.pid is None:
            return
        with suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(self.pid, number)

    def _reap(self, process: subprocess.Popen[str]) -> None:
        """Wait for the stopped engine (the armed SIGKILL ends the wait); kill it at once if the wait
        itself is interrupted (a second signal)."""
        try:
            process.wait(timeout=self.stop_grace_s + 10)
        finally:
            if process.poll() is None:
                self._signal_group(signal.SIGKILL)
                process.wait()

    def _finish(self, process: subprocess.Popen[str]) -> None:
        """After the engine exited: no process of its group outlives it (a child it started, still
        running, gets SIGKILL), and the armed kill is disarmed."""
        with self._lock:
            self.returncode = process.returncode
            if self._killer is not None:
                self._killer.cancel()
            if process.returncode is not None:
                self._signal_group(signal.SIGKILL)


def run_local_engine(
    config_path: str | os.PathLike[str],
    *,
    timeout_s: float,
    on_line: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    stop_grace_s: float = DEFAULT_STOP_GRACE_S,
    started: Callable[[LocalEngine], None] | None = None,
) -> int:
    """Run the local runtime in a subprocess, streaming its output line by line; return its exit code.

    On timeout the engine's process group is stopped (SIGINT, SIGKILL after ``stop_grace_s``) and
    ``subprocess.TimeoutExpired`` propagates. ``started`` gets the :class:`LocalEngine` first, so a
    caller can :meth:`~LocalEngine.stop` it from elsewhere.
    """
    engine = LocalEngine(config_path, on_line=on_line, env=env, stop_grace_s=stop_grace_s)
    if started is not None:
        started(engine)
    return engine.run(timeout_s)


class LocalLeanRun:
    """Run ``job`` on the local runtime; :meth:`stop` (the operator's ``on_kill``) stops it."""

    def __init__(
        self,
        job: LeanJob,
        *,
        timeout_s: float,
        on_line: Callable[[str], None],
        env: Mapping[str, str] | None = None,
        stop_grace_s: float = DEFAULT_STOP_GRACE_S,
    ) -> None:
        self.job = job
        self.timeout_s = timeout_s
        self.on_line = on_line
        self.env = env
        self.stop_grace_s = stop_grace_s
        self.engine: LocalEngine | None = None
        self._stop_reason: str | None = None
        self._lock = threading.RLock()

    def _attach(self, engine: LocalEngine) -> None:
        with self._lock:
            self.engine = engine
            if self._stop_reason is not None:
                engine.stop(self._stop_reason)

    def stop(self, reason: str) -> None:
        """Stop the engine (SIGINT to its group, SIGKILL after the grace); idempotent, never waits."""
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
            engine = self.engine
        if engine is not None:
            engine.stop(reason)

    def run(self) -> dict[str, str]:
        """Write the config and run the local runtime; LeanRunError on a non-zero exit,
        LeanStoppedError when it was stopped, LeanEngineTimeoutError after its engine timeout.

        Returns the engine identity, also recorded in the run folder's ``engine.json``.
        """
        from include.lean_local import __version__ as local_version

        job = self.job
        config_path = write_launcher_config(job, LOCAL_RUNTIME)
        # The engine's own output: the only trace of a failure before any log file is written
        # (a bad config, an engine killed by a signal).
        recent: deque[str] = deque(maxlen=40)

        def relay(line: str) -> None:
            recent.append(line)
            self.on_line(line)

        def tail() -> str:
            found = job.folder.log_tail()
            return "\n".join(recent) if found == NO_LOG_TAIL and recent else found

        try:
            code = run_local_engine(
                config_path,
                timeout_s=self.timeout_s,
                on_line=relay,
                env=self.env,
                stop_grace_s=self.stop_grace_s,
                started=self._attach,
            )
        except subprocess.TimeoutExpired:
            engine = self.engine
            exit_code = engine.returncode if engine is not None and engine.returncode is not None else -9
            reason = engine.stop_reason if engine is not None and engine.stop_reason else "engine timeout"
            raise LeanEngineTimeoutError(LOCAL_RUNTIME, reason, exit_code, tail()) from None
        with self._lock:
            stopped = self._stop_reason
        if stopped is not None:
            raise LeanStoppedError(LOCAL_RUNTIME, stopped, code, tail())
        if code != 0:
            raise LeanRunError(LOCAL_RUNTIME, code, tail())
        identity = {"runtime": LOCAL_RUNTIME, "engine": f"lean_local {local_version}"}
        job.folder.record_engine_identity(identity)
        return identity


def run_lean_local(
    job: LeanJob,
    *,
    timeout_s: float,
    on_line: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    stop_grace_s: float = DEFAULT_STOP_GRACE_S,
) -> dict[str, str]:
    """Write the config and run the local runtime (:class:`LocalLeanRun`); LeanRunError on a
    non-zero exit, LeanEngineTimeoutError after ``timeout_s``.

    Returns the engine identity, also recorded in the run folder's ``engine.json``.
    """
    return LocalLeanRun(job, timeout_s=timeout_s, on_line=on_line, env=env, stop_grace_s=stop_grace_s).run()
