"""A booking, and what every reader of bookings checks the same way."""

from __future__ import annotations

from dataclasses import dataclass

from labmeter.contract import CATEGORIES
from labmeter.errors import LabmeterError
from labmeter.inventory import Inventory


class BookingError(LabmeterError):
    """One or more problems, each as ``file:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Defaults:
    """What a calendar's events leave unsaid: a lab's own feed books that lab."""

    site: str = ""
    lab: str = ""
    organisation: str = ""
    category: str = ""


@dataclass(frozen=True)
class Booking:
    """One occurrence of a booking: ``devices`` empty books every device of the lab.

    An all-day booking books the lab's opening hours of its days (``labmeter/bookings`` docs);
    ``start_ms``/``end_ms`` are then its local midnights.
    """

    uid: str  # the event's UID (iCalendar) or the row's id (CSV), plus the occurrence
    site: str
    lab: str
    devices: tuple[str, ...]
    start_ms: int
    end_ms: int
    organisation: str
    category: str
    activity: str
    commercial: bool
    reference: str
    source: str  # file:line it was declared at
    all_day: bool = False

    def covers(self, device: str) -> bool:
        return not self.devices or device in self.devices


TRUE = frozenset({"1", "true", "yes", "si", "sì", "x", "y"})
FALSE = frozenset({"0", "false", "no", "n", ""})


def flag(text: str) -> bool | None:
    """``sì``/``yes``/``true``/``1`` and ``no``/``false``/``0``; None for anything else."""
    value = text.strip().lower()
    return True if value in TRUE else False if value in FALSE else None


def check_fields(
    inventory: Inventory | None,
    fields: Booking,
    fail: list[tuple[str, str]],
) -> None:
    """The checks every booking passes, whatever it was read from: ``fail`` gets
    (field, message) pairs, which the reader turns into file:line problems."""
    if not fields.site or not fields.lab:
        fail.append(("lab", "no lab: say it in the booking or give the calendar's lab"))
    elif inventory is not None:
        if (fields.site, fields.lab) not in inventory.labs:
            fail.append(("lab", f"lab {fields.site}/{fields.lab} is not in the inventory"))
        else:
            for device in fields.devices:
                if (fields.site, fields.lab, device) not in inventory.equipment:
                    fail.append(
                        (
                            "devices",
                            f"device {device!r} is not in the inventory's lab "
                            f"{fields.site}/{fields.lab}",
                        )
                    )
    if not fields.organisation:
        fail.append(("organisation", "no organisation: who booked?"))
    if fields.category not in CATEGORIES:
        shown = repr(fields.category) if fields.category else "none"
        fail.append(("category", f"category {shown} is not one of {', '.join(CATEGORIES)}"))
    if fields.commercial and not fields.reference:
        fail.append(
            ("reference", "a commercial booking needs its reference (the agreement or contract)")
        )
    if fields.end_ms <= fields.start_ms:
        fail.append(("end", "ends before it starts"))
