"""One Lean run in a ``quantconnect/lean`` container, from finding its container to cleaning up.

Built on docker-py's low-level ``APIClient`` (Airflow's ``DockerHook`` hands one over); nothing
here imports Airflow, so the lifecycle is tested against a fake Docker API without a scheduler.

* **One container per run.** It is named ``lean-<dag_id>-<run_key>`` and labelled with the run and
  the sha256 of its config. Before creating it the name is looked up: a *running* container of
  the same run and config is adopted (a retry after the worker died waits for it instead of
  starting a second Lean on the same folder or account); an exited one is removed (exit 0) or
  renamed ``<name>-<UTC time>`` and kept for inspection (anything else).
* **Bounded.** The run has a wall-clock limit from its start. On that limit, on any exception in
  the task (``AirflowTaskTimeout`` included) and on :meth:`DockerLeanRun.stop` (the operator's
  ``on_kill``), Lean gets SIGINT, then ``stop`` with the grace period, after which the *daemon*
  kills it: the daemon finishes a stop even when this process dies meanwhile (moby PR #45738), so
  a SIGKILLed worker leaves no container running past the grace period.
* **Kept on failure, removed on success.** A stopped run counts as failed even when Lean exits 0
  after SIGINT: its results are partial.
* **Bounded memory.** The log is streamed line by line (``follow``) into ``on_line``; only the
  last lines are kept, for the error message.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from include.errors import LeanDockerError, LeanEngineTimeoutError, LeanRunError, LeanStoppedError
from include.launch.config import LeanJob, write_launcher_config
from include.launch.docker import (
    CONFIG_SHA_LABEL,
    DAG_ID_LABEL,
    RUN_KEY_LABEL,
    ContainerSpec,
)
from include.launch.image import (
    ImageAPI,
    ImageIdentity,
    ensure_image,
    identity_from_inspect,
    lean_version_from_log,
    parse_created,
)
from include.launch.lean_rules import check_job_before_start
from include.run_folder import NO_LOG_TAIL

DOCKER_RUNTIME = "docker"
TAIL_LINES = 40
# A line longer than this (no newline in sight) is passed on in pieces rather than buffered whole.
MAX_LINE_BYTES = 64 << 10
LOG_JOIN_TIMEOUT_S = 10.0


class DockerAPI(ImageAPI, Protocol):
    """The part of docker-py's ``APIClient`` the lifecycle uses (the fake Docker API serves each)."""

    def containers(self, all: bool = False, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def inspect_container(self, container: str) -> dict[str, Any]: ...

    def create_host_config(self, **kwargs: Any) -> dict[str, Any]: ...

    def create_container(self, image: str, **kwargs: Any) -> dict[str, Any]: ...

    def start(self, container: str) -> None: ...

    def logs(self, container: str, **kwargs: Any) -> Iterable[bytes]: ...

    def kill(self, container: str, signal: str | int | None = None) -> None: ...

    def stop(self, container: str, timeout: int | None = None) -> None: ...

    def rename(self, container: str, name: str) -> None: ...

    def remove_container(self, container: str, v: bool = False, link: bool = False, force: bool = False) -> None: ...


def _utc_stamp(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


class _LogPump(threading.Thread):
    """Streams the container's output into ``on_line``, keeping only the last lines."""

    def __init__(self, client: DockerAPI, container_id: str, on_line: Callable[[str], None], tail: str | int) -> None:
        super().__init__(name=f"lean-logs-{container_id[:12]}", daemon=True)
        self._client = client
        self._container_id = container_id
        self._on_line = on_line
        self._tail = tail
        self.lines: deque[str] = deque(maxlen=TAIL_LINES)
        self.error: str | None = None

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        self.lines.append(line)
        self._on_line(line)

    def run(self) -> None:
        buffer = b""
        try:
            stream = self._client.logs(
                self._container_id, stdout=True, stderr=True, stream=True, follow=True, tail=self._tail
            )
            for chunk in stream:
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for raw in complete:
                    self._emit(raw)
                while len(buffer) > MAX_LINE_BYTES:
                    self._emit(buffer[:MAX_LINE_BYTES])
                    buffer = buffer[MAX_LINE_BYTES:]
            if buffer:
                self._emit(buffer)
        except Exception as exc:  # the log is a convenience: losing it must not fail the run
            self.error = f"{type(exc).__name__}: {exc}"


class DockerLeanRun:
    """Run ``job`` in the container ``spec`` describes; :meth:`run` returns the engine identity.

    :meth:`stop` may be called from a signal handler (Airflow calls ``on_kill`` in its SIGTERM
    handler, on the thread that runs :meth:`run`) or another thread; it is idempotent.
    """

    def __init__(
        self,
        client: DockerAPI,
        job: LeanJob,
        spec: ContainerSpec,
        *,
        timeout_s: float,
        on_line: Callable[[str], None],
        poll_s: float = 1.0,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.client = client
        self.job = job
        self.spec = spec
        self.timeout_s = timeout_s
        self.on_line = on_line
        self.poll_s = poll_s
        self._now = now
        self.container_id: str | None = None
        self.kept_as: str | None = None
        self.adopted = False
        self._stop_reason: str | None = None
        self._container_stop_signal: str | None = None
        self._timed_out = False
        self._stopped = threading.Event()
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ the run

    def run(self) -> dict[str, str]:
        """Adopt or start the run's container, wait for it, clean up; LeanRunError on a failure."""
        state: dict[str, Any] = {}
        pump: _LogPump | None = None
        try:
            deadline, image = self._adopt_or_start()
            assert self.container_id is not None
            # An adopted container's earlier output was logged by the attempt that started it.
            pump = _LogPump(self.client, self.container_id, self.on_line, TAIL_LINES if self.adopted else "all")
            pump.start()
            state = self._wait(deadline)
        except BaseException as exc:
            # AirflowTaskTimeout, KeyboardInterrupt, a daemon error...: never leave Lean running.
            if self.container_id is not None:
                detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self.stop(f"the task was interrupted ({detail})")
            raise
        finally:
            if pump is not None:
                pump.join(LOG_JOIN_TIMEOUT_S)
            # After an exception too: the container is stopped by now, and is kept, renamed.
            self._finish(bool(state) and int(state.get("ExitCode", -1)) == 0 and self._stop_reason is None)
        assert pump is not None
        if pump.error:
            self.on_line(f"(the container log stream broke: {pump.error})")
        return self._outcome(state, pump, image)

    def _outcome(self, state: Mapping[str, Any], pump: _LogPump, image: ImageIdentity) -> dict[str, str]:
        code = int(state.get("ExitCode", -1))
        folder = self.job.folder
        tail = folder.log_tail(TAIL_LINES)
        if tail == NO_LOG_TAIL and pump.lines:
            tail = "\n".join(pump.lines)
        if state.get("OOMKilled"):
            tail += (
                f"\n(the kernel killed the container for exceeding its memory limit of {self.spec.mem_limit} bytes; "
                "raise LEAN_AIRFLOW_CONTAINER_MEMORY)"
            )
        if self._stop_reason is not None:
            error = LeanEngineTimeoutError if self._timed_out else LeanStoppedError
            raise error(DOCKER_RUNTIME, self._stop_reason, code, tail, self.kept_as)
        if code != 0:
            kept = f"\n(container kept as {self.kept_as})" if self.kept_as else ""
            raise LeanRunError(DOCKER_RUNTIME, code, tail + kept)
        identity = {"runtime": DOCKER_RUNTIME, "engine": self.spec.image, **image.engine_fields()}
        identity["lean_version"] = lean_version_from_log(folder.results_dir / "log.txt") or "unknown"
        folder.record_engine_identity(identity)
        return identity

    # ------------------------------------------------------------------ finding or starting the container

    def _find(self) -> dict[str, Any] | None:
        name = self.spec.name
        try:
            # Docker's name filter is an unanchored regular expression; the exact name is checked here.
            found = self.client.containers(all=True, filters={"name": f"^/{re.escape(name)}$"})
        except Exception as exc:
            raise LeanDockerError(f"list containers named {name}", str(exc)) from None
        exact = [c for c in found if f"/{name}" in (c.get("Names") or [])]
        return exact[0] if exact else None

    def _inspect(self, container: str) -> dict[str, Any]:
        try:
            return self.client.inspect_container(container)
        except Exception as exc:
            raise LeanDockerError(f"inspect the container {container}", str(exc)) from None

    def _adopt_or_start(self) -> tuple[float, ImageIdentity]:
        # Before any request to the daemon: a broker that cannot run in the image, or a config Lean would
        # refuse (a live environment without a data queue handler), creates no container.
        check_job_before_start(self.job, "docker")
        existing = self._find()
        if existing is not None:
            details = self._inspect(str(existing["Id"]))
            if self._is_ours_and_running(details):
                return self._adopt(details)
            self._retire(details)
        # The image is checked before the run folder is touched: a refused image changes nothing.
        image = ensure_image(self.client, self.spec.image, self.on_line)
        write_launcher_config(self.job, "docker")
        self.container_id = self._create()
        self.on_line(f"Starting docker container from image {self.spec.image} as {self.spec.name}")
        try:
            self.client.start(self.container_id)
        except Exception as exc:
            raise LeanDockerError(f"start the container {self.spec.name}", str(exc)) from None
        return time.monotonic() + self.timeout_s, image

    def _is_ours_and_running(self, details: Mapping[str, Any]) -> bool:
        labels = (details.get("Config") or {}).get("Labels") or {}
        same_run = all(labels.get(key) == self.spec.labels[key] for key in (DAG_ID_LABEL, RUN_KEY_LABEL))
        running = bool((details.get("State") or {}).get("Running"))
        if running and same_run and labels.get(CONFIG_SHA_LABEL) != self.spec.config_sha256:
            self.on_line(
                f"Container {self.spec.name} runs this run with another config (sha256 "
                f"{labels.get(CONFIG_SHA_LABEL)}, now {self.spec.config_sha256}): stopping it and starting afresh"
            )
            return False
        return running and same_run

    def _adopt(self, details: Mapping[str, Any]) -> tuple[float, ImageIdentity]:
        self.container_id = str(details["Id"])
        self._container_stop_signal = (details.get("Config") or {}).get("StopSignal")
        self.adopted = True
        started = parse_created(str((details.get("State") or {}).get("StartedAt")))
        elapsed = max(0.0, (self._now() - started).total_seconds())
        self.on_line(
            f"Adopting the running container {self.spec.name} of this run (started {started.isoformat()}): "
            "waiting for it instead of starting a second Lean"
        )
        try:
            image = identity_from_inspect(self.spec.image, self.client.inspect_image(str(details["Image"])))
        except Exception as exc:
            raise LeanDockerError(f"inspect the image of the container {self.spec.name}", str(exc)) from None
        # The engine timeout counts from the container's start, not from this attempt's.
        return time.monotonic() + max(0.0, self.timeout_s - elapsed), image

    def _retire(self, details: Mapping[str, Any]) -> None:
        """Move a container that holds the run's name out of the way (it is not adoptable)."""
        container = str(details["Id"])
        state = details.get("State") or {}
        if state.get("Running") or state.get("Status") in ("paused", "restarting"):
            self.container_id = container
            self._container_stop_signal = (details.get("Config") or {}).get("StopSignal")
            self.stop("a container of this run with another config was still running")
            self._keep(container)
        elif state.get("Status") == "exited" and int(state.get("ExitCode", -1)) == 0:
            self.on_line(f"Removing the finished container {self.spec.name} of an earlier attempt")
            self._remove(container)
        elif state.get("Status") == "created":  # never started: nothing to inspect
            self._remove(container)
        else:
            self._keep(container)
        self.container_id = None
        self._container_stop_signal = None
        self._stop_reason = None
        self._stopped.clear()

    def _create(self) -> str:
        from docker.errors import APIError  # type: ignore[import-untyped]

        spec = self.spec
        try:
            created = self.client.create_container(
                spec.image,
                name=spec.name,
                labels=dict(spec.labels),
                environment={**spec.environment, **spec.private_environment},
                entrypoint=list(spec.entrypoint),
                host_config=self.client.create_host_config(**spec.host_config()),
                stop_signal=spec.stop_signal,
                stop_timeout=math.ceil(spec.stop_grace_s),
                # docker-py would add proxy variables from ~/.docker/config.json: the env stays exactly ours.
                use_config_proxy=False,
            )
        except APIError as exc:
            # 409: another attempt created the name meanwhile; the next try adopts or retires it.
            raise LeanDockerError(f"create the container {spec.name}", exc.explanation or str(exc)) from None
        self._container_stop_signal = spec.stop_signal
        return str(created["Id"])

    # ------------------------------------------------------------------ waiting and stopping

    def _wait(self, deadline: float) -> dict[str, Any]:
        assert self.container_id is not None
        pause = min(0.05, self.poll_s)
        while True:
            state = self._inspect(self.container_id).get("State") or {}
            if not state.get("Running"):
                return dict(state)
            if time.monotonic() >= deadline and self._stop_reason is None:
                self._timed_out = True
                self.stop(f"it ran longer than the engine timeout of {dt.timedelta(seconds=round(self.timeout_s))}")
                continue
            # Short runs end promptly; a long one is asked once every poll_s.
            time.sleep(pause)
            pause = min(pause * 2, self.poll_s)

    def stop(self, reason: str) -> None:
        """SIGINT now, then ``docker stop`` with the grace period (SIGKILL by the daemon after it)."""
        from docker.errors import APIError

        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
            container = self.container_id
            if container is None or self._stopped.is_set():
                return
            grace = math.ceil(self.spec.stop_grace_s)
            self.on_line(f"Stopping {self.spec.name}: {reason}. SIGINT, then SIGKILL after {grace} s")
            if self._container_stop_signal != self.spec.stop_signal:
                # Not created with StopSignal SIGINT: `docker stop` alone would send another signal.
                # (One SIGINT only otherwise: a second one could hit Lean while it exits.)
                try:
                    self.client.kill(container, signal=self.spec.stop_signal)
                except APIError as exc:
                    if exc.status_code not in (404, 409):  # 409: not running any more
                        self.on_line(f"SIGINT to {self.spec.name} failed: {exc}")
            try:
                # The container's StopSignal (SIGINT) now; the daemon kills it if Lean has not
                # finished after `grace` seconds, even if this process is gone by then.
                self.client.stop(container, timeout=grace)
            except APIError as exc:
                if exc.status_code != 404:
                    raise LeanDockerError(f"stop the container {self.spec.name}", str(exc)) from None
            self._stopped.set()

    # ------------------------------------------------------------------ cleaning up

    def _finish(self, succeeded: bool) -> None:
        container = self.container_id
        if container is None:
            return
        if succeeded:
            self._remove(container)
            return
        try:
            running = bool((self._inspect(container).get("State") or {}).get("Running"))
        except LeanDockerError:
            running = False
        if running:  # e.g. the start failed half-way: a kept container must not keep running
            self.stop(self._stop_reason or "the run failed")
        self._keep(container)

    def _remove(self, container: str) -> None:
        try:
            self.client.remove_container(container)
        except Exception as exc:
            self.on_line(f"Could not remove the container {container[:12]}: {exc}")

    def _keep(self, container: str) -> None:
        """Rename to ``<name>-<UTC time>``, so the name is free for the next attempt and the failed
        container stays for ``docker logs`` / ``docker inspect``."""
        from docker.errors import APIError

        base = f"{self.spec.name}-{_utc_stamp(self._now())}"
        for attempt in range(5):
            name = base if attempt == 0 else f"{base}-{attempt}"
            try:
                self.client.rename(container, name)
            except APIError as exc:
                if exc.status_code == 409:  # two failures in one second
                    continue
                self.on_line(f"Could not rename the container {container[:12]} to {name}: {exc}")
                return
            self.kept_as = name
            self.on_line(f"Kept the container for inspection as {name} (docker logs {name})")
            return
