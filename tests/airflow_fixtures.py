"""Pytest plugin for running the real DAGs: Airflow's metadata DB, the DagBag, a per-test artifact root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh Airflow metadata DB (SQLite under the session's AIRFLOW_HOME)."""
    from airflow.utils import db

    db.resetdb()


@pytest.fixture(scope="session")
def dagbag(airflow_db: None):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture(autouse=True)
def _restore_dag_params(request: pytest.FixtureRequest) -> Iterator[None]:
    """In-process ``dag.test(run_conf=...)`` writes the conf into the Param objects of the DAG and of
    the tasks that ran (Airflow's ``process_params``), and the DagBag lives for the session: put every
    form value back after each test that used it, so no test's conf leaks into the next."""
    if "dagbag" not in request.fixturenames:
        yield
        return
    import copy

    bag = request.getfixturevalue("dagbag")
    saved = [
        (params, key, copy.deepcopy(params.get_param(key).value))
        for dag in bag.dags.values()
        for params in (dag.params, *(task.params for task in dag.tasks))
        for key in params
    ]
    yield
    for params, key, value in saved:
        params.get_param(key).value = value


@pytest.fixture
def lean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[dict[str, str]]:
    """Artifact root in tmp_path, the audit DB on SQLite or Postgres (``db_url`` is parametrised)."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(root))
    monkeypatch.setenv("LEAN_AIRFLOW_DB_URL", db_url)
    monkeypatch.setenv("LEAN_AIRFLOW_RUNTIME", "local")
    yield {"root": str(root), "db_url": db_url}


class RecordingTI:
    """The task instance a directly executed operator sees: records its XCom pushes."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}
        self.try_number = 1

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value
