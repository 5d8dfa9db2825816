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
