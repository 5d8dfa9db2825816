"""`DecisionSnapshot`: the backend's decision of what to hold on one as-of date."""

from __future__ import annotations

import datetime as dt
from typing import Final, Literal

from pydantic import Field, model_validator

from include.contracts._base import FiniteFloat, FrozenModel, Symbol

SNAPSHOT_SCHEMA_VERSION: Final = 1
# Gross weight may exceed 1.0 only by float noise from normalisation.
GROSS_WEIGHT_TOLERANCE = 1e-9


class WeightItem(FrozenModel):
    symbol: Symbol
    weight: FiniteFloat = Field(ge=-1.0, le=1.0)


def check_weight_items(items: tuple[WeightItem, ...], where: str) -> None:
    """Unique symbols and gross exposure (sum of |weight|) at most 1."""
    seen: set[str] = set()
    for item in items:
        if item.symbol in seen:
            raise ValueError(f"{where}: duplicate symbol {item.symbol!r}")
        seen.add(item.symbol)
    gross = sum(abs(item.weight) for item in items)
    if gross > 1.0 + GROSS_WEIGHT_TOLERANCE:
        raise ValueError(f"{where}: gross weight {gross:.6f} exceeds 1.0")


class DecisionSnapshot(FrozenModel):
    schema_version: Literal[1] = SNAPSHOT_SCHEMA_VERSION
    as_of: dt.date
    source: str = Field(min_length=1, max_length=200)
    items: tuple[WeightItem, ...]

    @model_validator(mode="after")
    def _unique_and_bounded(self) -> DecisionSnapshot:
        check_weight_items(self.items, f"snapshot {self.as_of.isoformat()}")
        return self
