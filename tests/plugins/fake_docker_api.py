"""A scripted fake of the Docker Engine API, served over HTTP on loopback.

The real docker-py client (through Airflow's DockerHook and DockerOperator) talks to it, so
tests see the exact JSON request a daemon would get. A script sets the container's log lines
and exit code, and may write files into the bind-mounted results folder, as Lean would.
"""

from __future__ import annotations

import json
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_VERSION = "1.45"


@dataclass
class ContainerScript:
    log_lines: list[str] = field(default_factory=lambda: ["Lean engine starting", "Analysis Complete."])
    exit_code: int = 0
    # Called with the create request before the container "runs" (e.g. to write result files).
    on_run: Callable[[dict[str, Any]], None] | None = None


@dataclass
class FakeDockerState:
    script: ContainerScript = field(default_factory=ContainerScript)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: FakeDockerState

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

    def _route(self, method: str) -> None:
        body = self._body()
        path = re.sub(rf"^/v{re.escape(API_VERSION)}", "", self.path.split("?")[0])
        self.state.requests.append((method, self.path, body))
        if path == "/_ping":
            data = b"OK"
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Api-Version", API_VERSION)
            self.end_headers()
            self.wfile.write(data)
        elif path == "/version":
            self._json(200, {"ApiVersion": API_VERSION, "Version": "fake", "MinAPIVersion": "1.24"})
        elif path == "/images/json":
            self._json(200, [{"Id": "sha256:" + "0" * 64, "RepoDigests": []}])
        elif path == "/containers/create" and method == "POST":
            self.state.created.append(body)
            self._json(201, {"Id": "fakecontainer", "Warnings": []})
        elif path == "/containers/fakecontainer/json":
            self._json(200, {"Id": "fakecontainer", "Config": {"Tty": False}, "State": {"Running": False}})
        elif path == "/containers/fakecontainer/attach":
            self._attach()
        elif path == "/containers/fakecontainer/start":
            script = self.state.script
            if script.on_run is not None:
                script.on_run(self.state.created[-1])
            self.state.started.set()
            self._empty(204)
        elif path == "/containers/fakecontainer/wait":
            self._json(200, {"StatusCode": self.state.script.exit_code, "Error": None})
        elif path == "/containers/fakecontainer" and method == "DELETE":
            self.state.removed.append("fakecontainer")
            self._empty(204)
        else:
            self._json(404, {"message": f"fake docker: no route {method} {path}"})

    def _attach(self) -> None:
        # Headers first; frames only after `start`, as a daemon does, so the client has read the
        # headers before any stream bytes arrive.
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.raw-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        self.state.started.wait(timeout=30)
        for line in self.state.script.log_lines:
            payload = (line + "\n").encode()
            self.wfile.write(struct.pack(">BxxxL", 1, len(payload)) + payload)
        self.wfile.flush()
        self.close_connection = True

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")


class FakeDockerAPI:
    """Context manager: ``with FakeDockerAPI() as fake: ... fake.url ... fake.state``."""

    def __init__(self, script: ContainerScript | None = None) -> None:
        self.state = FakeDockerState(script=script or ContainerScript())
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"tcp://{host}:{port}"

    def __enter__(self) -> FakeDockerAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.state.started.set()
        self._server.shutdown()
        self._server.server_close()
