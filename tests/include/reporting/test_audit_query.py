"""The audit's query parameters (issue #17): every value is accepted only in its exact form, a bad
one falls back to its default with a fixed notice that never repeats it, and links carry only
parsed values. Paging clamps to the pages there are."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest

from include.reporting.audit_table import PAGE_SIZE, AuditQuery, paginate


def test_the_default_query_lists_traded_or_failed_rows_from_page_one() -> None:
    query = AuditQuery.parse({})
    assert query == AuditQuery() and query.rows == "traded_or_failed" and query.page == 1 and not query.notices
    assert query.link() == "?"


def test_valid_values_are_taken() -> None:
    query = AuditQuery.parse(
        {"rows": "all", "symbol": "ZZSA", "from": "2021-01-04", "to": "2021-02-01", "page": "2", "fpage": "3"}
    )
    assert (query.rows, query.symbol, query.start, query.end, query.page, query.findings_page) == (
        "all",
        "ZZSA",
        dt.date(2021, 1, 4),
        dt.date(2021, 2, 1),
        2,
        3,
    )
    assert not query.notices
    assert urllib.parse.parse_qs(query.link()[1:]) == {
        "rows": ["all"],
        "symbol": ["ZZSA"],
        "from": ["2021-01-04"],
        "to": ["2021-02-01"],
        "page": ["2"],
        "fpage": ["3"],
    }


@pytest.mark.parametrize(
    ("params", "field", "default"),
    [
        ({"rows": "<script>alert(1)</script>"}, "rows", "traded_or_failed"),
        ({"rows": "ALL"}, "rows", "traded_or_failed"),
        ({"symbol": '"><img src=x onerror=alert(1)>'}, "symbol", None),
        ({"symbol": "zzsa"}, "symbol", None),  # tickers are upper case, never normalised from a URL
        ({"symbol": "A" * 41}, "symbol", None),
        ({"from": "2021-13-01"}, "start", None),
        ({"from": "2021-02-30"}, "start", None),
        ({"to": "yesterday"}, "end", None),
        ({"to": "2021-02-01T00:00"}, "end", None),
        ({"page": "0"}, "page", 1),
        ({"page": "-1"}, "page", 1),
        ({"page": "1e3"}, "page", 1),
        ({"page": "9999999"}, "page", 1),
        ({"fpage": "two"}, "findings_page", 1),
    ],
)
def test_a_bad_value_falls_back_to_its_default_with_a_notice(
    params: dict[str, str], field: str, default: object
) -> None:
    query = AuditQuery.parse(params)
    assert getattr(query, field) == default
    assert len(query.notices) == 1
    raw = next(iter(params.values()))
    assert raw not in query.notices[0]  # the notice names the parameter, never the value


def test_a_reversed_date_range_is_ignored() -> None:
    query = AuditQuery.parse({"from": "2021-03-01", "to": "2021-02-01"})
    assert (query.start, query.end) == (None, None) and "after the to date" in query.notices[0]


def test_a_symbol_of_another_run_is_dropped() -> None:
    query = AuditQuery.parse({"symbol": "ZZZZ"}).for_symbols(["ZZSA", "ZZSB"])
    assert query.symbol is None and "no symbol of this run" in query.notices[0]
    assert AuditQuery.parse({"symbol": "ZZSA"}).for_symbols(["ZZSA"]).symbol == "ZZSA"


def test_a_filter_change_goes_back_to_page_one() -> None:
    query = AuditQuery(rows="all", page=5, findings_page=2)
    assert query.link(symbol="ZZSA") == "?rows=all&symbol=ZZSA"
    assert query.link(page=6) == "?rows=all&page=6&fpage=2"


def test_paging_clamps_to_the_pages_there_are() -> None:
    items = list(range(250))
    second = paginate(items, 2)
    assert (list(second.rows), second.number, second.count, second.total, second.first) == (
        list(range(PAGE_SIZE, 2 * PAGE_SIZE)),
        2,
        3,
        250,
        101,
    )
    assert paginate(items, 99).number == 3 and list(paginate(items, 99).rows) == list(range(200, 250))
    empty = paginate([], 4)
    assert (empty.number, empty.count, empty.first, list(empty.rows)) == (1, 1, 0, [])
