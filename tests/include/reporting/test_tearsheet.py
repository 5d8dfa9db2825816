"""The report page as a tearsheet (issue #17): summary first (verdict, findings, Lean's key
statistics), then equity against the benchmark with the drawdown beneath, monthly returns and
exposure, then the audit, paged and filtered, listing only rows that traded or failed by default.
The header names the params, the snapshot source, the Airflow run and the engine; parity
mismatches are red; every value is escaped."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from include.audit.orders import LeanOrder
from include.contracts.params import ExecutionParams
from include.pipeline import run_chain
from include.reporting.audit_table import PAGE_SIZE, AuditQuery, audit_rows, select_rows
from include.reporting.html import render_run_page
from include.reporting.run_view import OrderRow, RunView, SnapshotSummary, load_run_view
from include.run_folder import RunFolder
from include.trading_calendar import NEW_YORK
from tests.faults.helpers import range_request

DAY = dt.date(2021, 2, 1)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _time(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(16), NEW_YORK).timestamp()


def _order(order_id: int, symbol: str, quantity: float, *, status: str = "filled", message: str = "") -> LeanOrder:
    filled = quantity if status == "filled" else 0.0
    return LeanOrder(
        order_id, DAY, symbol, "buy" if quantity > 0 else "sell", quantity, status, filled, 10.0, 0.05,
        _time(DAY), _time(DAY), message,
    )  # fmt: skip


def _symbol(symbol: str, target: float, achieved: float, filled: float, verdict: str = "pass") -> dict[str, Any]:
    return {
        "symbol": symbol,
        "rebalance_date": DAY.isoformat(),
        "verdict": verdict,
        "in_intent": True,
        "target_weight": target,
        "achieved_weight": achieved,
        "expected_quantity": filled,
        "ordered_quantity": filled,
        "filled_quantity": filled,
        "problems": [] if verdict == "pass" else [f"{symbol} is off"],
    }


def _view(**changes: Any) -> RunView:
    """A checked run of one rebalance: ZZSA sold down to a 0.2 target, ZZSB bought, ZZSC rejected,
    ZZSD untouched at 0."""
    view = RunView(
        dag_id="lean_backtest_range",
        run_key="20210201_20210226",
        run_dir=Path("unused"),
        orders=[
            OrderRow(_order(1, "ZZSA", -50.0), 0.2),
            OrderRow(_order(2, "ZZSB", 30.0), 0.5),
            OrderRow(_order(3, "ZZSC", 40.0, status="invalid", message="Insufficient buying power"), 0.3),
        ],
        intent_rebalances=1,
        report={
            "verdict": "fail",
            "policy": "warn",
            "events": 5,
            "symbols": [
                _symbol("ZZSA", 0.2, 0.2, -50.0),
                _symbol("ZZSB", 0.5, 0.49, 30.0),
                _symbol("ZZSC", 0.3, 0.0, 0.0, "fail"),
                _symbol("ZZSD", 0.0, 0.0, 0.0),
            ],
            "checks": [
                {"check": "terminal_state", "symbol": "ZZSC", "verdict": "fail", "message": "invalid order",
                 "details": {"rebalance_date": "2021-02-01"}},
                {"check": "fees", "symbol": None, "verdict": "pass", "message": "all fees match", "details": {}},
            ],
        },
        equity_curve=[(_time(DAY), 100_000.0), (_time(DAY + dt.timedelta(days=1)), 99_000.0)],
        statistics={"Net Profit": "-1.0%", "Sharpe Ratio": "-0.5", "Total Fees": "$0.15"},
        params=ExecutionParams(),
        snapshots=SnapshotSummary(("trend_rotation(top_n=2,lookback=10)",), 1, DAY, DAY),
        engine={"engine": "lean_local 0.1.0", "runtime": "local"},
    )  # fmt: skip
    for name, value in changes.items():
        setattr(view, name, value)
    return view


def _audit_table(page: str) -> str:
    return page.split('<table id="audit">')[1].split("</table>")[0]


def _audit_symbols(page: str) -> list[str]:
    return re.findall(r'<tr><td class="l">[0-9-]+</td><td class="l">([A-Z0-9.\-]+)</td>', _audit_table(page))


def test_the_summary_comes_before_the_charts_and_the_audit() -> None:
    page = render_run_page(_view(), interactive=True)
    order = [
        'id="run-header"',
        'id="params"',
        'id="verdict-line"',
        'id="findings"',
        'id="key-statistics"',
        'id="equity-chart"',
        'id="drawdown-chart"',
        'id="monthly-returns"',
        'id="exposure-note"',  # one rebalance: no exposure line to draw, the note says so
        '<table id="audit"',
        '<table id="checks"',
        '<table id="statistics"',
    ]
    positions = {marker: page.find(marker) for marker in order}
    assert -1 not in positions.values(), positions
    assert sorted(order, key=positions.__getitem__) == order
    # The findings of the summary name the failed check with its date, before any audit table.
    findings = page.split('id="findings"')[1].split('id="key-statistics"')[0]
    assert "2021-02-01" in findings and "terminal_state" in findings and "all fees match" not in findings
    tiles = page.split('id="key-statistics"')[1].split("</section>")[0]
    for name in ("Net Profit", "Compounding Annual Return", "Sharpe Ratio", "Probabilistic Sharpe Ratio", "Drawdown"):
        assert f'data-statistic="{name}"' in tiles
    assert "-1.0%" in tiles and "$0.15" in tiles
    # A statistic Lean did not print (PSR here) shows a dash, never a made-up value.
    psr = tiles.split('data-statistic="Probabilistic Sharpe Ratio"')[1].split("</div></div>")[0]
    assert psr.endswith(">–")


def test_the_default_view_lists_only_rows_that_traded_or_failed() -> None:
    page = render_run_page(_view())
    assert _audit_symbols(page) == ["ZZSA", "ZZSB", "ZZSC"]  # ZZSD: no order, nothing wrong
    assert "rows 1–3 of 3" in page and "4 rows in all" in page
    every = render_run_page(_view(), AuditQuery(rows="all"))
    assert _audit_symbols(every) == ["ZZSA", "ZZSB", "ZZSC", "ZZSD"]
    assert _audit_symbols(render_run_page(_view(), AuditQuery(rows="failed"))) == ["ZZSC"]
    assert _audit_symbols(render_run_page(_view(), AuditQuery(rows="traded"))) == ["ZZSA", "ZZSB"]


def test_a_sell_shows_its_trade_side_and_its_target_weight() -> None:
    page = render_run_page(_view())
    assert "intent side" not in page
    headers = re.findall(r"<th[^>]*>([^<]+)</th>", _audit_table(page))
    assert headers[:7] == [
        "rebalance date",
        "symbol",
        "target weight",
        "expected qty",
        "order",
        "trade side",
        "order qty",
    ]
    zzsa = _audit_table(page).split('<td class="l">ZZSA</td>')[1].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", zzsa)
    # The target is 0.2 (a positive weight, which the old page called BUY); the order sold 50.
    assert cells[:5] == ["0.2000", "-50", "1", "sell", "-50"]


def test_filters_and_pages_over_a_long_audit() -> None:
    orders = [OrderRow(_order(i, f"Z{i % 3}", 1.0 + i), 0.1) for i in range(1, 251)]
    view = _view(orders=orders, report=None)
    first = render_run_page(view, AuditQuery(), interactive=True)
    assert "rows 1–100 of 250" in first and first.count("<tr><td") - _non_audit_rows(first) == PAGE_SIZE
    assert 'href="?page=2#audit-title"' in first and 'href="?page=3#audit-title"' in first
    last = render_run_page(view, AuditQuery.parse({"page": "3"}), interactive=True)
    assert "rows 201–250 of 250" in last and "page 3 of 3" in last
    z1 = render_run_page(view, AuditQuery.parse({"symbol": "Z1", "page": "2"}), interactive=True)
    assert "rows 1–84 of 84" in z1  # 84 orders of Z1: one page, clamped
    assert set(_audit_symbols(z1)) == {"Z1"}
    # Every link keeps the other filters; a filter chip goes back to the first page.
    assert 'href="?rows=all&amp;symbol=Z1#audit-title"' in z1
    dated = render_run_page(view, AuditQuery.parse({"from": "2021-02-02"}), interactive=True)
    assert "no rows" in dated and _audit_symbols(dated) == []


def test_the_checks_table_pages_on_its_own() -> None:
    view = _view()
    assert view.report is not None
    view.report["checks"] = [
        {"check": "achieved_weight", "symbol": "ZZSB", "verdict": "warn", "message": f"off by {i}",
         "date": (DAY + dt.timedelta(days=i)).isoformat()}
        for i in range(150)
    ]  # fmt: skip
    first = render_run_page(view, interactive=True)
    checks = first.split('<table id="checks">')[1].split("</table>")[0]
    assert checks.count("<tr><td") == PAGE_SIZE and 'href="?fpage=2#checks-title"' in first
    # Grouped in the summary: 150 findings are one line per check, with their dates.
    summary = first.split('id="findings"')[1].split('id="key-statistics"')[0]
    assert "2021-02-01 … 2021-06-30" in summary and "<td>150</td>" in summary
    second = render_run_page(view, AuditQuery.parse({"fpage": "2"}), interactive=True)
    assert second.split('<table id="checks">')[1].split("</table>")[0].count("<tr><td") == 50
    # The date filter applies to the checks too.
    march = render_run_page(view, AuditQuery.parse({"from": "2021-03-01", "to": "2021-03-31"}), interactive=True)
    assert march.split('<table id="checks">')[1].split("</table>")[0].count("<tr><td") == 31


def _non_audit_rows(page: str) -> int:
    return page.count("<tr><td") - _audit_table(page).count("<tr><td")


def test_bad_query_values_are_noticed_and_never_echoed() -> None:
    query = AuditQuery.parse({"rows": HOSTILE, "symbol": "ZZZZ", "from": HOSTILE, "page": HOSTILE})
    page = render_run_page(_view(), query, interactive=True)
    assert "<script" not in page and "<img" not in page and "ZZZZ" not in page and "alert" not in page
    assert page.count('class="banner warn notice"') == 4  # rows, from, page, and the unknown symbol
    assert _audit_symbols(page) == ["ZZSA", "ZZSB", "ZZSC"]  # the defaults


def test_the_static_page_has_no_links_and_names_the_plugin_page() -> None:
    orders = [OrderRow(_order(i, "ZZSA", 1.0), 0.1) for i in range(1, 151)]
    page = render_run_page(_view(orders=orders, report=None))
    assert 'href="?' not in page and 'id="filter-rows"' not in page
    assert "/lean-airflow/runs/lean_backtest_range/20210201_20210226" in page and 'id="static-note"' in page


def test_the_header_names_the_airflow_run_when_the_manifest_records_one() -> None:
    manifest = {
        "engine_identity": "lean_local 0.1.0",
        "airflow": {"dag_id": "lean_backtest_range", "run_id": "manual__2021-03-01T00:00:00+00:00",
                    "task_id": "ingest_events", "try_number": 2, "logical_date": "2021-02-26 21:00:00+00:00"},
        "files": {},
    }  # fmt: skip
    header = render_run_page(_view(manifest=manifest)).split("</header>")[0]
    airflow = header.split('id="airflow-run"')[1].split("</dd>")[0]
    assert "manual__2021-03-01T00:00:00+00:00" in airflow and "ingest_events" in airflow and "try" in airflow
    assert "none recorded" in render_run_page(_view(manifest={"airflow": {}})).split("</header>")[0]


def test_parity_mismatches_are_red() -> None:
    parity = {
        "verdict": "mismatch",
        "backtest_algorithm_id": "20210301",
        "live_algorithm_id": "L-20210301",
        "summary": {"match": 1, "differs": 2, "only_live": 1},
        "orders": [
            {"date": "2021-03-01", "symbol": "ZZSA", "status": "match", "backtest_quantity": 5, "live_quantity": 5,
             "backtest_direction": "buy", "live_direction": "buy"},
            {"date": "2021-03-01", "symbol": "ZZSB", "status": "differs", "backtest_quantity": 5, "live_quantity": 7,
             "backtest_direction": "buy", "live_direction": "buy"},
            {"date": "2021-03-01", "symbol": "ZZSC", "status": "differs", "backtest_quantity": 5, "live_quantity": 5,
             "backtest_direction": "buy", "live_direction": "buy", "backtest_fill_price": 10.0,
             "live_fill_price": 10.2, "causes": ["slippage"]},
            {"date": "2021-03-01", "symbol": "ZZSD", "status": "only_live", "live_quantity": -3,
             "live_direction": "sell"},
        ],
    }  # fmt: skip
    page = render_run_page(_view(parity=parity))
    table = page.split('<table id="parity">')[1].split("</table>")[0]
    rows = re.findall(r"<tr(?: class=\"(\w+)\")?><td class=\"l\">2021-03-01</td><td class=\"l\">(\w+)</td>", table)
    assert rows == [("", "ZZSA"), ("mismatch", "ZZSB"), ("differs", "ZZSC"), ("mismatch", "ZZSD")]
    assert '<span class="diff">7</span>' in table  # the differing quantity itself
    assert "tr.mismatch td{background:#fbe0e0;color:#9b1c1c}" in page
    summary = page.split('id="verdict-line"')[1].split("</p>")[0]
    assert 'data-verdict="mismatch"' in summary  # beside the run's own verdict, on the first screen


def test_every_new_field_is_escaped() -> None:
    hostile_order = LeanOrder(9, DAY, HOSTILE, "buy", 1.0, HOSTILE, 1.0, 1.0, 0.0, _time(DAY), None, HOSTILE)
    view = _view(
        dag_id=HOSTILE,
        orders=[OrderRow(hostile_order, 0.1)],
        report={
            "verdict": HOSTILE,
            "policy": HOSTILE,
            "events": HOSTILE,
            "symbols": [
                {**_symbol(HOSTILE, 0.1, 0.1, 1.0, HOSTILE), "problems": [HOSTILE]},
                # A report edited by hand: text where numbers and dates belong.
                {**_symbol("ZZSA", 0.1, 0.1, 1.0), "target_weight": HOSTILE, "achieved_weight": HOSTILE,
                 "expected_quantity": HOSTILE, "filled_quantity": HOSTILE, "rebalance_date": HOSTILE},
            ],
            "checks": [{"check": HOSTILE, "symbol": HOSTILE, "verdict": HOSTILE, "message": HOSTILE,
                        "date": HOSTILE, "details": {"rebalance_date": HOSTILE}}],
        },
        statistics={HOSTILE: HOSTILE, "Net Profit": HOSTILE},
        snapshots=SnapshotSummary((HOSTILE,), 1, DAY, DAY),
        engine={"engine": HOSTILE, "runtime": HOSTILE, "lean_version": HOSTILE, "image_digest": HOSTILE},
        input_problems={"params": HOSTILE},
        manifest={"airflow": {"run_id": HOSTILE, "task_id": HOSTILE, "logical_date": HOSTILE}, "files": {},
                  "python_version": HOSTILE},
        parity={"verdict": HOSTILE, "backtest_algorithm_id": HOSTILE, "live_algorithm_id": HOSTILE,
                "summary": {HOSTILE: HOSTILE},
                "orders": [{"date": HOSTILE, "symbol": HOSTILE, "status": HOSTILE, "backtest_direction": HOSTILE,
                            "backtest_quantity": HOSTILE, "live_fill_price": HOSTILE, "causes": [HOSTILE],
                            "notes": [HOSTILE]}]},
    )  # fmt: skip
    for page in (render_run_page(view), render_run_page(view, AuditQuery(rows="all"), interactive=True)):
        assert "<script" not in page and "<img" not in page
        assert page.count("&lt;script&gt;") >= 20


@pytest.fixture
def two_month_run(chain_env: Path) -> RunFolder:
    """A real range run over two months (the local runtime on the bundled data)."""
    result = run_chain(range_request(start="2021-02-01", end="2021-03-31"))
    assert result.outputs["consistency_check"]["verdict"] == "pass"
    return result.folder


def test_a_real_run_reads_as_a_tearsheet(two_month_run: RunFolder) -> None:
    folder = two_month_run
    view = load_run_view(folder)
    page = render_run_page(view, interactive=True)
    header = page.split("</header>")[0]
    # The header: params, snapshot source (its provider), Airflow run (none: the CLI path) and engine.
    assert "Fee (bps of notional) <strong>1.0</strong>" in header
    assert "trend_rotation(top_n=2,lookback=10)" in header
    assert "none recorded" in header and "lean_local" in header
    assert str(folder.path) not in page  # no machine path
    # Default view: only traded or failed rows, as the audit rows say.
    every = audit_rows(view)
    shown = select_rows(every, AuditQuery())
    assert 0 < len(shown) < len(every)
    assert all(r.traded or r.failed for r in shown)
    assert f"{len(every):,} rows in all" in page
    # Monthly returns: February and March, from the equity curve.
    months = page.split('id="monthly-returns"')[1].split("</table>")[0]
    assert '<td class="l">2021</td>' in months and months.count("%</a>") >= 2
    # report.html: the same page, default view, without links.
    static = folder.report_html_path.read_text(encoding="utf-8")
    assert 'href="?' not in static and static.count('<table id="audit">') == 1
    assert _audit_symbols(static) == _audit_symbols(render_run_page(view))


def test_leans_benchmark_drawdown_and_exposure_charts_are_used_when_present(two_month_run: RunFolder) -> None:
    folder = two_month_run
    path = folder.results_dir / f"{folder.algorithm_id}.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    times = [v[0] for v in result["charts"]["Strategy Equity"]["series"]["Equity"]["values"]]

    def page_with(**charts: Any) -> tuple[RunView, str]:
        for name in ("Benchmark", "Drawdown", "Exposure"):
            result["charts"].pop(name, None)
        result["charts"].update(charts)
        path.write_text(json.dumps(result), encoding="utf-8")
        view = load_run_view(folder)
        return view, render_run_page(view)

    _, page = page_with()
    assert "no benchmark in the Lean results" in page and "computed from the equity curve" in page
    assert "Not Lean's Exposure chart" in page and 'class="benchmark"' not in page
    # Lean samples a benchmark without data as 0: there is a series, but no price to draw.
    _, page = page_with(Benchmark={"series": {"Benchmark": {"values": [[t, 0.0] for t in times]}}})
    assert "has no price (every sample is 0" in page and 'class="benchmark"' not in page
    view, page = page_with(
        Benchmark={"series": {"Benchmark": {"values": [[t, 300.0 + i] for i, t in enumerate(times)]}}},
        Drawdown={"series": {"Equity Drawdown": {"values": [[t, -1.5] for t in times]}}},
        Exposure={
            "series": {
                "Equity - Long Ratio": {"values": [[t, 0.9] for t in times]},
                "Equity - Short Ratio": {"values": [[t, -0.1] for t in times]},
            }
        },
    )
    assert view.benchmark_curve[0] == (times[0], 300.0) and view.lean_drawdown[0] == (times[0], -0.015)
    assert view.lean_exposure[0] == (times[0], 0.9, -0.1)
    assert page.count('class="benchmark"') == 1 and "benchmark rebased to the start equity" in page
    assert "Lean's Drawdown chart; deepest -1.50%" in page
    assert "Lean's Exposure chart" in page and 'class="short"' in page


def test_unreadable_inputs_are_named_in_the_header(two_month_run: RunFolder) -> None:
    folder = two_month_run
    folder.params_path.write_text('{"lot_size": -5}', encoding="utf-8")
    folder.snapshots_path.write_text("{}\n", encoding="utf-8")
    view = load_run_view(folder)
    assert set(view.input_problems) == {"params", "snapshots"}
    header = render_run_page(view).split("</header>")[0]
    assert header.count('class="problem"') == 2 and "lot_size" in header
    assert str(folder.path) not in header  # the file is named, the machine path left out
