"""A stand-in for ``dotnet QuantConnect.Lean.Launcher.dll``, run by the fake Docker daemon's
containers (through the real entry script). It behaves as Lean does wherever the container
lifecycle depends on it:

* **Signals as .NET and Lean handle them.** SIGINT gets a handler only when it was not ignored at
  start: .NET keeps an ignored signal ignored (dotnet/runtime ``pal_signal.c``,
  ``InstallSignalHandler``: "We respect ignored signals"), so Lean would never see a SIGINT sent to
  a background child of a shell that ignores it. After SIGINT Lean stops the algorithm, finishes
  and exits 0 (``Launcher/Program.cs`` ``ExitKeyPress``; ``Engine/AlgorithmManager.cs``). SIGTERM
  is not handled: the process dies, unflushed.
* **The config** is the one ``--config`` names (else ``./config.json``), as ``Configuration/Config.cs``.
* **log.txt** in ``results-destination-folder`` starts with the engine banner
  (``Engine/Initializer.cs``: ``LEAN ALGORITHMIC TRADING ENGINE v{version} ...``).
* **Results** in Lean's layout: the local runtime (``python -m include.lean_local``) runs on a copy of
  the config whose container paths are the bind sources (``$FAKE_LEAN_MOUNTS``). It reads that config with
  Lean's layering and refuses what Lean refuses (a live environment without ``data-queue-handler``:
  runtime error, exit 1); live, it runs until ``quit()``, SIGINT (forwarded to it, as Lean's own
  handler would act) or a stop command file.
* **The working directory** is the image's ``/Lean/Launcher/bin/Debug`` (:data:`WORKDIR` under the
  container's own filesystem): Lean's FileCommandHandler reads ``command*.json`` there and writes
  ``result-command-<id>.json`` next to them (lean-cli's ``lean live stop`` writes the file with
  ``docker exec``, ``lean/components/docker/docker_manager.py`` ``write_to_file``).
* **Files are written as the user it runs as** (root in the container and in CI): handing them
  back is the entry script's job.

What it saw (argv, environment, whether SIGINT was ignored at start, the config's file mode, the
signals it got) goes to ``$FAKE_LEAN_HOME/fake-lean.json``, outside every mount.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
OBSERVED = "fake-lean.json"
# The image's working directory (Lean's Dockerfile WORKDIR), under the container's own filesystem.
WORKDIR = Path("Lean", "Launcher", "bin", "Debug")


def host_view(value: Any, mounts: dict[str, str]) -> Any:
    """A config value with container paths turned into the host paths bound there."""
    if isinstance(value, dict):
        return {k: host_view(v, mounts) for k, v in value.items()}
    if isinstance(value, list):
        return [host_view(v, mounts) for v in value]
    if isinstance(value, str):
        for target in sorted(mounts, key=len, reverse=True):
            if value == target or value.startswith(target + "/"):
                return mounts[target] + value[len(target) :]
    return value


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def main(args: list[str]) -> int:
    home = Path(os.environ["FAKE_LEAN_HOME"])
    mounts: dict[str, str] = json.loads(os.environ["FAKE_LEAN_MOUNTS"])
    hold = os.environ.get("FAKE_LEAN_HOLD") == "1"
    delay = float(os.environ.get("FAKE_LEAN_DELAY") or 0)
    stop = threading.Event()
    config_path = Path(args[args.index("--config") + 1]) if "--config" in args else Path("config.json")
    observed: dict[str, Any] = {
        "argv": [sys.argv[0], *args],
        "environ": dict(os.environ),
        "sigint_ignored_at_start": signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
        "config_path": str(config_path),
        "config_mode": oct(stat.S_IMODE(config_path.stat().st_mode)),
        "uid": os.getuid(),
        "signals": [],
    }

    engine: subprocess.Popen[str] | None = None

    def on_sigint(_signum: int, _frame: object) -> None:
        observed["signals"].append("SIGINT")
        _write_json(home / OBSERVED, observed)
        stop.set()
        if engine is not None and engine.poll() is None:
            engine.send_signal(signal.SIGINT)  # the engine is Lean: it stops the algorithm and exits 0

    if not observed["sigint_ignored_at_start"]:
        signal.signal(signal.SIGINT, on_sigint)
    # Written once the handler is in place: a test that sees the file may send SIGINT.
    _write_json(home / OBSERVED, observed)

    config = host_view(json.loads(config_path.read_text(encoding="utf-8")), mounts)
    results = Path(config["results-destination-folder"])
    results.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).isoformat()
    banner = (
        f"{now} TRACE:: Engine.Main(): LEAN ALGORITHMIC TRADING ENGINE v{os.environ['FAKE_LEAN_VERSION']} "
        "Mode: DEBUG (64bit) Host: fake-container\n"
    )
    (results / "log.txt").write_text(banner, encoding="utf-8")
    print(banner, end="", flush=True)

    if hold:  # a run that does not end by itself (Lean live): until SIGINT
        while not stop.wait(0.05):
            pass
    elif delay:
        stop.wait(delay)
    if stop.is_set():
        with (results / "log.txt").open("a", encoding="utf-8") as log:
            log.write(f"{now} TRACE:: Program.ExitKeyPress(): Lean instance has been cancelled, shutting down\n")
            log.write(f"{now} TRACE:: AlgorithmManager.Run(): Stopping algorithm...\n")
        print("Algorithm Stopped", flush=True)
        return 0

    private = home / "host-config.json"
    _write_json(private, config)
    workdir = home / WORKDIR
    workdir.mkdir(parents=True, exist_ok=True)
    engine = subprocess.Popen(
        [sys.executable, "-m", "include.lean_local", "--config", str(private)],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if stop.is_set():  # SIGINT came while the engine was starting
        engine.send_signal(signal.SIGINT)
    assert engine.stdout is not None
    for line in engine.stdout:
        print(line, end="", flush=True)
    code = engine.wait()
    # The local runtime writes its own log.txt: Lean's starts with the banner.
    log_path = results / "log.txt"
    engine_log = log_path.read_text(encoding="utf-8") if log_path.exists() else ""
    log_path.write_text(banner + engine_log, encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
