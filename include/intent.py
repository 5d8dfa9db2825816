"""Order intent: the backend's weights turned into an auditable intent file.

``build_intent_orders`` keeps the seed's rules (strip + upper-case symbols, skip blanks and
unparseable weights, BUY for weight >= 0, quantity 0, MKT, no limit) and adds what the seed
lacked: NaN/inf weights and duplicate symbols are errors, and every skipped row is reported.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from include.atomic_io import atomic_write_json
from include.contracts._base import check_run_key
from include.contracts.intent import IntentOrder, OrderIntent, Rebalance
from include.contracts.snapshot import DecisionSnapshot, WeightItem
from include.contracts.validation import describe_validation_error, load_json_model
from include.errors import OrderIntentError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedRow:
    index: int
    row: Any
    reason: str


def _row_field(row: Any, name: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(name)
    return getattr(row, name, None)


def build_intent_orders(
    items: Iterable[Any], *, skipped: list[SkippedRow] | None = None
) -> list[dict[str, Any]]:
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
    run_id: str,
    rebalances: Mapping[dt.date, Iterable[Any]] | Sequence[DecisionSnapshot] | DecisionSnapshot,
    source: str | None = None,
    skipped: list[SkippedRow] | None = None,
) -> OrderIntent:
    """An ``OrderIntent`` from snapshots, or from a mapping of date -> rows of symbol/weight."""
    check_run_key(run_id, "run_id")
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
            IntentOrder(rebalance_date=day, symbol=o["symbol"], side=o["side"], weight=o["weight"])
            for o in orders
        )
    try:
        return OrderIntent(
            run_id=run_id, source=resolved_source, rebalances=tuple(built), intent_orders=tuple(intent_orders)
        )
    except ValidationError as exc:
        raise OrderIntentError(describe_validation_error(exc)) from None


def order_intent_filename(run_id: str) -> str:
    check_run_key(run_id, "run_id")
    return f"order_intent_run_{run_id}.json"


def write_order_intent(
    *,
    output_dir: str | os.PathLike[str],
    run_id: str,
    rebalances: Mapping[dt.date, Iterable[Any]] | Sequence[DecisionSnapshot] | DecisionSnapshot | OrderIntent,
    source: str | None = None,
) -> str:
    """Validate and write ``order_intent_run_{run_id}.json`` (UTF-8, atomic). Returns its path."""
    intent = (
        rebalances
        if isinstance(rebalances, OrderIntent)
        else build_order_intent(run_id=run_id, rebalances=rebalances, source=source)
    )
    if intent.run_id != run_id:
        raise OrderIntentError([f"run_id={intent.run_id!r}: does not match the requested run_id {run_id!r}"])
    path = Path(output_dir) / order_intent_filename(run_id)
    atomic_write_json(path, intent.model_dump(mode="json"))
    return str(path)


def load_order_intent(path: str | os.PathLike[str]) -> OrderIntent:
    """Read and validate an intent file."""
    return load_json_model(path, OrderIntent, OrderIntentError)
