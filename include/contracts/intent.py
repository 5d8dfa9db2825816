"""`OrderIntent`: dated rebalances of target weights plus placeholder intent orders; its rules and I/O.

The placeholder orders (quantity 0, MKT) are kept for the audit: they record, per symbol and
date, which side the backend intended. Lean alone computes quantities.

``build_intent_orders`` keeps the seed's rules (strip + upper-case symbols, skip blanks and
unparseable weights, BUY for weight >= 0, quantity 0, MKT, no limit) and adds what the seed
lacked: NaN/inf weights and duplicate symbols are errors, and every skipped row is reported.

Schema version 2 names the run ``run_key`` (version 1 called it ``run_id``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field, ValidationError, model_validator

from include.atomic_io import atomic_write_json
from include.contracts._base import RUN_KEY_PATTERN, FiniteFloat, FrozenModel, Symbol, Text
from include.contracts.snapshot import DecisionSnapshot, WeightItem, check_weight_items
from include.contracts.validation import describe_validation_error, load_json_model
from include.errors import OrderIntentError
from include.run_folder import check_run_key, intent_filename

INTENT_SCHEMA_VERSION: Final = 2
log = logging.getLogger(__name__)


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
    schema_version: Literal[2] = INTENT_SCHEMA_VERSION
    run_key: str = Field(pattern=RUN_KEY_PATTERN)
    source: Text = Field(min_length=1, max_length=200)
    rebalances: tuple[Rebalance, ...] = Field(min_length=1)
    intent_orders: tuple[IntentOrder, ...]

    @model_validator(mode="after")
    def _consistent(self) -> OrderIntent:
        dates = [r.date for r in self.rebalances]
        if any(b <= a for a, b in itertools.pairwise(dates)):
            raise ValueError("rebalance dates must be strictly increasing")
        expected = {
            (r.date, i.symbol): ("BUY" if i.weight >= 0 else "SELL", i.weight) for r in self.rebalances for i in r.items
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


@dataclass(frozen=True)
class SkippedRow:
    index: int
    row: Any
    reason: str


def _row_field(row: Any, name: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(name)
    return getattr(row, name, None)


def build_intent_orders(items: Iterable[Any], *, skipped: list[SkippedRow] | None = None) -> list[dict[str, Any]]:
    """Placeholder intent orders (quantity 0, MKT) for rows of ``symbol`` and ``weight``.

    Blank symbols and weights that do not parse are skipped, each logged with its reason and
    appended to ``skipped`` when a list is given. NaN/inf weights, invalid tickers and
    duplicate symbols raise ``OrderIntentError`` naming the row.
    """
    orders: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    problems: list[str] = []

    def skip(index: int, row: Any, reason: str) -> None:
        log.warning("intent row %d skipped: %s (%r)", index, reason, row)
        if skipped is not None:
            skipped.append(SkippedRow(index=index, row=row, reason=reason))

    for index, row in enumerate(items):
        raw_symbol = _row_field(row, "symbol")
        symbol = str(raw_symbol).strip().upper() if raw_symbol is not None else ""
        if not symbol:
            skip(index, row, "blank symbol")
            continue
        raw_weight = _row_field(row, "weight")
        if isinstance(raw_weight, bool):
            skip(index, row, f"weight {raw_weight!r} is not a number")
            continue
        try:
            weight = float(raw_weight)
        except (TypeError, ValueError):
            skip(index, row, f"weight {raw_weight!r} does not parse as a number")
            continue
        if not math.isfinite(weight):
            problems.append(f"items[{index}].weight={raw_weight!r}: must be finite (symbol {symbol})")
            continue
        try:
            WeightItem(symbol=symbol, weight=weight)
        except ValidationError as exc:
            problems.extend(f"items[{index}].{p}" for p in describe_validation_error(exc))
            continue
        if symbol in seen:
            problems.append(f"items[{index}].symbol={symbol!r}: duplicate of items[{seen[symbol]}]")
            continue
        seen[symbol] = index
        orders.append(
            {
                "symbol": symbol,
                "side": "BUY" if weight >= 0 else "SELL",
                "quantity": 0,
                "order_type": "MKT",
                "limit_price": None,
                "weight": weight,
            }
        )
    if problems:
        raise OrderIntentError(problems)
    return orders


def _weight_items(orders: Sequence[Mapping[str, Any]], where: str) -> tuple[WeightItem, ...]:
    try:
        return tuple(WeightItem(symbol=o["symbol"], weight=o["weight"]) for o in orders)
    except ValidationError as exc:
        raise OrderIntentError([f"{where}.{p}" for p in describe_validation_error(exc)]) from None


def build_order_intent(
    *,
    run_key: str,
    rebalances: Mapping[dt.date, Iterable[Any]] | Sequence[DecisionSnapshot] | DecisionSnapshot,
    source: str | None = None,
    skipped: list[SkippedRow] | None = None,
) -> OrderIntent:
    """An ``OrderIntent`` from snapshots, or from a mapping of date -> rows of symbol/weight."""
    run_key = check_run_key(run_key)
    if isinstance(rebalances, DecisionSnapshot):
        rebalances = [rebalances]
    dated: list[tuple[dt.date, list[Any]]]
    sources: set[str] = set()
    if isinstance(rebalances, Mapping):
        dated = [(day, list(rows)) for day, rows in rebalances.items()]
    else:
        dated = []
        for snap in rebalances:
            dated.append((snap.as_of, [{"symbol": i.symbol, "weight": i.weight} for i in snap.items]))
            sources.add(snap.source)
    if not dated:
        raise OrderIntentError(["rebalances: at least one dated rebalance is required"])
    dated.sort(key=lambda pair: pair[0])
    resolved_source = source or (sources.pop() if len(sources) == 1 else "backend")
    built: list[Rebalance] = []
    intent_orders: list[IntentOrder] = []
    for day, rows in dated:
        where = f"rebalances[{day.isoformat()}]"
        orders = build_intent_orders(rows, skipped=skipped)
        try:
            built.append(Rebalance(date=day, items=_weight_items(orders, where)))
        except ValidationError as exc:
            raise OrderIntentError([f"{where}: {p}" for p in describe_validation_error(exc)]) from None
        intent_orders.extend(
            IntentOrder(rebalance_date=day, symbol=o["symbol"], side=o["side"], weight=o["weight"]) for o in orders
        )
    try:
        return OrderIntent(
            run_key=run_key, source=resolved_source, rebalances=tuple(built), intent_orders=tuple(intent_orders)
        )
    except ValidationError as exc:
        raise OrderIntentError(describe_validation_error(exc)) from None


def write_order_intent(
    *,
    output_dir: str | os.PathLike[str],
    run_key: str,
    rebalances: Mapping[dt.date, Iterable[Any]] | Sequence[DecisionSnapshot] | DecisionSnapshot | OrderIntent,
    source: str | None = None,
) -> str:
    """Validate and write ``order_intent_run_<run key>.json`` (UTF-8, atomic). Returns its path."""
    intent = (
        rebalances
        if isinstance(rebalances, OrderIntent)
        else build_order_intent(run_key=run_key, rebalances=rebalances, source=source)
    )
    if intent.run_key != run_key:
        raise OrderIntentError([f"run_key={intent.run_key!r}: does not match the requested run key {run_key!r}"])
    path = Path(output_dir) / intent_filename(run_key)
    atomic_write_json(path, intent.model_dump(mode="json"))
    return str(path)


def load_order_intent(path: str | os.PathLike[str]) -> OrderIntent:
    """Read and validate an intent file."""
    return load_json_model(path, OrderIntent, OrderIntentError)
