"""Confinement (issue #18): every path a launcher config names for its run (algorithm-id, results,
storage, the execution files, the state files) stays inside its run folder, symlinks followed;
anything else is refused before the engine writes a byte, naming the key, the value and why.
The shared data folder and the algorithm file lie outside by design and stay accepted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from include.errors import LeanConfigError
from include.launch.config import read_launcher_config, write_launcher_config
from include.lean_local.config import LocalConfigError, load_config
from include.pipeline import lean_job
from include.run_folder import ALGORITHM_PATH, DEFAULT_DATA_FOLDER
from tests.conftest import REPO_ROOT
from tests.faults.helpers import STARTING_CASH, prepare_run


def _layout(tmp_path: Path) -> tuple[Path, Path]:
    """A run folder (``runs/k``) and a folder outside it holding something precious."""
    run, outside = tmp_path / "runs" / "k", tmp_path / "outside"
    run.mkdir(parents=True)
    outside.mkdir()
    (outside / "precious.txt").write_text("precious", encoding="utf-8")
    return run, outside


def _config(run: Path, **changes: Any) -> Path:
    doc: dict[str, Any] = {
        "environment": "backtesting",
        "algorithm-location": str(ALGORITHM_PATH),
        "algorithm-id": "k",
        "data-folder": str(DEFAULT_DATA_FOLDER),
        "results-destination-folder": str(run / "results"),
        "object-store-root": str(run / "storage"),
        "parameters": {},
    }
    parameters = changes.pop("parameters", {})
    doc.update(changes)
    doc["parameters"].update(parameters)
    path = run / "config.json"
    path.write_text(json.dumps({k: v for k, v in doc.items() if v is not None}), encoding="utf-8")
    return path


def _symlink_out(run: Path, outside: Path, name: str) -> Path:
    link = run / name
    link.symlink_to(outside, target_is_directory=outside.is_dir())
    return link


# (case, how the config is made, the key the error names, the value it names, the reason's words)
Case = tuple[str, Callable[[Path, Path], Path], str, str, str]
REFUSED: list[Case] = [
    ("id climbs out", lambda r, o: _config(r, **{"algorithm-id": "../../x"}), "'algorithm-id'", "'../../x'", "safe"),
    ("id with a slash", lambda r, o: _config(r, **{"algorithm-id": "a/b"}), "'algorithm-id'", "'a/b'", "safe"),
    ("id hidden", lambda r, o: _config(r, **{"algorithm-id": ".k"}), "'algorithm-id'", "'.k'", "safe"),
    ("id newline", lambda r, o: _config(r, **{"algorithm-id": "k\n"}), "'algorithm-id'", "'k\\n'", "safe"),
    (
        "results climbs out",
        lambda r, o: _config(r, **{"results-destination-folder": "../../outside"}),
        "'results-destination-folder'",
        "'../../outside'",
        "'..' is not allowed",
    ),
    (
        "results symlinked out",
        lambda r, o: _config(r, **{"results-destination-folder": str(_symlink_out(r, o, "results"))}),
        "'results-destination-folder'",
        "results'",
        "outside the run folder",
    ),
    (
        "storage symlinked out",
        lambda r, o: _config(r, **{"object-store-root": str(_symlink_out(r, o, "storage"))}),
        "'object-store-root'",
        "storage'",
        "outside the run folder",
    ),
    (
        "storage elsewhere",
        lambda r, o: _config(r, **{"object-store-root": str(o)}),
        "'object-store-root'",
        "outside'",
        "outside the run folder",
    ),
    (
        "intent elsewhere",
        lambda r, o: _config(r, **{"execution-intent-path": "/etc/passwd"}),
        "'execution-intent-path'",
        "'/etc/passwd'",
        "outside the run folder",
    ),
    (
        "params symlinked out",
        lambda r, o: _config(
            r, parameters={"execution-params-path": str(_symlink_out(r, o / "precious.txt", "p.json"))}
        ),
        "parameters['execution-params-path']",
        "p.json'",
        "outside the run folder",
    ),
    (
        "final state elsewhere",
        lambda r, o: _config(r, parameters={"final-state-path": str(o / "final-state.json")}),
        "parameters['final-state-path']",
        "final-state.json'",
        "outside the run folder",
    ),
    (
        "initial state climbs out",
        lambda r, o: _config(r, parameters={"initial-state-path": str(r / ".." / ".." / "outside" / "s.json")}),
        "parameters['initial-state-path']",
        "s.json'",
        "'..' is not allowed",
    ),
]


@pytest.mark.parametrize(("case", "make", "key", "value", "why"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_config_naming_a_path_outside_its_run_folder_is_refused_naming_key_value_and_why(
    tmp_path: Path, case: str, make: Callable[[Path, Path], Path], key: str, value: str, why: str
) -> None:
    run, outside = _layout(tmp_path)
    config = make(run, outside)
    with pytest.raises(LeanConfigError) as info:
        read_launcher_config(config).check_run_paths()
    (problem,) = info.value.problems
    assert f"key {key}=" in problem and value in problem and why in problem, problem
    # The local runtime refuses it before anything is written (exit code 2 in a subprocess).
    with pytest.raises(LocalConfigError, match="key .*=.*" + re.escape(why)):
        load_config(config)
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    assert (outside / "precious.txt").read_text(encoding="utf-8") == "precious"


def test_cli_run_with_an_algorithm_id_climbing_out_writes_nothing_outside(tmp_path: Path) -> None:
    """The reported case: ``python -m include.cli run --config`` with ``"algorithm-id": "../../x"``
    wrote ``x-order-events.json`` and friends two folders above the results folder."""
    run, _outside = _layout(tmp_path)
    config = _config(run, **{"algorithm-id": "../../x"})
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    done = subprocess.run(
        [sys.executable, "-m", "include.cli", "run", "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 2, done.stderr
    assert "error: LocalConfigError: config file" in done.stderr
    assert "key 'algorithm-id'='../../x': not a safe file-name part" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written, anywhere


def test_paths_inside_the_run_folder_and_the_shared_folders_outside_it_are_accepted(tmp_path: Path) -> None:
    run, _outside = _layout(tmp_path)
    (run / "results").mkdir()
    config = _config(
        run,
        parameters={
            "execution-intent-path": str(run / "order_intent_run_k.json"),
            "final-state-path": str(run / "results" / "final-state.json"),
            "initial-state-path": "initial_state.json",  # relative: to the config's folder, as Lean reads it
        },
    )
    checked = read_launcher_config(config).check_run_paths()
    assert checked["results-destination-folder"] == (run / "results").resolve()
    assert checked["parameters.initial-state-path"] == (run / "initial_state.json").resolve()
    cfg = load_config(config)
    assert cfg.data_folder == DEFAULT_DATA_FOLDER  # the shared data folder is not confined
    assert cfg.results_folder == (run / "results").resolve()
    assert cfg.object_store_root == (run / "storage").resolve()


def test_a_copy_of_a_run_config_made_elsewhere_is_confined_to_the_folder_of_its_results(tmp_path: Path) -> None:
    """Lean's container entry script reads a private copy of the config outside the run folder (the
    Docker stand-ins do the same on the host): its run folder is the one holding its results folder."""
    run, outside = _layout(tmp_path)
    copy = _config(run)
    elsewhere = tmp_path / "home" / "lean-config.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text(copy.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_config(elsewhere).results_folder == (run / "results").resolve()
    doc = json.loads(copy.read_text(encoding="utf-8"))
    doc["object-store-root"] = str(outside)  # ...and everything else must be in that same folder
    elsewhere.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(LocalConfigError, match=r"key 'object-store-root'=.*outside the run folder"):
        load_config(elsewhere)


def test_every_config_the_launcher_writes_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAN_AIRFLOW_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    folder = prepare_run(root=tmp_path / "artifacts")
    job = lean_job(folder, mode="backtest", parameters={"starting-cash": STARTING_CASH})
    checked = read_launcher_config(write_launcher_config(job, "local")).check_run_paths()
    assert checked["results-destination-folder"] == folder.results_dir
    assert checked["parameters.final-state-path"] == folder.final_state_path
    assert load_config(folder.config_path).algorithm_id == folder.run_key
