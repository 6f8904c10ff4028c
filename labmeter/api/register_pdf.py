"""The *Registro di utilizzo* as a printable PDF: a page per day with every session, the day's
totals and the technician's signature line; drawn with the report's own tables (``pdf.py``)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from labmeter import __version__
from labmeter.api.register import Register
from labmeter.api.report.pdf import FONT, _paragraph, _table, document, title
from labmeter.api.report.tables import HOURS, TEXT, Table
from labmeter.api.report.texts import Lang, day, num, t


def to_pdf(reg: Register, lang: Lang) -> bytes:
    tz = ZoneInfo(reg["timezone"])
    pdf = document(t("register", lang), __version__)

    def clock(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).strftime("%H:%M:%S")

    for entry in reg["days"]:
        pdf.add_page()
        title(pdf, t("register", lang))
        _paragraph(
            pdf,
            f"{t('lab', lang)}: {reg['lab_name']} ({reg['site']}/{reg['lab']}) — "
            f"{day(entry['day'], lang)}",
        )
        _paragraph(pdf, t("register_note", lang).format(tz=reg["timezone"]), size=7.5)
        table = Table(
            "register",
            t("sessions", lang),
            [(t("start", lang), TEXT), (t("end", lang), TEXT), (t("device", lang), TEXT),
             (t("pseudonym", lang), TEXT), (t("category", lang), TEXT),
             (t("organisation", lang), TEXT), (t("activity", lang), TEXT),
             (t("in_use_h", lang), HOURS)],
            [[clock(s["start_ms"]), clock(s["end_ms"]),
              s["device"] + (f" ({s['description']})" if s["description"] else ""),
              s["user"], t(s["category"], lang) if s["category"] else "",
              s["organisation"] or t("unbooked", lang), s["activity"], s["in_use_s"] / 3600]
             for s in entry["sessions"]],
        )  # fmt: skip
        _table(pdf, table, lang)
        totals = entry["totals"]
        rows = [
            [t("sessions", lang), num(totals["sessions"], lang, 0)],
            [t("users", lang), num(totals["users"], lang, 0)],
            [t("booked_sessions", lang), num(totals["booked_sessions"], lang, 0)],
            [t("in_use_h", lang), num(totals["in_use_s"] / 3600, lang, 2)],
            *[
                [f"{t('in_use_h', lang)} — {t(c, lang)}", num(v / 3600, lang, 2)]
                for c, v in totals["in_use_by_category_s"].items()
            ],
        ]
        _table(
            pdf,
            Table("register", "", [(t("day_totals", lang), TEXT), (t("total", lang), TEXT)], rows),
            lang,
        )
        pdf.ln(8)
        pdf.set_font(FONT, size=9)
        pdf.multi_cell(0, 5, t("signature", lang), align="L", new_x="LMARGIN", new_y="NEXT")
    if not reg["days"]:
        pdf.add_page()
        title(pdf, t("register", lang))
    return bytes(pdf.output())
