"""What the consistency check found, as it finds it.

Every finding becomes a :class:`CheckResult` (the report's ``checks``, in the order found) dated on
the New York session it concerns (an order's or a fill's finding: the order's rebalance date; None
only for a finding about the whole run). A finding about a symbol also counts towards exactly one
verdict row, the one of its (date, symbol): a fill's failure never colours the symbol's other days.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from include.contracts.report import CheckResult, SymbolVerdict, Verdict, worst

CHECKS = (
    "intended_side",
    "unexpected_symbol",
    "unexpected_date",
    "terminal_state",
    "order_sequence",
    "overfill",
    "lot_size",
    "achieved_weight",
    "fees",
    "slippage",
    "recomputation",
    "corporate_actions",
    "live_session",
    "live_account",
)
FEE_ABS_TOLERANCE = 0.005
PRICE_REL_EPS = 1e-6
QTY_EPS = 1e-9
TOLERANCES = {"fee_abs": FEE_ABS_TOLERANCE, "price_rel_eps": PRICE_REL_EPS, "qty_eps": QTY_EPS}

Key = tuple[dt.date | None, str]


@dataclass
class Findings:
    results: list[CheckResult] = field(default_factory=list)
    problems: dict[Key, list[str]] = field(default_factory=lambda: defaultdict(list))
    verdicts: dict[Key, list[Verdict]] = field(default_factory=lambda: defaultdict(list))

    def add(
        self,
        check: str,
        verdict: Verdict,
        message: str,
        *,
        symbol: str | None = None,
        day: dt.date | None = None,
        **details: Any,
    ) -> None:
        self.results.append(
            CheckResult(
                check=check, symbol=symbol, date=day, verdict=verdict, message=message, details=_jsonable(details)
            )
        )
        if symbol is not None:
            self.verdicts[(day, symbol)].append(verdict)
            if verdict != "pass":
                self.problems[(day, symbol)].append(f"{check}: {message}")

    def fold(self, rows: list[SymbolVerdict]) -> list[SymbolVerdict]:
        """The verdict rows with every finding of their own (date, symbol), whenever it was found
        (the per-order checks run before the rows exist). A finding whose (date, symbol) has no row
        (an order before the first rebalance) stays in the checks and the run's verdict only."""
        folded = []
        for row in rows:
            key = (row.rebalance_date, row.symbol)
            verdict = worst(self.verdicts.get(key, []))
            problems = tuple(self.problems.get(key, []))
            if verdict != row.verdict or problems != row.problems:
                row = row.model_copy(update={"verdict": verdict, "problems": problems})
            folded.append(row)
        return folded


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
