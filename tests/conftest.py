"""Test environment. Airflow reads its config at import, so it is set here, first."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

_session_home = Path(tempfile.mkdtemp(prefix="lean-airflow-tests-"))
os.environ.setdefault("AIRFLOW_HOME", str(_session_home / "airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO_ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("LEAN_AIRFLOW_ARTIFACT_ROOT", str(_session_home / "artifacts"))
for _path in (str(REPO_ROOT), str(REPO_ROOT / "dags"), str(REPO_ROOT / "plugins")):
    if _path not in sys.path:
        sys.path.insert(0, _path)


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    import shutil

    shutil.rmtree(_session_home, ignore_errors=True)


pytest_plugins = ["tests.db_fixtures", "tests.airflow_fixtures"]


@pytest.fixture
def chain_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The embedded default in tmp: the artifact root (returned), a SQLite audit DB, the local runtime."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(root))
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("LEAN_AIRFLOW_RUNTIME", "local")
    return root
