"""`OrderIntent`: dated rebalances of target weights plus placeholder intent orders.

The placeholder orders (quantity 0, MKT) are kept for the audit: they record, per symbol and
date, which side the backend intended. Lean alone computes quantities.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Final, Literal

from pydantic import Field, model_validator

from include.contracts._base import RUN_KEY_PATTERN, FiniteFloat, FrozenModel, Symbol
from include.contracts.snapshot import WeightItem, check_weight_items

INTENT_SCHEMA_VERSION: Final = 1


class Rebalance(FrozenModel):
    date: dt.date
    items: tuple[WeightItem, ...]

    @model_validator(mode="after")
    def _unique_and_bounded(self) -> Rebalance:
        check_weight_items(self.items, f"rebalance {self.date.isoformat()}")
        return self


class IntentOrder(FrozenModel):
    rebalance_date: dt.date
    symbol: Symbol
    side: Literal["BUY", "SELL"]
    weight: FiniteFloat
    quantity: Literal[0] = 0
    order_type: Literal["MKT"] = "MKT"
    limit_price: None = None


class OrderIntent(FrozenModel):
    schema_version: Literal[1] = INTENT_SCHEMA_VERSION
    run_id: str = Field(pattern=RUN_KEY_PATTERN)
    source: str = Field(min_length=1, max_length=200)
    rebalances: tuple[Rebalance, ...] = Field(min_length=1)
    intent_orders: tuple[IntentOrder, ...]

    @model_validator(mode="after")
    def _consistent(self) -> OrderIntent:
        dates = [r.date for r in self.rebalances]
        if any(b <= a for a, b in itertools.pairwise(dates)):
            raise ValueError("rebalance dates must be strictly increasing")
        expected = {
            (r.date, i.symbol): ("BUY" if i.weight >= 0 else "SELL", i.weight)
            for r in self.rebalances
            for i in r.items
        }
        got = {(o.rebalance_date, o.symbol): (o.side, o.weight) for o in self.intent_orders}
        if len(got) != len(self.intent_orders):
            raise ValueError("intent_orders has a duplicate (rebalance_date, symbol)")
        if got != expected:
            missing = sorted(f"{d}:{s}" for d, s in expected.keys() - got.keys())
            extra = sorted(f"{d}:{s}" for d, s in got.keys() - expected.keys())
            differ = sorted(f"{d}:{s}" for k in expected.keys() & got.keys() if expected[k] != got[k] for d, s in [k])
            raise ValueError(
                f"intent_orders do not match rebalances (missing {missing}, extra {extra}, differing {differ})"
            )
        return self

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted({i.symbol for r in self.rebalances for i in r.items}))
