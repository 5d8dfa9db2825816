"""Standalone HTML for a run's report: a tearsheet as a Lean user reads one, then the audit Lean
lacks. No script and no external asset (the pages' CSP allows neither); every value escaped.

Layout, top to bottom: the header (run, verdict, execution params, snapshot source, Airflow run,
engine), the summary (verdict, findings, key statistics: the first screen), equity against the
benchmark with the drawdown beneath, monthly returns, exposure, target vs achieved weights, then
the audit (intent -> orders -> fills and the checks, filtered and paged by query parameters), all
of Lean's statistics, the manifest and the backtest <-> live parity.

Served by the Airflow UI plugin (``interactive=True``: filter and page links) and written next to
``report.json`` as ``report.html`` (the default view's first page; its links would need the plugin,
so it names the plugin page instead).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any, Final

from include.atomic_io import atomic_write_text
from include.contracts.intent import OrderIntent
from include.contracts.params import EXECUTION_PARAM_FIELDS, ExecutionParams
from include.contracts.report import ConsistencyReport
from include.reporting import charts
from include.reporting.audit_table import (
    ROW_FILTERS,
    AuditQuery,
    AuditRow,
    Finding,
    Page,
    audit_rows,
    findings,
    paginate,
    select_findings,
    select_rows,
)
from include.reporting.performance import (
    MonthlyReturns,
    deepest,
    drawdown,
    exposure_from_weights,
    monthly_returns,
    ny_date,
    rebased,
)
from include.reporting.run_view import RunView, load_run_view, trade_side
from include.run_folder import RunFolder
from include.trading_calendar import NEW_YORK

# Lean's names, as its statistics print them: the summary's tiles, in this order.
KEY_STATISTICS: Final = (
    "Net Profit",
    "Compounding Annual Return",
    "Sharpe Ratio",
    "Probabilistic Sharpe Ratio",
    "Drawdown",
    "Total Fees",
    "Portfolio Turnover",
    "Start Equity",
    "End Equity",
    "Total Orders",
)
# A live run's runtime statistics (Lean's GetAlgorithmRuntimeStatistics names), as tiles, in this order.
LIVE_RUNTIME_TILES: Final = ("Equity", "Holdings", "Net Profit", "Return", "Fees", "Unrealized", "Volume")
# Up to this many findings are listed one by one in the summary; more are grouped by check.
SUMMARY_FINDINGS: Final = 10
PLUGIN_ROUTE: Final = "/lean-airflow/runs"  # the UI plugin's run pages (plugins/lean_airflow/ui.py)

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:16px 24px;color:#1d2733}
h1{font-size:21px;margin:0 0 6px} h2{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #dde3ea}
#summary h2{margin-top:10px}
table{border-collapse:collapse;font-size:13px} th,td{padding:3px 8px;border-bottom:1px solid #edf0f3;text-align:right}
th{background:#f4f6f8} td.l,th.l{text-align:left} .muted{color:#6b7785} .small{font-size:12px}
.verdict{display:inline-block;padding:2px 8px;border-radius:10px;font-weight:600;font-size:12px}
.pass{background:#d9f2e3;color:#16643a} .fail{background:#fbe0e0;color:#9b1c1c} .warn{background:#fff1cc;color:#7a5600}
.na{background:#eceff3;color:#4a5563} .banner{padding:6px 12px;border-radius:6px;margin:6px 0}
dl.ids{display:grid;grid-template-columns:max-content 1fr;gap:1px 12px;font-size:13px;margin:4px 0 8px}
dl.ids dt{color:#6b7785} dl.ids dd{margin:0} .problem{color:#9b1c1c;font-weight:600}
.tiles{display:flex;flex-wrap:wrap;gap:6px}
.tile{border:1px solid #dde3ea;border-radius:6px;padding:4px 10px;min-width:104px}
.tile .k{font-size:11px;color:#6b7785} .tile .v{font-size:17px;font-weight:600}
.chips{font-size:12px;margin:3px 0} .chips a,.chips span.on{display:inline-block;padding:1px 8px;margin:1px 2px;
border:1px solid #c9d2dc;border-radius:10px;color:#1d2733;text-decoration:none}
.chips span.on{background:#1d2733;color:#fff}
.pager{font-size:13px;margin:4px 0} .pager a,.pager span{margin-right:8px}
td.pos{background:#e3f4ea} td.neg{background:#fbe6e6} td a{color:inherit;text-decoration:none}
tr.mismatch td{background:#fbe0e0;color:#9b1c1c} tr.differs td{background:#fff6dd}
td .diff{font-weight:700;color:#9b1c1c}
code{font-size:12px} svg{background:#fbfcfd;border:1px solid #e3e8ee;display:block}
"""


class Markup(str):
    """Already-escaped HTML to place in a table cell."""


def verdict_badge(verdict: Any) -> str:
    text = str(verdict or "not checked")
    # A stale or incomplete run shows no verdict at all, in red: it must not pass for a checked one.
    css = {
        "pass": "pass",
        "ok": "pass",
        "identical": "pass",
        "equivalent": "warn",
        "fail": "fail",
        "warn": "warn",
        "stale": "fail",
        "incomplete": "fail",
        "mismatch": "fail",
    }.get(text.lower(), "na")
    return f'<span class="verdict {css}" data-verdict="{escape(text)}">{escape(text)}</span>'


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return '<span class="muted">–</span>'
    if isinstance(value, float):
        # Digits, sign, "," and "." (or nan/inf): nothing to escape.
        return f"{value:,.{digits}f}"
    return escape(str(value))


def _is_number(value: Any) -> bool:
    # A report or parity file edited by hand may hold anything where a number belongs.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _qty(value: Any) -> Any:
    """A quantity: whole shares without decimals, fractions with four (anything else escaped)."""
    if not _is_number(value):
        return value
    return Markup(f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4f}")


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _num(value)


def _money(value: Any) -> Any:
    return Markup(f"{value:,.2f}") if _is_number(value) else value


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    css_id: str,
    left: int | Collection[int] = 1,
    row_classes: Sequence[str] | None = None,
) -> str:
    """A table; the left-aligned columns are the first ``left`` (an int) or those listed. Cells
    are escaped unless ``Markup``."""
    lefts = set(range(left)) if isinstance(left, int) else set(left)
    head = "".join(
        f'<th class="l">{escape(h)}</th>' if i in lefts else f"<th>{escape(h)}</th>" for i, h in enumerate(headers)
    )
    opening = [('<td class="l">' if i in lefts else "<td>") for i in range(len(headers))]
    body = []
    for n, row in enumerate(rows):
        cells = "".join(
            f"{opening[i]}{cell if isinstance(cell, Markup) else _num(cell)}</td>" for i, cell in enumerate(row)
        )
        css = row_classes[n] if row_classes is not None and n < len(row_classes) else ""
        body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return f'<table id="{css_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _href(link: str, anchor: str) -> str:
    return escape(link + "#" + anchor, quote=True)


# ---------------------------------------------------------------------------- header


def _params(view: RunView) -> str:
    if "params" in view.input_problems:
        return f'<span class="problem">{escape(view.input_problems["params"])}</span>'
    params = view.params
    if params is None:
        return '<span class="muted">no execution params file</span>'
    parts = []
    for name in EXECUTION_PARAM_FIELDS:
        title = ExecutionParams.model_fields[name].title or name
        if name == "risk_overrides":
            overrides = params.risk_overrides.model_dump(mode="json", exclude_defaults=True)
            shown = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "none"
        else:
            shown = str(getattr(params, name))
        parts.append(f"{escape(title)} <strong>{escape(shown)}</strong>")
    return " · ".join(parts)


def _snapshots(view: RunView) -> str:
    if "snapshots" in view.input_problems:
        return f'<span class="problem">{escape(view.input_problems["snapshots"])}</span>'
    snap = view.snapshots
    if snap is None:
        return '<span class="muted">no snapshots file</span>'
    sources = ", ".join(f"<code>{escape(s)}</code>" for s in snap.sources)
    return f'{sources} <span class="muted">{snap.count} snapshot(s), {snap.first} … {snap.last}</span>'


def _airflow(view: RunView) -> str:
    ids = (view.manifest or {}).get("airflow") or {}
    if not isinstance(ids, dict) or not ids.get("run_id"):
        why = "no manifest.json yet" if view.manifest is None else "manifest.json records no Airflow run"
        return f'<span class="muted">none recorded ({why}: a run made outside Airflow, e.g. by the CLI)</span>'
    parts = [f"run_id <code>{escape(str(ids['run_id']))}</code>"]
    for key, label in (("dag_id", "DAG"), ("logical_date", "logical date"), ("task_id", "task"), ("try_number", "try")):
        if ids.get(key) is not None:
            parts.append(f"{label} <code>{escape(str(ids[key]))}</code>")
    return " · ".join(parts) + ' <span class="muted">(as recorded by ingest_events)</span>'


def _engine(view: RunView) -> str:
    manifest = view.manifest or {}
    engine = view.engine.get("engine") or manifest.get("engine_identity")
    parts = [
        f"<code>{escape(str(engine))}</code>"
        if engine
        else '<span class="muted">no engine.json (Lean has not run)</span>'
    ]
    runtime = view.engine.get("runtime") or manifest.get("runtime")
    if runtime:
        parts.append(f"runtime <strong>{escape(str(runtime))}</strong>")
    for key, label in (("lean_version", "Lean"), ("image_digest", "image"), ("image_created", "built")):
        value = view.engine.get(key) or manifest.get(key)
        if value:
            parts.append(f"{label} <code>{escape(str(value))}</code>")
    if "engine" in view.input_problems:
        parts.append(f'<span class="problem">{escape(view.input_problems["engine"])}</span>')
    return " · ".join(parts)


def _header(view: RunView, title_prefix: str) -> list[str]:
    """Which run, and what made it; the verdict follows in the summary (one badge, never two)."""
    fresh = view.freshness
    banner = ""
    if fresh.state != "current":
        reasons = "".join(f"<li>{escape(p)}</li>" for p in fresh.problems)
        banner = (
            f'<div id="freshness" class="banner fail" data-state="{escape(fresh.state)}"><strong>'
            f"{escape(fresh.state.upper())}</strong>: the results, manifest or report in this folder do not "
            f"belong to its current inputs, so no verdict is shown.<ul>{reasons}</ul></div>"
        )
    return [
        f'<header id="run-header"><h1>{escape(title_prefix)} {escape(view.dag_id)} / {escape(view.run_key)}</h1>'
        f"{banner}",
        '<dl class="ids">',
        f'<dt>execution params</dt><dd id="params">{_params(view)}</dd>',
        f'<dt>snapshot source</dt><dd id="snapshot-source">{_snapshots(view)}</dd>',
        f'<dt>Airflow run</dt><dd id="airflow-run">{_airflow(view)}</dd>',
        f'<dt>engine</dt><dd id="engine">{_engine(view)}</dd>',
        "</dl></header>",
    ]


# ---------------------------------------------------------------------------- summary


def _findings_html(view: RunView, found: list[Finding], checks: int) -> str:
    if view.report is None:
        return '<p id="findings" class="muted">No findings: the run has no current consistency report.</p>'
    if not found:
        return f'<p id="findings">No findings: all {checks:,} checks passed.</p>'
    more = f' <a href="#checks-title">All {len(found):,} findings are in Checks below.</a>'
    if len(found) <= SUMMARY_FINDINGS:
        listed = ((f.date, f.check, f.symbol or "*", Markup(verdict_badge(f.verdict)), f.message) for f in found)
        headers = ["date", "check", "symbol", "verdict", "message"]
        return f'<div id="findings">{table(headers, listed, css_id="findings-table", left=5)}</div>'
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in found:
        groups.setdefault((f.verdict, f.check), []).append(f)
    rows: list[tuple[Any, ...]] = []
    for (verdict, check), items in groups.items():
        dates = [f.date for f in items if f.date is not None]
        symbols = sorted({f.symbol or "*" for f in items})
        rows.append(
            (
                check,
                Markup(verdict_badge(verdict)),
                f"{min(dates)} … {max(dates)}" if dates else "–",
                ", ".join(symbols[:6]) + (f" +{len(symbols) - 6}" if len(symbols) > 6 else ""),
                items[0].message,
                len(items),
            )
        )
    headers = ["check", "verdict", "dates", "symbols", "first message", "findings"]
    grouped = table(headers, rows, css_id="findings-table", left=5)
    return f'<div id="findings"><p class="small">{len(found):,} findings by check.{more}</p>{grouped}</div>'


def _tile_row(statistics: dict[str, str], names: Sequence[str], css_id: str) -> str:
    tiles = "".join(
        f'<div class="tile" data-statistic="{escape(name)}"><div class="k">{escape(name)}</div>'
        f'<div class="v">{escape(statistics[name]) if statistics.get(name) else "–"}</div></div>'
        for name in names
    )
    return f'<div id="{css_id}" class="tiles">{tiles}</div>'


def _tiles(view: RunView) -> str:
    if view.live:
        return _live_tiles(view)
    if not view.statistics:
        return '<p id="key-statistics" class="muted">No statistics: Lean wrote no results summary.</p>'
    return _tile_row(view.statistics, KEY_STATISTICS, "key-statistics")


def _live_tiles(view: RunView) -> str:
    """A live run: Lean writes no summary; its LiveResult ``<id>.json`` has the statistics, the
    runtime statistics and the account (cash, holdings) at the end of the session."""
    parts = [
        '<p id="live-note" class="muted small">Live run: Lean writes no results summary; these are the '
        "statistics, runtime statistics and account of its LiveResult (<code>"
        f"{escape(view.run_key)}.json</code>) at the end of the session.</p>"
    ]
    if view.statistics:
        parts.append(_tile_row(view.statistics, KEY_STATISTICS, "key-statistics"))
    elif not view.runtime_statistics:
        parts.append('<p id="key-statistics" class="muted">No statistics in Lean\'s LiveResult.</p>')
    if view.runtime_statistics:
        parts.append(_tile_row(view.runtime_statistics, LIVE_RUNTIME_TILES, "runtime-statistics"))
    if view.live_holdings is not None or view.live_cash is not None:
        cash = f"cash <strong>{_money(view.live_cash)}</strong> USD" if view.live_cash is not None else "cash –"
        rows = sorted((symbol, _qty(quantity)) for symbol, quantity in (view.live_holdings or {}).items())
        holdings = table(["symbol", "quantity"], rows, css_id="live-holdings") if rows else " · no holdings"
        parts.append(f'<div id="live-account"><p class="small">Lean\'s account: {cash}</p>{holdings}</div>')
    return "".join(parts)


def _summary(view: RunView, verdict: Any, found: list[Finding]) -> list[str]:
    report = view.report or {}
    checks = [c for c in report.get("checks") or [] if isinstance(c, dict)]
    facts = [
        f"policy {escape(str(report.get('policy', '–')))}",
        f"{view.intent_rebalances:,} rebalance(s)",
        f"{len(view.orders):,} order(s)",
        f"{_count(report.get('events', 0))} event(s)",
        f"{len(checks):,} check result(s), {len(found):,} finding(s)",
    ]
    parity = ""
    if view.parity:
        parity = f" · backtest ↔ live parity {verdict_badge(view.parity.get('verdict'))}"
    return [
        '<section id="summary">',
        f'<p id="verdict-line">Verdict {verdict_badge(verdict)}{parity} '
        f'<span class="muted">{" · ".join(facts)}</span></p>',
        "<h2>Findings</h2>",
        _findings_html(view, found, len(checks)),
        '<h2>Key statistics <span class="muted small">(Lean\'s)</span></h2>',
        _tiles(view),
        "</section>",
    ]


# ---------------------------------------------------------------------------- performance


def _month_link(query: AuditQuery | None, year: int, month: int) -> str | None:
    if query is None:
        return None
    last = calendar.monthrange(year, month)[1]
    return query.link(start=dt.date(year, month, 1), end=dt.date(year, month, last))


def _monthly_table(returns: MonthlyReturns, query: AuditQuery | None) -> str:
    """Years down, months across, the year's compounded return last; green up, red down."""
    if not returns.months:
        return '<p class="muted">No monthly returns: the equity curve has fewer than two points.</p>'

    def cell(value: float | None, link: str | None = None, bold: bool = False) -> str:
        if value is None:
            return '<td><span class="muted">–</span></td>'
        text = f"{value * 100:.2f}%"
        text = f"<strong>{text}</strong>" if bold else text
        if link is not None:
            text = f'<a href="{_href(link, "audit-title")}">{text}</a>'
        return f'<td class="{"neg" if value < 0 else "pos"}">{text}</td>'

    head = "".join(f"<th>{h}</th>" for h in calendar.month_abbr[1:])
    body = []
    for year in sorted({y for y, _ in returns.months}):
        cells = "".join(
            cell(returns.months.get((year, m)), _month_link(query, year, m) if (year, m) in returns.months else None)
            for m in range(1, 13)
        )
        body.append(f'<tr><td class="l">{year}</td>{cells}{cell(returns.years.get(year), bold=True)}</tr>')
    return (
        f'<table id="monthly-returns"><thead><tr><th class="l">year</th>{head}<th>year</th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _performance(view: RunView, query: AuditQuery | None) -> list[str]:
    equity = view.equity_curve
    benchmark = rebased(view.benchmark_curve, equity)
    if benchmark:
        note = "benchmark rebased to the start equity"
    elif view.benchmark_curve:  # Lean samples 0 when the benchmark's data is missing
        note = "the Lean results' benchmark has no price (every sample is 0: its data is missing)"
    else:
        note = "no benchmark in the Lean results"
    from_lean = len(view.lean_drawdown) >= 2
    dd = view.lean_drawdown if from_lean else drawdown(equity)
    times = [t for t, _ in equity] + [t for t, _ in benchmark] + [t for t, _ in dd]
    t_range = (min(times), max(times)) if len(equity) >= 2 else None
    parts = ['<section id="performance">', "<h2>Equity against the benchmark, drawdown beneath</h2>"]
    parts.append(charts.equity_chart(equity, benchmark, benchmark_note=note, t_range=t_range))
    if t_range is not None:
        parts.append(charts.drawdown_chart(dd, t_range=t_range))
        low = deepest(dd)
        source = "Lean's Drawdown chart" if from_lean else "computed from the equity curve (below its running peak)"
        worst = f"deepest {low[1] * 100:.2f}% on {ny_date(low[0])}" if low else ""
        parts.append(f'<p class="small muted" id="drawdown-note">Drawdown: {source}; {worst}.</p>')
    parts += [
        "<h2>Monthly returns</h2>",
        '<p class="small muted">Month-end equity over the previous month-end (the first month over the start); '
        "the last column compounds the year."
        + (" A month opens its audit rows." if query is not None else "")
        + "</p>",
        _monthly_table(monthly_returns(equity), query),
        "<h2>Exposure</h2>",
        *_exposure(view, t_range),
        *_weights(view),
        "</section>",
    ]
    return parts


def _exposure(view: RunView, t_range: tuple[float, float] | None) -> list[str]:
    if len(view.lean_exposure) >= 2:
        note = "Lean's Exposure chart: long and short holdings as a fraction of the portfolio value."
        chart = charts.exposure_chart(view.lean_exposure, t_range=t_range)
        return [chart, f'<p class="small muted" id="exposure-note">{note}</p>']
    symbols = [s for s in (view.report or {}).get("symbols") or [] if isinstance(s, dict)]
    per_day = exposure_from_weights(symbols)
    points = [(dt.datetime.combine(d, dt.time(16), NEW_YORK).timestamp(), long, short) for d, long, short in per_day]
    note = (
        "Not Lean's Exposure chart (the results have none): the sum of the achieved long weights (and short, "
        "when any) that the consistency check computed right after each rebalance."
    )
    if len(points) == 1:
        _, long, short = points[0]
        one = f"long {long * 100:.1f}%" + (f", short {short * 100:.1f}%" if short else "")
        return [f'<p id="exposure-note">After the one rebalance: {one} <span class="small muted">({note})</span></p>']
    if not points:
        return ['<p class="muted" id="exposure-note">No exposure: the run has no checked rebalance to sum.</p>']
    return [charts.exposure_chart(points, t_range=t_range), f'<p class="small muted" id="exposure-note">{note}</p>']


def _weights(view: RunView) -> list[str]:
    symbols = [s for s in (view.report or {}).get("symbols") or [] if isinstance(s, dict)]
    dates = [str(s.get("rebalance_date")) for s in symbols if s.get("rebalance_date")]
    latest = max(dates) if dates else None
    rows = [s for s in symbols if latest is None or str(s.get("rebalance_date")) == latest]
    return [
        "<h2>Target vs achieved weights" + (f" ({escape(latest)})" if latest else "") + "</h2>",
        charts.bar_chart(
            [
                (str(s.get("symbol")), float(s.get("target_weight") or 0.0), float(s.get("achieved_weight") or 0.0))
                for s in rows
                if all(_is_number(s.get(k) or 0.0) for k in ("target_weight", "achieved_weight"))
            ],
            css_id="weights-chart",
        ),
    ]


# ---------------------------------------------------------------------------- audit


def _chip(label: str, on: bool, link: str | None) -> str:
    if on or link is None:
        return f'<span class="on">{escape(label)}</span>' if on else ""
    return f'<a href="{_href(link, "audit-title")}">{escape(label)}</a>'


def _filters(query: AuditQuery, symbols: Sequence[str], years: Sequence[int]) -> list[str]:
    rows = "".join(_chip(label, query.rows == key, query.link(rows=key)) for key, label in ROW_FILTERS.items())
    syms = _chip("all symbols", query.symbol is None, query.link(symbol=None)) + "".join(
        _chip(s, query.symbol == s, query.link(symbol=s)) for s in symbols
    )
    whole = query.start is None and query.end is None
    dates = _chip("all dates", whole, query.link(start=None, end=None))
    for year in years:
        start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
        dates += _chip(str(year), (query.start, query.end) == (start, end), query.link(start=start, end=end))
    if not whole and not any((query.start, query.end) == (dt.date(y, 1, 1), dt.date(y, 12, 31)) for y in years):
        dates += f'<span class="on">{query.start or "…"} – {query.end or "…"}</span>'
    return [
        f'<div class="chips" id="filter-rows">rows: {rows}</div>',
        f'<div class="chips" id="filter-symbol">symbol: {syms}</div>',
        f'<div class="chips" id="filter-dates">dates: {dates}</div>',
    ]


def _pager(page: Page, query: AuditQuery | None, param: str, anchor: str, css_id: str) -> str:
    if page.count <= 1 or query is None:
        return ""

    def to(number: int, label: str) -> str:
        if number == page.number or not 1 <= number <= page.count:
            return f'<span class="muted">{label}</span>'
        return f'<a href="{_href(query.link(**{param: number}), anchor)}">{label}</a>'

    window = range(max(1, page.number - 3), min(page.count, page.number + 3) + 1)
    numbers = "".join(f"<span><strong>{n}</strong></span>" if n == page.number else to(n, str(n)) for n in window)
    return (
        f'<div class="pager" id="{css_id}">{to(1, "« first")}{to(page.number - 1, "‹ previous")}{numbers}'
        f"{to(page.number + 1, 'next ›')}{to(page.count, 'last »')}"
        f'<span class="muted">page {page.number} of {page.count}</span></div>'
    )


def _audit_cells(row: AuditRow) -> tuple[Any, ...]:
    o = row.order
    message = row.problems
    if o is not None and o.message:
        message = f"{message}; Lean: {o.message}" if message else f"Lean: {o.message}"
    return (
        row.date,
        row.symbol,
        row.target_weight,
        _qty(row.expected_quantity),
        o.order_id if o is not None else None,
        trade_side(o.quantity) if o is not None else None,
        _qty(o.quantity) if o is not None else None,
        _qty(o.filled_quantity) if o is not None else None,
        o.average_fill_price if o is not None else None,
        _money(o.fees) if o is not None else None,
        o.status if o is not None else None,
        row.achieved_weight,
        Markup(verdict_badge(row.verdict)) if row.verdict is not None else None,
        message or None,
    )


AUDIT_COLUMNS: Final = (
    "rebalance date",
    "symbol",
    "target weight",
    "expected qty",
    "order",
    "trade side",
    "order qty",
    "filled qty",
    "avg fill price",
    "fees",
    "order status",
    "achieved weight",
    "verdict",
    "problems / Lean message",
)


def _audit(
    view: RunView, every: list[AuditRow], query: AuditQuery, interactive: bool, found: list[Finding]
) -> list[str]:
    symbols = sorted({r.symbol for r in every})
    chosen = select_rows(every, query)
    page = paginate(chosen, query.page)
    link_query = query if interactive else None
    years = sorted({r.date.year for r in every if r.date is not None})
    scope = f"{ROW_FILTERS[query.rows]}, {escape(query.symbol or 'all symbols')}, " + (
        f"{query.start or '…'} – {query.end or '…'}" if query.start or query.end else "all dates"
    )
    shown = f"rows {page.first:,}–{page.first + len(page.rows) - 1:,} of {page.total:,}" if page.rows else "no rows"
    parts = [
        '<section id="audit-section">',
        '<h2 id="audit-title">Intent → orders → fills</h2>',
        *(f'<div class="banner warn notice">{escape(n)}</div>' for n in query.notices),
        '<p class="small muted">One row per rebalance date and symbol and per Lean order for it. '
        "<strong>target weight</strong>: the intent's weight; <strong>trade side</strong>: what the order did "
        "(the sign of its quantity); <strong>achieved weight</strong>: the holding's weight after the fills, as "
        "the check computed it.</p>",
    ]
    if interactive:
        parts += _filters(query, symbols, years)
    parts.append(f'<p class="small" id="audit-scope">Showing {shown} ({scope}); {len(every):,} rows in all.</p>')
    if not interactive and page.count > 1:
        parts.append(
            f'<p class="small muted" id="static-note">This file is the default view\'s first page. Every page and '
            f"filter is on the Airflow report page, <code>{PLUGIN_ROUTE}/{escape(view.dag_id)}/"
            f"{escape(view.run_key)}</code> (the lean-airflow UI plugin).</p>"
        )
    parts += [
        _pager(page, link_query, "page", "audit-title", "audit-pager"),
        table(AUDIT_COLUMNS, (_audit_cells(r) for r in page.rows), css_id="audit", left=(0, 1, 5, 10, 13)),
        _pager(page, link_query, "page", "audit-title", "audit-pager-bottom"),
        *_checks(view, query, link_query, found),
        "</section>",
    ]
    return parts


def _checks(view: RunView, query: AuditQuery, link_query: AuditQuery | None, found: list[Finding]) -> list[str]:
    report = view.report or {}
    checks = [c for c in report.get("checks") or [] if isinstance(c, dict)]
    if not checks:
        return []
    chosen = select_findings(found, query)
    page = paginate(chosen, query.findings_page)
    filtered = " (filtered as the rows above)" if query.symbol or query.start or query.end else ""
    title = f'<h2 id="checks-title">Checks ({len(found):,} finding(s), {len(checks) - len(found):,} passed)</h2>'
    if not chosen:
        return [title, f'<p id="checks">No check failed or warned{filtered}.</p>']
    return [
        title,
        f'<p class="small muted">Checks that did not pass{filtered}; passing checks are counted, not listed.</p>',
        _pager(page, link_query, "findings_page", "checks-title", "checks-pager"),
        table(
            ["date", "check", "symbol", "verdict", "message"],
            ((f.date, f.check, f.symbol or "*", Markup(verdict_badge(f.verdict)), f.message) for f in page.rows),
            css_id="checks",
            left=5,
        ),
    ]


# ---------------------------------------------------------------------------- the rest


def _statistics(view: RunView) -> list[str]:
    out = []
    if view.statistics:
        source = "of the LiveResult" if view.live else "of the results summary"
        out += [
            f'<h2>Lean statistics <span class="muted small">(every statistic {source})</span></h2>',
            table(["statistic", "value"], sorted(view.statistics.items()), css_id="statistics"),
        ]
    if view.live and view.runtime_statistics:
        out += [
            '<h2>Lean runtime statistics <span class="muted small">(of the LiveResult)</span></h2>',
            table(["statistic", "value"], sorted(view.runtime_statistics.items()), css_id="runtime-statistics-table"),
        ]
    return out


def _manifest(view: RunView, report: dict[str, Any]) -> list[str]:
    if not view.manifest:
        return []
    files = view.manifest.get("files") or {}
    rows = [
        (role, Markup(f"<code>{escape(str((d or {}).get('sha256', d)))}</code>")) for role, d in sorted(files.items())
    ]
    if report.get("manifest_sha256"):
        rows.insert(0, ("manifest.json", Markup(f"<code>{escape(str(report['manifest_sha256']))}</code>")))
    if view.manifest.get("data_sha256"):
        rows.append(("data files (combined)", Markup(f"<code>{escape(str(view.manifest['data_sha256']))}</code>")))
    python = view.manifest.get("python_version")
    return [
        "<h2>Manifest</h2>",
        f'<p class="small">Python <code>{escape(str(python))}</code></p>' if python else "",
        table(["input", "sha256"], rows, css_id="manifest"),
    ]


_PARITY_SIDES: Final = (
    ("direction", "side"),
    ("quantity", "qty"),
    ("fill_price", "fill price"),
    ("order_type", "order type"),
)


def _parity(view: RunView) -> list[str]:
    if not view.parity:
        return []
    diffs = [d for d in view.parity.get("orders") or [] if isinstance(d, dict)]
    rows, classes = [], []
    for d in diffs:
        status = str(d.get("status"))
        only = status.startswith("only_")
        # A mismatch (red): an order on one side only, or another side or quantity; a soft
        # difference (amber): price or time, which the causes column explains.
        hard = only or any(d.get(f"backtest_{key}") != d.get(f"live_{key}") for key in ("direction", "quantity"))
        cells: list[Any] = [d.get("date"), d.get("symbol"), status]
        for side, other in (("backtest", "live"), ("live", "backtest")):
            cells.append(d.get(f"{side}_order_id"))
            for key, _ in _PARITY_SIDES:
                value = d.get(f"{side}_{key}")
                shown = _num(_qty(value)) if key == "quantity" else _num(value, 4)
                differs = not only and value != d.get(f"{other}_{key}")
                cells.append(Markup(f'<span class="diff">{shown}</span>' if differs else shown))
        cells += [d.get("price_diff_bps"), d.get("time_diff_seconds"), ", ".join(d.get("causes") or [])]
        cells.append("; ".join(d.get("notes") or []))
        rows.append(cells)
        classes.append("mismatch" if hard else "differs" if status != "match" else "")
    headers = ["date", "symbol", "status"]
    for side in ("backtest", "live"):
        headers += [f"{side} order", *(f"{side} {label}" for _, label in _PARITY_SIDES)]
    headers += ["price diff (bps)", "time diff (s)", "likely causes", "notes"]
    summary = view.parity.get("summary") or {}
    counts = (
        ", ".join(f"{escape(str(k))} {escape(str(v))}" for k, v in summary.items()) if isinstance(summary, dict) else ""
    )
    return [
        '<section id="parity-section"><h2>Backtest ↔ live parity</h2>',
        f"<p>Verdict {verdict_badge(view.parity.get('verdict'))} "
        f'<span class="muted">backtest <code>{escape(str(view.parity.get("backtest_algorithm_id")))}</code> '
        f"beside live <code>{escape(str(view.parity.get('live_algorithm_id')))}</code>; {counts}. "
        "Red: an order on one side only, or another side or quantity; amber: price or time differs.</span></p>",
        table(headers, rows, css_id="parity", left=3, row_classes=classes),
        "</section>",
    ]


def render_run_page(
    view: RunView, query: AuditQuery | None = None, *, interactive: bool = False, title_prefix: str = "Lean run"
) -> str:
    """The run's report page. ``query``: the audit's filters and pages (default: rows that traded
    or failed, first page); ``interactive``: with filter and page links (the UI plugin), else the
    static ``report.html``."""
    report = view.report or {}
    every = audit_rows(view)
    # A symbol filter of another run is dropped before any link is built from the query.
    query = (query or AuditQuery()).for_symbols({r.symbol for r in every})
    verdict = report.get("verdict") if view.freshness.state == "current" else view.freshness.state
    found = findings(report.get("checks") or [])
    sections = [
        *_header(view, title_prefix),
        *_summary(view, verdict, found),
        *_parity(view),
        *_performance(view, query if interactive else None),
        *_audit(view, every, query, interactive, found),
        *_statistics(view),
        *_manifest(view, report),
    ]
    body = "\n".join(s for s in sections if s)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(view.dag_id)} {escape(view.run_key)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def write_report_html(
    folder: RunFolder, *, report: ConsistencyReport | None = None, intent: OrderIntent | None = None
) -> Path:
    """Render the run's page into ``report.html`` (atomic); ``report``/``intent`` as for load_run_view."""
    path = folder.report_html_path
    atomic_write_text(path, render_run_page(load_run_view(folder, report=report, intent=intent)))
    return path


def render_runs_list(runs: Sequence[dict[str, Any]], *, link_prefix: str) -> str:
    rows = (
        (
            Markup(
                f'<a href="{escape(link_prefix)}/runs/{escape(r["dag_id"])}/{escape(r["run_key"])}">'
                f"{escape(r['dag_id'])}</a>"
            ),
            r["run_key"],
            Markup(verdict_badge(r.get("verdict"))),
        )
        for r in runs
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Lean runs</title>'
        f"<style>{_STYLE}</style></head><body><h1>Lean runs</h1>"
        f"{table(['DAG', 'run key', 'verdict'], rows, css_id='runs', left=2)}</body></html>\n"
    )
