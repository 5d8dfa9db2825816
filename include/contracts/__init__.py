"""File contracts between the tasks: one frozen pydantic model per file format."""

from include.contracts._base import SYMBOL_PATTERN, FrozenModel
from include.contracts.intent import IntentOrder, OrderIntent, Rebalance
from include.contracts.params import ExecutionParams, RiskOverrides
from include.contracts.snapshot import DecisionSnapshot, WeightItem

__all__ = [
    "SYMBOL_PATTERN",
    "DecisionSnapshot",
    "ExecutionParams",
    "FrozenModel",
    "IntentOrder",
    "OrderIntent",
    "Rebalance",
    "RiskOverrides",
    "WeightItem",
]
