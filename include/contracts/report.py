"""`ConsistencyReport` (Lean's orders vs the intent) and `ParityReport` (backtest vs live).

Report versions: 1 had the verdicts only; 2 adds ``order_table``, Lean's orders one by one, so
the report page never re-reads the events files of a checked run; 3 dates every finding
(``CheckResult.date``, the New York session it concerns) where 2 kept a finding's rebalance date in
``details["rebalance_date"]`` and left fill-level findings undated. A version-2 report still reads:
its findings are dated from that detail (undated fill findings stay undated).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Final, Literal

from pydantic import Field, model_validator

from include.contracts._base import FrozenModel

REPORT_SCHEMA_VERSION: Final = 3
PARITY_SCHEMA_VERSION: Final = 1

Verdict = Literal["pass", "warn", "fail"]
Policy = Literal["fail", "warn"]
_RANK: Final = {"pass": 0, "warn": 1, "fail": 2}


def worst(verdicts: list[Verdict] | tuple[Verdict, ...]) -> Verdict:
    """The most severe verdict (``pass`` for none)."""
    result: Verdict = "pass"
    for verdict in verdicts:
        if _RANK[verdict] > _RANK[result]:
            result = verdict
    return result


class CheckResult(FrozenModel):
    """One finding: a named check, for one symbol (or the whole run when ``symbol`` is None), about
    one New York session (an order's finding: its rebalance date; None: about the whole run)."""

    check: str = Field(min_length=1, max_length=64)
    symbol: str | None = None
    date: dt.date | None = None
    verdict: Verdict
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class SymbolVerdict(FrozenModel):
    symbol: str
    rebalance_date: dt.date | None = None
    verdict: Verdict
    in_intent: bool
    target_weight: float | None = None
    achieved_weight: float | None = None
    weight_tolerance: float | None = None
    reference_price: float | None = None
    expected_quantity: float | None = None
    ordered_quantity: float = 0.0
    filled_quantity: float = 0.0
    orders: int = 0
    fees: float = 0.0
    problems: tuple[str, ...] = ()


class OrderTable(FrozenModel):
    """Lean's orders of a run, the i-th entry of every column describing the i-th order.

    Column-wise on purpose: a long backtest has 10^5+ orders, and one model per order would
    cost seconds to build and to write; columns validate and serialise in pydantic-core.
    """

    order_id: tuple[int, ...] = ()
    # The rebalance the check counts the order under: its intent order's, else the latest on or
    # before its first event (None: before the first rebalance).
    rebalance_date: tuple[dt.date | None, ...] = ()
    symbol: tuple[str, ...] = ()
    direction: tuple[str, ...] = ()
    quantity: tuple[float, ...] = ()  # as last ordered (signed)
    status: tuple[str, ...] = ()  # the status of its last event
    filled_quantity: tuple[float, ...] = ()  # signed
    average_fill_price: tuple[float | None, ...] = ()  # None when nothing filled
    fees: tuple[float, ...] = ()
    first_time: tuple[float, ...] = ()  # unix seconds of its first event
    last_fill_time: tuple[float | None, ...] = ()
    message: tuple[str, ...] = ()  # Lean's message on its last event ("" when none)

    @model_validator(mode="after")
    def _same_length(self) -> OrderTable:
        lengths = {name: len(getattr(self, name)) for name in type(self).model_fields}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"order_table columns differ in length: {lengths}")
        return self

    def __len__(self) -> int:
        return len(self.order_id)


class ConsistencyReport(FrozenModel):
    schema_version: Literal[3] = REPORT_SCHEMA_VERSION
    dag_id: str
    run_key: str
    algorithm_id: str | None = None
    policy: Policy
    verdict: Verdict
    generated_at: dt.datetime
    events: int = Field(ge=0)
    orders: int = Field(ge=0)
    symbols: tuple[SymbolVerdict, ...]
    checks: tuple[CheckResult, ...]
    manifest_sha256: str | None = None
    manifest_files: dict[str, str] = Field(default_factory=dict)
    tolerances: dict[str, float] = Field(default_factory=dict)
    order_table: OrderTable = Field(default_factory=OrderTable)

    @model_validator(mode="before")
    @classmethod
    def _upgrade_version_2(cls, data: Any) -> Any:
        """A version-2 report is a version 3 whose findings carry their date in ``details``."""
        if not isinstance(data, dict) or data.get("schema_version") != 2:
            return data
        checks = [
            {**c, "date": (c.get("details") or {}).get("rebalance_date")} if isinstance(c, dict) else c
            for c in data.get("checks") or ()
        ]
        return {**data, "schema_version": REPORT_SCHEMA_VERSION, "checks": checks}

    @model_validator(mode="after")
    def _one_row_per_order(self) -> ConsistencyReport:
        if len(self.order_table) != self.orders:
            raise ValueError(f"order_table has {len(self.order_table)} rows for {self.orders} orders")
        return self

    @property
    def failures(self) -> list[str]:
        return [f"{c.check}[{c.symbol or '*'}]: {c.message}" for c in self.checks if c.verdict == "fail"]


Cause = Literal["fill_timing", "slippage", "price_adjustment", "none"]


class OrderDiff(FrozenModel):
    """One order of the backtest matched (or not) with one of the live run."""

    date: dt.date
    symbol: str
    status: Literal["match", "differs", "only_backtest", "only_live"]
    backtest_order_id: int | None = None
    live_order_id: int | None = None
    backtest_direction: str | None = None
    live_direction: str | None = None
    backtest_quantity: float | None = None
    live_quantity: float | None = None
    backtest_fill_price: float | None = None
    live_fill_price: float | None = None
    price_diff_bps: float | None = None
    time_diff_seconds: float | None = None
    backtest_order_type: str | None = None
    live_order_type: str | None = None
    backtest_price_adjustment: str | None = None
    live_price_adjustment: str | None = None
    causes: tuple[Cause, ...] = ()
    notes: tuple[str, ...] = ()


class ParityReport(FrozenModel):
    schema_version: Literal[1] = PARITY_SCHEMA_VERSION
    backtest_algorithm_id: str
    live_algorithm_id: str
    verdict: Literal["identical", "equivalent", "mismatch"]
    orders: tuple[OrderDiff, ...]
    summary: dict[str, int]


def read_report_head(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The top-level scalars of a ``report.json`` (``verdict``, ``manifest_sha256``...), streamed:
    they come before its order table (10^5+ orders), which is never read."""
    import ijson

    head: dict[str, Any] = {}
    with open(path, "rb") as handle:
        for prefix, event, value in ijson.parse(handle):
            if prefix == "order_table":
                break
            if "." not in prefix and prefix and event in ("string", "number", "boolean", "null"):
                head[prefix] = value
    return head
