"""The report as spreadsheets: CSV (every table one after the other) and XLSX (a sheet per
table, numbers kept as numbers so that an evaluator can compute with them). Text is written
as text, never as a formula (``api/cells.py``)."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from labmeter.api.cells import FORMULA_START, inert
from labmeter.api.report.model import Report
from labmeter.api.report.tables import DATE, EUR, HOURS, INT, PCT, TEXT, Table, cell, tables
from labmeter.api.report.texts import Lang, moment, t

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet


def to_csv(report: Report, lang: Lang) -> str:
    """The report's tables as one CSV text."""
    return tables_csv(tables(report, lang), lang)


def tables_csv(found: list[Table], lang: Lang) -> str:
    """Every table one after the other, each row led by its section; ``;`` for Italian Excel."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";" if lang is Lang.it else ",", lineterminator="\n")
    for table in found:
        writer.writerow([inert(table.title)])
        writer.writerow([inert(h) for h, _ in table.columns])
        for row in table.rows:
            writer.writerow(
                [
                    inert(cell(v, u, lang)) if u == TEXT else cell(v, u, lang)
                    for v, (_, u) in zip(row, table.columns, strict=True)
                ]
            )
        writer.writerow([])
    return buf.getvalue()


def _as_text(ws: Worksheet, value: Any) -> Any:
    """A value for ``ws.append``: text that a spreadsheet would take for a formula or an
    error code becomes a string cell with the quote prefix; anything else is left as it is."""
    from openpyxl.cell.cell import ERROR_CODES, Cell

    if not isinstance(value, str) or (value[:1] not in FORMULA_START and value not in ERROR_CODES):
        return value
    text = Cell(ws, value=value)
    text.data_type = "s"
    text.quotePrefix = True
    return text


_XLSX_FORMATS = {HOURS: "#,##0.0", PCT: "0.0%", EUR: "#,##0.00", INT: "0", DATE: "DD/MM/YYYY"}


_NOT_IN_SHEET_NAMES = str.maketrans({c: "-" for c in "[]:*?/\\"})
SHEET_NAME_MAX = 31


def sheet_name(title: str, used: set[str]) -> str:
    """A sheet name Excel opens: at most 31 characters, none of ``[]:*?/\\``, unique among
    ``used`` regardless of case (Excel's rule), with a numbered suffix when a title repeats
    within its first 31 characters; ``used`` gains it."""
    base = title.translate(_NOT_IN_SHEET_NAMES)
    name, n = base[:SHEET_NAME_MAX], 1
    while name.casefold() in used:
        n += 1
        suffix = f" ({n})"
        name = base[: SHEET_NAME_MAX - len(suffix)] + suffix
    used.add(name.casefold())
    return name


def to_xlsx(report: Report, lang: Lang) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = t("title", lang)[:31]
    meta = report["meta"]
    tz = meta["timezone"]
    sheet.append([t("title", lang)])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append(
        [t("period", lang), moment(meta["start_ms"], lang, tz), moment(meta["end_ms"], lang, tz)]
    )
    sheet.append([t("quota_esterna", lang), report["users"]["quota_esterna"]])
    sheet["B3"].number_format = _XLSX_FORMATS[PCT]
    sheet.append([t("coverage", lang), report["evidence"]["coverage"]])
    sheet["B4"].number_format = _XLSX_FORMATS[PCT]
    add_sheets(book, tables(report, lang), {sheet.title.casefold()})
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def add_sheets(book: Any, found: list[Table], used: set[str]) -> None:
    """A sheet per table of ``found`` in an openpyxl ``book``, named apart from ``used``."""
    from openpyxl.styles import Font

    for table in found:
        ws = book.create_sheet(sheet_name(table.title, used))
        ws.append([_as_text(ws, h) for h, _ in table.columns])
        for c in ws[1]:
            c.font = Font(bold=True)
        formats = [
            (col, _XLSX_FORMATS[unit])
            for col, (_, unit) in enumerate(table.columns, start=1)
            if unit in _XLSX_FORMATS
        ]
        # Row numbers counted here: ``ws.max_row`` scans every cell, quadratic in the rows.
        for r, row in enumerate(table.rows, start=2):
            ws.append([_as_text(ws, v) for v in row])
            for col, number_format in formats:
                ws.cell(r, col).number_format = number_format
        for i, (header, _) in enumerate(table.columns):
            ws.column_dimensions[chr(65 + i)].width = max(10, min(40, len(header) + 4))
