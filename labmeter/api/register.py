"""The *Registro di utilizzo*: per lab and day, every session with its device, pseudonym and
category, the booking it fell in (organisation and activity), the day's totals and a line
for the technician's signature — the paper lab register, made from measurements.

Sessions are those of ``/api/v1/sessions`` (the agent's session events, else runs of samples
with one pseudonym); a session belongs to the local day it starts in, and to the booking of
its device that overlaps it most (none: unbooked).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from typing_extensions import TypedDict  # pydantic reads these as response models on 3.11

from labmeter.api import session_list
from labmeter.api.cells import inert, revived
from labmeter.api.records import SessionRow
from labmeter.api.scope import Scope
from labmeter.bookings import Booking


class RegisterSession(TypedDict):
    start_ms: int
    end_ms: int
    device: str
    description: str  # the inventory's description of the device
    user: str  # a pseudonym, never a name
    category: str
    organisation: str  # of the overlapping booking; "" when unbooked
    activity: str
    booking: str  # the booking's uid; "" when unbooked
    in_use_s: float


class RegisterTotals(TypedDict):
    sessions: int
    users: int  # distinct pseudonyms
    in_use_s: float
    booked_sessions: int
    in_use_by_category_s: dict[str, float]


class RegisterDay(TypedDict):
    day: date
    sessions: list[RegisterSession]
    totals: RegisterTotals


class Register(TypedDict):
    site: str
    lab: str
    lab_name: str
    timezone: str
    days: list[RegisterDay]


def _booking_of(session: SessionRow, bookings: Sequence[Booking]) -> Booking | None:
    best, overlap = None, 0
    for b in bookings:
        if b.site != session["site"] or b.lab != session["lab"] or not b.covers(session["device"]):
            continue
        shared = min(b.end_ms, session["end_ms"]) - max(b.start_ms, session["start_ms"])
        if shared > overlap:
            best, overlap = b, shared
    return best


def days_of(scope: Scope) -> list[tuple[date, int, int]]:
    """The local days of the scope's window: (day, start ms, end ms)."""
    out = []
    cal = scope.plan.calendar
    day = cal.day_of(scope.start_ms)
    while day < scope.end_ms:
        nxt = cal.next_day(day)
        out.append((cal.date_of(day), day, nxt))
        day = nxt
    return out


def register(scope: Scope, site: str, lab: str, bookings: Sequence[Booking]) -> Register:
    """The register of one lab over the scope's whole local days."""
    inv = scope.inventory
    spec = inv.labs.get((site, lab)) if inv is not None else None
    described = {
        key[2]: eq.description
        for key, eq in (inv.equipment.items() if inv is not None else ())
        if key[:2] == (site, lab)
    }
    per_day: dict[date, list[RegisterSession]] = defaultdict(list)
    cal = scope.plan.calendar
    for s in session_list.sessions(scope):
        if (s["site"], s["lab"]) != (site, lab):
            continue
        booking = _booking_of(s, bookings)
        per_day[cal.date_of(s["start_ms"])].append(
            RegisterSession(
                start_ms=s["start_ms"],
                end_ms=s["end_ms"],
                device=s["device"],
                description=described.get(s["device"], ""),
                user=s["user"],
                category=s["category"],
                organisation=booking.organisation if booking else "",
                activity=booking.activity if booking else "",
                booking=booking.uid if booking else "",
                in_use_s=round(s["in_use_s"], 3),
            )
        )
    days = []
    for day, _a, _b in days_of(scope):
        sessions = sorted(per_day.get(day, []), key=lambda r: (r["start_ms"], r["device"]))
        by_category: dict[str, float] = defaultdict(float)
        for r in sessions:
            by_category[r["category"]] += r["in_use_s"]
        days.append(
            RegisterDay(
                day=day,
                sessions=sessions,
                totals=RegisterTotals(
                    sessions=len(sessions),
                    users=len({r["user"] for r in sessions}),
                    in_use_s=round(sum(r["in_use_s"] for r in sessions), 3),
                    booked_sessions=sum(1 for r in sessions if r["booking"]),
                    in_use_by_category_s={c: round(v, 3) for c, v in sorted(by_category.items())},
                ),
            )
        )
    return Register(
        site=site,
        lab=lab,
        lab_name=spec.name if spec is not None else lab,
        timezone=scope.tz,
        days=days,
    )


CSV_COLUMNS = (
    "data", "laboratorio", "inizio", "fine", "bene", "descrizione", "pseudonimo", "categoria",
    "organizzazione", "attivita", "prenotazione", "secondi_in_uso",
)  # fmt: skip
CSV_COLUMNS_EN = (
    "date", "lab", "start", "end", "asset", "description", "pseudonym", "category",
    "organisation", "activity", "booking", "in_use_seconds",
)  # fmt: skip


def to_csv(reg: Register, english: bool = False) -> str:
    """One row per session, local times to the second; ``;`` for Italian Excel; text as
    text, never a formula (``api/cells.py``)."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(reg["timezone"])
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="," if english else ";", lineterminator="\n")
    writer.writerow(CSV_COLUMNS_EN if english else CSV_COLUMNS)
    for day in reg["days"]:
        for s in day["sessions"]:
            start = datetime.fromtimestamp(s["start_ms"] / 1000, tz)
            end = datetime.fromtimestamp(s["end_ms"] / 1000, tz)
            writer.writerow(
                [
                    day["day"].isoformat(), f"{reg['site']}/{reg['lab']}",
                    start.isoformat(timespec="milliseconds"),
                    end.isoformat(timespec="milliseconds"),
                    *map(inert, (s["device"], s["description"], s["user"], s["category"],
                                 s["organisation"], s["activity"], s["booking"])),
                    repr(s["in_use_s"]),
                ]
            )  # fmt: skip
    return buf.getvalue()


def from_csv(text: str) -> list[RegisterSession]:
    """The sessions of a register's CSV, as written (the inverse of ``to_csv``)."""
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text), delimiter=";" if ";" in first else ",")
    next(reader)
    out = []
    for row in reader:
        (
            _day,
            _lab,
            start,
            end,
            device,
            described,
            user,
            category,
            org,
            activity,
            booking,
            in_use,
        ) = row
        out.append(
            RegisterSession(
                start_ms=int(datetime.fromisoformat(start).timestamp() * 1000),
                end_ms=int(datetime.fromisoformat(end).timestamp() * 1000),
                device=revived(device),
                description=revived(described),
                user=revived(user),
                category=revived(category),
                organisation=revived(org),
                activity=revived(activity),
                booking=revived(booking),
                in_use_s=float(in_use),
            )
        )
    return out


def month_window(year: int, month: int, tz: str) -> tuple[int, int]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    first = date(year, month, 1)
    after = date(year + month // 12, month % 12 + 1, 1)
    return (
        int(datetime.combine(first, time(), zone).timestamp() * 1000),
        int(datetime.combine(after, time(), zone).timestamp() * 1000),
    )


def day_window(day: date, tz: str) -> tuple[int, int]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    return (
        int(datetime.combine(day, time(), zone).timestamp() * 1000),
        int(datetime.combine(day + timedelta(days=1), time(), zone).timestamp() * 1000),
    )
