"""The simulated lab's plan: who uses which devices, when, following the labs' opening hours.

A school lab is busy in its opening hours (classes, bookings by schools, companies and
training agencies, students dropping in between), sometimes in the evening (a course after
closing), and mostly quiet on the days it is closed (weekends, holidays, closures), so use
after hours stays a minority. Each local day's plan is drawn from a generator seeded by
(seed, lab, date): a day is the same in whatever window it is seen. The plan is a list of
``Activity`` (lab, devices, start, end, category, organisation), the shape against which
declared bookings and measured use can later be reconciled.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from labmeter.schema import HALF_HOUR_MS

MIN_MS = 60_000
ROME = ZoneInfo("Europe/Rome")

Opening = Callable[[str, int], bool]
"""Whether the lab (by id) is open in the half hour starting at this epoch ms."""

PC_APPS = ("solidworks", "autocad", "matlab", "tia_portal")


def school_hours(tz: ZoneInfo = ROME) -> Opening:
    """Monday to Friday 08:30-18:30 local: the plan's hours when no inventory states them."""

    def is_open(_lab: str, half_ms: int) -> bool:
        local = datetime.fromtimestamp(half_ms / 1000, tz)
        return local.weekday() < 5 and (8, 30) <= (local.hour, local.minute) < (18, 30)

    return is_open


@dataclass(frozen=True)
class Organisation:
    name: str
    slug: str  # logins are ``<slug>-<n>``; only their pseudonyms leave the simulator
    category: str
    people: int


ITS = Organisation("Fondazione ITS Prime", "its", "its_student", 40)
STAFF = Organisation("Fondazione ITS Prime, personale", "staff", "staff", 3)
SCHOOLS = (
    Organisation("IIS Leonardo da Vinci", "davinci", "school", 25),
    Organisation("ITI Antonio Meucci", "meucci", "school", 25),
)
COMPANIES = (
    Organisation("Officine Galilei srl", "galilei", "company", 6),
    Organisation("Meccanica Fiorentina spa", "mecfi", "company", 4),
)
AGENCIES = (Organisation("Agenzia Formativa Arno", "arno", "training_agency", 15),)
ORGANISATIONS = {o.name: o for o in (ITS, STAFF, *SCHOOLS, *COMPANIES, *AGENCIES)}


@dataclass(frozen=True)
class Activity:
    """Some of a lab's devices in use by one organisation's people from ``start_ms`` to
    ``end_ms``; ``kind`` is class, booking, evening (a course after closing), walk_in or
    maintenance; walk-ins and maintenance are not booked."""

    lab: str
    devices: tuple[str, ...]
    start_ms: int
    end_ms: int
    category: str
    organisation: str
    kind: str
    booked: bool
    apps: tuple[str, ...] = ()  # the software a PC class or booking works with


def _minutes(rng: random.Random, low: int, high: int) -> int:
    return rng.randint(low, high) * MIN_MS


def _midnight(day: date, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, time(), tz).timestamp() * 1000)


def open_spans(lab: str, start_ms: int, end_ms: int, opening: Opening) -> list[tuple[int, int]]:
    """The open half hours of ``[start_ms, end_ms)``, merged into spans."""
    spans: list[tuple[int, int]] = []
    for half in range(start_ms - start_ms % HALF_HOUR_MS, end_ms, HALF_HOUR_MS):
        if opening(lab, half):
            if spans and spans[-1][1] == half:
                spans[-1] = (spans[-1][0], half + HALF_HOUR_MS)
            else:
                spans.append((half, half + HALF_HOUR_MS))
    return spans


class _Day:
    """One lab's plan for one local day."""

    def __init__(
        self, lab: str, devices: Sequence[str], machines: bool, rng: random.Random
    ) -> None:
        self.lab = lab
        self.devices = list(devices)
        self.machines = machines
        self.rng = rng
        self.out: list[Activity] = []

    def add(
        self,
        devices: Sequence[str],
        a: int,
        b: int,
        org: Organisation,
        kind: str,
        apps: tuple[str, ...] = (),
    ) -> None:
        booked = kind not in ("walk_in", "maintenance")
        apps = () if self.machines else apps
        self.out.append(
            Activity(
                self.lab, tuple(sorted(devices)), a, b, org.category, org.name, kind, booked, apps
            )
        )

    def some(self, low: float, high: float) -> list[str]:
        k = max(1, round(len(self.devices) * self.rng.uniform(low, high)))
        return self.rng.sample(self.devices, k=min(k, len(self.devices)))

    def apps(self) -> tuple[str, ...]:
        return tuple(self.rng.sample(PC_APPS, k=self.rng.choice((1, 1, 2))))

    def walk_in(self, device: str, a: int, b: int) -> None:
        """A student drops in to work on a project, unbooked."""
        length = min(b - a, _minutes(self.rng, 20, 90))
        begin = a + self.rng.randrange(0, b - a - length + 1, MIN_MS)
        self.add([device], begin, begin + length, ITS, "walk_in", self.apps())

    def room_block(self, a: int, b: int) -> None:
        """PCs: the room holds a class, or a few seats are booked; free seats get walk-ins."""
        rng = self.rng
        roll = rng.random()
        taken: list[str] = []
        if roll < 0.65:
            org = ITS if rng.random() < 0.7 else rng.choice(SCHOOLS)
            taken = self.some(0.6, 1.0)
            self.add(taken, a, b, org, "class", self.apps())
        elif roll < 0.85:
            org = rng.choice((*SCHOOLS, *COMPANIES, *AGENCIES))
            taken = rng.sample(self.devices, k=rng.randint(1, min(3, len(self.devices))))
            self.add(taken, a, b, org, "booking", self.apps())
        for device in self.devices:
            if device not in taken and rng.random() < 0.25:
                self.walk_in(device, a, b)

    def machine_block(self, device: str, a: int, b: int) -> None:
        """Machines are booked one by one: a class project, an outside booking, a walk-in."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:
            self.add([device], a, b, ITS, "class")
        elif roll < 0.7:
            org = rng.choice((*SCHOOLS, *COMPANIES, *AGENCIES))
            self.add([device], a, b, org, "booking")
        elif roll < 0.8:
            self.walk_in(device, a, b)

    def blocks(self, a: int, b: int) -> Iterator[tuple[int, int]]:
        """``[a, b)`` cut into blocks of 1.5 to 4 hours, with no stub before closing."""
        t = a
        while b - t >= 30 * MIN_MS:
            length = min(b - t, self.rng.choice((90, 120, 120, 180, 240)) * MIN_MS)
            if b - t - length < 45 * MIN_MS:
                length = b - t
            yield t, t + length
            t += length

    def open_day(self, spans: list[tuple[int, int]], tz: ZoneInfo, eve: bool) -> None:
        """``eve``: the lab is closed the next day."""
        rng = self.rng
        for a, b in spans:
            if self.machines:
                for device in self.devices:
                    for begin, end in self.blocks(a, b):
                        self.machine_block(device, begin, end)
            else:
                for begin, end in self.blocks(a, b):
                    self.room_block(begin, end)
        close = spans[-1][1]
        # A course after closing, some evenings from Monday to Thursday, never on the eve of
        # a closed day: the evening use of a school lab.
        local = datetime.fromtimestamp(close / 1000, tz)
        evening = 0.2 if self.machines else 0.35
        if 16 <= local.hour < 21 and local.weekday() < 4 and not eve and rng.random() < evening:
            a = close + rng.choice((0, 30, 60)) * MIN_MS
            devices = [rng.choice(self.devices)] if self.machines else self.some(0.4, 0.8)
            org = rng.choice((*AGENCIES, *COMPANIES))
            b = a + rng.choice((120, 150, 180)) * MIN_MS
            self.add(devices, a, b, org, "evening", self.apps())

    def closed_day(self, midnight: int) -> None:
        """Mostly quiet: now and then a technician works on one device."""
        if self.rng.random() < 0.15:
            a = midnight + (10 * 60 + self.rng.randrange(0, 120)) * MIN_MS
            device = self.rng.choice(self.devices)
            self.add([device], a, a + _minutes(self.rng, 30, 90), STAFF, "maintenance")


def _days(start_ms: int, end_ms: int, tz: ZoneInfo) -> Iterator[date]:
    # From the day before: yesterday's evening course or last job may reach into the window.
    day = datetime.fromtimestamp(start_ms / 1000, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp((end_ms - 1) / 1000, tz).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def plan(
    lab: str,
    devices: Sequence[str],
    *,
    machines: bool,
    start_ms: int,
    end_ms: int,
    seed: int,
    opening: Opening,
    tz: ZoneInfo = ROME,
) -> list[Activity]:
    """The activities of ``lab`` on the local days that ``[start_ms, end_ms)`` touches."""

    def spans_of(day: date) -> list[tuple[int, int]]:
        return open_spans(lab, _midnight(day, tz), _midnight(day + timedelta(days=1), tz), opening)

    out: list[Activity] = []
    for day in _days(start_ms, end_ms, tz):
        today = _Day(lab, devices, machines, random.Random(f"{seed}/{lab}/{day.isoformat()}"))
        if spans := spans_of(day):
            today.open_day(spans, tz, eve=not spans_of(day + timedelta(days=1)))
        else:
            today.closed_day(_midnight(day, tz))
        out.extend(today.out)
    return sorted(out, key=lambda a: (a.start_ms, a.devices))


@dataclass(frozen=True)
class Segment:
    """A piece of a device's timeline: from ``start_ms`` on, until the next one."""

    start_ms: int
    state: str | None  # None: the agent could not observe (down, unplugged)
    user: str | None = None
    category: str = "unknown"
    apps: frozenset[str] = frozenset()
