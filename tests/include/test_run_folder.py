"""Run folders (``include.run_folder``): who a run is, where its files live, confinement, run keys."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from include.errors import ArtifactPathError, RunFolderError
from include.run_folder import (
    ARTIFACT_ROOT_ENV,
    DATA_FOLDER_ENV,
    DEFAULT_DATA_FOLDER,
    NO_LOG_TAIL,
    RunFolder,
    RunRef,
    artifact_root,
    check_run_key,
    confine,
    data_folder,
    detect_algorithm_id,
    order_event_files,
)


def test_run_folder_layout_and_confinement(tmp_path: Path) -> None:
    folder = RunFolder.create(RunRef("lean_backtest_daily", "20240305"), root=tmp_path).path
    assert folder == tmp_path.resolve() / "lean_backtest_daily" / "20240305"
    assert folder.is_dir()
    located = RunFolder.locate(RunRef("lean_backtest_daily", "20240306"), root=tmp_path)
    assert located.path == tmp_path.resolve() / "lean_backtest_daily" / "20240306" and not located.path.exists()
    for dag_id, key, message in [
        ("..", "k", "dag_id '..' is not a safe folder name"),
        ("a/b", "k", "dag_id 'a/b' is not a safe folder name"),
        ("d\n", "k", "is not a safe folder name"),
        ("", "k", "is not a safe folder name"),
        ("d", "../x", r"run key '\.\./x' is not a safe path component"),
        ("d", "a/b", "run key 'a/b' is not a safe path component"),
        ("d", "", "run key '' is not a safe path component"),
        ("d", "x\x00", "is not a safe path component"),
        ("d", "k\n", "is not a safe path component"),
        ("d", ".hidden", "is not a safe path component"),
    ]:
        # RunRef validates on construction: no folder is ever located for a bad identity.
        with pytest.raises(ArtifactPathError, match=message):
            RunFolder.create(RunRef(dag_id, key), root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lean_backtest_daily"]


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    os.symlink(outside, root / "evil_dag")
    with pytest.raises(ArtifactPathError, match="outside the artifact root"):
        RunFolder.create(RunRef("evil_dag", "20240305"), root=root)
    assert list(outside.iterdir()) == []
    with pytest.raises(ArtifactPathError):
        confine(root / ".." / "outside", root)


def test_run_keys() -> None:
    assert RunRef.for_date("d", dt.date(2024, 3, 5)).run_key == "20240305"
    assert RunRef.for_range("d", dt.date(2024, 1, 2), dt.date(2024, 3, 28)).run_key == "20240102_20240328"
    assert RunRef.for_range("d", dt.date(2024, 1, 2), dt.date(2024, 1, 2)).run_key == "20240102_20240102"
    with pytest.raises(ArtifactPathError, match="before its start"):
        RunRef.for_range("d", dt.date(2024, 3, 2), dt.date(2024, 1, 2))
    assert str(RunRef("lean_backtest_daily", "20240305")) == "lean_backtest_daily/20240305"
    # The seed's integer run ids are run keys (non-negative only; bools are not ints here).
    assert check_run_key(123) == "123" and RunRef("d", 7).run_key == "7"  # type: ignore[arg-type]
    for bad in (-1, True, 1.5, None):
        with pytest.raises(ArtifactPathError, match="is not a safe path component"):
            check_run_key(bad)
    with pytest.raises(ArtifactPathError, match="algorithm_id 'a/b' is not a safe path component"):
        check_run_key("a/b", "algorithm_id")


def test_open_an_existing_folder(tmp_path: Path) -> None:
    root = tmp_path / "root"
    made = RunFolder.create(RunRef("lean_live_rebalance", "20240305"), root=root)
    opened = RunFolder.open(made.path, root=root)
    assert opened == made and opened.ref == RunRef("lean_live_rebalance", "20240305")
    assert RunFolder.open(str(made.path)) == made  # the CLI opens any folder it is pointed at
    elsewhere = tmp_path / "elsewhere" / "d" / "k"
    elsewhere.mkdir(parents=True)
    assert RunFolder.open(elsewhere).ref == RunRef("d", "k")
    with pytest.raises(ArtifactPathError, match="outside the artifact root"):
        RunFolder.open(elsewhere, root=root)
    with pytest.raises(ArtifactPathError, match="outside the artifact root"):
        RunFolder.open(made.path / ".." / ".." / ".." / "elsewhere" / "d" / "k", root=root)
    with pytest.raises(RunFolderError, match="not a directory"):
        RunFolder.open(root / "lean_live_rebalance" / "20240306", root=root)
    bad = tmp_path / "bad name" / "k"
    bad.mkdir(parents=True)
    with pytest.raises(ArtifactPathError, match="dag_id 'bad name'"):
        RunFolder.open(bad)


def test_the_layout(tmp_path: Path) -> None:
    folder = RunFolder.create(RunRef("lean_backtest_range", "20210201_20210226"), root=tmp_path)
    key, base = "20210201_20210226", folder.path
    assert (folder.dag_id, folder.run_key, folder.algorithm_id) == ("lean_backtest_range", key, key)
    assert {
        "snapshots": folder.snapshots_path,
        "intent": folder.intent_path,
        "params": folder.params_path,
        "initial": folder.initial_state_path,
        "config": folder.config_path,
        "engine": folder.engine_path,
        "results": folder.results_dir,
        "storage": folder.storage_dir,
        "final": folder.final_state_path,
        "manifest": folder.manifest_path,
        "report_json": folder.report_json_path,
        "report_html": folder.report_html_path,
        "parity": folder.parity_path,
    } == {
        "snapshots": base / f"snapshots_run_{key}.jsonl",
        "intent": base / f"order_intent_run_{key}.json",
        "params": base / f"execution_params_run_{key}.json",
        "initial": base / "initial_state.json",
        "config": base / "config.json",
        "engine": base / "engine.json",
        "results": base / "results",
        "storage": base / "storage",
        "final": base / "results" / "final-state.json",
        "manifest": base / "manifest.json",
        "report_json": base / "report.json",
        "report_html": base / "report.html",
        "parity": base / "parity.json",
    }
    assert folder.input_files == (folder.intent_path, folder.params_path)
    folder.initial_state_path.write_text("{}")
    assert folder.input_files == (folder.intent_path, folder.params_path, folder.initial_state_path)


def test_read_config_checks_the_run_key(tmp_path: Path) -> None:
    folder = RunFolder.create(RunRef("d", "k1"), root=tmp_path)
    with pytest.raises(RunFolderError, match=r"config\.json: cannot read"):
        folder.read_config()
    folder.config_path.write_text('{"algorithm-id": "k1", "parameters": {"starting-cash": 5}} // ok')
    assert folder.read_config().parameters == {"starting-cash": "5"}
    folder.config_path.write_text('{"algorithm-id": "other"}')
    with pytest.raises(RunFolderError, match="algorithm-id 'other', expected the run key 'k1'"):
        folder.read_config()
    folder.config_path.write_text("{broken")
    with pytest.raises(RunFolderError, match="not valid JSON"):
        folder.read_config()


def test_engine_identity_and_log_tail(tmp_path: Path) -> None:
    folder = RunFolder.create(RunRef("d", "k"), root=tmp_path)
    assert folder.engine_identity() == {}
    folder.record_engine_identity({"runtime": "docker", "engine": "quantconnect/lean@sha256:" + "0" * 64})
    assert json.loads(folder.engine_path.read_text()) == folder.engine_identity()
    assert folder.engine_identity()["runtime"] == "docker"
    assert folder.log_tail() == NO_LOG_TAIL
    folder.results_dir.mkdir()
    (folder.results_dir / "k-log.txt").write_text("algo 1\nalgo 2\n")
    assert folder.log_tail() == "algo 1\nalgo 2"
    (folder.results_dir / "log.txt").write_text("".join(f"line {i}\n" for i in range(100)))
    assert folder.log_tail(lines=3) == "line 97\nline 98\nline 99"
    assert len(folder.log_tail().splitlines()) == 40


def test_order_event_files_backtest_then_live_days(tmp_path: Path) -> None:
    results = tmp_path / "results"
    assert order_event_files(results, "k") == [] and detect_algorithm_id(results) is None
    results.mkdir()
    for name in (
        "k-2021-03-02-order-events.json",
        "k-order-events.json",
        "k-2021-03-01-order-events.json",
        "other-2021-03-01-order-events.json",
        "k-2021-03-01-order-events.json.tmp",
    ):
        (results / name).write_text("[]")
    assert [p.name for p in order_event_files(results, "k")] == [
        "k-order-events.json",
        "k-2021-03-01-order-events.json",
        "k-2021-03-02-order-events.json",
    ]
    assert detect_algorithm_id(results) is None  # two ids: "k" and "other"
    (results / "other-2021-03-01-order-events.json").unlink()
    assert detect_algorithm_id(results) == "k"


def test_artifact_root_and_data_folder_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ARTIFACT_ROOT_ENV, str(tmp_path / "art"))
    assert artifact_root() == (tmp_path / "art").resolve() and artifact_root().is_dir()
    assert RunFolder.locate(RunRef("d", "k")).path == (tmp_path / "art" / "d" / "k").resolve()
    monkeypatch.delenv(DATA_FOLDER_ENV, raising=False)
    assert data_folder() == DEFAULT_DATA_FOLDER.resolve()
    monkeypatch.setenv(DATA_FOLDER_ENV, str(tmp_path / "data"))
    assert data_folder() == (tmp_path / "data").resolve()
