"""Run test code as an unprivileged "Airflow worker" user (uid:gid 12345:12345), the way a real
deployment runs tasks (compose: ``AIRFLOW_UID``), while the fake Docker daemon's containers write
as root, as the ``quantconnect/lean`` image does. Only then do root-owned leftovers show.

The test interpreter may live where that user cannot go (e.g. under root's home): then a system
Python of the same minor version is used, with this interpreter's site-packages on its path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT

UID = GID = 12345
OWNER = f"{UID}:{GID}"


def _runs_as_user(candidate: str) -> bool:
    try:
        probe = subprocess.run(
            [candidate, "-c", f"import sys; assert sys.version_info[:2] == {tuple(sys.version_info[:2])}"],
            user=UID,
            group=GID,
            extra_groups=[],
            capture_output=True,
            check=False,
            timeout=30,
        )
    except OSError:
        return False
    return probe.returncode == 0


def python_for_user() -> tuple[list[str], list[str]] | None:
    """(command, extra PYTHONPATH entries) of a Python the user may run, or None."""
    if os.geteuid() != 0:
        return None
    if _runs_as_user(sys.executable):
        return [sys.executable], []
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for candidate in (shutil.which(version), f"/usr/bin/{version}"):
        if candidate and _runs_as_user(candidate):
            return [candidate], [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return None


@contextmanager
def user_home() -> Iterator[Path]:
    """A folder the user owns, on a path the user can reach (pytest's tmp_path is root-only)."""
    base = Path(tempfile.mkdtemp(prefix="lean-airflow-user-"))
    try:
        base.chmod(0o755)
        os.chown(base, UID, GID)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_as_user(
    python: tuple[list[str], list[str]], args: list[str], env: Mapping[str, str], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    command, extra_path = python
    path = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "plugins"), *extra_path])
    return subprocess.run(
        [*command, *args],
        user=UID,
        group=GID,
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1", **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )
