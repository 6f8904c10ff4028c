"""The regional report's data as tables with a unit per column (``report/tables.py``'s): CSV,
XLSX, HTML and PDF all draw these. The month-by-month durability series is long (an asset a
month), so it goes to the spreadsheets whole and to the printed report as a summary."""

from __future__ import annotations

from typing import Any

from labmeter.api.region.bootstrap import METRICS
from labmeter.api.region.model import Change, RegionReport, SiteChange, SiteRow
from labmeter.api.region.texts import t
from labmeter.api.report.tables import DATE, EUR, HOURS, INT, PCT, TEXT, Table, month_label
from labmeter.api.report.texts import Lang, num, pct

NUM = HOURS  # a count per week, a rate: one decimal, as hours are shown


def _h(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 3600


def tables(report: RegionReport, lang: Lang, whole: bool) -> list[Table]:
    """Every table in order; ``whole``: the durability series month by month (spreadsheets),
    else its summary (printed)."""

    def site_(site: str) -> str:
        return site or t("region", lang)

    rows = [*report["sites"], report["region"]]
    out = [
        Table(
            "r1", t("sites_use", lang),
            [(t("site", lang), TEXT), (t("name", lang), TEXT), (t("labs", lang), INT),
             (t("devices", lang), INT),
             (t("available_h", lang), HOURS), (t("in_use_open_h", lang), HOURS),
             (t("utilisation", lang), PCT), (t("coverage", lang), PCT), (t("rank", lang), TEXT)],
            [[site_(r["site"]), r["name"], r["labs"], r["devices"], _h(r["available_s"]),
              _h(r["in_use_open_s"]), r["utilisation"], r["coverage"],
              _rank(r["rank_utilisation"], r["site"])] for r in rows],
        ),
        Table(
            "r1", t("sites_users", lang),
            [(t("site", lang), TEXT), (t("quota_esterna", lang), PCT),
             (t("school", lang), PCT), (t("company", lang), PCT),
             (t("training_agency", lang), PCT), (t("sessions", lang), INT),
             (t("users", lang), INT), (t("organisations", lang), INT),
             (t("cost_window", lang), EUR), (t("cost_per_hour", lang), EUR),
             (t("rank_outside", lang), TEXT)],
            [[site_(r["site"]), r["quota_esterna"], *_shares(r),
              r["sessions"], r["users"], r["organisations"], r["cost_eur"], r["cost_per_hour"],
              _rank(r["rank_outside"], r["site"])] for r in rows],
        ),
        Table(
            "r1", t("ranking", lang),
            [(t("rank", lang), INT), (t("site", lang), TEXT), (t("utilisation", lang), PCT),
             (t("coverage", lang), PCT), (t("quota_esterna", lang), PCT)],
            [[r["rank_utilisation"], site_(r["site"]), r["utilisation"], r["coverage"],
              r["quota_esterna"]]
             for r in sorted((r for r in report["sites"] if r["ranked"]),
                             key=lambda r: r["rank_utilisation"] or 0)],
        ),
        Table(
            "r1", f"{t('apart', lang)} ({pct(report['ranking']['min_coverage'], lang, 0)})",
            [(t("site", lang), TEXT), (t("coverage", lang), PCT)],
            [[site_(u["site"]), u["coverage"]] for u in report["ranking"]["apart"]],
        ),
        Table(
            "r2", t("kinds", lang),
            [(t("site", lang), TEXT), (t("kind", lang), TEXT), (t("devices", lang), INT),
             (t("in_use_open_h", lang), HOURS), (t("utilisation", lang), PCT),
             (t("coverage", lang), PCT), (t("sessions", lang), INT), (t("users", lang), INT),
             (t("cost_per_hour", lang), EUR)],
            [[site_(k["site"]), k["kind"], k["devices"], _h(k["in_use_open_s"]),
              k["utilisation"], k["coverage"], k["sessions"], k["users"], k["cost_per_hour"]]
             for k in report["kinds"]],
        ),
    ]  # fmt: skip
    out += _comparison(report, lang, site_)
    out += _saturation(report, lang, site_)
    out += _indicators(report, lang, site_, whole)
    if report["unregistered"]:
        out.append(Table("r6", t("unregistered", lang), [(t("device", lang), TEXT)],
                         [[u] for u in report["unregistered"]]))  # fmt: skip
    return out


def _rank(rank: int | None, site: str) -> str:
    """A site's rank, "-" for a site not ranked, nothing for the region."""
    return "" if not site else "-" if rank is None else str(rank)


def _shares(r: SiteRow) -> list[float | None]:
    total = sum(r["categories"].values())
    return [r["categories"].get(c, 0.0) / total if total else None
            for c in ("school", "company", "training_agency")]  # fmt: skip


def _comparison(report: RegionReport, lang: Lang, site_: Any) -> list[Table]:
    """One table per figure (before, after, change and its interval per site and for the
    pooled controls; changes of ratios in percentage points), then the differences."""
    c = report["comparison"]
    if c is None:
        return []
    roles = {"pilot": t("pilot", lang), "control": t("control", lang),
             "apart": t("apart_role", lang), "pooled": t("pooled", lang)}  # fmt: skip
    rows = [*c["sites"], c["pooled"]]
    points = "p.p." if lang is Lang.it else "pp"
    out = []
    for name in METRICS:
        ratio = name in RATIOS
        unit = PCT if ratio else NUM
        change = f"{t('change', lang)} ({points})" if ratio else t("change", lang)
        low, high = f"{t('interval', lang)} -", f"{t('interval', lang)} +"
        found = [(r, _metric(r, name)) for r in rows]
        if all(v is None for _r, v in found):
            continue  # organisations without bookings
        out.append(Table(
            "r3", t(name, lang),
            [(t("site", lang), TEXT), (t("role", lang), TEXT), (t("baseline", lang), unit),
             (t("after", lang), unit), (change, NUM), (low, NUM), (high, NUM)],
            [[r["site"] or t("pooled", lang), roles[r["role"]], v["baseline"], v["pilot"],
              *(_scaled(x, 100.0 if ratio else 1.0) for x in
                (v["delta"]["value"], v["delta"]["low"], v["delta"]["high"]))]
             for r, v in found if v is not None],
        ))  # fmt: skip
    out.append(Table(
        "r3", t("did", lang),
        [(t("metric", lang), TEXT), (t("change", lang), TEXT),
         (f"{t('interval', lang)} -", TEXT), (f"{t('interval', lang)} +", TEXT)],
        [[t(name, lang), *(_signed(v, lang, name in RATIOS)
                           for v in (i["value"], i["low"], i["high"]))]
         for name, i in c["did"].items()],
    ))  # fmt: skip
    return out


def _metric(row: SiteChange, name: str) -> Change | None:
    by_name: dict[str, Change | None] = {
        "utilisation": row["utilisation"],
        "quota_esterna": row["quota_esterna"],
        "users_per_week": row["users_per_week"],
        "organisations_per_week": row["organisations_per_week"],
    }
    return by_name[name]


def _scaled(value: float | None, by: float) -> float | None:
    return None if value is None else value * by


RATIOS = ("utilisation", "quota_esterna")  # differences of ratios: percentage points


def _signed(value: float | None, lang: Lang, ratio: bool) -> str:
    if value is None:
        return t("na", lang)
    sign = "+" if value >= 0 else ""
    if ratio:
        return f"{sign}{num(value * 100, lang, 1)} {'p.p.' if lang is Lang.it else 'pp'}"
    return f"{sign}{num(value, lang, 1)}"


def _saturation(report: RegionReport, lang: Lang, site_: Any) -> list[Table]:
    s = report["saturation"]
    return [
        Table(
            "r4", t("labs_load", lang),
            [(t("site", lang), TEXT), (t("lab", lang), TEXT), (t("kind", lang), TEXT),
             (t("devices", lang), INT), (t("open_h", lang), HOURS), (t("full_h", lang), HOURS),
             (t("full_share", lang), PCT), (t("peak_busy", lang), INT),
             (t("peak_busy_share", lang), PCT), (t("bookings_in_full", lang), INT)],
            [[site_(r["site"]), r["lab"], r["kind"], r["devices"], _h(r["open_s"]),
              _h(r["full_s"]), r["full_share"], r["peak_busy"], r["peak_share"],
              r["bookings_in_full"]] for r in s["labs"]],
        ),
        Table(
            "r4", t("licences_load", lang),
            [(t("site", lang), TEXT), (t("app", lang), TEXT), (t("peak_seats", lang), INT),
             (t("seats_owned", lang), INT), (t("peak_share", lang), PCT)],
            [[site_(r["site"]), r["app"], r["peak_seats"], r["seats_owned"], r["peak_share"]]
             for r in s["licences"]],
        ),
        Table(
            "r4", t("idle", lang),
            [(t("site", lang), TEXT), (t("lab", lang), TEXT), (t("device", lang), TEXT),
             (t("kind", lang), TEXT), (t("fund", lang), TEXT), (t("utilisation", lang), PCT),
             (t("coverage", lang), PCT), (t("purchase_cost", lang), EUR),
             (t("cost_window", lang), EUR)],
            [[site_(r["site"]), r["lab"], r["device"], r["kind"], r["fund"], r["utilisation"],
              r["coverage"], r["cost"], r["cost_eur"]] for r in s["idle"]],
        ),
    ]  # fmt: skip


def _indicators(report: RegionReport, lang: Lang, site_: Any, whole: bool) -> list[Table]:
    ind = report["indicators"]
    tz = report["meta"]["timezone"]
    years = sorted({y for f in ind["funds"] for y in f["users_per_year"]})

    def fund_(fund: str) -> str:
        return fund or t("all_funds", lang)

    out = [
        Table(
            "r5", t("funds", lang),
            [(t("fund", lang), TEXT), (t("site", lang), TEXT), (t("assets", lang), INT),
             (t("purchase_cost", lang), EUR),
             *[(t("users_year", lang).format(year=y), INT) for y in years],
             (t("users", lang), INT), (t("sessions", lang), INT),
             (t("external_h", lang), HOURS), (t("external_per_1000", lang), NUM),
             (t("cost_per_external", lang), EUR), (t("school", lang), INT),
             (t("company", lang), INT), (t("training_agency", lang), INT)],
            [[fund_(f["fund"]), site_(f["site"]), f["assets"], f["cost"],
              *[f["users_per_year"].get(y) for y in years], f["users"], f["sessions"],
              _h(f["external_s"]), f["external_per_1000_eur"], f["cost_per_external_hour"],
              *((f["organisations"] or {}).get(c) if f["organisations"] is not None else None
                for c in ("school", "company", "training_agency"))]
             for f in ind["funds"]],
        ),
        Table(
            "r5", t("semesters", lang),
            [(t("semester", lang), TEXT), (t("fund", lang), TEXT), (t("site", lang), TEXT),
             (t("users", lang), INT), (t("sessions", lang), INT), (t("in_use_h", lang), HOURS),
             (t("external_h", lang), HOURS), (t("quota_esterna", lang), PCT),
             (t("cost_window", lang), EUR)],
            [[s["semester"], fund_(s["fund"]), site_(s["site"]), s["users"], s["sessions"],
              _h(s["in_use_s"]), _h(s["external_s"]), s["quota_esterna"], s["cost_eur"]]
             for s in ind["semesters"]],
        ),
    ]  # fmt: skip
    if whole:
        out.append(Table(
            "r5", t("durability", lang),
            [(t("site", lang), TEXT), (t("lab", lang), TEXT), (t("device", lang), TEXT),
             (t("fund", lang), TEXT), (t("cup", lang), TEXT), (t("collaudo", lang), DATE),
             (t("durability_until", lang), DATE), (t("month", lang), TEXT),
             (t("in_use_h", lang), HOURS), (t("in_use_open_h", lang), HOURS),
             (t("available_h", lang), HOURS), (t("utilisation", lang), PCT)],
            [[d["site"], d["lab"], d["device"], d["fund"], d["cup"], d["collaudo"],
              d["durability_until"], month_label(m["start_ms"], tz, lang), _h(m["in_use_s"]),
              _h(m["in_use_open_s"]), _h(m["available_s"]), m["utilisation"]]
             for d in ind["durability"] for m in d["months"]],
        ))  # fmt: skip
    else:
        out.append(Table(
            "r5", t("durability_summary", lang),
            [(t("site", lang), TEXT), (t("device", lang), TEXT), (t("fund", lang), TEXT),
             (t("durability_until", lang), DATE), (t("months", lang), INT),
             (t("months_used", lang), INT), (t("in_use_h", lang), HOURS)],
            [[site_(d["site"]), d["device"], d["fund"], d["durability_until"], len(d["months"]),
              sum(1 for m in d["months"] if m["in_use_s"] > 0),
              _h(sum(m["in_use_s"] for m in d["months"]))]
             for d in ind["durability"]],
        ))  # fmt: skip
    return out
