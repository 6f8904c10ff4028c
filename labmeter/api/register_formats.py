"""``labmeter register`` and ``/api/v1/register`` share this: which lab, which days, which
format."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import orjson
from fastapi.encoders import jsonable_encoder

from labmeter.api.plan import Filters
from labmeter.api.register import Register, day_window, month_window, register, to_csv
from labmeter.api.report.texts import Lang
from labmeter.api.scope import open_scope
from labmeter.bookings import Bookings, open_bookings
from labmeter.config import Config
from labmeter.influx import InfluxV1
from labmeter.inventory import load
from labmeter.opening import OpeningHours


class RegisterFormat(StrEnum):
    json = "json"
    csv = "csv"
    pdf = "pdf"


MEDIA = {
    RegisterFormat.json: "application/json",
    RegisterFormat.csv: "text/csv; charset=utf-8",
    RegisterFormat.pdf: "application/pdf",
}


@dataclass(frozen=True)
class Request:
    site: str
    lab: str
    start_ms: int
    end_ms: int
    label: str  # 2025-10-27 or 2025-10, for the file name


def resolve(
    opening: OpeningHours, lab: str, site: str | None, day: str | None, month: str | None
) -> Request:
    """The lab (its site from the inventory when unique) and the window; ``ValueError`` says
    what is wrong."""
    if (day is None) == (month is None):
        raise ValueError("give either a day (YYYY-MM-DD) or a month (YYYY-MM)")
    inv = opening.inventory
    if not site:
        sites = sorted({s for s, lab_id in inv.labs if lab_id == lab}) if inv else []
        if len(sites) != 1:
            raise ValueError(f"say the site of lab {lab!r} (labs with that id: {len(sites)})")
        site = sites[0]
    if inv is not None and (site, lab) not in inv.labs:
        raise ValueError(f"lab {site}/{lab} is not in the inventory")
    tz = opening.calendar.tz
    if day is not None:
        try:
            start_ms, end_ms = day_window(date.fromisoformat(day), tz)
        except ValueError as exc:
            raise ValueError(f"{day!r} is not a day (YYYY-MM-DD)") from exc
        return Request(site, lab, start_ms, end_ms, day)
    assert month is not None
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"{month!r} is not a month (YYYY-MM)")
    start_ms, end_ms = month_window(int(month[:4]), int(month[5:]), tz)
    return Request(site, lab, start_ms, end_ms, month)


def build(
    influx: InfluxV1, opening: OpeningHours, req: Request, bookings: Bookings | None, now_ms: int
) -> Register:
    scope = open_scope(
        influx, opening, req.start_ms, req.end_ms, Filters(req.site, req.lab), now_ms
    )
    found = bookings.between(req.start_ms, req.end_ms) if bookings is not None else []
    return register(scope, req.site, req.lab, found)


def produce(reg: Register, fmt: RegisterFormat, lang: Lang) -> bytes:
    if fmt is RegisterFormat.json:
        return orjson.dumps(jsonable_encoder(reg), option=orjson.OPT_INDENT_2)
    if fmt is RegisterFormat.csv:
        return ("\ufeff" + to_csv(reg, english=lang is Lang.en)).encode("utf-8")
    from labmeter.api.register_pdf import to_pdf

    return to_pdf(reg, lang)


def filename(req: Request, fmt: RegisterFormat, lang: Lang) -> str:
    stem = "registro-utilizzo" if lang is Lang.it else "lab-register"
    return f"{stem}-{req.site}-{req.lab}-{req.label}.{fmt.value}"


def make_register(
    config: Config,
    lab: str,
    site: str | None,
    day: str | None,
    month: str | None,
    fmt: RegisterFormat,
    lang: Lang,
) -> tuple[Request, bytes]:
    """A lab's register of a day or month as a config's inventory and bookings make it, now;
    ``ValueError`` or ``LabmeterError`` say what is wrong with the request."""
    inventory = load(config.api.inventory) if config.api.inventory else None
    opening = OpeningHours(inventory)
    req = resolve(opening, lab, site, day, month)
    books = open_bookings(config.bookings, inventory) if config.bookings.sources else None
    influx = InfluxV1(config.influx)
    try:
        return req, produce(build(influx, opening, req, books, int(time.time() * 1000)), fmt, lang)
    finally:
        influx.close()
