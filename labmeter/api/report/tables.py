"""The report's data as tables, declared once with a unit per column: CSV, XLSX, HTML and
PDF all draw these, so the formats cannot disagree. Numbers are formatted for the language
(1.234,5 in Italian) by ``cell``; XLSX keeps them as numbers with a display format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from labmeter.api.report.model import Closure, Report
from labmeter.api.report.texts import TEXT as TEXT_KEYS
from labmeter.api.report.texts import WEEKDAYS, Lang, day, num, pct, t
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
    # Names beside ids, so an evaluator reads them without the inventory at hand.
    lab_names = {(a["site"], a["lab"]): a["name"] for a in report["availability"]}
    described = {(e["site"], e["lab"], e["device"]): e["description"] for e in report["equipment"]}

    def lab_(site: str, lab: str) -> str:
        name = lab_names.get((site, lab), lab)
        return lab if name in ("", lab) else f"{lab} ({name})"

    def dev_(site: str, lab: str, device: str) -> str:
        text = described.get((site, lab, device), "")
        return f"{device} ({text})" if text else device

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
             (t("sessions", lang), INT), (t("alarm_h", lang), HOURS), (t("off_h", lang), HOURS),
             (t("setup_h", lang), HOURS)],
            [[dev_(e["site"], e["lab"], e["device"]), lab_(e["site"], e["lab"]), e["kind"],
              _h(e["in_use_open_s"]), _h(e["after_hours_s"]),
              _h(e["available_s"]), e["utilisation"], _h(e["observed_open_s"]), e["coverage"],
              e["sessions"], _h(e["alarm_s"]), _h(e["off_s"]), _h(e["setup_s"])]
             for e in report["equipment"] if e["registered"]],
        ),
        Table(
            "s4", t("per_lab", lang),
            [(t("lab", lang), TEXT), (t("assets", lang), INT),
             (t("in_use_open_h", lang), HOURS), (t("after_hours_h", lang), HOURS),
             (t("available_h", lang), HOURS), (t("utilisation", lang), PCT),
             (t("observed_open_h", lang), HOURS), (t("coverage", lang), PCT)],
            [[lab_(r.get("site", ""), r.get("lab", "")), r["devices"], _h(r["in_use_open_s"]),
              _h(r["after_hours_s"]),
              _h(r["available_s"]), r["utilisation"], _h(r["observed_open_s"]), r["coverage"]]
             for r in report["labs"]],
        ),
        Table(
            "s4", t("licences", lang),
            [(t("app", lang), TEXT), (t("open_h", lang), HOURS),
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
            "s5", t("sessions_users", lang),
            [(t("category", lang), TEXT), (t("sessions", lang), INT), (t("users", lang), INT)],
            [[t(c, lang), v["sessions"], v["users"]]
             for c, v in report["sessions"]["categories"].items()]
            + [[t("total", lang), report["sessions"]["sessions"], report["sessions"]["users"]]],
        ),
        Table(
            "s6", t("s6", lang),
            [(t("lab", lang), TEXT), (t("in_use_h", lang), HOURS),
             (t("quota_esterna", lang), PCT)],
            [[lab_(r.get("site", ""), r.get("lab", "")), _h(r["in_use_s"]), r["quota_esterna"]]
             for r in report["openness"]["labs"]],
        ),
        Table(
            "s6", t("sessions_per_lab", lang),
            [(t("lab", lang), TEXT), (t("sessions", lang), INT), (t("users", lang), INT)]
            + [(t(c, lang), INT) for c in report["sessions"]["categories"]],
            [[lab_(r["site"], r["lab"]), r["sessions"], r["users"]]
             + [v["sessions"] for v in r["categories"].values()]
             for r in report["sessions"]["labs"]],
        ),
        Table(
            "s6", t("outside_organisations", lang),
            [(t("outside_organisations", lang), INT), (t("external_sessions", lang), INT)],
            [[report["openness"]["outside_organisations"],
              report["openness"]["external_sessions"]]],
        ),
        Table(
            "s6", t("openness_trend", lang),
            [(t("month", lang), TEXT), (t("in_use_h", lang), HOURS),
             (t("quota_esterna", lang), PCT)],
            [[month_label(m["period_start_ms"], tz, lang), _h(m["in_use_s"]), m["quota_esterna"]]
             for m in report["openness"]["months"]],
        ),
        Table(
            "s7", t("costs", lang),
            [(t("device", lang), TEXT), (t("lab", lang), TEXT), (t("fund", lang), TEXT),
             (t("cost", lang), EUR), (t("collaudo", lang), DATE), (t("useful_life", lang), INT),
             (t("depreciation", lang), EUR), (t("running", lang), EUR),
             (t("total_cost", lang), EUR), (t("hours_used", lang), HOURS),
             (t("cost_per_hour", lang), EUR)],
            [[dev_(c["site"], c["lab"], c["asset"]) if c["lab"] else c["asset"],
              lab_(c["site"], c["lab"]) if c["lab"] else t("app", lang), c["fund"], c["cost"],
              c["collaudo"] if c["collaudo"] or not c["note"] else t(c["note"], lang),
              c["useful_life_years"], c["depreciation_eur"], c["running_eur"] + c["licence_eur"],
              c["total_eur"], c["hours"], c["cost_per_hour"]]
             for c in report["costs"]["assets"]],
        ),
        Table(
            "s7", t("costs_per_lab", lang),
            [(t("lab", lang), TEXT), (t("assets", lang), INT), (t("total_cost", lang), EUR),
             (t("hours_used", lang), HOURS), (t("cost_per_hour", lang), EUR)],
            [[lab_(g["site"], g["name"]), g["assets"], g["total_eur"], g["hours"],
              g["cost_per_hour"]] for g in report["costs"]["labs"]],
        ),
        Table(
            "s7", t("costs_per_fund", lang),
            [(t("fund", lang), TEXT), (t("site", lang), TEXT), (t("assets", lang), INT),
             (t("total_cost", lang), EUR), (t("hours_used", lang), HOURS),
             (t("cost_per_hour", lang), EUR)],
            [[g["name"], g["site"], g["assets"], g["total_eur"], g["hours"], g["cost_per_hour"]]
             for g in report["costs"]["funds"]],
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
    if report["bookings"] is not None:  # before section 7
        at = next(n for n, table in enumerate(out) if table.section == "s7")
        out[at:at] = _bookings(report, lang, lab_)
    if report["evidence"]["feeds"]:
        now = report["meta"]["generated_ms"]
        out.append(Table(
            "s8", t("feeds", lang),
            [(t("feeds", lang), TEXT), (t("feed_age_h", lang), HOURS),
             (t("feed_error", lang), TEXT)],
            [[f["name"], (now - f["fetched_ms"]) / 3600_000 if f["fetched_ms"] else None,
              f["error"]] for f in report["evidence"]["feeds"]],
        ))  # fmt: skip
    return out


def _bookings(report: Report, lang: Lang, lab_: Callable[[str, str], str]) -> list[Table]:
    """Section 6's bookings: per lab, per category and organisation, and the no-shows (every
    booking is in the JSON and ``/api/v1/bookings``)."""
    rec = report["bookings"]
    assert rec is not None
    tz = report["meta"]["timezone"]
    declared = [(t("booked_h", lang), HOURS), (t("in_use_h", lang), HOURS),
                (t("used_share", lang), PCT), (t("no_shows", lang), INT)]  # fmt: skip
    return [
        Table(
            "s6", t("bookings", lang),
            [(t("lab", lang), TEXT), (t("bookings_n", lang), INT), *declared[:1],
             (t("booked_in_use_h", lang), HOURS), (t("unbooked_h", lang), HOURS),
             (t("no_shows", lang), INT)],
            [[lab_(r["site"], r["lab"]), r["bookings"], _h(r["booked_device_s"]),
              _h(r["booked_in_use_s"]), _h(r["unbooked_s"]), r["no_shows"]]
             for r in rec["labs"]],
        ),
        Table(
            "s6", t("by_declared_category", lang),
            [(t("category", lang), TEXT), (t("bookings_n", lang), INT), *declared],
            [[t(r["name"], lang) if r["name"] in TEXT_KEYS else r["name"], r["bookings"],
              _h(r["booked_device_s"]), _h(r["in_use_s"]), r["used_share"], r["no_shows"]]
             for r in rec["categories"]],
        ),
        Table(
            "s6", t("by_organisation", lang),
            [(t("organisation", lang), TEXT), (t("category", lang), TEXT),
             (t("bookings_n", lang), INT), *declared],
            [[r["name"], t(r["category"], lang) if r["category"] in TEXT_KEYS else r["category"],
              r["bookings"], _h(r["booked_device_s"]), _h(r["in_use_s"]), r["used_share"],
              r["no_shows"]] for r in rec["organisations"]],
        ),
        Table(
            "s6", t("no_shows", lang),
            [(t("start", lang), TEXT), (t("lab", lang), TEXT), (t("organisation", lang), TEXT),
             (t("activity", lang), TEXT), (t("booked_h", lang), HOURS),
             (t("used_share", lang), PCT)],
            [[_moment(r["start_ms"], tz, lang), lab_(r["site"], r["lab"]), r["organisation"],
              r["activity"], _h(r["booked_device_s"]), r["used_share"]]
             for r in rec["bookings"] if r["no_show"]],
        ),
    ]  # fmt: skip


def _moment(ms: int, tz: str, lang: Lang) -> str:
    from labmeter.api.report.texts import moment

    return moment(ms, lang, tz)


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
