"""Bar charts without a plotting library: laid out once, drawn as inline SVG for the HTML and
with the PDF's own vector operators, so both print sharp and show the same bars."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from labmeter.api.report.model import Report
from labmeter.api.report.tables import month_label
from labmeter.api.report.texts import Lang, t

PALETTE = ("#1f5fa8", "#e07b28", "#3a9a4a", "#b23a48", "#7b5ea7", "#8c8c8c", "#2aa1a8")


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # baseline
    text: str
    size: float
    anchor: str = "start"  # start | middle | end, as in SVG
    bold: bool = False


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    color: str
    name: str = ""  # the series, shown as a tooltip in HTML


@dataclass
class Chart:
    """Shapes in a ``width`` x ``height`` box, y downwards (SVG user units)."""

    title: str
    width: int
    height: int
    grid: list[tuple[float, float, float]] = field(default_factory=list)  # x1, x2, y
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)


def layout(
    labels: list[str],
    series: dict[str, list[float | None]],
    *,
    title: str,
    percent: bool = True,
    width: int = 720,
    height: int = 260,
) -> Chart:
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
    chart = Chart(title, width, height, texts=[Text(left, 16, title, 13, bold=True)])
    for i in range(5):
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        chart.grid.append((left, width - right, y))
        text = f"{value * 100:.0f}%" if percent else f"{value:.1f}"
        chart.texts.append(Text(left - 4, y + 4, text, 10, "end"))
    for s, (name, vs) in enumerate(series.items()):
        color = PALETTE[s % len(PALETTE)]
        for i, v in enumerate(vs):
            if v is None:
                continue
            h = plot_h * v / top_value
            x = left + i * group_w + group_w * 0.1 + s * bar_w
            chart.rects.append(Rect(x, top + plot_h - h, bar_w, h, color, name))
        chart.rects.append(Rect(left + s * 150, height - 14, 10, 10, color))
        chart.texts.append(Text(left + s * 150 + 14, height - 5, name, 11))
    for i, label in enumerate(labels):
        x = left + i * group_w + group_w / 2
        chart.texts.append(Text(x, top + plot_h + 14, label, 10, "middle"))
    return chart


def svg(chart: Chart) -> str:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{chart.width}" '
        f'height="{chart.height}" viewBox="0 0 {chart.width} {chart.height}" role="img" '
        f'aria-label="{escape(chart.title)}">'
    ]
    out += [
        f'<line x1="{x1}" x2="{x2}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        for x1, x2, y in chart.grid
    ]
    for r in chart.rects:
        tip = f"<title>{escape(r.name)}</title>" if r.name else ""
        out.append(
            f'<rect x="{r.x:.1f}" y="{r.y:.1f}" width="{r.w:.1f}" height="{r.h:.1f}" '
            f'fill="{r.color}">{tip}</rect>'
        )
    for text in chart.texts:
        anchor = "" if text.anchor == "start" else f' text-anchor="{text.anchor}"'
        weight = ' font-weight="bold"' if text.bold else ""
        out.append(
            f'<text x="{text.x:.1f}" y="{text.y:.1f}" font-size="{text.size:g}"{weight}{anchor}>'
            f"{escape(text.text)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def report_charts(report: Report, lang: Lang) -> dict[str, Chart]:
    """The report's three charts, laid out once for the HTML and the PDF."""
    tz = report["meta"]["timezone"]
    months = report["months"]
    starts = sorted({m["period_start_ms"] for m in months})
    labels = [month_label(ms, tz, lang) for ms in starts]
    series: dict[str, list[float | None]] = {}
    for m in months:
        series.setdefault(m["lab"], [None] * len(starts))[starts.index(m["period_start_ms"])] = m[
            "utilisation"
        ]
    cats = report["users"]["categories"]
    open_months = report["openness"]["months"]
    return {
        "trend": layout(labels, series, title=t("trend", lang)),
        "categories": layout(
            [t(c, lang) for c in cats],
            {t("in_use_h", lang): [v["in_use_s"] / 3600 for v in cats.values()]},
            title=t("by_category", lang),
            percent=False,
        ),
        "openness": layout(
            [month_label(m["period_start_ms"], tz, lang) for m in open_months],
            {t("quota_esterna", lang): [m["quota_esterna"] for m in open_months]},
            title=t("openness_trend", lang),
        ),
    }
