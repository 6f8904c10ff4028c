"""The simulated lab's bookings: what the plan's organisations declared, and what they did.

Every booked activity of the plan (classes, outside bookings, evening courses) is declared as
a booking; some are then not performed at all (no-shows), some end early (partly used), the
rest run as planned; walk-ins and maintenance stay unbooked. A class taking most of a PC
room books the whole lab, other bookings their devices; a company books commercially now
and then, under an agreement's reference. The bookings are written as an iCalendar file, the
way a lab's booking system exports them, so tests read them through the real parser.

``truth`` reconciles them with the devices' timelines directly, second by second, not
through samples or queries: the figures ``/api/v1/bookings`` must equal.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from labmeter.simulators.schedule import MIN_MS, Activity, Segment

NO_SHOW, PARTLY = 0.12, 0.15  # shares of booked activities not performed, ended early
COMMERCIAL = 0.6  # share of companies' bookings declared commercial
ACTIVITY_NAMES = {
    "class": "Lezione",
    "booking": "Attività su prenotazione",
    "evening": "Corso serale",
}
EXTERNAL = frozenset({"school", "company", "training_agency"})


@dataclass(frozen=True)
class Declared:
    """A booking as declared, and what the plan made of it (``outcome``: full, partly,
    no_show), which only the ground truth knows."""

    uid: str
    lab: str
    devices: tuple[str, ...]  # () = the whole lab
    start_ms: int
    end_ms: int
    organisation: str
    category: str
    activity: str
    commercial: bool
    reference: str
    outcome: str


def declare(
    activities: Sequence[Activity], lab_devices: Mapping[str, Collection[str]], seed: int
) -> tuple[list[Activity], list[Declared]]:
    """The activities performed, and the bookings declared for the booked ones."""
    performed: list[Activity] = []
    declared: list[Declared] = []
    for act in activities:
        if not act.booked:
            performed.append(act)
            continue
        rng = random.Random(f"{seed}/booking/{act.lab}/{act.start_ms}/{','.join(act.devices)}")
        whole = set(act.devices) == set(lab_devices.get(act.lab, ())) and len(act.devices) > 1
        commercial = act.category == "company" and rng.random() < COMMERCIAL
        roll = rng.random()
        outcome = "no_show" if roll < NO_SHOW else "partly" if roll < NO_SHOW + PARTLY else "full"
        if outcome == "partly":
            length = (act.end_ms - act.start_ms) // MIN_MS
            cut = act.start_ms + max(5, round(length * rng.uniform(0.2, 0.5))) * MIN_MS
            performed.append(dataclasses.replace(act, end_ms=cut))
        elif outcome == "full":
            performed.append(act)
        year = datetime.fromtimestamp(act.start_ms / 1000, UTC).year
        declared.append(
            Declared(
                uid=f"sim-{act.lab}-{act.start_ms}-{'-'.join(act.devices)}",
                lab=act.lab,
                devices=() if whole else act.devices,
                start_ms=act.start_ms,
                end_ms=act.end_ms,
                organisation=act.organisation,
                category=act.category,
                activity=ACTIVITY_NAMES.get(act.kind, act.kind),
                commercial=commercial,
                reference=f"CONV-{year}-{rng.randrange(1, 40):03d}" if commercial else "",
                outcome=outcome,
            )
        )
    return performed, declared


def to_ics(declared: Sequence[Declared], site: str) -> str:
    """The bookings as a booking system would export them (UTC times)."""
    import icalendar

    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//labmeter//simulated lab//IT")
    calendar.add("version", "2.0")
    for d in declared:
        event = icalendar.Event()
        event.add("uid", d.uid)
        event.add("dtstamp", datetime.fromtimestamp(d.start_ms / 1000, UTC))
        event.add("dtstart", datetime.fromtimestamp(d.start_ms / 1000, UTC))
        event.add("dtend", datetime.fromtimestamp(d.end_ms / 1000, UTC))
        event.add("summary", d.activity)
        event.add("x-labmeter-lab", f"{site}/{d.lab}")
        if d.devices:
            event.add("x-labmeter-devices", ",".join(d.devices))
        event.add("x-labmeter-organisation", d.organisation)
        event.add("x-labmeter-category", d.category)
        event.add("x-labmeter-commercial", "TRUE" if d.commercial else "FALSE")
        if d.reference:
            event.add("x-labmeter-reference", d.reference)
        calendar.add_component(event)
    text: bytes = calendar.to_ical()
    return text.decode()


Timeline = tuple[str, str, list[Segment], int]  # lab, device, segments, end of the last


def _seconds(segments: list[Segment], end_ms: int, a: int, b: int) -> dict[str, int]:
    """In-use ms per category within ``[a, b)``."""
    out: dict[str, int] = defaultdict(int)
    bounds = [s.start_ms for s in segments[1:]] + [end_ms]
    for seg, seg_end in zip(segments, bounds, strict=True):
        if seg.state != "in_use":
            continue
        span = min(seg_end, b) - max(seg.start_ms, a)
        if span > 0:
            out[seg.category] += span
    return out


def _apps(
    segments: list[Segment], end_ms: int, a: int, b: int, apps: Collection[str]
) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    bounds = [s.start_ms for s in segments[1:]] + [end_ms]
    for seg, seg_end in zip(segments, bounds, strict=True):
        span = min(seg_end, b) - max(seg.start_ms, a)
        for app in seg.apps & set(apps) if span > 0 else ():
            out[app] += span
    return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def truth(
    timelines: Mapping[tuple[str, str], list[Segment]],
    declared: Sequence[Declared],
    start_ms: int,
    end_ms: int,
    *,
    pnrr: Collection[str] = (),
    pnrr_apps: Collection[str] = (),
    no_show_below: float = 0.10,
) -> dict[str, Any]:
    """Every reconciliation figure over ``[start_ms, end_ms)`` from the timelines of the
    devices (``(lab, device)`` -> segments; lab bookings cover every device of the lab),
    ``pnrr`` devices and ``pnrr_apps`` titles being PNRR-funded."""
    lab_devices: dict[str, list[str]] = defaultdict(list)
    for lab, device in sorted(timelines):
        lab_devices[lab].append(device)
    bookings = []
    covering: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    commercial_spans: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    commercial = []
    for d in declared:
        a, b = max(d.start_ms, start_ms), min(d.end_ms, end_ms)
        if b <= a:
            continue
        devices = list(d.devices or lab_devices[d.lab])
        by_category: dict[str, int] = defaultdict(int)
        for device in devices:
            for category, ms in _seconds(timelines[(d.lab, device)], end_ms, a, b).items():
                by_category[category] += ms
            covering[(d.lab, device)].append((a, b))
            if d.commercial:
                commercial_spans[(d.lab, device)].append((a, b))
        booked_device_s = (b - a) / 1000 * len(devices)
        in_use = sum(by_category.values()) / 1000
        share = in_use / booked_device_s
        bookings.append(
            {
                "uid": d.uid, "lab": d.lab, "devices": devices, "start_ms": d.start_ms,
                "end_ms": d.end_ms, "organisation": d.organisation, "category": d.category,
                "commercial": d.commercial, "reference": d.reference, "outcome": d.outcome,
                "booked_s": (b - a) / 1000, "booked_device_s": booked_device_s,
                "in_use_s": in_use, "used_share": share, "no_show": share < no_show_below,
                "in_use_by_category_s": {c: v / 1000 for c, v in sorted(by_category.items())},
            }
        )  # fmt: skip
        if d.commercial:
            for device in devices:
                seg = timelines[(d.lab, device)]
                if device in pnrr and (ms := sum(_seconds(seg, end_ms, a, b).values())):
                    commercial.append((d.uid, d.reference, device, device, ms / 1000))
                for app, ms in sorted(_apps(seg, end_ms, a, b, pnrr_apps).items()):
                    commercial.append((d.uid, d.reference, app, device, ms / 1000))
    labs = {}
    company = {}
    for lab, devices in lab_devices.items():
        total: dict[str, int] = defaultdict(int)
        inside: dict[str, int] = defaultdict(int)
        for device in devices:
            seg = timelines[(lab, device)]
            for category, ms in _seconds(seg, end_ms, start_ms, end_ms).items():
                total[category] += ms
            for a, b in _merge(covering[(lab, device)]):
                for category, ms in _seconds(seg, end_ms, a, b).items():
                    inside[category] += ms
            if device in pnrr:
                own = _seconds(seg, end_ms, start_ms, end_ms).get("company", 0)
                for a, b in _merge(commercial_spans[(lab, device)]):
                    own -= _seconds(seg, end_ms, a, b).get("company", 0)
                if own:
                    company[device] = own / 1000
        labs[lab] = {
            "in_use_s": sum(total.values()) / 1000,
            "booked_in_use_s": sum(inside.values()) / 1000,
            "unbooked_s": (sum(total.values()) - sum(inside.values())) / 1000,
            "unbooked_by_category_s": {
                c: (total[c] - inside.get(c, 0)) / 1000
                for c in sorted(total)
                if total[c] - inside.get(c, 0)
            },
        }
    return {
        "bookings": bookings,
        "labs": labs,
        "commercial": [
            {"booking": u, "reference": r, "asset": asset, "device": dev, "in_use_s": s}
            for u, r, asset, dev, s in commercial
        ],
        "company_without_commercial_booking": company,
        "outside_organisations": sorted(
            {b["organisation"] for b in bookings if b["category"] in EXTERNAL and not b["no_show"]}
        ),
    }
