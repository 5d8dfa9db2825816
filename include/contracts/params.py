"""`ExecutionParams`: how Lean turns weights into orders. One model for backtest and live."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from include.contracts._base import FiniteFloat, FrozenModel, Symbol

PARAMS_SCHEMA_VERSION: Final = 1


class RiskOverrides(FrozenModel):
    """Caps applied to the target weights before any quantity is computed."""

    max_weight: FiniteFloat | None = Field(default=None, gt=0.0, le=1.0)
    max_weight_by_symbol: dict[Symbol, FiniteFloat] = Field(default_factory=dict)
    blocked_symbols: tuple[Symbol, ...] = ()
    max_gross_exposure: FiniteFloat | None = Field(default=None, gt=0.0, le=1.0)

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


class ExecutionParams(FrozenModel):
    schema_version: Literal[1] = PARAMS_SCHEMA_VERSION
    min_qty: int = Field(default=1, ge=1, strict=True)
    lot_size: int = Field(default=1, ge=1, strict=True)
    cash_buffer_ratio: FiniteFloat = Field(default=0.0, ge=0.0, lt=1.0, strict=True)
    fee_bps: FiniteFloat = Field(default=0.0, ge=0.0, strict=True)
    slippage_open_bps: FiniteFloat = Field(default=0.0, ge=0.0, strict=True)
    slippage_close_bps: FiniteFloat = Field(default=0.0, ge=0.0, strict=True)
    risk_overrides: RiskOverrides = Field(default_factory=RiskOverrides)
