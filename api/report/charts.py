"""Inline SVG charts: no plotting library, and they print sharp in the PDF."""

from __future__ import annotations

from html import escape

PALETTE = ("#1f5fa8", "#e07b28", "#3a9a4a", "#b23a48", "#7b5ea7", "#8c8c8c", "#2aa1a8")


def bars(
    labels: list[str],
    series: dict[str, list[float | None]],
    *,
    title: str,
    percent: bool = True,
    width: int = 720,
    height: int = 260,
) -> str:
    """Grouped vertical bars: one group per label, one bar per series; None draws nothing."""
    left, right, top, bottom = 52, 12, 28, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for vs in series.values() for v in vs if v is not None]
    top_value = max([*values, 1e-9])
    if percent:
        top_value = max(1.0, top_value)
    n, k = max(1, len(labels)), max(1, len(series))
    group_w = plot_w / n
    bar_w = max(1.0, group_w * 0.8 / k)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for i in range(5):
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        text = f"{value * 100:.0f}%" if percent else f"{value:.1f}"
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{text}</text>'
        )
    for s, (name, vs) in enumerate(series.items()):
        color = PALETTE[s % len(PALETTE)]
        for i, v in enumerate(vs):
            if v is None:
                continue
            h = plot_h * v / top_value
            x = left + i * group_w + group_w * 0.1 + s * bar_w
            out.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{escape(name)}</title></rect>'
            )
        out.append(
            f'<rect x="{left + s * 150}" y="{height - 14}" width="10" height="10" fill="{color}"/>'
            f'<text x="{left + s * 150 + 14}" y="{height - 5}" font-size="11">{escape(name)}</text>'
        )
    for i, label in enumerate(labels):
        x = left + i * group_w + group_w / 2
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" font-size="10" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
