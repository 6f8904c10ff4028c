"""The report's data as tables, then as CSV, XLSX and HTML (with inline SVG charts); the
PDF (``pdf.py``) draws the same tables, charts and texts.

Tables are declared once with a unit per column; HTML and CSV format the numbers for the
language (1.234,5 in Italian), XLSX keeps them as numbers with a display format so that an
evaluator can compute with them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from api.report import charts
from api.report.i18n import WEEKDAYS, Lang, day, moment, num, pct, t
from labmeter.inventory import DAYS

# unit of a column: how a raw value is shown
TEXT, HOURS, PCT, EUR, INT, DATE = "text", "hours", "pct", "eur", "int", "date"


@dataclass
class Table:
    section: str
    title: str
    columns: list[tuple[str, str]]  # (header, unit)
    rows: list[list[Any]]


def _h(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 3600


def _month(ms: int, tz: str, lang: Lang) -> str:
    local = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(tz))
    return local.strftime("%m/%Y") if lang is Lang.it else local.strftime("%Y-%m")


def tables(report: dict[str, Any], lang: Lang) -> list[Table]:
    tz = report["meta"]["timezone"]
    out = [
        Table(
            "s1", t("s1", lang),
            [(t("fund", lang), TEXT), (t("call", lang), TEXT), (t("cup", lang), TEXT),
             (t("assets", lang), INT), (t("cost", lang), EUR), (t("final_payment", lang), DATE),
             (t("durability_until", lang), DATE), (t("retention_until", lang), DATE)],
            [[f["fund"] + (" *" if f["pnrr"] else ""), f["call"], f["cup"], f["assets"], f["cost"],
              f["final_payment"], f["durability_until"], f["retention_until"]]
             for f in report["framework"]],
        ),
        Table(
            "s2", t("s2", lang),
            [(t("device", lang), TEXT), (t("lab", lang), TEXT), (t("kind", lang), TEXT),
             (t("description", lang), TEXT), (t("cost", lang), EUR), (t("fund", lang), TEXT),
             (t("cup", lang), TEXT), (t("purchased", lang), DATE), (t("collaudo", lang), DATE)],
            [[e["device"], e["lab"], e["kind"], e["description"], e["cost"], e["fund"], e["cup"],
              e["purchased"], e["collaudo"]] for e in report["equipment"] if e["registered"]],
        ),
        Table(
            "s3", t("s3", lang),
            [(t("lab", lang), TEXT), (t("hours", lang), TEXT), (t("closures", lang), TEXT),
             (t("available_h", lang), HOURS)],
            [[a["lab"], _hours(a["hours"], lang), _closures(a["closures"], lang),
              _h(a["available_s"])] for a in report["availability"]],
        ),
        Table(
            "s4", t("s4", lang),
            [(t("device", lang), TEXT), (t("lab", lang), TEXT), (t("kind", lang), TEXT),
             (t("in_use_open_h", lang), HOURS), (t("after_hours_h", lang), HOURS),
             (t("available_h", lang), HOURS), (t("utilisation", lang), PCT),
             (t("observed_open_h", lang), HOURS), (t("coverage", lang), PCT),
             (t("sessions", lang), INT), (t("alarm_h", lang), HOURS), (t("off_h", lang), HOURS)],
            [[e["device"], e["lab"], e["kind"], _h(e["in_use_open_s"]), _h(e["after_hours_s"]),
              _h(e["available_s"]), e["utilisation"], _h(e["observed_open_s"]), e["coverage"],
              e["sessions"], _h(e["alarm_s"]), _h(e["off_s"])]
             for e in report["equipment"] if e["registered"]],
        ),
        Table(
            "s4", t("per_lab", lang),
            [(t("lab", lang), TEXT), (t("assets", lang), INT),
             (t("in_use_open_h", lang), HOURS), (t("after_hours_h", lang), HOURS),
             (t("available_h", lang), HOURS), (t("utilisation", lang), PCT),
             (t("observed_open_h", lang), HOURS), (t("coverage", lang), PCT)],
            [[r["lab"], r["devices"], _h(r["in_use_open_s"]), _h(r["after_hours_s"]),
              _h(r["available_s"]), r["utilisation"], _h(r["observed_open_s"]), r["coverage"]]
             for r in report["labs"]],
        ),
        Table(
            "s4", t("licences", lang),
            [(t("app", lang), TEXT), (t("in_use_h", lang), HOURS),
             (t("peak_seats", lang), INT), (t("seats_owned", lang), INT),
             (t("peak_share", lang), PCT)],
            [[r["app"], r["hours"], r["peak_seats"], r["seats_owned"],
              r["peak_share"]] for r in report["licences"]],
        ),
        Table(
            "s5", t("s5", lang),
            [(t("category", lang), TEXT), (t("in_use_h", lang), HOURS), (t("share", lang), PCT)],
            [[t(c, lang), _h(v["in_use_s"]), v["share"]]
             for c, v in report["users"]["categories"].items()]
            + [[t("quota_esterna", lang), _h(report["users"]["external_s"]),
                report["users"]["quota_esterna"]]],
        ),
        Table(
            "s6", t("s6", lang),
            [(t("lab", lang), TEXT), (t("in_use_h", lang), HOURS),
             (t("quota_esterna", lang), PCT)],
            [[r["lab"], _h(r["in_use_s"]), r["quota_esterna"]]
             for r in report["openness"]["labs"]],
        ),
        Table(
            "s6", t("openness_trend", lang),
            [(t("month", lang), TEXT), (t("in_use_h", lang), HOURS),
             (t("quota_esterna", lang), PCT)],
            [[_month(m["period_start_ms"], tz, lang), _h(m["in_use_s"]), m["quota_esterna"]]
             for m in report["openness"]["months"]],
        ),
        Table(
            "s7", t("s7", lang),
            [(t("device", lang), TEXT), (t("cost", lang), EUR), (t("in_use_h", lang), HOURS),
             (t("cost_per_hour", lang), EUR)],
            [[e["device"], e["cost"], _h(e["in_use_s"]), e["cost_per_hour"]]
             for e in report["equipment"] if e["registered"]],
        ),
        Table(
            "s8", t("agent_versions", lang),
            [(t("version", lang), TEXT), (t("assets", lang), INT)],
            [[v["version"], v["devices"]] for v in report["evidence"]["agent_versions"]],
        ),
        Table(
            "s8", t("gaps", lang),
            [(t("device", lang), TEXT), (t("lab", lang), TEXT), (t("coverage", lang), PCT)],
            [[g["device"], g["lab"], g["coverage"]] for g in report["evidence"]["gaps"]],
        ),
        Table(
            "s8", t("unregistered", lang),
            [(t("device", lang), TEXT), (t("lab", lang), TEXT), (t("site", lang), TEXT)],
            [[u["device"], u["lab"], u["site"]] for u in report["evidence"]["unregistered"]],
        ),
    ]  # fmt: skip
    return out


def _hours(hours: dict[str, str], lang: Lang) -> str:
    return "; ".join(f"{WEEKDAYS[lang][DAYS.index(d)]} {spans}" for d, spans in hours.items())


def _closures(closures: list[dict[str, Any]], lang: Lang) -> str:
    return "; ".join(
        f"{day(c['from'], lang)}-{day(c['to'], lang)} {c['reason']}".strip() for c in closures
    )


def cell(value: Any, unit: str, lang: Lang) -> str:
    if value is None:
        return "" if unit == TEXT else t("na", lang)
    if unit == HOURS:
        return num(value, lang, 1)
    if unit == PCT:
        return pct(value, lang)
    if unit == EUR:
        return num(value, lang, 2)
    if unit == INT:
        return num(value, lang, 0)
    if unit == DATE:
        return day(value, lang) if isinstance(value, date) else str(value)
    return str(value)


# --- CSV -----------------------------------------------------------------------------------


def to_csv(report: dict[str, Any], lang: Lang) -> str:
    """Every table one after the other, each row led by its section; ``;`` for Italian Excel."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";" if lang is Lang.it else ",", lineterminator="\n")
    for table in tables(report, lang):
        writer.writerow([table.title])
        writer.writerow([h for h, _ in table.columns])
        for row in table.rows:
            writer.writerow(
                [cell(v, u, lang) for v, (_, u) in zip(row, table.columns, strict=True)]
            )
        writer.writerow([])
    return buf.getvalue()


# --- XLSX ----------------------------------------------------------------------------------

_XLSX_FORMATS = {HOURS: "#,##0.0", PCT: "0.0%", EUR: "#,##0.00", INT: "0", DATE: "DD/MM/YYYY"}


def to_xlsx(report: dict[str, Any], lang: Lang) -> bytes:
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
    used: set[str] = {sheet.title}
    for table in tables(report, lang):
        name = table.title.replace("/", "-")[:31]
        while name in used:
            name = name[:29] + "_" + str(len(used))
        used.add(name)
        ws = book.create_sheet(name)
        ws.append([h for h, _ in table.columns])
        for c in ws[1]:
            c.font = Font(bold=True)
        formats = [
            (col, _XLSX_FORMATS[unit])
            for col, (_, unit) in enumerate(table.columns, start=1)
            if unit in _XLSX_FORMATS
        ]
        # Row numbers counted here: ``ws.max_row`` scans every cell, quadratic in the rows.
        for r, row in enumerate(table.rows, start=2):
            ws.append(row)
            for col, number_format in formats:
                ws.cell(r, col).number_format = number_format
        for i, (header, _) in enumerate(table.columns):
            ws.column_dimensions[chr(65 + i)].width = max(10, min(40, len(header) + 4))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- HTML and PDF --------------------------------------------------------------------------

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


def report_charts(report: dict[str, Any], lang: Lang) -> dict[str, charts.Chart]:
    """The report's three charts, laid out once for the HTML and the PDF."""
    tz = report["meta"]["timezone"]
    months = report["months"]
    starts = sorted({m["period_start_ms"] for m in months})
    labels = [_month(ms, tz, lang) for ms in starts]
    series: dict[str, list[float | None]] = {}
    for m in months:
        series.setdefault(m["lab"], [None] * len(starts))[starts.index(m["period_start_ms"])] = m[
            "utilisation"
        ]
    cats = report["users"]["categories"]
    open_months = report["openness"]["months"]
    return {
        "trend": charts.layout(labels, series, title=t("trend", lang)),
        "categories": charts.layout(
            [t(c, lang) for c in cats],
            {t("in_use_h", lang): [v["in_use_s"] / 3600 for v in cats.values()]},
            title=t("by_category", lang),
            percent=False,
        ),
        "openness": charts.layout(
            [_month(m["period_start_ms"], tz, lang) for m in open_months],
            {t("quota_esterna", lang): [m["quota_esterna"] for m in open_months]},
            title=t("openness_trend", lang),
        ),
    }


def method(report: dict[str, Any], lang: Lang) -> list[str]:
    """Every definition and threshold the figures use, one item each."""
    th = report["evidence"]["thresholds"]
    ev = report["evidence"]
    ext = ", ".join(t(c, lang) for c in ev["external_categories"])
    if lang is Lang.it:
        items = [
            "Fonte: campioni degli agenti labmeter (uno al minuto per bene) via MQTT, scritti in "
            "InfluxDB dal collector; per le ore chiuse e già aggregate si leggono i riepiloghi "
            "orari, per le altre i campioni grezzi.",
            "Ore di utilizzo: secondi in stato «in uso» riportati dall'agente (PC: sessione "
            "interattiva non bloccata con input negli ultimi T secondi, T = 180 s salvo diversa "
            "configurazione, o applicazione di catalogo attiva; macchine: lavorazione in corso).",
            "Ore disponibili: orario di apertura dichiarato del laboratorio, meno chiusure e "
            "festività nazionali (compresi Pasquetta e il patrono della sede).",
            "Tasso di utilizzo = ore di utilizzo in orario di apertura ÷ ore disponibili; i "
            "fermi restano al denominatore. L'uso fuori orario (corsi serali, lavorazioni "
            "notturne) è riportato a parte come «ore fuori orario» e non entra nel tasso, che "
            "non supera mai il 100 %; conta invece nella quota esterna e nel costo per ora.",
            "Copertura = ore osservate in orario di apertura ÷ ore disponibili. Il tempo non "
            "osservato (agente spento, rete assente) non è mai contato come inattività né come "
            "utilizzo.",
            f"Quota esterna = ore di utilizzo di {ext} ÷ ore di utilizzo totali.",
            "Picco postazioni: massimo, sui minuti del periodo, del numero di dispositivi con il "
            "software in esecuzione nello stesso minuto.",
            "Sessioni: campioni consecutivi di un bene con lo stesso pseudonimo (HMAC calcolato "
            f"sull'agente), con scarto massimo di {num(th['session_gap_tolerance_s'], lang, 0)} s;"
            " contate per periodi fino a 31 giorni.",
            "Costo per ora di utilizzo = costo del bene ÷ ore di utilizzo nel periodo (anche "
            "fuori orario).",
            f"Soglie: sottoutilizzo sotto il {pct(th['underused_below'], lang, 0)}; copertura "
            f"insufficiente sotto il {pct(th['low_coverage_below'], lang, 0)}; stabilità "
            f"{th['durability_years']} anni dal saldo; conservazione delle evidenze "
            f"{th['retention_years']} anni.",
            "Nessun nome, badge o titolo di finestra lascia l'agente: solo categorie e pseudonimi.",
        ]
    else:
        items = [
            "Source: labmeter agents' samples (one per minute per asset) over MQTT, written to "
            "InfluxDB by the collector; closed, rolled-up hours are read from hourly rollups, "
            "the rest from raw samples.",
            "Hours in use: seconds in state 'in use' reported by the agent (PCs: an unlocked "
            "interactive session with input in the last T seconds, T = 180 s unless configured, "
            "or a catalogued application busy; machines: a job running).",
            "Available hours: the lab's declared opening hours minus closures and national "
            "public holidays (Easter Monday and the site's patron saint included).",
            "Utilisation = hours in use within opening hours ÷ available hours; downtime stays "
            "in the denominator. Use outside opening hours (evening courses, overnight jobs) is "
            "reported apart as 'hours outside opening hours' and never enters utilisation, "
            "which cannot exceed 100 %; it does count in the external share and cost per hour.",
            "Coverage = observed hours within opening hours ÷ available hours. Unobserved time "
            "(agent down, no network) is never counted as idle nor as in use.",
            f"External share = hours in use by {ext} ÷ all hours in use.",
            "Peak seats: the most devices running the software in the same minute.",
            "Sessions: consecutive samples of one asset with the same pseudonym (HMAC computed on "
            f"the agent), at most {num(th['session_gap_tolerance_s'], lang, 0)} s apart; counted "
            "for periods up to 31 days.",
            "Cost per hour of use = the asset's cost ÷ hours in use in the period (after hours "
            "too).",
            f"Thresholds: under-used below {pct(th['underused_below'], lang, 0)}; insufficient "
            f"coverage below {pct(th['low_coverage_below'], lang, 0)}; durability "
            f"{th['durability_years']} years after final payment; evidence kept "
            f"{th['retention_years']} years.",
            "No name, badge id or window title leaves the agent: only categories and pseudonyms.",
        ]
    return items


def device_items(items: list[dict[str, Any]], lang: Lang, value: str | None = None) -> list[str]:
    """site/lab/device of each listed asset, with its figure if ``value`` names one."""
    return [
        f"{i['site']}/{i['lab']}/{i['device']}" + (f" ({pct(i[value], lang)})" if value else "")
        for i in items
    ]


def conclusions(report: dict[str, Any], lang: Lang) -> list[tuple[str, list[str]]]:
    """Section 9: each heading with its list of assets."""
    c = report["conclusions"]
    return [
        (t("underused", lang), device_items(c["underused"], lang, "utilisation")),
        (t("gaps", lang), device_items(c["low_coverage"], lang, "coverage")),
        (t("risks", lang), device_items(c["commercial_use_on_pnrr"], lang)),
    ]


def period_line(report: dict[str, Any], lang: Lang) -> str:
    meta = report["meta"]
    tz = meta["timezone"]
    return (
        f"{t('period', lang)}: {moment(meta['start_ms'], lang, tz)} - "
        f"{moment(meta['end_ms'], lang, tz)} ({tz}). {t('generated', lang)} "
        f"{moment(meta['generated_ms'], lang, tz)}, labmeter {meta['labmeter']}."
    )


def _ul(items: list[str], lang: Lang) -> str:
    if not items:
        return f"<p>{t('none', lang)}</p>"
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def to_html(report: dict[str, Any], lang: Lang) -> str:
    by_section: dict[str, list[Table]] = {}
    for table in tables(report, lang):
        by_section.setdefault(table.section, []).append(table)
    chart = {k: charts.svg(c) for k, c in report_charts(report, lang).items()}
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
