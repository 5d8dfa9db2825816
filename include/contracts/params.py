"""`ExecutionParams`: how Lean turns weights into orders. One model for backtest and live, and its I/O.

Each default is declared once, here: the DAG form's execution Params are generated from this
model's exported JSON Schema (``include.contracts.forms``), and the CLI, the pipeline and the
writer all take their defaults from it. The defaults are a realistic retail cost model (1 bp fees, 2 bp slippage at the
open, 1 bp otherwise) with a 2% cash buffer that absorbs the gap between the sizing price and the
fill price.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from include.atomic_io import atomic_write_json
from include.contracts._base import FiniteFloat, FrozenModel, Symbol
from include.contracts.validation import describe_validation_error, read_json_file
from include.errors import ExecutionParamsError
from include.run_folder import params_filename

PARAMS_SCHEMA_VERSION: Final = 1

# Upper bounds: what an account can hold and a cost model can mean (issue #18). Lean keeps an
# order's quantity as a decimal, so nothing in Lean stops a 1e12-share minimum; but no US equity
# has more than ~1.6e10 shares outstanding (Apple), and an order, a minimum or a lot of more than
# 1e9 shares is several percent of the largest company: a typo, never a real constraint. The
# bound also keeps the quantity arithmetic of the order build exact in a float (far below 2**53).
MAX_SHARES: Final = 1_000_000_000
# Basis points of the notional (or of the price): 10_000 bps is 100%. A fee above the whole
# notional is a typo; slippage of 100% or more would fill a sell at a price of zero or below.
MAX_FEE_BPS: Final = 10_000.0
MAX_SLIPPAGE_BPS: Final = 10_000.0
_SHARES_REASON = (
    f"must be at most {MAX_SHARES:,} shares: no US equity has more than ~1.6e10 shares outstanding, "
    "so a larger order, minimum or lot is not one an account can hold"
)


class RiskOverrides(FrozenModel):
    """Caps applied to the target weights before any quantity is computed."""

    max_weight: FiniteFloat | None = Field(default=None, gt=0.0, le=1.0, description="cap on every weight")
    max_weight_by_symbol: dict[Symbol, FiniteFloat] = Field(default_factory=dict, description="cap per ticker")
    blocked_symbols: tuple[Symbol, ...] = Field(default=(), description="tickers never bought (held ones are sold)")
    max_gross_exposure: FiniteFloat | None = Field(
        default=None, gt=0.0, le=1.0, description="cap on the sum of |weight|, scaled down pro rata"
    )

    @field_validator("max_weight_by_symbol")
    @classmethod
    def _caps_in_range(cls, caps: dict[str, float]) -> dict[str, float]:
        for symbol, cap in caps.items():
            if not 0.0 <= cap <= 1.0:
                raise ValueError(f"max_weight_by_symbol[{symbol!r}]={cap!r} must be within [0, 1]")
        return caps

    @model_validator(mode="after")
    def _sorted_blocked(self) -> RiskOverrides:
        if len(set(self.blocked_symbols)) != len(self.blocked_symbols):
            raise ValueError("blocked_symbols has duplicates")
        return self


def _record_field_order(schema: dict[str, Any]) -> None:
    # The committed schema is written with sorted keys; the trigger form keeps the model's order.
    schema["x-field-order"] = list(schema["properties"])


class ExecutionParams(FrozenModel):
    model_config = ConfigDict(**FrozenModel.model_config, json_schema_extra=_record_field_order)

    schema_version: Literal[1] = PARAMS_SCHEMA_VERSION
    min_qty: int = Field(
        default=1,
        ge=1,
        strict=True,
        title="Min quantity",
        description="smallest order, in shares",
        json_schema_extra={"maximum": MAX_SHARES},
    )
    lot_size: int = Field(
        default=1,
        ge=1,
        strict=True,
        title="Lot size",
        description="orders are whole lots",
        json_schema_extra={"maximum": MAX_SHARES},
    )
    cash_buffer_ratio: FiniteFloat = Field(
        default=0.02,
        ge=0.0,
        lt=1.0,
        strict=True,
        title="Cash buffer ratio",
        description="share of the portfolio value kept in cash",
    )
    fee_bps: FiniteFloat = Field(
        default=1.0,
        ge=0.0,
        strict=True,
        title="Fee (bps of notional)",
        json_schema_extra={"maximum": MAX_FEE_BPS},
    )
    slippage_open_bps: FiniteFloat = Field(
        default=2.0,
        ge=0.0,
        strict=True,
        title="Slippage at the open (bps)",
        json_schema_extra={"exclusiveMaximum": MAX_SLIPPAGE_BPS},
    )
    slippage_close_bps: FiniteFloat = Field(
        default=1.0,
        ge=0.0,
        strict=True,
        title="Slippage otherwise (bps)",
        json_schema_extra={"exclusiveMaximum": MAX_SLIPPAGE_BPS},
    )
    risk_overrides: RiskOverrides = Field(
        default_factory=RiskOverrides,
        title="Risk overrides",
        description='e.g. {"max_weight": 0.4, "blocked_symbols": ["ZZSA"], "max_gross_exposure": 0.95}',
    )

    # The upper bounds are checked here (not with ``le=``) so the error says why; the schema
    # still carries them (``json_schema_extra``), so the trigger form refuses the same values.
    @field_validator("min_qty", "lot_size")
    @classmethod
    def _shares_an_account_can_hold(cls, value: int) -> int:
        if value > MAX_SHARES:
            raise ValueError(_SHARES_REASON)
        return value

    @field_validator("fee_bps")
    @classmethod
    def _fee_within_the_notional(cls, value: float) -> float:
        if value > MAX_FEE_BPS:
            raise ValueError(f"must be at most {MAX_FEE_BPS:,.0f} bps (100% of the notional): a larger fee is a typo")
        return value

    @field_validator("slippage_open_bps", "slippage_close_bps")
    @classmethod
    def _slippage_below_the_price(cls, value: float) -> float:
        if value >= MAX_SLIPPAGE_BPS:
            raise ValueError(
                f"must be below {MAX_SLIPPAGE_BPS:,.0f} bps (100% of the price): a sell would fill at a price of zero"
            )
        return value


EXECUTION_PARAM_FIELDS: Final = tuple(name for name in ExecutionParams.model_fields if name != "schema_version")


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


# The seed plan's name (its lean_runner module).
_build_execution_params_payload = build_execution_params_payload


def write_execution_params(
    *, output_dir: str | os.PathLike[str], run_id: str | int, params: Mapping[str, Any] | ExecutionParams | None
) -> str:
    """Validate and write ``execution_params_run_<run key>.json`` (UTF-8, atomic). Returns its path.

    ``run_id`` is the seed plan's name for the run key; its integer run ids are accepted too.
    """
    name = params_filename(run_id)
    payload = build_execution_params_payload(params)
    path = Path(output_dir) / name
    atomic_write_json(path, payload)
    return str(path)


def load_execution_params(path: str | os.PathLike[str]) -> ExecutionParams:
    """Read and validate an execution-params file; every problem names the file."""
    raw = read_json_file(path, ExecutionParamsError)
    try:
        return parse_execution_params(raw)
    except ExecutionParamsError as exc:
        raise ExecutionParamsError([f"{os.fspath(path)}: {p}" for p in exc.problems]) from None
