"""The report's data as tables, declared once with a unit per column: CSV, XLSX, HTML and
PDF all draw these, so the formats cannot disagree. Numbers are formatted for the language
(1.234,5 in Italian) by ``cell``; XLSX keeps them as numbers with a display format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from api.report.model import Closure, Report
from api.report.texts import WEEKDAYS, Lang, day, num, pct, t
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


def month_label(ms: int, tz: str, lang: Lang) -> str:
    local = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(tz))
    return local.strftime("%m/%Y") if lang is Lang.it else local.strftime("%Y-%m")


def tables(report: Report, lang: Lang) -> list[Table]:
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
            [[month_label(m["period_start_ms"], tz, lang), _h(m["in_use_s"]), m["quota_esterna"]]
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


def _closures(closures: list[Closure], lang: Lang) -> str:
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
