"""A canary broker secret in an Airflow connection never appears in an artifact file, the audit DB,
an XCom value, a rendered template field, a log line or a report.

The Docker side (the secret only in ``private_environment``, never privileged, config read-only)
is asserted against the fake Docker API in ``tests/plugins/test_operators.py``; the UI's refusal
of unauthenticated requests in ``tests/plugins/test_ui_browser.py``.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

TASKS = {"snapshot", "write_intent", "write_params", "run_lean", "ingest_events", "consistency_check"}


def _files_containing(needles: Iterable[bytes], root: Path) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            hits.extend(f"{path}: {needle!r}" for needle in needles if needle in data)
    return hits


def _rows_containing(needles: Iterable[str], url: str, tables: Iterable[str]) -> list[str]:
    engine = sa.create_engine(url)
    hits = []
    try:
        with engine.connect() as conn:
            for table in tables:
                for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                    text = " ".join(str(v) for v in row)
                    hits.extend(f"{table}: {n}" for n in needles if n in text)
    finally:
        engine.dispose()
    return hits


def test_the_scanner_finds_a_planted_canary(tmp_path: Path) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "x.bin").write_bytes(b"\x00prefix" + canary.encode() + b"suffix")
    assert _files_containing([canary.encode()], tmp_path)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (v TEXT)"))
        conn.execute(sa.text("INSERT INTO t VALUES (:v)"), {"v": json.dumps({"k": canary})})
    engine.dispose()
    assert _rows_containing([canary], url, ["t"])


@pytest.mark.parametrize("raw_db_url", ["sqlite"], indirect=True)
def test_canary_broker_secret_never_leaks_from_a_live_rebalance(
    airflow_db: None,
    lean_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    password, account, login = (f"CANARY-{part}-{uuid.uuid4().hex}" for part in ("pw", "acct", "login"))
    connection: dict[str, Any] = {
        "conn_type": "generic",
        "login": login,
        "password": password,
        "extra": {"lean_config": {"ib-account": account}, "login_key": "ib-user-name", "password_key": "ib-password"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_LEAN_BROKER_CANARY", json.dumps(connection))
    monkeypatch.setenv("LEAN_AIRFLOW_BROKER_CONN_ID", "lean_broker_canary")
    caplog.set_level(logging.DEBUG)

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))  # re-parsed: the broker connection is read at parse time
    dag = bag.dags["lean_live_rebalance"]
    run_lean = dag.get_task("run_lean")
    assert getattr(run_lean, "broker_conn_id", None) == "lean_broker_canary"
    run = dag.test(run_conf={"as_of": "2021-03-01", "top_n": 2, "lookback_days": 10})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == dict.fromkeys(TASKS, "success"), states

    canaries = [password, account, login]
    captured = capfd.readouterr()
    leaks = [f"stdout/stderr: {c}" for c in canaries if c in captured.out + captured.err]
    leaks += [f"log record: {c}" for c in canaries for r in caplog.records if c in r.getMessage()]
    artifacts = Path(lean_env["root"])
    assert (artifacts / "lean_live_rebalance" / "20210301" / "report.html").exists()
    leaks += _files_containing([c.encode() for c in canaries], artifacts)
    leaks += _rows_containing(
        canaries, lean_env["db_url"], ["rebalance_runs", "intent_orders", "order_events", "consistency_results"]
    )
    metadata_url = conf.get("database", "sql_alchemy_conn")
    leaks += _rows_containing(canaries, metadata_url, ["xcom", "rendered_task_instance_fields", "dag_run"])
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    if logs.exists():
        leaks += _files_containing([c.encode() for c in canaries], logs)
    assert not leaks, leaks
