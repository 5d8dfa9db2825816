from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.launch.config import strip_json_comments
from include.lean_local.config import load_config
from include.lean_local.errors import LocalConfigError
from tests.include.lean_local.helpers import run_subprocess, write_run

ALGO = """
from AlgorithmImports import *
class A(QCAlgorithm):
    def initialize(self):
        self.set_start_date(2019, 1, 2); self.set_end_date(2019, 1, 10)
"""


def test_strip_comments_keeps_slashes_inside_strings() -> None:
    text = '{"a": "http://x//y", // trailing\n "b": "q\\"//"} // end'
    assert json.loads(strip_json_comments(text)) == {"a": "http://x//y", "b": 'q"//'}


def test_environment_layering_and_parameters(tmp_path: Path) -> None:
    cfg_path = write_run(
        tmp_path,
        ALGO,
        comment=True,
        extra={
            "environment": "live-paper",
            "parameters": {"n": 10, "x": 1.5, "s": "a,b"},
            "environments": {"live-paper": {"live-mode": True, "algorithm-id": "from-env"}},
        },
    )
    cfg = load_config(cfg_path)
    assert cfg.live_mode is True
    assert cfg.algorithm_id == "from-env"
    assert cfg.parameters == {"n": "10", "x": "1.5", "s": "a,b"}


def test_environment_name_starting_with_live_is_live(tmp_path: Path) -> None:
    cfg = load_config(write_run(tmp_path, ALGO, extra={"environment": "live-custom", "environments": {}}))
    assert cfg.live_mode is True


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    path = write_run(tmp_path, ALGO)
    raw = json.loads(path.read_text())
    del raw["data-folder"]
    path.write_text(json.dumps(raw))
    with pytest.raises(LocalConfigError, match="'data-folder'"):
        load_config(path)


def test_bad_config_exit_code_2(tmp_path: Path) -> None:
    path = write_run(tmp_path, ALGO)
    raw = json.loads(path.read_text())
    raw["algorithm-location"] = str(tmp_path / "nope.py")
    path.write_text(json.dumps(raw))
    result = run_subprocess(path)
    assert result.returncode == 2
    assert "algorithm file not found" in result.stderr and "nope.py" in result.stderr


def test_no_qcalgorithm_subclass_exit_code_2(tmp_path: Path) -> None:
    result = run_subprocess(write_run(tmp_path, "x = 1\n"))
    assert result.returncode == 2
    assert "no QCAlgorithm subclass" in result.stderr
