"""Test environment. Airflow reads its config at import, so it is set here, first."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

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


def manual_chain_request(
    dag_id: str, params: dict[str, str], *, mode: Literal["backtest", "live"] = "backtest", **fields: Any
) -> Any:
    """The ChainRequest of a manual run of ``dag_id`` with the form's date ``params`` (``start_date`` and
    ``end_date``: a range; ``as_of``: a daily run), resolved as the DAG resolves it, on the sample data
    unless ``fields`` say otherwise (any other ChainRequest field)."""
    from include.pipeline import ChainRequest, resolve_run
    from include.run_folder import DEFAULT_DATA_FOLDER

    kind: Literal["daily", "range"] = "range" if "start_date" in params else "daily"
    ref, dates = resolve_run(
        dag_id=dag_id,
        kind=kind,
        run_type="manual",
        interval_session=None,
        params=params,
        mode=mode,
    )
    fields.setdefault("data_folder", DEFAULT_DATA_FOLDER)
    return ChainRequest(ref=ref, dates=tuple(dates), mode=mode, **fields)
