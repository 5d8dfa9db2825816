from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from include.audit.db import RebalanceRun
from include.audit.manifest import build_run_manifest, manifest_sha256, record_manifest, sha256_file
from include.contracts.manifest import RunManifest
from tests.include.audit.scenario import DAG_ID, RUN_KEY, make_run


def test_manifest_hashes_inputs_and_is_stored(db_engine: Engine, tmp_path: Path) -> None:
    folder = make_run(tmp_path, "backtest")
    manifest = build_run_manifest(
        folder,
        folder.read_config(),
        engine_identity="quantconnect/lean@sha256:" + "a" * 64,
        runtime="docker",
        airflow={"dag_id": DAG_ID, "run_id": "scheduled__2021-03-30", "task_id": "lean", "try_number": "2"},
    )
    assert manifest.files["intent"].sha256 == sha256_file(folder.path / f"order_intent_run_{RUN_KEY}.json")
    assert set(manifest.files) == {"snapshot", "intent", "params", "config", "initial_state", "algorithm"}
    assert {d.path for d in manifest.data_files} >= {"data/equity/usa/daily/spy.zip", "data/equity/usa/daily/qqq.zip"}
    assert manifest.data_sha256 and manifest.package_versions["pydantic"]
    text = manifest.model_dump_json()
    assert str(tmp_path) not in text
    assert RunManifest.model_validate(json.loads(text)) == manifest
    audit_run_id = record_manifest(db_engine, manifest)
    with Session(db_engine) as session:
        row = session.execute(select(RebalanceRun).where(RebalanceRun.id == audit_run_id)).scalar_one()
    assert row.manifest_sha256 == manifest_sha256(manifest)
    assert row.intent_sha256 == manifest.files["intent"].sha256
    assert row.airflow_dag_run_id == "scheduled__2021-03-30" and row.runtime == "docker"
    assert row.manifest is not None and row.manifest["engine_identity"].startswith("quantconnect/lean@sha256:")


def test_manifest_changes_when_an_input_changes(tmp_path: Path) -> None:
    folder = make_run(tmp_path, "backtest")
    before = build_run_manifest(folder, folder.read_config(), engine_identity="local")
    folder.config_path.write_text(
        folder.config_path.read_text(encoding="utf-8").replace("50000", "50001"), encoding="utf-8"
    )
    after = build_run_manifest(folder, folder.read_config(), engine_identity="local")
    assert before.files["config"].sha256 != after.files["config"].sha256
    assert before.files["intent"] == after.files["intent"]
