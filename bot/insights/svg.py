"""Charts as inline SVG strings drawn by warroom: no script, no font file, no external link,
every label escaped, so the page's strict CSP holds."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_RIGHT, PAD_BOTTOM, PAD_TOP = 48, 24, 36, 16
FONT = 'font-family="sans-serif" font-size="11"'


def _axis(maximum: float) -> float:
    """A round top for the y axis, at least 1."""
    return max(float(maximum), 1.0)


def bar_chart(title: str, labels: list[str], values: list[float], *, unit: str = "") -> Markup:
    """A vertical bar chart, one bar per label, its value written above the bar."""
    top = _axis(max(values, default=0))
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(len(labels), 1)
    parts = [_open(title)]
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot_h * value / top
        x = PAD_LEFT + index * slot + slot * 0.15
        y = PAD_TOP + plot_h - height
        shown = f"{value:g}{unit}"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{height:.1f}" fill="#1264a3"><title>{escape(label)}: {escape(shown)}'
            "</title></rect>"
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle" {FONT}>'
            f"{escape(shown)}</text>"
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - PAD_BOTTOM + 14}" '
            f'text-anchor="middle" {FONT}>{escape(label)}</text>'
        )
    parts.append(_baseline())
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(title: str, labels: list[str], series: dict[str, list[float]]) -> Markup:
    """One polyline per series over the same labels (weeks), with a legend."""
    colours = ("#1264a3", "#2bac76", "#e01e5a", "#ecb22e")
    top = _axis(max((v for values in series.values() for v in values), default=0))
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(labels) - 1, 1)
    parts = [_open(title)]
    for number, (name, values) in enumerate(series.items()):
        colour = colours[number % len(colours)]
        points = " ".join(
            f"{PAD_LEFT + i * step:.1f},{PAD_TOP + plot_h - plot_h * v / top:.1f}"
            for i, v in enumerate(values)
        )
        parts.append(
            f'<polyline class="line" points="{points}" fill="none" stroke="{colour}" '
            f'stroke-width="2"><title>{escape(name)}</title></polyline>'
        )
        parts.append(
            f'<text x="{PAD_LEFT + 8 + number * 110}" y="{PAD_TOP - 3}" fill="{colour}" '
            f"{FONT}>{escape(name)}</text>"
        )
    for i, label in enumerate(labels):
        parts.append(
            f'<text x="{PAD_LEFT + i * step:.1f}" y="{HEIGHT - PAD_BOTTOM + 14}" '
            f'text-anchor="middle" {FONT}>{escape(label)}</text>'
        )
    parts.append(
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 4}" text-anchor="end" {FONT}>{top:g}</text>'
    )
    parts.append(_baseline())
    parts.append("</svg>")
    return Markup("".join(parts))


def _open(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def _baseline() -> str:
    y = HEIGHT - PAD_BOTTOM
    return f'<line x1="{PAD_LEFT}" y1="{y}" x2="{WIDTH - PAD_RIGHT}" y2="{y}" stroke="#616061"/>'
