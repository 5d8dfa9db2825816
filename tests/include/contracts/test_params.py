"""The seed's execution-params cases, ported, plus the bad-input table (``include.contracts.params``).

The defaults are declared once, in the model: 1 share, 1 lot, a 2% cash buffer, 1 bp fees, 2 bp
slippage at the open and 1 bp otherwise.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from include.contracts.forms import execution_params_form
from include.contracts.params import (
    EXECUTION_PARAM_FIELDS,
    ExecutionParams,
    build_execution_params_payload,
    load_execution_params,
    parse_execution_params,
    write_execution_params,
)
from include.errors import ArtifactPathError, ExecutionParamsError

DEFAULTS = {
    "schema_version": 1,
    "min_qty": 1,
    "lot_size": 1,
    "cash_buffer_ratio": 0.02,
    "fee_bps": 1.0,
    "slippage_open_bps": 2.0,
    "slippage_close_bps": 1.0,
    "risk_overrides": {},
}


def test_build_payload_defaults() -> None:
    assert build_execution_params_payload({}) == DEFAULTS
    assert build_execution_params_payload(None) == DEFAULTS
    assert build_execution_params_payload(ExecutionParams()) == DEFAULTS


def test_each_default_is_declared_once_in_the_model() -> None:
    """The payload's defaults and the form's defaults are the model's field defaults."""
    assert EXECUTION_PARAM_FIELDS == (
        "min_qty",
        "lot_size",
        "cash_buffer_ratio",
        "fee_bps",
        "slippage_open_bps",
        "slippage_close_bps",
        "risk_overrides",
    )
    form = execution_params_form()
    assert list(form) == list(EXECUTION_PARAM_FIELDS)
    for name in EXECUTION_PARAM_FIELDS:
        if name == "risk_overrides":  # a nested model: an empty JSON object in the form and the file
            assert form[name]["default"] == {} and form[name]["type"] == "object"
            assert parse_execution_params({name: form[name]["default"]}) == ExecutionParams()
            continue
        default = ExecutionParams.model_fields[name].default
        assert form[name]["default"] == default == DEFAULTS[name], name
        assert form[name]["title"], name


def test_form_bounds_are_the_models() -> None:
    schema = ExecutionParams.model_json_schema(mode="validation")["properties"]
    form = execution_params_form()
    bounds = ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    for name in EXECUTION_PARAM_FIELDS:
        if name != "risk_overrides":
            assert {k: form[name].get(k) for k in bounds} == {k: schema[name].get(k) for k in bounds}, name
    assert (form["min_qty"]["type"], form["min_qty"]["minimum"]) == ("integer", 1)
    assert (form["lot_size"]["type"], form["lot_size"]["minimum"]) == ("integer", 1)
    assert (form["cash_buffer_ratio"]["minimum"], form["cash_buffer_ratio"]["exclusiveMaximum"]) == (0.0, 1.0)
    for name in ("fee_bps", "slippage_open_bps", "slippage_close_bps"):
        assert (form[name]["type"], form[name]["minimum"]) == ("number", 0.0), name


def test_build_payload_none_values_take_defaults() -> None:
    params = {key: None for key in DEFAULTS if key != "schema_version"}
    assert build_execution_params_payload(params) == DEFAULTS


def test_build_payload_keeps_given_values_and_risk_overrides() -> None:
    params = {
        "min_qty": 5,
        "lot_size": 10,
        "cash_buffer_ratio": 0.05,
        "fee_bps": 1.5,
        "slippage_open_bps": 3.0,
        "slippage_close_bps": 2.5,
        "risk_overrides": {"max_weight": 0.3, "blocked_symbols": ["tsla"], "max_weight_by_symbol": {"spy": 0.5}},
    }
    payload = build_execution_params_payload(params)
    assert payload["min_qty"] == 5
    assert payload["lot_size"] == 10
    assert payload["cash_buffer_ratio"] == 0.05
    assert payload["fee_bps"] == 1.5
    assert payload["slippage_open_bps"] == 3.0
    assert payload["slippage_close_bps"] == 2.5
    assert payload["risk_overrides"] == {
        "max_weight": 0.3,
        "blocked_symbols": ["TSLA"],
        "max_weight_by_symbol": {"SPY": 0.5},
    }


def test_write_execution_params_writes_named_utf8_file(tmp_path: Path) -> None:
    path = write_execution_params(output_dir=tmp_path, run_id="abc", params={"lot_size": 100})
    assert path == str(tmp_path / "execution_params_run_abc.json")
    loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    assert loaded == {**DEFAULTS, "lot_size": 100}
    assert load_execution_params(path).lot_size == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["execution_params_run_abc.json"]


def test_write_is_byte_stable(tmp_path: Path) -> None:
    first = Path(write_execution_params(output_dir=tmp_path, run_id="r", params={"fee_bps": 3})).read_bytes()
    second = Path(write_execution_params(output_dir=tmp_path, run_id="r", params={"fee_bps": 3.0})).read_bytes()
    assert first == second
    assert json.loads(first)["fee_bps"] == 3.0


def test_an_integer_run_id_is_a_run_key(tmp_path: Path) -> None:
    """The seed plan's integer run ids: ``run_id=123`` writes ``execution_params_run_123.json``."""
    path = write_execution_params(output_dir=tmp_path, run_id=123, params=None)
    assert path == str(tmp_path / "execution_params_run_123.json")
    assert json.loads(Path(path).read_text(encoding="utf-8")) == DEFAULTS


def test_negative_lot_size_is_an_error_not_one() -> None:
    # The seed's `params.get("lot_size") or 1` turned -5 into... -5, and 0 into 1: both wrong.
    with pytest.raises(ExecutionParamsError, match=r"lot_size=-5"):
        build_execution_params_payload({"lot_size": -5})
    with pytest.raises(ExecutionParamsError, match=r"lot_size=0"):
        build_execution_params_payload({"lot_size": 0})


BAD_PARAMS: list[tuple[str, Any, str]] = [
    ("min_qty zero", {"min_qty": 0}, r"min_qty=0"),
    ("min_qty negative", {"min_qty": -1}, r"min_qty=-1"),
    ("min_qty float", {"min_qty": 1.5}, r"min_qty=1\.5"),
    ("min_qty string", {"min_qty": "3"}, r"min_qty='3'"),
    ("lot_size negative", {"lot_size": -100}, r"lot_size=-100"),
    ("lot_size non-integer", {"lot_size": 2.5}, r"lot_size=2\.5"),
    ("lot_size integral float", {"lot_size": 10.0}, r"lot_size=10\.0"),
    ("lot_size bool", {"lot_size": True}, r"lot_size=True"),
    ("cash buffer one", {"cash_buffer_ratio": 1.0}, r"cash_buffer_ratio=1\.0"),
    ("cash buffer negative", {"cash_buffer_ratio": -0.01}, r"cash_buffer_ratio=-0\.01"),
    ("cash buffer nan", {"cash_buffer_ratio": math.nan}, r"cash_buffer_ratio=nan"),
    ("fee nan", {"fee_bps": math.nan}, r"fee_bps=nan"),
    ("fee inf", {"fee_bps": math.inf}, r"fee_bps=inf"),
    ("fee negative", {"fee_bps": -1}, r"fee_bps=-1"),
    ("slippage open -inf", {"slippage_open_bps": -math.inf}, r"slippage_open_bps=-inf"),
    ("slippage close negative", {"slippage_close_bps": -0.5}, r"slippage_close_bps=-0\.5"),
    ("slippage close text", {"slippage_close_bps": "x"}, r"slippage_close_bps='x'"),
    ("unknown field", {"lot": 1}, r"lot=1: Extra inputs are not permitted"),
    ("wrong schema version", {"schema_version": 2}, r"schema_version=2"),
    ("risk overrides not an object", {"risk_overrides": [1]}, r"risk_overrides=\[1\]"),
    ("risk max_weight above one", {"risk_overrides": {"max_weight": 1.5}}, r"risk_overrides\.max_weight=1\.5"),
    ("risk max_weight zero", {"risk_overrides": {"max_weight": 0}}, r"risk_overrides\.max_weight=0"),
    ("risk per-symbol cap negative", {"risk_overrides": {"max_weight_by_symbol": {"SPY": -0.1}}}, r"SPY"),
    ("risk blocked bad symbol", {"risk_overrides": {"blocked_symbols": ["../etc"]}}, r"blocked_symbols\.0"),
    ("risk blocked duplicate", {"risk_overrides": {"blocked_symbols": ["SPY", "spy"]}}, r"duplicates"),
    ("risk gross nan", {"risk_overrides": {"max_gross_exposure": math.nan}}, r"max_gross_exposure=nan"),
    ("risk unknown key", {"risk_overrides": {"max_wieght": 0.2}}, r"risk_overrides\.max_wieght"),
    ("not an object", [1, 2], r"expected a JSON object"),
]


@pytest.mark.parametrize(("params", "message"), [c[1:] for c in BAD_PARAMS], ids=[c[0] for c in BAD_PARAMS])
def test_bad_params_give_named_error_and_leave_no_file(tmp_path: Path, params: Any, message: str) -> None:
    with pytest.raises(ExecutionParamsError, match=message) as info:
        write_execution_params(output_dir=tmp_path, run_id="bad", params=params)
    assert str(info.value).startswith("invalid execution params: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("run_id", ["", "../x", "a/b", ".hidden", "a..b", "x" * 200, "ünï", "x\n", -1, True, 1.0])
def test_unsafe_run_id_is_rejected_before_writing(tmp_path: Path, run_id: Any) -> None:
    with pytest.raises(ArtifactPathError, match=r"run key .* is not a safe path component"):
        write_execution_params(output_dir=tmp_path, run_id=run_id, params={})
    assert list(tmp_path.iterdir()) == []


def test_load_rejects_garbled_file(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ExecutionParamsError, match="cannot read JSON"):
        load_execution_params(path)
