"""A fake of the Docker Engine API, served over HTTP on loopback.

The real docker-py client (through Airflow's DockerHook) talks to it, so tests see the exact
requests a daemon would get, and the daemon's side of a container's life is played for real:

* containers are created by name (a taken name is a 409), listed with ``all`` and the ``name``
  (regular expression) and ``label`` filters, inspected, started, renamed and removed (a running
  one only with ``force``), waited on;
* a running container gets signals: ``POST /containers/{id}/kill?signal=...`` and
  ``/stop?t=...`` (the container's ``StopSignal``, then SIGKILL after ``t`` seconds); each signal and
  grace is recorded;
* its output is streamed by ``GET /containers/{id}/logs`` (``follow`` included) in Docker's
  multiplexed frames;
* images are inspected (``Id``, ``Created``, ``RepoDigests``) and pulled from a fake registry.

What runs "inside" a container is either a script (:class:`ContainerScript`: log lines, an exit
code, an ``on_run`` callback that may write into the bind-mounted folders, optionally running until
a signal) or :class:`EntryScriptRun`: the request's real entry point under bash, with the container
paths pointed at the bind sources, and a stand-in ``dotnet`` (``tests/plugins/fake_lean.py``) that
behaves as Lean does. Processes run as the test's user (root in CI), as the image's root would.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import secrets
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.conftest import REPO_ROOT

API_VERSION = "1.45"
# Built after Lean's daily-data MarketOnClose change (62d63010a, 2026-06-16): what the audit needs.
RECENT_CREATED = "2026-08-20T09:15:42.123456789Z"
LEAN_VERSION = "2.5.0.17734"


def _has_news(container: FakeContainer, sent: int) -> bool:
    """A log follower's wake-up condition: new output beyond ``sent`` lines, or the container ended."""
    return len(container.output) > sent or not container.running


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _signal_name(value: str | None) -> str:
    """Docker accepts ``SIGINT``, ``INT`` or ``2``; the fake records ``SIGINT``."""
    if not value:
        return "SIGKILL"
    if value.isdigit():
        return signal.Signals(int(value)).name
    upper = value.upper()
    return upper if upper.startswith("SIG") else f"SIG{upper}"


@dataclass
class FakeImage:
    reference: str
    image_id: str = field(default_factory=lambda: "sha256:" + secrets.token_hex(32))
    created: str = RECENT_CREATED

    def inspect(self) -> dict[str, Any]:
        digests = [self.reference] if "@sha256:" in self.reference else []
        return {"Id": self.image_id, "Created": self.created, "RepoDigests": digests, "RepoTags": []}


@dataclass
class ContainerScript:
    """A scripted container: ``on_run`` (with the create request), then its log lines and exit code."""

    log_lines: list[str] = field(default_factory=lambda: ["Lean engine starting", "Analysis Complete."])
    exit_code: int = 0
    # Called with the create request once the container runs (e.g. to write result files).
    on_run: Callable[[dict[str, Any]], None] | None = None
    # Keep running after the log lines until a signal arrives (as Lean live does).
    hold_until_signal: bool = False
    # The exit code after SIGINT/SIGTERM while holding (Lean exits 0 after SIGINT).
    exit_code_after_stop: int = 0
    # Signals that do not end a holding container (a Lean that hangs on shutdown): only SIGKILL does.
    ignored_signals: tuple[str, ...] = ()


@dataclass
class EntryScriptRun:
    """Run the container's real entry point under bash, with a stand-in ``dotnet`` (fake_lean.py)."""

    # The stand-in runs until SIGINT instead of running the local engine (a run that does not end).
    hold: bool = False
    lean_version: str = LEAN_VERSION
    # Extra seconds the stand-in waits before it starts the engine (to kill a run mid-way).
    delay_s: float = 0.0
    # Variables the image itself would set (e.g. the local runtime's LEAN_LOCAL_BAR_WAIT_S in a test).
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeContainer:
    id: str
    name: str
    request: dict[str, Any]
    home: Path  # the container's own filesystem (its /tmp): outside every mount
    created: str = field(default_factory=_now)
    status: str = "created"
    exit_code: int = 0
    started_at: str = "0001-01-01T00:00:00Z"
    finished_at: str = "0001-01-01T00:00:00Z"
    signals: list[str] = field(default_factory=list)
    stop_timeouts: list[int] = field(default_factory=list)
    output: list[bytes] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def mounts(self) -> dict[str, Path]:
        return {m["Target"]: Path(m["Source"]) for m in self.request.get("HostConfig", {}).get("Mounts", [])}

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.request.get("Env") or [])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.request.get("Labels") or {})

    def summary(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Names": [f"/{self.name}"],
            "Image": self.request.get("Image"),
            "Labels": self.labels,
            "State": self.status,
            "Status": f"Exited ({self.exit_code})" if self.status == "exited" else self.status,
        }

    def inspect(self, image_id: str) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": f"/{self.name}",
            "Image": image_id,
            "Created": self.created,
            "Config": {
                "Tty": False,
                "Image": self.request.get("Image"),
                "Labels": self.labels,
                "Env": list(self.request.get("Env") or []),
                "StopSignal": self.request.get("StopSignal"),
            },
            "HostConfig": self.request.get("HostConfig", {}),
            "State": {
                "Status": self.status,
                "Running": self.running,
                "Paused": False,
                "Restarting": False,
                "OOMKilled": False,
                "Dead": False,
                "ExitCode": self.exit_code,
                "StartedAt": self.started_at,
                "FinishedAt": self.finished_at,
            },
        }


@dataclass
class FakeDockerState:
    script: ContainerScript | EntryScriptRun = field(default_factory=ContainerScript)
    # Images on the "host"; None: every image asked for exists, built recently (RECENT_CREATED).
    images: dict[str, FakeImage] | None = None
    # Images a pull can fetch (the registry).
    registry: dict[str, FakeImage] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    pulls: list[str] = field(default_factory=list)
    containers: dict[str, FakeContainer] = field(default_factory=dict)
    # The most containers that ever ran at once.
    max_running: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fake-docker-")))

    def image(self, reference: str) -> FakeImage | None:
        if self.images is None:
            return FakeImage(reference, image_id="sha256:" + "1" * 64)
        return self.images.get(reference)

    def find(self, ref: str) -> FakeContainer | None:
        if ref in self.containers:
            return self.containers[ref]
        by_name = [c for c in self.containers.values() if c.name == ref.lstrip("/")]
        by_prefix = [c for c in self.containers.values() if len(ref) >= 12 and c.id.startswith(ref)]
        found = by_name or by_prefix
        return found[0] if found else None

    def by_name(self, name: str) -> FakeContainer | None:
        return next((c for c in self.containers.values() if c.name == name), None)

    # -- what tests ask

    def signals(self) -> list[str]:
        return [s for c in self.containers.values() for s in c.signals]

    def running(self) -> list[FakeContainer]:
        return [c for c in self.containers.values() if c.running]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: FakeDockerState
    api: FakeDockerAPI

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"message": message})

    def _route(self, method: str) -> None:
        body = self._body()
        split = urlsplit(self.path)
        path = unquote(re.sub(rf"^/v{re.escape(API_VERSION)}", "", split.path))
        query = {key: values[-1] for key, values in parse_qs(split.query, keep_blank_values=True).items()}
        self.state.requests.append((method, self.path, body))
        if path == "/_ping":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Api-Version", API_VERSION)
            self.end_headers()
            self.wfile.write(b"OK")
        elif path == "/version":
            self._json(200, {"ApiVersion": API_VERSION, "Version": "fake", "MinAPIVersion": "1.24"})
        elif method == "POST" and path == "/images/create":
            self._pull(query)
        elif method == "GET" and (found := re.fullmatch(r"/images/(.+)/json", path)):
            image = self.state.image(found[1]) or next(
                (i for i in (self.state.images or {}).values() if i.image_id == found[1]), None
            )
            if image is None:
                self._error(404, f"No such image: {found[1]}")
            else:
                self._json(200, image.inspect())
        elif method == "GET" and path == "/containers/json":
            self._list(query)
        elif method == "POST" and path == "/containers/create":
            self._create(query, body)
        elif found := re.fullmatch(r"/containers/([^/]+)(/[a-z]+)?", path):
            self._container(method, found[1], found[2] or "", query)
        else:
            self._error(404, f"fake docker: no route {method} {path}")

    # -- images

    def _pull(self, query: dict[str, str]) -> None:
        repository, tag = query.get("fromImage", ""), query.get("tag", "")
        reference = f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag or 'latest'}"
        self.state.pulls.append(reference)
        image = self.state.registry.get(reference)
        if image is None:
            self._error(404, f"manifest for {reference} not found: manifest unknown")
            return
        if self.state.images is not None:
            self.state.images[reference] = image
        lines = [
            {"status": f"Pulling from {repository}", "id": tag},
            {"status": "Pulling fs layer", "id": "layer1"},
            {"status": "Downloading", "id": "layer1", "progressDetail": {"current": 1, "total": 2}},
            {"status": "Downloading", "id": "layer1", "progressDetail": {"current": 2, "total": 2}},
            {"status": "Pull complete", "id": "layer1"},
            {"status": f"Digest: {tag}"},
            {"status": f"Status: Downloaded newer image for {reference}"},
        ]
        # A progress stream, chunked as the daemon sends it (docker-py decodes it chunk by chunk).
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in lines:
            data = json.dumps(line).encode() + b"\r\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    # -- containers

    def _list(self, query: dict[str, str]) -> None:
        filters: dict[str, list[str]] = json.loads(query.get("filters") or "{}")
        with self.state.lock:
            found = [c for c in self.state.containers.values() if query.get("all") in ("1", "true") or c.running]
        for pattern in filters.get("name", []):
            found = [c for c in found if re.search(pattern, f"/{c.name}")]
        for label in filters.get("label", []):
            key, _, value = label.partition("=")
            found = [c for c in found if key in c.labels and (not value or c.labels[key] == value)]
        self._json(200, [c.summary() for c in found])

    def _create(self, query: dict[str, str], body: dict[str, Any]) -> None:
        name = query.get("name") or f"fake_{secrets.token_hex(4)}"
        with self.state.lock:
            taken = self.state.by_name(name)
            if taken is not None:
                self._error(409, f'Conflict. The container name "/{name}" is already in use by container "{taken.id}".')
                return
            container_id = secrets.token_hex(32)
            home = self.state.workdir / container_id[:12]
            home.mkdir(parents=True)
            self.state.containers[container_id] = FakeContainer(container_id, name, body, home)
            self.state.created.append(body)
        self._json(201, {"Id": container_id, "Warnings": []})

    def _container(self, method: str, ref: str, action: str, query: dict[str, str]) -> None:
        container = self.state.find(ref)
        if container is None:
            self._error(404, f"No such container: {ref}")
            return
        image = self.state.image(str(container.request.get("Image")))
        image_id = image.image_id if image is not None else "sha256:" + "0" * 64
        if method == "GET" and action == "/json":
            with self.state.lock:
                self._json(200, container.inspect(image_id))
        elif method == "POST" and action == "/start":
            if container.running:
                self._empty(304)
            else:
                self.api.start(container)
                self._empty(204)
        elif method == "GET" and action == "/logs":
            self._logs(container, query)
        elif method == "POST" and action == "/wait":
            with self.state.lock:
                self.state.lock.wait_for(lambda: not container.running and container.status != "created")
                self._json(200, {"StatusCode": container.exit_code, "Error": None})
        elif method == "POST" and action == "/kill":
            if not container.running:
                self._error(409, f"Container {container.id} is not running")
            else:
                self.api.deliver(container, _signal_name(query.get("signal")))
                self._empty(204)
        elif method == "POST" and action == "/stop":
            if not container.running:
                self._empty(304)
            else:
                self.api.stop(container, int(query.get("t") or 10))
                self._empty(204)
        elif method == "POST" and action == "/rename":
            with self.state.lock:
                new = query.get("name", "")
                if self.state.by_name(new) is not None:
                    self._error(409, f'Conflict. The container name "/{new}" is already in use')
                    return
                container.name = new
            self._empty(204)
        elif method == "DELETE" and action == "":
            with self.state.lock:
                if container.running and query.get("force") not in ("1", "true", "True"):
                    self._error(409, f"cannot remove container {container.name}: container is running")
                    return
            if container.running:
                self.api.deliver(container, "SIGKILL")
            with self.state.lock:
                self.state.containers.pop(container.id, None)
                self.state.removed.append(container.id)
            self._empty(204)
        else:
            self._error(404, f"fake docker: no route {method} /containers/{ref}{action}")

    def _logs(self, container: FakeContainer, query: dict[str, str]) -> None:
        # Docker's raw stream: 8-byte frame headers (stream 1 = stdout), the connection closed at the end.
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.raw-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        follow = query.get("follow") in ("1", "true", "True")
        tail = query.get("tail", "all")
        with self.state.lock:
            sent = 0 if tail == "all" else max(0, len(container.output) - int(tail))
        while True:
            with self.state.lock:
                if follow:
                    self.state.lock.wait_for(functools.partial(_has_news, container, sent), 1.0)
                chunk, done = container.output[sent:], not container.running
                sent += len(chunk)
            for line in chunk:
                self.wfile.write(struct.pack(">BxxxL", 1, len(line)) + line)
            self.wfile.flush()
            if not follow or (done and not chunk):
                break
        self.close_connection = True

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_activate(self) -> None:
        super().server_activate()
        # select() can report a connection that the client resets before accept(): a blocking
        # accept() would then hang serve_forever, and shutdown() with it, until the next client.
        self.socket.setblocking(False)

    def get_request(self) -> tuple[Any, Any]:
        connection, address = self.socket.accept()  # BlockingIOError (an OSError) is skipped by the server
        connection.setblocking(True)
        return connection, address


class FakeDockerAPI:
    """Context manager: ``with FakeDockerAPI() as fake: ... fake.url ... fake.state``."""

    def __init__(
        self,
        script: ContainerScript | EntryScriptRun | None = None,
        *,
        images: dict[str, FakeImage] | None = None,
        registry: dict[str, FakeImage] | None = None,
    ) -> None:
        self.state = FakeDockerState(script=script or ContainerScript(), images=images, registry=registry or {})
        handler = type("Handler", (_Handler,), {"state": self.state, "api": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"tcp://{host}:{port}"

    def __enter__(self) -> FakeDockerAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for container in list(self.state.containers.values()):
            if container.running:
                self.deliver(container, "SIGKILL")
        self._server.shutdown()
        self._server.server_close()

    # -- a container's life (also called by tests to play the daemon's part directly)

    def start(self, container: FakeContainer) -> None:
        with self.state.lock:
            container.status = "running"
            container.started_at = _now()
            self.state.max_running = max(self.state.max_running, len(self.state.running()))
        script = self.state.script
        if isinstance(script, EntryScriptRun):
            self._start_entry_script(container, script)
        else:
            threading.Thread(target=self._run_script, args=(container, script), daemon=True).start()

    def _exited(self, container: FakeContainer, code: int) -> None:
        with self.state.lock:
            container.status = "exited"
            container.exit_code = code
            container.finished_at = _now()
            self.state.lock.notify_all()

    def _emit(self, container: FakeContainer, line: bytes) -> None:
        with self.state.lock:
            container.output.append(line)
            self.state.lock.notify_all()

    def _run_script(self, container: FakeContainer, script: ContainerScript) -> None:
        code = script.exit_code
        try:
            if script.on_run is not None:
                script.on_run(container.request)
            for line in script.log_lines:
                self._emit(container, (line + "\n").encode())
            if script.hold_until_signal:
                container.stop_event.wait()
                code = 137 if container.signals[-1] == "SIGKILL" else script.exit_code_after_stop
        except Exception as exc:  # the "process" crashed: as a container whose command failed
            self._emit(container, f"fake container: {type(exc).__name__}: {exc}\n".encode())
            code = 1
        if container.running:
            self._exited(container, code)

    def _start_entry_script(self, container: FakeContainer, run: EntryScriptRun) -> None:
        from include.launch.config import CONTAINER_CONFIG_PATH, CONTAINER_RESULTS_DIR, CONTAINER_STORAGE_DIR

        home = container.home
        bin_dir = home / "bin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "python3").symlink_to(sys.executable)
        mounts = container.mounts
        # The stand-in Lean: what `dotnet QuantConnect.Lean.Launcher.dll` is in the image.
        (bin_dir / "dotnet").write_text(
            "#!/bin/sh\n"
            f"export PYTHONPATH={REPO_ROOT} FAKE_LEAN_HOME={home} FAKE_LEAN_VERSION={run.lean_version}\n"
            f"export FAKE_LEAN_HOLD={int(run.hold)} FAKE_LEAN_DELAY={run.delay_s}\n"
            f"export FAKE_LEAN_MOUNTS='{json.dumps({k: str(v) for k, v in mounts.items()})}'\n"
            f'exec {sys.executable} -m tests.plugins.fake_lean "$@"\n'
        )
        (bin_dir / "dotnet").chmod(0o755)
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(home),
            **run.environment,
            **container.env,
            # The container paths of the entry script, pointed at the bind sources.
            "LEAN_CONFIG_FILE": str(mounts[CONTAINER_CONFIG_PATH]),
            "LEAN_PRIVATE_CONFIG_FILE": str(home / "lean-config.json"),
            "LEAN_RESULTS_DIR": str(mounts[CONTAINER_RESULTS_DIR]),
            "LEAN_STORAGE_DIR": str(mounts[CONTAINER_STORAGE_DIR]),
        }
        command = [*(container.request.get("Entrypoint") or []), *(container.request.get("Cmd") or [])]
        # A session of its own: SIGKILL of the "container" kills every process in it, as a PID
        # namespace does; other signals reach only the entry point (PID 1), as in Docker.
        process = subprocess.Popen(
            command, env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        container.process = process

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                self._emit(container, line)
            code = process.wait()
            self._exited(container, 128 - code if code < 0 else code)

        threading.Thread(target=pump, name=f"fake-container-{container.id[:12]}", daemon=True).start()

    def deliver(self, container: FakeContainer, name: str) -> None:
        """A signal to the container's main process (SIGKILL: to every process of the container)."""
        with self.state.lock:
            container.signals.append(name)
        process = container.process
        if process is not None:
            number = signal.Signals[name]
            try:
                if number == signal.SIGKILL:
                    os.killpg(process.pid, signal.SIGKILL)
                else:
                    process.send_signal(number)
            except ProcessLookupError:
                pass
            if number == signal.SIGKILL:
                process.wait(timeout=30)
        elif name == "SIGKILL":  # a scripted container: killed where it stands
            self._exited(container, 137)
        script = self.state.script
        if not (isinstance(script, ContainerScript) and name in script.ignored_signals):
            container.stop_event.set()

    def stop(self, container: FakeContainer, grace: int) -> None:
        """``docker stop``: the StopSignal, then SIGKILL after ``grace`` seconds."""
        with self.state.lock:
            container.stop_timeouts.append(grace)
        self.deliver(container, _signal_name(container.request.get("StopSignal") or "SIGTERM"))
        deadline = time.monotonic() + grace
        with self.state.lock:
            self.state.lock.wait_for(lambda: not container.running, max(0.0, deadline - time.monotonic()))
            still_running = container.running
        if still_running:
            self.deliver(container, "SIGKILL")
            with self.state.lock:
                self.state.lock.wait_for(lambda: not container.running, 30)

    def exec_run(self, container: FakeContainer, command: list[str], timeout: float = 30) -> str:
        """``docker exec``: ``command`` in the running container, in the image's working directory
        (``fake_lean.WORKDIR``, where Lean reads command files), with the container's environment; its output."""
        from tests.plugins.fake_lean import WORKDIR

        if not container.running:
            raise RuntimeError(f"Container {container.name} is not running")
        workdir = container.home / WORKDIR
        workdir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            command,
            cwd=workdir,
            env={"PATH": "/usr/bin:/bin", "HOME": str(container.home), **container.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return done.stdout

    def wait_until(self, predicate: Callable[[FakeDockerState], bool], timeout: float = 60) -> None:
        """Block until ``predicate(state)`` holds (checked whenever a container changes)."""
        with self.state.lock:
            if not self.state.lock.wait_for(lambda: predicate(self.state), timeout):
                raise TimeoutError("the fake Docker daemon never reached the expected state")
