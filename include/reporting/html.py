"""Standalone HTML for a run's report: no external assets, every value escaped.

Served by the Airflow UI plugin and written next to ``report.json`` as ``report.html``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from include.atomic_io import atomic_write_text
from include.contracts.intent import OrderIntent
from include.contracts.report import ConsistencyReport
from include.reporting.run_view import OrderRow, RunView, load_run_view
from include.run_folder import RunFolder

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2733}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde3ea}
table{border-collapse:collapse;font-size:13px} th,td{padding:4px 10px;border-bottom:1px solid #edf0f3;text-align:right}
th{background:#f4f6f8} td.l,th.l{text-align:left} .muted{color:#6b7785}
.verdict{display:inline-block;padding:2px 8px;border-radius:10px;font-weight:600;font-size:12px}
.pass{background:#d9f2e3;color:#16643a} .fail{background:#fbe0e0;color:#9b1c1c} .warn{background:#fff1cc;color:#7a5600}
.na{background:#eceff3;color:#4a5563} .banner{padding:8px 12px;border-radius:6px;margin:8px 0}
code{font-size:12px} svg{background:#fbfcfd;border:1px solid #e3e8ee}
"""


def verdict_badge(verdict: Any) -> str:
    text = str(verdict or "not checked")
    # A stale or incomplete run shows no verdict at all, in red: it must not pass for a checked one.
    css = {"pass": "pass", "ok": "pass", "fail": "fail", "warn": "warn", "stale": "fail", "incomplete": "fail"}.get(
        text.lower(), "na"
    )
    return f'<span class="verdict {css}" data-verdict="{escape(text)}">{escape(text)}</span>'


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return '<span class="muted">–</span>'
    if isinstance(value, float):
        # Digits, sign, "," and "." (or nan/inf): nothing to escape. Skipped, as a page can list
        # 10^5+ orders of eleven cells each.
        return f"{value:,.{digits}f}"
    return escape(str(value))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, css_id: str, left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    opening = ('<td class="">', '<td class="l">')
    body = []
    for row in rows:
        cells = "".join(
            f"{opening[i < left]}{cell if isinstance(cell, Markup) else _num(cell)}</td>" for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f'<table id="{css_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


class Markup(str):
    """Already-escaped HTML to place in a table cell."""


def bar_chart(items: Sequence[tuple[str, float, float]], *, css_id: str) -> str:
    """Grouped bars of target (blue) against achieved (orange) weight per symbol."""
    if not items:
        return '<p class="muted">No weights to chart.</p>'
    width, height, pad = max(360, 70 * len(items) + 60), 220, 30
    top = max([abs(v) for _, t, a in items for v in (t, a)] + [0.01])
    scale = (height - 2 * pad) / top
    label = "target vs achieved weights"
    parts = [f'<svg id="{css_id}" width="{width}" height="{height}" role="img" aria-label="{label}">']
    base = height - pad
    for i, (symbol, target, achieved) in enumerate(items):
        x = pad + 70 * i
        for j, (value, color, kind) in enumerate(((target, "#3b6fb6", "target"), (achieved, "#e08a2e", "achieved"))):
            h = abs(value) * scale
            parts.append(
                f'<rect class="bar-{kind}" x="{x + 22 * j}" y="{base - h:.1f}" width="20" height="{h:.1f}" '
                f'fill="{color}"><title>{escape(symbol)} {kind} {value:.4f}</title></rect>'
            )
        parts.append(f'<text x="{x}" y="{height - 10}" font-size="11">{escape(symbol)}</text>')
    parts.append(f'<line x1="{pad}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#99a3ad"/>')
    parts.append('<text x="8" y="16" font-size="11" fill="#3b6fb6">■ target</text>')
    parts.append('<text x="80" y="16" font-size="11" fill="#e08a2e">■ achieved</text></svg>')
    return "".join(parts)


def line_chart(points: Sequence[tuple[float, float]], *, css_id: str) -> str:
    if len(points) < 2:
        return '<p class="muted">No equity curve in the Lean results.</p>'
    width, height, pad = 720, 240, 40
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    span_x = (x1 - x0) or 1.0
    span_y = (y1 - y0) or 1.0
    coords = " ".join(
        f"{pad + (x - x0) / span_x * (width - 2 * pad):.1f},{height - pad - (y - y0) / span_y * (height - 2 * pad):.1f}"
        for x, y in points
    )
    first = dt.datetime.fromtimestamp(x0, dt.UTC).date().isoformat()
    last = dt.datetime.fromtimestamp(x1, dt.UTC).date().isoformat()
    return (
        f'<svg id="{css_id}" width="{width}" height="{height}" role="img" aria-label="equity curve">'
        f'<polyline fill="none" stroke="#3b6fb6" stroke-width="1.5" points="{coords}"/>'
        f'<text x="{pad}" y="{height - 12}" font-size="11">{first}</text>'
        f'<text x="{width - pad - 60}" y="{height - 12}" font-size="11">{last}</text>'
        f'<text x="4" y="{pad}" font-size="11">{y1:,.0f}</text>'
        f'<text x="4" y="{height - pad}" font-size="11">{y0:,.0f}</text></svg>'
    )


def _latest_rows(symbols: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verdict rows of the latest rebalance date (what the weights chart shows)."""
    dates = [str(s.get("rebalance_date")) for s in symbols if s.get("rebalance_date")]
    latest = max(dates) if dates else None
    return [s for s in symbols if latest is None or str(s.get("rebalance_date")) == latest]


def _summary(view: RunView, report: dict[str, Any], symbols: list[dict[str, Any]], title_prefix: str) -> list[str]:
    """Title, overall verdict, and the charts of weights and equity."""
    latest = _latest_rows(symbols)
    fresh = view.freshness
    verdict = report.get("verdict") if fresh.state == "current" else fresh.state
    banner = []
    if fresh.state != "current":
        reasons = "".join(f"<li>{escape(p)}</li>" for p in fresh.problems)
        banner = [
            f'<div id="freshness" class="banner fail" data-state="{escape(fresh.state)}"><strong>'
            f"{escape(fresh.state.upper())}</strong>: the results, manifest or report in this folder do not "
            f"belong to its current inputs, so no verdict is shown.<ul>{reasons}</ul></div>"
        ]
    return [
        f"<h1>{escape(title_prefix)} {escape(view.dag_id)} / {escape(view.run_key)}</h1>",
        *banner,
        f'<p>Overall verdict: {verdict_badge(verdict)} <span class="muted">'
        f"policy {escape(str(report.get('policy', '–')))}, {view.intent_rebalances} rebalance(s), "
        f"{len(view.orders)} order(s), {escape(str(report.get('events', 0)))} event(s)</span></p>",
        "<h2>Target vs achieved weights"
        + (f" ({escape(str(latest[0].get('rebalance_date')))})" if latest else "")
        + "</h2>",
        bar_chart(
            [
                (str(s.get("symbol")), float(s.get("target_weight") or 0.0), float(s.get("achieved_weight") or 0.0))
                for s in latest
            ],
            css_id="weights-chart",
        ),
        "<h2>Equity</h2>",
        line_chart(view.equity_curve, css_id="equity-chart"),
    ]


def _order_cells(row: OrderRow) -> tuple[Any, ...]:
    o = row.order
    return (
        o.order_id,
        o.date,
        o.symbol,
        row.intent_side or "–",
        row.target_weight,
        o.quantity,
        o.filled_quantity,
        o.average_fill_price,
        o.fees,
        o.status,
        o.message,
    )


def _orders(view: RunView) -> list[str]:
    return [
        "<h2>Intent → orders → fills</h2>",
        table(
            [
                "order",
                "date",
                "symbol",
                "intent side",
                "target weight",
                "order qty",
                "filled qty",
                "avg fill price",
                "fees",
                "status",
                "message",
            ],
            (_order_cells(row) for row in view.orders),
            css_id="orders",
            left=4,
        ),
    ]


def _verdicts(symbols: list[dict[str, Any]], checks: list[dict[str, Any]]) -> list[str]:
    """Per-symbol verdicts, and the checks' findings (passing checks are counted, not listed)."""
    sections = [
        "<h2>Per-symbol verdicts</h2>",
        table(
            [
                "date",
                "symbol",
                "verdict",
                "target weight",
                "achieved weight",
                "tolerance",
                "expected qty",
                "ordered qty",
                "filled qty",
                "fees",
                "problems",
            ],
            (
                (
                    s.get("rebalance_date") or "–",
                    s.get("symbol"),
                    Markup(verdict_badge(s.get("verdict"))),
                    s.get("target_weight"),
                    s.get("achieved_weight"),
                    s.get("weight_tolerance"),
                    s.get("expected_quantity"),
                    s.get("ordered_quantity"),
                    s.get("filled_quantity"),
                    s.get("fees"),
                    "; ".join(str(p) for p in s.get("problems") or []),
                )
                for s in symbols
            ),
            css_id="verdicts",
            left=3,
        ),
    ]
    if checks:
        # Findings first; passing checks are counted, not listed, to keep the page readable.
        findings = [c for c in checks if c.get("verdict") != "pass"]
        sections += [
            f"<h2>Checks ({len(findings)} finding(s), {len(checks) - len(findings)} passed)</h2>",
            table(
                ["check", "symbol", "verdict", "message"],
                (
                    (c.get("check"), c.get("symbol") or "*", Markup(verdict_badge(c.get("verdict"))), c.get("message"))
                    for c in findings
                ),
                css_id="checks",
                left=4,
            ),
        ]
    return sections


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
    engine = view.manifest.get("engine_identity")
    return [
        "<h2>Manifest</h2>",
        f"<p>Engine: <code>{escape(str(engine))}</code></p>",
        table(["input", "sha256"], rows, css_id="manifest"),
    ]


def _parity(view: RunView) -> list[str]:
    if not view.parity:
        return []
    diffs = [d for d in view.parity.get("orders") or [] if isinstance(d, dict)]
    return [
        "<h2>Backtest ↔ live parity</h2>",
        f"<p>Verdict: {verdict_badge(view.parity.get('verdict'))}</p>",
        table(
            ["date", "symbol", "status", "backtest qty", "live qty", "price diff (bps)", "likely causes", "notes"],
            (
                (
                    d.get("date"),
                    d.get("symbol"),
                    d.get("status"),
                    d.get("backtest_quantity"),
                    d.get("live_quantity"),
                    d.get("price_diff_bps"),
                    ", ".join(d.get("causes") or []),
                    "; ".join(d.get("notes") or []),
                )
                for d in diffs
            ),
            css_id="parity",
            left=3,
        ),
    ]


def render_run_page(view: RunView, *, title_prefix: str = "Lean run") -> str:
    """The whole report of a run: verdicts, intent -> orders -> fills, charts, manifest, parity."""
    report = view.report or {}
    symbols: list[dict[str, Any]] = [s for s in report.get("symbols") or [] if isinstance(s, dict)]
    checks: list[dict[str, Any]] = [c for c in report.get("checks") or [] if isinstance(c, dict)]
    sections = [*_summary(view, report, symbols, title_prefix), *_orders(view), *_verdicts(symbols, checks)]
    if view.statistics:
        sections += [
            "<h2>Lean statistics</h2>",
            table(["statistic", "value"], sorted(view.statistics.items()), css_id="statistics"),
        ]
    sections += [*_manifest(view, report), *_parity(view)]
    body = "\n".join(sections)
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
