"""Inline SVG charts of the report page: no script, no external asset (the pages' CSP allows
neither). Every text is escaped; numbers are formatted here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from html import escape

from include.reporting.performance import Point, ny_date
from include.trading_calendar import NEW_YORK

WIDTH = 900
LEFT, RIGHT = 70, 12  # room for the y labels on the left
MAX_POINTS = 2000  # a longer series is thinned (a pixel column holds no more detail)

Format = Callable[[float], str]


def money(value: float) -> str:
    return f"{value:,.0f}"


def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _thin(points: Sequence[Point]) -> Sequence[Point]:
    if len(points) <= MAX_POINTS:
        return points
    step = -(-len(points) // MAX_POINTS)
    return [*points[::step], points[-1]]


class _Frame:
    """The scales of one chart: time across, values up."""

    def __init__(self, t0: float, t1: float, y0: float, y1: float, height: int, top: int = 22, bottom: int = 22):
        self.t0, self.span_t = t0, (t1 - t0) or 1.0
        self.y0, self.span_y = y0, (y1 - y0) or 1.0
        self.height, self.top, self.bottom = height, top, bottom

    def x(self, t: float) -> float:
        return LEFT + (t - self.t0) / self.span_t * (WIDTH - LEFT - RIGHT)

    def y(self, v: float) -> float:
        return self.height - self.bottom - (v - self.y0) / self.span_y * (self.height - self.top - self.bottom)

    def coords(self, points: Sequence[Point]) -> str:
        return " ".join(f"{self.x(t):.1f},{self.y(v):.1f}" for t, v in _thin(points))


def _axes(frame: _Frame, t1: float, labels: Sequence[tuple[float, str]]) -> list[str]:
    """Year lines and labels along the time axis, the first and last dates, and value labels."""
    parts = []
    first, last = ny_date(frame.t0), ny_date(t1)
    base = frame.height - frame.bottom
    parts.append(f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#99a3ad"/>')
    for year in range(first.year + 1, last.year + 1):
        t = dt.datetime(year, 1, 1, tzinfo=NEW_YORK).timestamp()
        x = frame.x(t)
        parts.append(f'<line x1="{x:.1f}" y1="{frame.top}" x2="{x:.1f}" y2="{base}" stroke="#e3e8ee"/>')
        if LEFT + 80 < x < WIDTH - RIGHT - 80:
            parts.append(f'<text x="{x + 3:.1f}" y="{frame.height - 6}" font-size="11">{year}</text>')
    parts.append(f'<text x="{LEFT}" y="{frame.height - 6}" font-size="11">{first.isoformat()}</text>')
    parts.append(
        f'<text x="{WIDTH - RIGHT}" y="{frame.height - 6}" font-size="11" text-anchor="end">{last.isoformat()}</text>'
    )
    for value, text in labels:
        y = frame.y(value)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eef1f4"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{escape(text)}</text>')
    return parts


def _svg(css_id: str, height: int, label: str, parts: Sequence[str]) -> str:
    return (
        f'<svg id="{css_id}" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )


def equity_chart(
    equity: Sequence[Point],
    benchmark: Sequence[Point],
    *,
    benchmark_note: str,
    t_range: tuple[float, float] | None = None,
    css_id: str = "equity-chart",
) -> str:
    """Equity (blue) and the benchmark (grey, dashed) on one time axis; ``benchmark_note`` says
    what the benchmark line is, or why there is none."""
    if len(equity) < 2:
        return '<p class="muted">No equity curve in the Lean results.</p>'
    height = 250
    values = [v for _, v in equity] + [v for _, v in benchmark]
    t0, t1 = t_range or (min(t for t, _ in equity), max(t for t, _ in equity))
    lo, hi = min(values), max(values)
    frame = _Frame(t0, t1, lo, hi, height)
    labels = [(lo, money(lo)), (hi, money(hi))]
    start = equity[0][1]
    if all(abs(frame.y(start) - frame.y(v)) > 14 for v in (lo, hi)):  # the start, unless it would overprint
        labels.append((start, money(start)))
    parts = _axes(frame, t1, labels)
    if len(benchmark) >= 2:
        parts.append(
            f'<polyline class="benchmark" fill="none" stroke="#8a949e" stroke-width="1.2" stroke-dasharray="4 3" '
            f'points="{frame.coords(benchmark)}"/>'
        )
    parts.append(
        f'<polyline class="equity" fill="none" stroke="#3b6fb6" stroke-width="1.6" points="{frame.coords(equity)}"/>'
    )
    parts.append(f'<text x="{LEFT}" y="14" font-size="11" fill="#3b6fb6">■ equity</text>')
    mark = "╌ " if len(benchmark) >= 2 else ""
    parts.append(f'<text x="{LEFT + 70}" y="14" font-size="11" fill="#6b7785">{mark}{escape(benchmark_note)}</text>')
    return _svg(css_id, height, "equity against the benchmark", parts)


def drawdown_chart(points: Sequence[Point], *, t_range: tuple[float, float], css_id: str = "drawdown-chart") -> str:
    """The drawdown below 0 as a red area, on the equity chart's time axis."""
    if len(points) < 2:
        return ""
    height = 120
    lowest = min(v for _, v in points)
    frame = _Frame(t_range[0], t_range[1], min(lowest, -0.0001), 0.0, height, top=8)
    zero = f"{frame.y(0):.1f}"
    area = f"{frame.x(points[0][0]):.1f},{zero} {frame.coords(points)} {frame.x(points[-1][0]):.1f},{zero}"
    parts = _axes(frame, t_range[1], [(0.0, "0%"), (lowest, percent(lowest))])
    parts.append(f'<polygon class="drawdown" fill="#e9a3a3" stroke="#b8453f" stroke-width="0.8" points="{area}"/>')
    return _svg(css_id, height, "drawdown below the equity's running peak", parts)


def exposure_chart(
    points: Sequence[tuple[float, float, float]],
    *,
    t_range: tuple[float, float] | None = None,
    css_id: str = "exposure-chart",
) -> str:
    """Long exposure (green) and short exposure (red, when any) as fractions of the portfolio, on
    ``t_range`` (the equity chart's time axis) when given."""
    if len(points) < 2:
        return '<p class="muted">No exposure to chart.</p>'
    height = 130
    longs = [(t, long) for t, long, _ in points]
    shorts = [(t, short) for t, _, short in points]
    lo = min(0.0, *(v for _, v in shorts))
    hi = max(1.0, *(v for _, v in longs))
    t0, t1 = t_range or (points[0][0], points[-1][0])
    frame = _Frame(t0, t1, lo, hi, height, top=8)
    labels = [(0.0, "0%"), (hi, percent(hi))] + ([(lo, percent(lo))] if lo < 0 else [])
    parts = _axes(frame, t1, labels)
    parts.append(
        f'<polyline class="long" fill="none" stroke="#2e8b57" stroke-width="1.2" points="{frame.coords(longs)}"/>'
    )
    if lo < 0:
        parts.append(
            f'<polyline class="short" fill="none" stroke="#b8453f" stroke-width="1.2" points="{frame.coords(shorts)}"/>'
        )
    return _svg(css_id, height, "exposure", parts)


def bar_chart(items: Sequence[tuple[str, float, float]], *, css_id: str) -> str:
    """Grouped bars of target (blue) against achieved (orange) weight per symbol."""
    if not items:
        return '<p class="muted">No weights to chart.</p>'
    width, height, pad = max(360, 70 * len(items) + 60), 200, 30
    top = max([abs(v) for _, t, a in items for v in (t, a)] + [0.01])
    scale = (height - 2 * pad) / top
    parts = [
        f'<svg id="{css_id}" width="{width}" height="{height}" role="img" aria-label="target vs achieved weights">'
    ]
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
    parts.append('<text x="8" y="16" font-size="11" fill="#3b6fb6">■ target weight</text>')
    parts.append('<text x="110" y="16" font-size="11" fill="#e08a2e">■ achieved weight</text></svg>')
    return "".join(parts)
