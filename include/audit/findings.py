"""What the consistency check found, as it finds it.

Every finding becomes a :class:`CheckResult` (the report's ``checks``, in the order found); a
finding about a symbol also counts towards that symbol's verdict row, keyed by (rebalance date,
symbol) — or (None, symbol) for fill-level findings, which fold into every row of the symbol.
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
        if day is not None:
            details["rebalance_date"] = day.isoformat()
        self.results.append(
            CheckResult(check=check, symbol=symbol, verdict=verdict, message=message, details=_jsonable(details))
        )
        if symbol is not None:
            self.verdicts[(day, symbol)].append(verdict)
            if verdict != "pass":
                self.problems[(day, symbol)].append(f"{check}: {message}")

    def fold_undated(self, rows: list[SymbolVerdict]) -> list[SymbolVerdict]:
        """The verdict rows with each symbol's fill-level findings folded in."""
        undated = {s: v for (d, s), v in self.verdicts.items() if d is None}
        undated_problems = {s: p for (d, s), p in self.problems.items() if d is None}
        folded = []
        for row in rows:
            extra_v = undated.get(row.symbol, [])
            extra_p = undated_problems.get(row.symbol, [])
            folded.append(
                row.model_copy(
                    update={"verdict": worst([row.verdict, *extra_v]), "problems": row.problems + tuple(extra_p)}
                )
                if extra_v
                else row
            )
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
