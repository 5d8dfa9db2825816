from __future__ import annotations

import pytest

from include.errors import LeanConfigError
from include.lean_config import build_execution_config, should_skip_order_build


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("lean", True),
        ("LEAN", True),
        ("  Lean\n", True),
        ("python", False),
        ("", False),
        (None, False),
        ("lean2", False),
    ],
)
def test_should_skip_order_build(source: str | None, expected: bool) -> None:
    assert should_skip_order_build(source) is expected


def _config(**overrides: object) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "intent_path": "/Results/../run/order_intent_run_k.json",
        "params_path": "/run/execution_params_run_k.json",
        "algorithm_location": "/LeanCLI/lean_trend_rotation.py",
        "algorithm_id": "k",
        "data_folder": "/Lean/Data",
        "results_folder": "/Results",
        "object_store_root": "/Storage",
    }
    kwargs.update(overrides)
    return build_execution_config(**kwargs)  # type: ignore[arg-type]


def test_config_has_paths_top_level_and_under_parameters() -> None:
    config = _config(parameters={"starting-cash": 100000})
    assert config["execution-intent-path"] == "/Results/../run/order_intent_run_k.json"
    assert config["execution-params-path"] == "/run/execution_params_run_k.json"
    assert config["parameters"] == {
        "execution-intent-path": "/Results/../run/order_intent_run_k.json",
        "execution-params-path": "/run/execution_params_run_k.json",
        "starting-cash": 100000,
    }
    assert config["close-automatically"] is True
    assert config["algorithm-type-name"] == "lean_trend_rotation"
    assert config["algorithm-language"] == "Python"
    assert config["environment"] == "backtesting"
    assert config["environments"]["backtesting"]["live-mode"] is False  # type: ignore[index]


def test_live_mode_selects_the_paper_environment() -> None:
    config = _config(mode="live")
    assert config["environment"] == "live-paper"
    assert config["environments"]["live-paper"]["live-mode"] is True  # type: ignore[index]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "paper"}, "mode='paper'"),
        ({"intent_path": ""}, "intent_path=''"),
        ({"algorithm_location": "/LeanCLI/main.cs"}, "expected a Python file"),
        ({"algorithm_id": "../x"}, "algorithm_id"),
        ({"parameters": {"execution-intent-path": "/x"}}, "reserved"),
        ({"extra": {"parameters": {}}}, "reserved"),
    ],
)
def test_bad_config_inputs(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(LeanConfigError, match=message):
        _config(**overrides)
