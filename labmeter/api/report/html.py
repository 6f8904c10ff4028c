"""The report as one printable HTML page with inline SVG charts (the ``/report`` page and the
``html`` format); the PDF (``pdf.py``) draws the same tables, charts and texts."""

from __future__ import annotations

from html import escape

from labmeter.api.report import charts
from labmeter.api.report.model import Report
from labmeter.api.report.tables import TEXT, Table, cell, tables
from labmeter.api.report.texts import Lang, conclusions, method, pct, period_line, t

CSS = """
@page { size: A4; margin: 16mm 14mm; @bottom-right { content: counter(page) " / " counter(pages);
  font-size: 8pt; } }
body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 9.5pt; color: #222; }
h1 { font-size: 18pt; margin-bottom: 2mm; } h2 { font-size: 13pt; margin-top: 8mm;
  border-bottom: 1px solid #1f5fa8; color: #1f5fa8; } h3 { font-size: 10.5pt; }
table { border-collapse: collapse; width: 100%; margin: 2mm 0 4mm; page-break-inside: auto; }
th, td { border: 1px solid #ccc; padding: 1.2mm 1.6mm; text-align: left; vertical-align: top; }
td.n { text-align: right; white-space: nowrap; } th { background: #eef3fa; }
.note { color: #555; font-size: 8.5pt; } svg.chart { max-width: 100%; height: auto; }
"""


def _table_html(table: Table, lang: Lang, heading: bool) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h, _ in table.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"" if u == TEXT else "n"}">{escape(cell(v, u, lang))}</td>'
            for v, (_, u) in zip(row, table.columns, strict=True)
        )
        + "</tr>"
        for row in table.rows
    )
    if not table.rows:
        body = f'<tr><td colspan="{len(table.columns)}">{t("none", lang)}</td></tr>'
    title = f"<h3>{escape(table.title)}</h3>" if heading else ""
    return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _ul(items: list[str], lang: Lang) -> str:
    if not items:
        return f"<p>{t('none', lang)}</p>"
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def to_html(report: Report, lang: Lang) -> str:
    by_section: dict[str, list[Table]] = {}
    for table in tables(report, lang):
        by_section.setdefault(table.section, []).append(table)
    chart = {k: charts.svg(c) for k, c in charts.report_charts(report, lang).items()}
    extra = {
        "s1": f'<p class="note">* {t("pnrr_note", lang)}</p>',
        "s4": chart["trend"],
        "s5": chart["categories"],
        "s6": chart["openness"],
        "s8": f"<h3>{t('definitions', lang)}</h3>{_ul(method(report, lang), lang)}"
        f"<p>{t('coverage', lang)}: {pct(report['evidence']['coverage'], lang)}</p>",
    }
    parts = [
        f'<!DOCTYPE html><html lang="{lang.value}"><head><meta charset="utf-8">'
        f"<title>{t('title', lang)}</title><style>{CSS}</style></head><body>",
        f"<h1>{t('title', lang)}</h1>",
        f"<p>{escape(period_line(report, lang))}</p>",
    ]
    for n in range(1, 9):
        key = f"s{n}"
        parts.append(f'<section id="{key}"><h2>{t(key, lang)}</h2>')
        for i, table in enumerate(by_section.get(key, [])):
            parts.append(_table_html(table, lang, heading=i > 0))
        parts.append(extra.get(key, "") + "</section>")
    parts.append(f'<section id="s9"><h2>{t("s9", lang)}</h2>')
    parts += [f"<h3>{h}</h3>{_ul(items, lang)}" for h, items in conclusions(report, lang)]
    parts.append("</section></body></html>")
    return "".join(parts)
