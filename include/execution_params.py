"""Execution params: build the payload Lean reads and write it atomically.

One function serves backtest and live alike (the seed had two diverging copies, one of them
without ``risk_overrides``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from include.atomic_io import atomic_write_json, dumps_canonical
from include.contracts._base import check_run_key
from include.contracts.params import ExecutionParams
from include.contracts.validation import describe_validation_error
from include.errors import ExecutionParamsError


def parse_execution_params(params: Mapping[str, Any] | ExecutionParams | None) -> ExecutionParams:
    """Validate params. Missing or None values take the defaults; anything else is checked.

    Only a missing or None value falls back to its default: a negative ``lot_size`` is an
    error, never silently 1 (the seed's ``or`` default hid that).
    """
    if isinstance(params, ExecutionParams):
        return params
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ExecutionParamsError([f"<root>={params!r}: expected a JSON object of params"])
    given = {key: value for key, value in params.items() if value is not None}
    try:
        return ExecutionParams.model_validate(given)
    except ValidationError as exc:
        raise ExecutionParamsError(describe_validation_error(exc)) from None


def build_execution_params_payload(params: Mapping[str, Any] | ExecutionParams | None) -> dict[str, Any]:
    """The JSON payload of the execution-params file."""
    model = parse_execution_params(params)
    payload = model.model_dump(mode="json", exclude={"risk_overrides"})
    # Unset overrides serialise as {} so the file stays minimal and stable.
    payload["risk_overrides"] = model.risk_overrides.model_dump(mode="json", exclude_defaults=True)
    return payload


def execution_params_filename(run_id: str) -> str:
    check_run_key(run_id, "run_id")
    return f"execution_params_run_{run_id}.json"


def write_execution_params(
    *, output_dir: str | os.PathLike[str], run_id: str, params: Mapping[str, Any] | ExecutionParams | None
) -> str:
    """Validate and write ``execution_params_run_{run_id}.json`` (UTF-8, atomic). Returns its path."""
    name = execution_params_filename(run_id)
    payload = build_execution_params_payload(params)
    path = Path(output_dir) / name
    atomic_write_json(path, payload)
    return str(path)


def load_execution_params(path: str | os.PathLike[str]) -> ExecutionParams:
    """Read and validate an execution-params file; every problem names the file."""
    from include.contracts.validation import read_json_file

    raw = read_json_file(path, ExecutionParamsError)
    try:
        return parse_execution_params(raw)
    except ExecutionParamsError as exc:
        raise ExecutionParamsError([f"{os.fspath(path)}: {p}" for p in exc.problems]) from None


__all__ = [
    "build_execution_params_payload",
    "dumps_canonical",
    "execution_params_filename",
    "load_execution_params",
    "parse_execution_params",
    "write_execution_params",
]
