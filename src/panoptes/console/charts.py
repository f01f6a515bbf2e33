"""Metric charts as inline SVG, drawn on the server: no chart library, readable without JS."""

from __future__ import annotations

from markupsafe import Markup, escape

from panoptes.console.feeds import Series

WIDTH, HEIGHT, PAD = 600, 160, 28


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def svg_chart(series: Series) -> Markup:
    """A line chart of the series with its range labelled; an empty frame when no data."""
    chart = series.chart
    unit = f" {chart.unit}" if chart.unit else ""
    points = series.points
    if not points:
        label = f"{chart.title}: no data in the last hour"
        return Markup(
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{escape(label)}"><rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" '
            f'class="chart-frame"/><text x="{WIDTH // 2}" y="{HEIGHT // 2}" '
            f'text-anchor="middle">no data yet</text></svg>'
        )
    # Time runs over the span asked for (the last hour), so a device that started
    # reporting a minute ago shows its points at the right, not spread over the chart.
    t0 = (series.start or points[0][0]).timestamp()
    t1 = (series.end or points[-1][0]).timestamp()
    values = [v for _, v in points]
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    span = max(t1 - t0, 1.0)
    xy = [
        (
            PAD + (t.timestamp() - t0) / span * (WIDTH - 2 * PAD),
            HEIGHT - PAD - (v - lo) / (hi - lo) * (HEIGHT - 2 * PAD),
        )
        for t, v in points
    ]
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    # A dot per datapoint: one point alone is no line, and gaps stay visible.
    dots = "".join(f'<circle class="chart-dot" cx="{x:.1f}" cy="{y:.1f}" r="3"/>' for x, y in xy)
    last = values[-1]
    label = (
        f"{chart.title}: latest {_fmt(last)}{unit}, between {_fmt(min(values))} and "
        f"{_fmt(max(values))}{unit} over {len(points)} point{'' if len(points) == 1 else 's'}"
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}">'
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" class="chart-frame"/>'
        f'<text x="4" y="{PAD - 8}">{escape(_fmt(hi))}{escape(unit)}</text>'
        f'<text x="4" y="{HEIGHT - 6}">{escape(_fmt(lo))}{escape(unit)}</text>'
        f'<polyline class="chart-line" fill="none" points="{coords}"/>{dots}</svg>'
    )
