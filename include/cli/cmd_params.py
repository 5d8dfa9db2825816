"""``params``: validate execution params and write ``execution_params_run_<id>.json``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from include.cli import print_json
from include.contracts.params import EXECUTION_PARAM_FIELDS, write_execution_params
from include.contracts.validation import read_text_file
from include.errors import ExecutionParamsError

# Every param but risk_overrides is a scalar flag (--min-qty ...); risk_overrides is a JSON object.
_SCALAR_FIELDS = tuple(name for name in EXECUTION_PARAM_FIELDS if name != "risk_overrides")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("params", help="write the execution-params file")
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument(
        "--run-key", "--run-id", dest="run_key", required=True, help="the run key: execution_params_run_<key>.json"
    )
    parser.add_argument("--from-file", type=Path, help="JSON object of params (flags override it)")
    parser.add_argument("--min-qty", type=int)
    parser.add_argument("--lot-size", type=int)
    parser.add_argument("--cash-buffer-ratio", type=float)
    parser.add_argument("--fee-bps", type=float)
    parser.add_argument("--slippage-open-bps", type=float)
    parser.add_argument("--slippage-close-bps", type=float)
    parser.add_argument("--risk-overrides", help="JSON object, e.g. '{\"max_weight\": 0.3}'")
    parser.set_defaults(handler=_run)


def _json_arg(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExecutionParamsError([f"{where}: not valid JSON ({exc})"]) from None


def _run(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    if args.from_file is not None:
        text = read_text_file(args.from_file, ExecutionParamsError)
        loaded = _json_arg(text, f"--from-file {args.from_file}")
        if not isinstance(loaded, dict):
            raise ExecutionParamsError([f"--from-file {args.from_file}: expected a JSON object"])
        params.update(loaded)
    for field in _SCALAR_FIELDS:
        value = getattr(args, field)
        if value is not None:
            params[field] = value
    if args.risk_overrides is not None:
        params["risk_overrides"] = _json_arg(args.risk_overrides, "--risk-overrides")
    path = write_execution_params(output_dir=args.output_dir, run_id=args.run_key, params=params)
    print_json({"execution_params_path": path})
    return 0
