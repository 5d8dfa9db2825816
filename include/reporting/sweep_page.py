"""The comparison page of a sweep (``include.sweep``): the ranking, a plot of the ranking statistic per
point and a table of Lean's statistics per point, failed points marked.

Static HTML with the report page's style and an inline SVG (no script, nothing fetched: the plugin's
Content-Security-Policy allows nothing else). Every text is escaped here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

from include.contracts.sweep import ComparisonRow, SweepComparison
from include.reporting.html import _STYLE, KEY_STATISTICS, PLUGIN_ROUTE, Markup, table, verdict_badge

_SWEEP_STYLE = (
    "tr.failed td{background:#fbe0e0;color:#9b1c1c} tr.best td{background:#e3f4ea}"
    " #sweep-plot .failed{fill:#c9d2dc} .bad{color:#9b1c1c;font-weight:600}"
)
PLOT_WIDTH = 900
PLOT_HEIGHT = 260
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 70, 12, 24, 34


def _label(row: ComparisonRow) -> str:
    return f"p{row.index:02d}"


def _overrides(row: ComparisonRow) -> str:
    return ", ".join(f"{name}={json.dumps(value)}" for name, value in sorted(row.overrides.items())) or "(form values)"


def _link(row: ComparisonRow, dag_id: str, runs_prefix: str) -> Markup:
    href = f"{runs_prefix}/{dag_id}/{row.run_key}"
    return Markup(f'<a href="{escape(href, quote=True)}">{escape(row.run_key)}</a>')


def ranking_plot(comparison: SweepComparison) -> str:
    """One bar per point, in point order: the ranking statistic (green: the best; grey and ``failed``: a point
    without a value). The zero line is drawn when the values straddle it."""
    rows = comparison.rows
    values = [r.rank_value for r in rows if r.rank_value is not None]
    if not values:
        return f'<p id="sweep-plot" class="muted">No point has a value of {escape(comparison.rank_by)} to plot.</p>'
    lo, hi = min(0.0, *values), max(0.0, *values)
    span = (hi - lo) or 1.0
    inner_h = PLOT_HEIGHT - _PAD_TOP - _PAD_BOTTOM
    slot = (PLOT_WIDTH - _PAD_LEFT - _PAD_RIGHT) / len(rows)
    bar_w = max(2.0, min(40.0, slot * 0.7))

    def y(value: float) -> float:
        return _PAD_TOP + (hi - value) / span * inner_h

    zero = y(0.0)
    parts = [
        f'<svg id="sweep-plot" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" viewBox="0 0 {PLOT_WIDTH} {PLOT_HEIGHT}" '
        f'role="img" aria-label="{escape(comparison.rank_by, quote=True)} per point">',
        f'<text x="{_PAD_LEFT}" y="14" font-size="11" fill="#3b6fb6">■ {escape(comparison.rank_by)} per point'
        f"{' (lower is better)' if not comparison.higher_is_better else ''}</text>",
        f'<line x1="{_PAD_LEFT}" y1="{zero:.1f}" x2="{PLOT_WIDTH - _PAD_RIGHT}" y2="{zero:.1f}" stroke="#99a3ad"/>',
    ]
    for value in {lo, hi}:
        parts.append(
            f'<text x="{_PAD_LEFT - 6}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end">{value:,.4g}</text>'
        )
    for i, row in enumerate(rows):
        x = _PAD_LEFT + i * slot + (slot - bar_w) / 2
        label = escape(_label(row))
        if row.rank_value is None:
            parts.append(
                f'<rect class="bar failed" data-run-key="{escape(row.run_key)}" x="{x:.1f}" y="{zero - 3:.1f}" '
                f'width="{bar_w:.1f}" height="6"><title>{label} {escape(row.run_key)}: failed</title></rect>'
            )
        else:
            top, bottom = sorted((y(row.rank_value), zero))
            color = "#2e8b57" if row.rank == 1 else "#3b6fb6"
            parts.append(
                f'<rect class="bar" data-run-key="{escape(row.run_key)}" x="{x:.1f}" y="{top:.1f}" width="{bar_w:.1f}" '
                f'height="{max(bottom - top, 1.0):.1f}" fill="{color}"><title>{label} {escape(row.run_key)}: '
                f"{row.rank_value:,.4g} (rank {row.rank})</title></rect>"
            )
        if len(rows) <= 40 or i % max(1, len(rows) // 20) == 0:
            centre = x + bar_w / 2
            parts.append(
                f'<text x="{centre:.1f}" y="{PLOT_HEIGHT - 12}" font-size="10" text-anchor="middle">{label}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _statistic_columns(comparison: SweepComparison) -> list[str]:
    columns = list(KEY_STATISTICS)
    if comparison.rank_by not in columns:
        columns.insert(0, comparison.rank_by)
    return columns


def _ranking(comparison: SweepComparison, runs_prefix: str) -> str:
    ranked = sorted((r for r in comparison.rows if r.rank is not None), key=lambda r: (r.rank or 0, r.index))
    if not ranked:
        return '<p id="ranking" class="muted">No point finished with a value to rank.</p>'
    rows = [
        (r.rank, _link(r, comparison.dag_id, runs_prefix), _overrides(r), r.statistics.get(comparison.rank_by))
        for r in ranked
    ]
    classes = ["best" if r.rank == 1 else "" for r in ranked]
    return table(
        ["rank", "run", "values", comparison.rank_by], rows, css_id="ranking", left=(1, 2), row_classes=classes
    )


def _comparison_table(comparison: SweepComparison, runs_prefix: str) -> str:
    stats = _statistic_columns(comparison)
    headers = ["point", "run", "window", *comparison.grid_names, "status", "verdict", "rank", *stats]
    body: list[Sequence[object]] = []
    classes: list[str] = []
    for r in comparison.rows:
        status = Markup(
            '<span class="bad" data-status="failed">failed'
            + (f" at {escape(r.failed_task)}" if r.failed_task else "")
            + "</span>"
            if r.status == "failed"
            else '<span data-status="ok">ok</span>'
        )
        body.append(
            (
                _label(r),
                _link(r, comparison.dag_id, runs_prefix),
                f"{r.start_date} .. {r.end_date}",
                *(json.dumps(r.overrides.get(name)) for name in comparison.grid_names),
                status,
                Markup(verdict_badge(r.verdict)) if r.verdict else None,
                r.rank,
                *(r.statistics.get(name) for name in stats),
            )
        )
        classes.append("failed" if r.status == "failed" else "best" if r.rank == 1 else "")
    left = (0, 1, 2, *range(3, 3 + len(comparison.grid_names)), 3 + len(comparison.grid_names))
    return table(headers, body, css_id="comparison", left=left, row_classes=classes)


def _failures(comparison: SweepComparison) -> str:
    failed = [r for r in comparison.rows if r.status == "failed"]
    if not failed:
        return ""
    items = "".join(
        f'<li data-run-key="{escape(r.run_key)}"><code>{escape(r.run_key)}</code> ({escape(_overrides(r))}): '
        f"{escape(r.problem or 'failed')}</li>"
        for r in failed
    )
    return f'<section id="failed-points"><h2>Failed points</h2><ul>{items}</ul></section>'


def render_comparison_page(comparison: SweepComparison, *, runs_prefix: str = PLUGIN_ROUTE) -> str:
    """The sweep's page; ``runs_prefix``: where the points' run pages are (the plugin's ``/runs``)."""
    ok = sum(1 for r in comparison.rows if r.status == "ok")
    failed = len(comparison.rows) - ok
    direction = "highest first" if comparison.higher_is_better else "lowest first"
    summary = (
        f'<p id="sweep-summary">{len(comparison.rows)} points over {comparison.start_date} .. {comparison.end_date}: '
        f'<span data-ok="{ok}">{ok} ok</span>, <span class="{"bad" if failed else ""}" data-failed="{failed}">'
        f"{failed} failed</span>. Ranked by <b>{escape(comparison.rank_by)}</b> ({direction}).</p>"
    )
    grid = ", ".join(escape(name) for name in comparison.grid_names) or "none (walk-forward windows only)"
    body = "\n".join(
        part
        for part in (
            f"<h1>Lean sweep <code>{escape(comparison.sweep_hash)}</code></h1>",
            summary,
            f'<p class="muted small">DAG <code>{escape(comparison.dag_id)}</code>; grid: {grid}.</p>',
            "<h2>Ranking</h2>",
            _ranking(comparison, runs_prefix),
            f"<h2>{escape(comparison.rank_by)} per point</h2>",
            ranking_plot(comparison),
            '<h2>Lean statistics per point <span class="muted small">(as Lean printed them)</span></h2>',
            _comparison_table(comparison, runs_prefix),
            _failures(comparison),
        )
        if part
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Lean sweep {escape(comparison.sweep_hash)}</title><style>{_STYLE}{_SWEEP_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )
