"""One report, five formats: the media type, file name and bytes of each."""

from __future__ import annotations

from enum import StrEnum

import orjson

from labmeter.api.report import html, pdf, sheets
from labmeter.api.report.model import Report
from labmeter.api.report.texts import Lang


class Format(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"
    html = "html"
    pdf = "pdf"


MEDIA = {
    Format.json: "application/json",
    Format.csv: "text/csv; charset=utf-8",
    Format.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    Format.html: "text/html; charset=utf-8",
    Format.pdf: "application/pdf",
}


def produce(report: Report, fmt: Format, lang: Lang) -> bytes:
    if fmt is Format.json:
        # orjson writes dates as ISO dates itself (FastAPI's encoder took 0.3 s a report).
        return orjson.dumps(report, option=orjson.OPT_INDENT_2)
    if fmt is Format.csv:
        # A BOM so that Excel opens the UTF-8 file with its accents intact.
        return ("\ufeff" + sheets.to_csv(report, lang)).encode("utf-8")
    if fmt is Format.xlsx:
        return sheets.to_xlsx(report, lang)
    if fmt is Format.html:
        return html.to_html(report, lang).encode("utf-8")
    return pdf.to_pdf(report, lang)


def filename(report: Report, fmt: Format, lang: Lang) -> str:
    from datetime import UTC, datetime

    start = datetime.fromtimestamp(report["meta"]["start_ms"] / 1000, UTC).strftime("%Y%m%d")
    end = datetime.fromtimestamp(report["meta"]["end_ms"] / 1000, UTC).strftime("%Y%m%d")
    stem = "rapporto-utilizzo" if lang is Lang.it else "utilisation-report"
    return f"{stem}-{start}-{end}.{fmt.value}"
