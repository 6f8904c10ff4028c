"""One regional report, five formats, drawn with the site report's renderers (its table cells,
spreadsheet sheets, HTML tables and PDF pages): JSON as it is; CSV and XLSX with every table,
the durability series month by month and the definitions on a sheet of their own; HTML and
PDF with the rankings, the flagged sites, the comparison with its intervals, saturation and
the indicators, two charts and what the comparison can and cannot show."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from html import escape

import orjson

from labmeter.api.region.model import RegionReport
from labmeter.api.region.tables import tables
from labmeter.api.region.texts import caveats, method, period_line, t
from labmeter.api.report import charts, sheets
from labmeter.api.report.formats import MEDIA, Format
from labmeter.api.report.html import CSS, _table_html, _ul
from labmeter.api.report.pdf import _bullets, _chart, _h2, _h3, _paragraph, _table, document, title
from labmeter.api.report.tables import Table
from labmeter.api.report.texts import Lang

__all__ = ["MEDIA", "Format", "filename", "produce"]
SECTIONS = ("r1", "r2", "r3", "r4", "r5", "r6")


def produce(report: RegionReport, fmt: Format, lang: Lang) -> bytes:
    if fmt is Format.json:
        return orjson.dumps(report, option=orjson.OPT_INDENT_2)
    if fmt is Format.csv:
        found = [*tables(report, lang, whole=True), _definitions(report, lang)]
        return ("\ufeff" + sheets.tables_csv(found, lang)).encode("utf-8")
    if fmt is Format.xlsx:
        return _xlsx(report, lang)
    if fmt is Format.html:
        return to_html(report, lang).encode("utf-8")
    return to_pdf(report, lang)


def filename(report: RegionReport, fmt: Format, lang: Lang) -> str:
    start, end = (
        datetime.fromtimestamp(report["meta"][k] / 1000, UTC).strftime("%Y%m%d")
        for k in ("start_ms", "end_ms")
    )
    stem = "rapporto-regionale" if lang is Lang.it else "regional-report"
    return f"{stem}-{start}-{end}.{fmt.value}"


def _definitions(report: RegionReport, lang: Lang) -> Table:
    texts = [*method(report, lang), *caveats(report, lang)]
    return Table(
        "r6", t("definitions", lang), [(t("definitions", lang), "text")], [[x] for x in texts]
    )


def _xlsx(report: RegionReport, lang: Lang) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = t("definitions", lang)  # the definitions first, on a sheet of their own
    sheet.append([t("title", lang)])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([period_line(report, lang)])
    sheet.append([])
    for text in [*method(report, lang), *caveats(report, lang)]:
        sheet.append([text])
    sheet.column_dimensions["A"].width = 160
    sheets.add_sheets(book, tables(report, lang, whole=True), {sheet.title.casefold()})
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def region_charts(report: RegionReport, lang: Lang) -> dict[str, charts.Chart]:
    """Utilisation and coverage per site; with a comparison, the external share before and
    after per site."""
    sites = report["sites"]
    out = {
        "sites": charts.layout(
            [s["site"] for s in sites],
            {
                t("utilisation", lang): [s["utilisation"] for s in sites],
                t("coverage", lang): [s["coverage"] for s in sites],
            },
            title=t("chart_sites", lang),
        )
    }
    c = report["comparison"]
    if c is not None:
        rows = c["sites"]
        out["change"] = charts.layout(
            [r["site"] for r in rows],
            {
                t("baseline", lang): [r["quota_esterna"]["baseline"] for r in rows],
                t("after", lang): [r["quota_esterna"]["pilot"] for r in rows],
            },
            title=t("chart_change", lang),
        )
    return out


def _by_section(report: RegionReport, lang: Lang) -> dict[str, list[Table]]:
    out: dict[str, list[Table]] = {}
    for table in tables(report, lang, whole=False):
        out.setdefault(table.section, []).append(table)
    return out


def to_html(report: RegionReport, lang: Lang) -> str:
    found = _by_section(report, lang)
    drawn = {k: charts.svg(c) for k, c in region_charts(report, lang).items()}
    parts = [
        f'<!DOCTYPE html><html lang="{lang.value}"><head><meta charset="utf-8">'
        f"<title>{t('title', lang)}</title><style>{CSS}</style></head><body>",
        f"<h1>{t('title', lang)}</h1><p>{escape(period_line(report, lang))}</p>",
    ]
    for key in SECTIONS:
        parts.append(f'<section id="{key}"><h2>{t(key, lang)}</h2>')
        if key == "r1":
            parts.append(drawn["sites"])
        if key == "r3" and report["comparison"] is None:
            parts.append(f"<p>{t('no_comparison', lang)}</p>")
        for table in found.get(key, []):
            parts.append(_table_html(table, lang, heading=True))
        if key == "r3" and report["comparison"] is not None:
            parts.append(drawn["change"])
            parts.append(f"<h3>{t('caveats', lang)}</h3>{_ul(caveats(report, lang), lang)}")
        if key == "r6":
            parts.append(f"<h3>{t('definitions', lang)}</h3>{_ul(method(report, lang), lang)}")
        parts.append("</section>")
    parts.append("</body></html>")
    return "".join(parts)


def to_pdf(report: RegionReport, lang: Lang) -> bytes:
    pdf = document(t("title", lang), report["meta"]["labmeter"])
    pdf.add_page()
    title(pdf, t("title", lang))
    _paragraph(pdf, period_line(report, lang))
    found = _by_section(report, lang)
    drawn = region_charts(report, lang)
    for key in SECTIONS:
        _h2(pdf, t(key, lang))
        if key == "r1":
            _chart(pdf, drawn["sites"])
        if key == "r3" and report["comparison"] is None:
            _paragraph(pdf, t("no_comparison", lang))
        for table in found.get(key, []):
            _h3(pdf, table.title)
            _table(pdf, table, lang)
        if key == "r3" and report["comparison"] is not None:
            _chart(pdf, drawn["change"])
            _h3(pdf, t("caveats", lang))
            _bullets(pdf, caveats(report, lang), lang)
        if key == "r6":
            _h3(pdf, t("definitions", lang))
            _bullets(pdf, method(report, lang), lang)
    return bytes(pdf.output())
