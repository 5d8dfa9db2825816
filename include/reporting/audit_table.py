"""The audit part of the report page: intent -> orders -> fills per rebalance date and symbol, and
the checks' findings, filtered and paged on the server (the pages run no script).

The query string is the only input a reader controls. :meth:`AuditQuery.parse` accepts each
parameter only in its exact form (one of a few words, a ticker of the run, an ISO date, a page
number) and falls back to the default otherwise, with a fixed notice that never repeats the value;
links are built from the parsed values only.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, NamedTuple, TypeVar

from include.audit.orders import LeanOrder
from include.contracts._base import SYMBOL_PATTERN
from include.reporting.run_view import RunView

PAGE_SIZE: Final = 100
# Which audit rows to list: the default hides the rows where nothing happened and nothing is wrong
# (a 0 target not held, a holding already at its target), which are most rows of a long backtest.
ROW_FILTERS: Final = {
    "traded_or_failed": "traded or failed",
    "traded": "traded",
    "failed": "failed or warned",
    "all": "all rows",
}
DEFAULT_ROWS: Final = "traded_or_failed"
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PAGE_RE = re.compile(r"[1-9]\d{0,5}")
_FILLED = "filled"
T = TypeVar("T")


@dataclass(frozen=True)
class AuditQuery:
    """The audit table's filters and pages, as validated from the query string."""

    rows: str = DEFAULT_ROWS
    symbol: str | None = None
    start: dt.date | None = None  # "from"
    end: dt.date | None = None  # "to"
    page: int = 1
    findings_page: int = 1  # "fpage": the checks table pages on its own
    notices: tuple[str, ...] = ()

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> AuditQuery:
        """The query of ``params`` (a request's query parameters); unknown names are ignored."""
        notices: list[str] = []

        def take(name: str, pattern: re.Pattern[str], what: str) -> str | None:
            raw = params.get(name)
            if raw is None or raw == "":
                return None
            if isinstance(raw, str) and len(raw) <= 40 and pattern.fullmatch(raw):
                return raw
            notices.append(f"The {name} filter was not {what}; it is ignored.")
            return None

        rows = params.get("rows") or DEFAULT_ROWS
        if rows not in ROW_FILTERS:
            notices.append(f"The rows filter was not one of {', '.join(ROW_FILTERS)}; showing {DEFAULT_ROWS}.")
            rows = DEFAULT_ROWS
        symbol = take("symbol", _SYMBOL_RE, "a ticker")
        start, end = (_date(take(name, _DATE_RE, "a date (YYYY-MM-DD)"), name, notices) for name in ("from", "to"))
        if start is not None and end is not None and start > end:
            notices.append("The from date is after the to date; the date filter is ignored.")
            start = end = None
        page = take("page", _PAGE_RE, "a page number")
        findings_page = take("fpage", _PAGE_RE, "a page number")
        return cls(
            rows=rows,
            symbol=symbol,
            start=start,
            end=end,
            page=int(page) if page else 1,
            findings_page=int(findings_page) if findings_page else 1,
            notices=tuple(notices),
        )

    def for_symbols(self, symbols: Iterable[str]) -> AuditQuery:
        """This query, its symbol dropped (with a notice) when the run has no such symbol."""
        if self.symbol is None or self.symbol in set(symbols):
            return self
        return replace(self, symbol=None, notices=(*self.notices, "The symbol filter names no symbol of this run."))

    def link(self, **changes: Any) -> str:
        """The query string (with ``?``) of this query with ``changes``, defaults left out. Any
        filter change goes back to page 1 unless a page is given."""
        if changes.keys() & {"rows", "symbol", "start", "end"}:
            changes = {"page": 1, "findings_page": 1, **changes}
        query = replace(self, **changes)
        pairs = [
            ("rows", query.rows if query.rows != DEFAULT_ROWS else None),
            ("symbol", query.symbol),
            ("from", query.start.isoformat() if query.start else None),
            ("to", query.end.isoformat() if query.end else None),
            ("page", str(query.page) if query.page != 1 else None),
            ("fpage", str(query.findings_page) if query.findings_page != 1 else None),
        ]
        return "?" + urllib.parse.urlencode([(k, v) for k, v in pairs if v is not None])

    def in_dates(self, day: dt.date | None) -> bool:
        """Whether a row of ``day`` passes the date filter (an undated row always does: it is about
        the whole run or every date, and hiding it could hide a failure)."""
        if day is None:
            return True
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


def _date(raw: str | None, name: str, notices: list[str]) -> dt.date | None:
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        notices.append(f"The {name} filter was not a calendar date; it is ignored.")
        return None


class AuditRow(NamedTuple):
    """One line of intent -> order -> fill: a rebalance's target for a symbol, the order Lean
    placed for it (None when none), and the check's verdict on the pair (None before the check)."""

    date: dt.date | None
    symbol: str
    target_weight: float | None
    expected_quantity: float | None
    order: LeanOrder | None
    achieved_weight: float | None
    verdict: str | None
    problems: str
    traded: bool
    failed: bool


def audit_rows(view: RunView) -> list[AuditRow]:
    """Every (rebalance date, symbol) of the report with its orders (one row per order, the
    verdict repeated), then the orders no verdict row covers (a run not checked yet, an order
    outside the intent), sorted by date, symbol and order."""
    by_key: dict[tuple[dt.date | None, str], list[LeanOrder]] = {}
    weights: dict[tuple[dt.date | None, str], float | None] = {}
    for row in view.orders:
        key = (row.order.rebalance_date, row.order.symbol)
        by_key.setdefault(key, []).append(row.order)
        weights[key] = row.target_weight
    rows: list[AuditRow] = []
    for s in (view.report or {}).get("symbols") or []:
        if not isinstance(s, dict):
            continue
        day = _iso_date(s.get("rebalance_date"))
        symbol = str(s.get("symbol"))
        verdict = str(s.get("verdict")) if s.get("verdict") is not None else None
        problems = "; ".join(str(p) for p in s.get("problems") or [])
        bad = verdict not in (None, "pass")
        fields = (s.get("target_weight"), s.get("expected_quantity"))
        achieved = s.get("achieved_weight")
        orders = by_key.pop((day, symbol), None)
        if not orders:
            traded = bool(s.get("filled_quantity"))
            rows.append(AuditRow(day, symbol, *fields, None, achieved, verdict, problems, traded, bad))
            continue
        for order in orders:
            failed = bad or order.status.lower() != _FILLED
            rows.append(
                AuditRow(day, symbol, *fields, order, achieved, verdict, problems, bool(order.filled_quantity), failed)
            )
    for (day, symbol), orders in by_key.items():
        for order in orders:
            rows.append(
                AuditRow(
                    day or order.date,
                    symbol,
                    weights.get((day, symbol)),
                    None,
                    order,
                    None,
                    None,
                    "",
                    bool(order.filled_quantity),
                    order.status.lower() != _FILLED,
                )
            )
    rows.sort(key=lambda r: (r.date or dt.date.min, r.symbol, r.order.order_id if r.order else -1))
    return rows


def select_rows(rows: Sequence[AuditRow], query: AuditQuery) -> list[AuditRow]:
    keep = {
        "traded_or_failed": lambda r: r.traded or r.failed,
        "traded": lambda r: r.traded,
        "failed": lambda r: r.failed,
        "all": lambda r: True,
    }[query.rows]
    return [
        r for r in rows if keep(r) and (query.symbol is None or r.symbol == query.symbol) and query.in_dates(r.date)
    ]


class Finding(NamedTuple):
    """A check that did not pass."""

    date: dt.date | None
    check: str
    symbol: str | None
    verdict: str
    message: str


def _iso_date(raw: Any) -> dt.date | None:
    """A date as report.json writes it (None when it holds none, or something else)."""
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(str(raw)[:10])
    except ValueError:
        return None


def check_date(check: Mapping[str, Any]) -> dt.date | None:
    """A check's date: its own ``date`` field, else the rebalance date older reports keep in details."""
    details = check.get("details")
    return _iso_date(check.get("date") or (details.get("rebalance_date") if isinstance(details, dict) else None))


def findings(checks: Iterable[Any]) -> list[Finding]:
    """The checks that did not pass, failures first, each group by date."""
    found = [
        Finding(check_date(c), str(c.get("check")), c.get("symbol"), str(c.get("verdict")), str(c.get("message")))
        for c in checks
        if isinstance(c, dict) and c.get("verdict") != "pass"
    ]
    found.sort(key=lambda f: (f.verdict != "fail", f.date or dt.date.min, f.check, f.symbol or ""))
    return found


def select_findings(found: Sequence[Finding], query: AuditQuery) -> list[Finding]:
    return [f for f in found if (query.symbol is None or f.symbol in (None, query.symbol)) and query.in_dates(f.date)]


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows and where it is."""

    rows: Sequence[Any]
    number: int  # 1-based, clamped to the pages there are
    count: int  # pages
    total: int  # rows over all pages
    first: int  # 1-based index of the first row shown (0 when none)


def paginate(items: Sequence[T], number: int, size: int = PAGE_SIZE) -> Page:
    count = max(1, -(-len(items) // size))
    number = min(max(1, number), count)
    start = (number - 1) * size
    shown = items[start : start + size]
    return Page(rows=shown, number=number, count=count, total=len(items), first=start + 1 if shown else 0)
