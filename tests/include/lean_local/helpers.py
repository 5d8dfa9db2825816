"""Helpers: write an algorithm + launcher config into a temp dir and run the local runtime."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT

SAMPLE_DATA = REPO_ROOT / "include" / "sample_data" / "lean"


def write_run(
    tmp: Path,
    source: str,
    *,
    name: str = "main",
    algorithm_id: str = "t1",
    data: Path | None = None,
    extra: dict[str, Any] | None = None,
    comment: bool = False,
) -> Path:
    algo_dir = tmp / "project"
    algo_dir.mkdir(parents=True, exist_ok=True)
    (algo_dir / f"{name}.py").write_text(textwrap.dedent(source))
    cfg: dict[str, Any] = {
        "environment": "backtesting",
        "algorithm-location": str(algo_dir / f"{name}.py"),
        "algorithm-type-name": name,
        "algorithm-id": algorithm_id,
        "data-folder": str(data or SAMPLE_DATA),
        "results-destination-folder": str(tmp / "results"),
        "object-store-root": str(tmp / "storage"),
        "close-automatically": True,
        "environments": {"backtesting": {"live-mode": False}, "live-paper": {"live-mode": True}},
    }
    cfg.update(extra or {})
    text = json.dumps(cfg, indent=1)
    if comment:
        text = "// launcher config\n" + text.replace('"close-automatically"', '// a comment\n "close-automatically"', 1)
    path = tmp / "config.json"
    path.write_text(text)
    return path


def run_inprocess(config: Path) -> int:
    from include.lean_local.runner import run

    return run(str(config))


def run_subprocess(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "include.lean_local", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def events(tmp: Path, algorithm_id: str = "t1") -> list[dict[str, Any]]:
    path = tmp / "results" / f"{algorithm_id}-order-events.json"
    if not path.exists():
        return []
    data: list[dict[str, Any]] = json.loads(path.read_text())
    return data


def summary(tmp: Path, algorithm_id: str = "t1") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp / "results" / f"{algorithm_id}-summary.json").read_text())
    return data


def algo_log(tmp: Path, algorithm_id: str = "t1") -> str:
    path = tmp / "results" / f"{algorithm_id}-log.txt"
    return path.read_text() if path.exists() else ""
