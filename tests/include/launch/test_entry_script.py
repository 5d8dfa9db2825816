"""The container's real entry script (``CONTAINER_ENTRY_SCRIPT``), run by bash with a stand-in
``dotnet`` on ``PATH`` and the container paths pointed at temporary folders.

The stand-in behaves as .NET and Lean do with signals: it installs its SIGINT handler only when
SIGINT was not ignored at its start (.NET keeps an ignored signal ignored), records the signals it
gets, finishes and exits 0 after SIGINT, and dies on SIGTERM (Lean has no handler for it). It
writes nested folders and files as the user it runs as (root in CI, like Lean in the image).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from include.launch.docker import CONTAINER_ENTRY_SCRIPT, OWNER_ENV, SECRET_CONFIG_ENV

CANARY = "CANARY-entry-script-secret-91b2"
MOUNTED_CONFIG = {
    "algorithm-id": "k",
    "environment": "live-interactive",
    "ib-account": "placeholder",
    "job-user-id": "0",
    "environments": {
        "backtesting": {"live-mode": False},
        "live-interactive": {"live-mode": True, "ib-account": "DU1"},
    },
}
STAND_IN = r"""
import json, os, signal, stat, sys, time
home = os.environ["STANDIN_HOME"]
args = sys.argv[1:]
config = args[args.index("--config") + 1] if "--config" in args else "config.json"
seen = {
    "argv": sys.argv,
    "environ": dict(os.environ),
    "config": json.load(open(config)),
    "config_path": config,
    "config_mode": stat.S_IMODE(os.stat(config).st_mode),
    "sigint_ignored": signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
    "signals": [],
}
def save():
    with open(os.path.join(home, "seen.json.tmp"), "w") as handle:
        json.dump(seen, handle)
    os.replace(os.path.join(home, "seen.json.tmp"), os.path.join(home, "seen.json"))
stopping = []
def on_sigint(signum, frame):
    seen["signals"].append("SIGINT")
    save()
    stopping.append(1)
if not seen["sigint_ignored"]:  # .NET: "We respect ignored signals" (pal_signal.c)
    signal.signal(signal.SIGINT, on_sigint)
for folder in (os.environ["LEAN_RESULTS_DIR"], os.environ["LEAN_STORAGE_DIR"]):
    os.makedirs(os.path.join(folder, "lean-airflow", "deeper"), exist_ok=True)
    with open(os.path.join(folder, "lean-airflow", "deeper", "state.json"), "w") as handle:
        handle.write("{}")
    with open(os.path.join(folder, "log.txt"), "w") as handle:
        handle.write("written by Lean")
    os.chmod(os.path.join(folder, "log.txt"), 0o600)
save()
mode = os.environ.get("STANDIN_MODE", "exit")
if mode == "hold":  # Lean live: runs until SIGINT, then finishes and exits 0
    deadline = time.monotonic() + 30
    while not stopping and time.monotonic() < deadline:
        time.sleep(0.02)
    sys.exit(0 if stopping else 99)
sys.exit(int(os.environ.get("STANDIN_EXIT", "0")))
"""


def _setup(tmp_path: Path, secret: dict[str, str] | None = None, **env: str) -> tuple[dict[str, str], Path]:
    home = tmp_path / "home"
    bin_dir = tmp_path / "bin"
    for folder in (home, bin_dir, tmp_path / "results", tmp_path / "storage", tmp_path / "container-tmp"):
        folder.mkdir()
    (bin_dir / "standin.py").write_text(STAND_IN)
    (bin_dir / "dotnet").write_text(f'#!/bin/sh\nexec {sys.executable} {bin_dir / "standin.py"} "$@"\n')
    (bin_dir / "dotnet").chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(MOUNTED_CONFIG))
    config.chmod(0o444)  # as mounted: read-only
    variables = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "STANDIN_HOME": str(home),
        "LEAN_CONFIG_FILE": str(config),
        "LEAN_PRIVATE_CONFIG_FILE": str(tmp_path / "container-tmp" / "lean-config.json"),
        "LEAN_RESULTS_DIR": str(tmp_path / "results"),
        "LEAN_STORAGE_DIR": str(tmp_path / "storage"),
        **env,
    }
    if secret is not None:
        variables[SECRET_CONFIG_ENV] = json.dumps(secret)
    return variables, home


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", CONTAINER_ENTRY_SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _seen(home: Path) -> dict[str, Any]:
    return dict(json.loads((home / "seen.json").read_text()))


def test_the_secret_is_merged_into_a_private_0600_copy_and_never_reaches_lean_otherwise(tmp_path: Path) -> None:
    secret = {"ib-password": CANARY, "ib-user-name": "trader", "job-user-id": "7"}
    env, home = _setup(tmp_path, secret)
    done = _run(env)
    assert done.returncode == 0, done.stderr
    seen = _seen(home)
    private = tmp_path / "container-tmp" / "lean-config.json"
    # Lean read the private copy: the mounted config plus the secret, mode 0600.
    assert seen["config_path"] == str(private) and seen["argv"][1:] == [
        "QuantConnect.Lean.Launcher.dll",
        "--config",
        str(private),
    ]
    # The secrets land in the selected environment's block (Lean reads it first) and at the top level.
    expected = json.loads(json.dumps(MOUNTED_CONFIG))
    expected["environments"]["live-interactive"].update(secret)
    expected.update(secret)
    assert seen["config"] == expected
    assert seen["config"]["environments"]["backtesting"] == {"live-mode": False}
    assert seen["config_mode"] == 0o600
    # ... and nowhere else: not its environment, not its command line, not the mounted config.
    assert SECRET_CONFIG_ENV not in seen["environ"]
    assert not [k for k, v in seen["environ"].items() if CANARY in v]
    assert CANARY not in json.dumps(seen["argv"])
    assert CANARY not in (tmp_path / "config.json").read_text()
    assert CANARY not in done.stdout + done.stderr


def test_without_a_secret_lean_reads_the_mounted_config_and_no_copy_is_made(tmp_path: Path) -> None:
    env, home = _setup(tmp_path)
    done = _run(env)
    assert done.returncode == 0, done.stderr
    seen = _seen(home)
    assert seen["argv"][1:] == ["QuantConnect.Lean.Launcher.dll", "--config", env["LEAN_CONFIG_FILE"]]
    assert seen["config"]["ib-account"] == "placeholder"
    assert not (tmp_path / "container-tmp" / "lean-config.json").exists()


@pytest.mark.parametrize("code", [0, 1, 42])
def test_lean_exit_code_is_the_containers(tmp_path: Path, code: int) -> None:
    env, _ = _setup(tmp_path, STANDIN_EXIT=str(code))
    assert _run(env).returncode == code


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_reaches_lean_as_sigint_and_lean_finishes(tmp_path: Path, sent: signal.Signals) -> None:
    """``docker stop`` (StopSignal SIGINT) and a plain SIGTERM both end as SIGINT at Lean, which
    then finishes and exits 0; the script waits for it and exits with its code."""
    env, home = _setup(tmp_path, {"ib-password": CANARY}, STANDIN_MODE="hold")
    process = subprocess.Popen(["bash", "-c", CONTAINER_ENTRY_SCRIPT], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (home / "seen.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    seen = _seen(home)
    assert seen["sigint_ignored"] is False, "Lean would start with SIGINT ignored and never stop cleanly"
    process.send_signal(sent)
    assert process.wait(timeout=30) == 0
    assert _seen(home)["signals"] == ["SIGINT"]


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another user needs root, as in the container")
def test_the_output_is_handed_back_to_lean_owner(tmp_path: Path) -> None:
    env, _ = _setup(tmp_path, **{OWNER_ENV: "12345:12345"}, STANDIN_EXIT="3")
    assert _run(env).returncode == 3  # a failed run is handed back too: its retry must clean it
    for folder in (tmp_path / "results", tmp_path / "storage"):
        paths = [folder, *folder.rglob("*")]
        assert len(paths) == 5  # the folder, lean-airflow/, deeper/, state.json, log.txt
        assert {(p.stat().st_uid, p.stat().st_gid) for p in paths} == {(12345, 12345)}, folder
    # Nothing outside the two output folders changes hands.
    assert (tmp_path / "config.json").stat().st_uid == os.geteuid()


def test_without_lean_owner_nothing_changes_hands(tmp_path: Path) -> None:
    env, _ = _setup(tmp_path)
    assert _run(env).returncode == 0
    owners = {p.stat().st_uid for p in (tmp_path / "results").rglob("*")}
    assert owners == {os.geteuid()}


@pytest.mark.parametrize(
    ("config", "secret", "message"),
    [
        ({"environment": "live-x", "environments": {}}, {"ib-password": CANARY}, "has no block under 'environments'"),
        (MOUNTED_CONFIG, ["not", "an", "object"], "must be a JSON object"),
    ],
)
def test_a_secret_with_nowhere_to_go_stops_the_container_before_lean(
    tmp_path: Path, config: dict[str, Any], secret: Any, message: str
) -> None:
    env, home = _setup(tmp_path)
    Path(env["LEAN_CONFIG_FILE"]).chmod(0o644)
    Path(env["LEAN_CONFIG_FILE"]).write_text(json.dumps(config))
    env[SECRET_CONFIG_ENV] = json.dumps(secret)
    done = _run(env)
    assert done.returncode != 0 and message in done.stderr
    assert not (home / "seen.json").exists(), "Lean must not start"
    assert CANARY not in done.stdout + done.stderr
    assert not (tmp_path / "container-tmp" / "lean-config.json").exists()
