"""Inline SVG charts for the evaluation report: grouped bars and lines, with axes, ticks, a
legend and a hover title on every mark; every text escaped.

Written by hand rather than with a plotting library: the report must be one file with no
external request and no script, and the project has no plotting dependency (matplotlib would add
tens of MB to the development install for three chart shapes, and its SVG embeds fonts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Okabe-Ito: told apart with the common forms of colour blindness.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999", "#000000")
LEFT, RIGHT, TOP, BOTTOM, LEGEND_ROW = 58, 16, 34, 46, 18


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str | None = None


def _nice_step(span: float, ticks: int = 4) -> float:
    raw = span / ticks if span > 0 else 1.0
    power = 10 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw))


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


class _Canvas:
    def __init__(self, title: str, width: int, height: int, legend: Sequence[Series]) -> None:
        self.width, self.height = width, height
        rows = math.ceil(len(legend) / 3)
        self.plot_bottom = height - BOTTOM - rows * LEGEND_ROW
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
            f"<title>{escape(title)}</title>",
            f'<text x="{LEFT}" y="20" class="chart-title">{escape(title)}</text>',
        ]
        for n, series in enumerate(legend):
            x = LEFT + (n % 3) * ((width - LEFT - RIGHT) / 3)
            y = height - rows * LEGEND_ROW + (n // 3) * LEGEND_ROW + 4
            self.parts.append(
                f'<rect x="{x:.1f}" y="{y - 9}" width="10" height="10" fill="{series.color}"/>'
                f'<text x="{x + 14:.1f}" y="{y}" class="legend">{escape(series.name[:48])}</text>'
            )

    def y_axis(self, top: float, label: str) -> tuple[float, float]:
        step = _nice_step(top)
        top = step * math.ceil(top / step) if top > 0 else step
        value = 0.0
        while value <= top + step / 1000:
            y = self.y(value, top)
            self.parts.append(
                f'<line x1="{LEFT}" x2="{self.width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                f'class="grid"/><text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" '
                f'text-anchor="end">{_fmt(value)}</text>'
            )
            value += step
        mid = (TOP + self.plot_bottom) / 2
        self.parts.append(
            f'<text transform="translate(14 {mid:.1f}) rotate(-90)" class="axis" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
        return top, step

    def y(self, value: float, top: float) -> float:
        return self.plot_bottom - (value / top) * (self.plot_bottom - TOP)

    def x_label(self, label: str) -> None:
        self.parts.append(
            f'<text x="{(LEFT + self.width - RIGHT) / 2:.1f}" y="{self.plot_bottom + 34:.1f}" '
            f'class="axis" text-anchor="middle">{escape(label)}</text>'
        )

    def svg(self) -> str:
        return "".join([*self.parts, "</svg>"])


def _colored(series: Sequence[Series]) -> list[Series]:
    return [
        Series(s.name, s.values, s.color or PALETTE[n % len(PALETTE)]) for n, s in enumerate(series)
    ]


def _top(series: Sequence[Series]) -> float:
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    return max(values, default=0.0)


def bar_chart(
    title: str,
    groups: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str,
    x_label: str = "",
    width: int = 640,
    height: int = 300,
) -> str:
    """Grouped bars: one group per label, one bar per series in each group."""
    series = _colored(series)
    canvas = _Canvas(title, width, height, series)
    top, _ = canvas.y_axis(_top(series), y_label)
    slot = (width - LEFT - RIGHT) / max(len(groups), 1)
    bar = slot * 0.8 / max(len(series), 1)
    for g, group in enumerate(groups):
        x0 = LEFT + g * slot + slot * 0.1
        for n, s in enumerate(series):
            value = s.values[g] if g < len(s.values) else None
            if value is None or not math.isfinite(value):
                continue
            y = canvas.y(value, top)
            canvas.parts.append(
                f'<rect x="{x0 + n * bar:.1f}" y="{y:.1f}" width="{max(bar - 1, 1):.1f}" '
                f'height="{canvas.plot_bottom - y:.1f}" fill="{s.color}" class="mark">'
                f"<title>{escape(s.name)}, {escape(group)}: {value:.4g}</title></rect>"
            )
        canvas.parts.append(
            f'<text x="{LEFT + (g + 0.5) * slot:.1f}" y="{canvas.plot_bottom + 15:.1f}" '
            f'class="tick" text-anchor="middle">{escape(group)}</text>'
        )
    canvas.x_label(x_label)
    return canvas.svg()


def line_chart(
    title: str,
    x: Sequence[float],
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 300,
) -> str:
    """Lines over a shared numeric x axis, a dot at every point."""
    series = _colored(series)
    canvas = _Canvas(title, width, height, series)
    top, _ = canvas.y_axis(_top(series), y_label)
    low, high = (min(x), max(x)) if x else (0.0, 1.0)

    def px(value: float) -> float:
        span = (high - low) or 1.0
        return LEFT + (value - low) / span * (width - LEFT - RIGHT)

    step = _nice_step(high - low, 5)
    tick = math.ceil(low / step) * step
    while tick <= high:
        canvas.parts.append(
            f'<text x="{px(tick):.1f}" y="{canvas.plot_bottom + 15:.1f}" class="tick" '
            f'text-anchor="middle">{_fmt(tick)}</text>'
        )
        tick += step
    for s in series:
        points = [
            (px(xv), canvas.y(v, top), xv, v)
            for xv, v in zip(x, s.values, strict=False)
            if v is not None and math.isfinite(v)
        ]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b, _, _ in points)
        canvas.parts.append(
            f'<polyline points="{path}" fill="none" stroke="{s.color}" '
            'stroke-width="2" class="mark"/>'
        )
        for a, b, xv, v in points:
            canvas.parts.append(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{s.color}">'
                f"<title>{escape(s.name)}, {escape(x_label)} {_fmt(xv)}: {v:.4g}</title></circle>"
            )
    canvas.x_label(x_label)
    return canvas.svg()


def hbar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    colors: Sequence[str],
    *,
    x_label: str,
    width: int = 900,
    value_format: str = "{:.4f}",
) -> str:
    """One horizontal bar per label (long names stay readable), its value at its end."""
    label_width, row = 300, 20
    height = TOP + row * len(labels) + 40
    finite = [v for v in values if v is not None and math.isfinite(v)]
    top = max(finite, default=1.0) or 1.0
    span = width - label_width - RIGHT - 50
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="8" y="20" class="chart-title">{escape(title)}</text>',
    ]
    for n, (label, value, color) in enumerate(zip(labels, values, colors, strict=True)):
        y = TOP + n * row
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 14}" class="tick" text-anchor="end">'
            f"{escape(label[:60])}</text>"
        )
        if value is None or not math.isfinite(value):
            continue
        length = value / top * span
        parts.append(
            f'<rect x="{label_width}" y="{y + 3}" width="{max(length, 1):.1f}" height="{row - 6}" '
            f'fill="{color}" class="mark"><title>{escape(label)}: {value:.4g}</title></rect>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 14}" class="tick">'
            f"{escape(value_format.format(value))}</text>"
        )
    parts.append(
        f'<text x="{label_width + span / 2:.1f}" y="{height - 12}" class="axis" '
        f'text-anchor="middle">{escape(x_label)}</text></svg>'
    )
    return "".join(parts)
