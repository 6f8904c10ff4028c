"""A simulated region with known ground truth: several ITS Foundations (sites), each with a
PC lab and a machine lab, seasons and holidays, sites whose agents observe less of the time
than others, and one pilot site whose outside use rises by a known amount from a known date.

It is what the regional report is checked against (``labmeter/api/region/``): a before and
after comparison must find the injected effect at the pilot site and none at the others, a
site with poor coverage must be flagged and left out of the rankings, and distinct users per
calendar year must equal the pseudonyms the simulator drew.

Every device's day is drawn from a generator seeded by (seed, site, device, date), so a day is
the same in whatever window it is seen. The labs' opening hours, holidays and closures come
from the region's own inventory (``inventory_yaml``), read with the real loader. A day is cut
into blocks of opening hours; a block holds one session (one pseudonym, one stakeholder
category) with a probability that follows the season, else the device is idle. Each session
begins with a sample with nobody logged in, so two sessions never run together. At the pilot
site, from the change date on, a session is an outside one (school, company, training agency)
with a probability higher by ``effect``: the expected outside share of in-use time rises by
exactly ``effect``, and nothing else changes. Outside sessions are booked by their
organisation; now and then an organisation books a block and does not come.

The same samples reach InfluxDB two ways: as the messages agents publish (``messages``), which
tests put through the collector's own conversion and rollup code, or, for a benchmark's year
of a 300-device region, as the hourly and session rollup points the collector would write from
them (``rollup_lines``). The truth (``truth``) is computed from the drawn sessions and samples,
never from either.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from labmeter.agent.identity import pseudonym
from labmeter.contract import EXTERNAL_CATEGORIES, Sample, Topic, encode
from labmeter.influx import FieldValue, InfluxV1, line
from labmeter.inventory import Inventory, parse
from labmeter.schema import (
    APP_TAGS,
    FACT_TAGS,
    HALF_HOUR_MS,
    HOUR_MS,
    IN_USE,
    OBSERVED,
    PEAK_SEATS,
    RUNNING,
    SAMPLES,
    SEAT_HOURS,
    SEAT_TAGS,
    SESSION_TAGS,
    SESSIONS,
    STATE_FIELDS,
    USERS,
    Calendar,
    Period,
    app_rollup,
    device_rollup,
    h1_name,
    seats_rollup,
    sessions_rollup,
)
from labmeter.sessions import join_users

# Share of a typical month's activity: quiet in August, lower in July and at Christmas.
SEASON = {1: 0.85, 2: 1.0, 3: 1.0, 4: 0.9, 5: 1.0, 6: 0.75, 7: 0.5, 8: 0.15, 9: 0.8, 10: 1.0,
          11: 1.0, 12: 0.8}  # fmt: skip
INTERNAL = (("its_student", 0.85), ("staff", 0.15))
OUTSIDE = (("school", 0.5), ("company", 0.25), ("training_agency", 0.25))
ORGANISATIONS = {"school": 3, "company": 3, "training_agency": 2}  # per site
PEOPLE = {"its_student": 60, "staff": 6, "school": 30, "company": 6, "training_agency": 12}
MACHINE_KINDS = ("cnc", "printer3d", "laser")
APP = "solidworks"  # the PCs' licensed title
NO_SHOW = 0.04  # an idle block booked by an organisation that does not come
BLOCK_MS = 2 * HOUR_MS
CAD, FAB = "lab-cad", "lab-fab"
CITIES = (
    ("Firenze", "06-24"), ("Pisa", "06-17"), ("Livorno", "11-25"), ("Arezzo", "08-07"),
    ("Siena", "12-01"), ("Lucca", "07-12"), ("Prato", "12-26"), ("Pistoia", "07-25"),
    ("Grosseto", "08-10"), ("Massa", "10-04"),
)  # fmt: skip
FUNDING = {
    "pc": ("FESR", "PR FESR Toscana 2021-2027 Azione 1.1.4", "J19J21000120007", 1800.0),
    "cnc": ("PNRR", "PNRR M4C1 I1.5 - Sviluppo del sistema ITS", "J14D22001230006", 24000.0),
    "printer3d": ("FSE+", "PR FSE+ Toscana 2021-2027 - ITS", "J15E23000410009", 3900.0),
    "laser": ("FESR", "PR FESR Toscana 2021-2027 Azione 1.1.4", "J19J21000120007", 12000.0),
}


@dataclass(frozen=True)
class SiteSpec:
    id: str
    city: str
    patron_day: str  # "MM-DD"
    coverage: float = 0.97  # probability that a device's agent observes a given day
    busy: float = 0.6  # probability that a block holds a session, in a typical month
    outside: float = 0.2  # probability that a session is an outside one
    pcs: int = 3
    machines: int = 2


@dataclass(frozen=True)
class Device:
    site: str
    lab: str
    id: str
    kind: str


@dataclass(frozen=True)
class SimSession:
    site: str
    lab: str
    device: str
    user: str
    category: str
    organisation: str  # an outside session's organisation, else ""
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class SimBooking:
    site: str
    lab: str
    device: str
    start_ms: int
    end_ms: int
    organisation: str
    category: str
    came: bool  # False: a no-show


@dataclass(frozen=True)
class SimSample:
    """One sample: its interval's start, in-use seconds (the rest idle), who, which app ran."""

    start_ms: int
    in_use_s: float
    user: str | None
    category: str
    app: str | None


@dataclass
class DeviceDay:
    device: Device
    samples: list[SimSample] = field(default_factory=list)
    sessions: list[SimSession] = field(default_factory=list)
    bookings: list[SimBooking] = field(default_factory=list)


@dataclass(frozen=True)
class Region:
    """The region's sites and the pilot: ``effect`` is added to the pilot site's outside
    share from ``change`` on; ``first`` and ``days`` are the local days simulated."""

    sites: tuple[SiteSpec, ...]
    pilot: str
    change: date
    effect: float
    first: date
    days: int
    seed: int = 7
    interval_s: int = 900
    tz: str = "Europe/Rome"

    @cached_property
    def calendar(self) -> Calendar:
        return Calendar(self.tz)

    @cached_property
    def inventory(self) -> Inventory:
        return parse(inventory_yaml(self), "region.yaml")

    def devices(self) -> list[Device]:
        out = []
        for site in self.sites:
            out += [Device(site.id, CAD, f"pc-{n:02d}", "pc") for n in range(1, site.pcs + 1)]
            for n in range(1, site.machines + 1):
                kind = MACHINE_KINDS[(n - 1) % len(MACHINE_KINDS)]
                out.append(Device(site.id, FAB, f"{kind}-{n:02d}", kind))
        return out

    def ms(self, day: date) -> int:
        """Local midnight starting ``day``, in epoch ms."""
        return int(datetime.combine(day, time(), self.calendar.zone).timestamp() * 1000)

    @property
    def start_ms(self) -> int:
        return self.ms(self.first)

    @property
    def end_ms(self) -> int:
        return self.ms(self.first + timedelta(days=self.days))

    @cached_property
    def _people(self) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """Per site and category: (pseudonym, organisation) of each person, with the site's own
        secret (a person at two sites has two pseudonyms, as with real agents)."""
        out: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for site in self.sites:
            secret = f"region-{self.seed}-{site.id}"
            for category, n in PEOPLE.items():
                orgs = ORGANISATIONS.get(category, 0)
                out[(site.id, category)] = [
                    (
                        pseudonym(secret, f"{category}-{i}"),
                        f"{_ORG_NAMES[category]} {site.city} {i % orgs + 1}" if orgs else "",
                    )
                    for i in range(n)
                ]
        return out

    def day(self, device: Device, day: date) -> DeviceDay:
        """One device's samples, sessions and bookings on one local day."""
        out = DeviceDay(device)
        inv = self.inventory
        spec = next(s for s in self.sites if s.id == device.site)
        lab = inv.labs[(device.site, device.lab)]
        a, b = self.ms(day), self.ms(day + timedelta(days=1))
        spans = list(inv.opening_spans(lab, a, b))
        rng = random.Random(f"{self.seed}/{device.site}/{device.id}/{day.isoformat()}")
        if not spans or rng.random() >= spec.coverage:
            return out  # closed, or the agent saw nothing that day
        step = self.interval_s * 1000
        busy = spec.busy * SEASON[day.month]
        outside = spec.outside + (
            self.effect if spec.id == self.pilot and day >= self.change else 0.0
        )
        for first, last in spans:
            t = first
            while t < last:
                end = last if last - t < BLOCK_MS + HOUR_MS else t + BLOCK_MS
                self._block(out, spec, rng, t, end, step, busy, outside)
                t = end
        return out

    def _block(
        self,
        out: DeviceDay,
        spec: SiteSpec,
        rng: random.Random,
        a: int,
        b: int,
        step: int,
        busy: float,
        outside: float,
    ) -> None:
        dev = out.device
        slots = range(a, b, step)
        if rng.random() >= busy:
            out.samples += [SimSample(t, 0.0, None, "unknown", None) for t in slots]
            if rng.random() < NO_SHOW:
                category = _pick(rng, OUTSIDE)
                _, org = rng.choice(self._people[(spec.id, category)])
                out.bookings.append(
                    SimBooking(dev.site, dev.lab, dev.id, a, b, org, category, False)
                )
            return
        category = _pick(rng, OUTSIDE if rng.random() < outside else INTERNAL)
        user, org = rng.choice(self._people[(spec.id, category)])
        app = APP if dev.kind == "pc" and rng.random() < 0.5 else None
        # The block's first sample has nobody logged in: sessions never run together.
        out.samples.append(SimSample(a, 0.0, None, "unknown", None))
        for t in slots[1:]:
            used = round(self.interval_s * rng.uniform(0.6, 1.0), 1)
            out.samples.append(SimSample(t, used, user, category, app))
        out.sessions.append(SimSession(dev.site, dev.lab, dev.id, user, category, org, a + step, b))
        if org:
            out.bookings.append(SimBooking(dev.site, dev.lab, dev.id, a, b, org, category, True))

    def each_day(self) -> Iterator[tuple[date, list[DeviceDay]]]:
        """Every local day with what each device did on it."""
        devices = self.devices()
        for n in range(self.days):
            day = self.first + timedelta(days=n)
            yield day, [found for d in devices if (found := self.day(d, day)).samples]

    # --- what reaches InfluxDB ---------------------------------------------------------------

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """The samples as agents publish them: (topic, payload)."""
        seq: dict[Device, int] = defaultdict(int)
        interval = float(self.interval_s)
        for found in (f for _, days in self.each_day() for f in days):
            dev = found.device
            topic = str(Topic(dev.site, dev.lab, dev.id, "sample"))
            for s in found.samples:
                seq[dev] += 1
                sample = Sample(
                    ts=s.start_ms + self.interval_s * 1000, seq=seq[dev], interval_s=interval,
                    state_s={"in_use": s.in_use_s, "idle": interval - s.in_use_s},
                    category=s.category, user=s.user, kind=dev.kind,
                    state="in_use" if s.in_use_s else "idle",
                    apps_s={s.app: interval} if s.app else {},
                )  # fmt: skip
                yield topic, encode(sample)

    def rollup_lines(self) -> Iterator[list[str]]:
        """A local day at a time: the hourly device, app and seat rollups and the daily
        session rollups the collector would write from these samples (its field names and
        tags), for a benchmark's year that raw samples would take hours to roll up."""
        for day, found in self.each_day():
            yield _day_lines(found, float(self.interval_s), self.ms(day))

    # --- the truth ----------------------------------------------------------------------------

    def truth(self) -> Truth:
        out = Truth()
        for _day, found in self.each_day():
            for f in found:
                out.sessions += f.sessions
                out.bookings += f.bookings
        return out

    def bookings_csv(self, truth: Truth) -> str:
        """Every booking as a CSV the bookings loader reads (wall-clock local times)."""
        zone = self.calendar.zone
        rows = ["site,lab,devices,start,end,organisation,category,activity"]
        for b in truth.bookings:
            start, end = (_clock(t, zone) for t in (b.start_ms, b.end_ms))
            rows.append(f"{b.site},{b.lab},{b.device},{start},{end},{b.organisation},"
                        f"{b.category},Attività su prenotazione")  # fmt: skip
        return "\n".join(rows) + "\n"


_ORG_NAMES = {"school": "Istituto", "company": "Impresa", "training_agency": "Agenzia formativa"}


@dataclass
class Truth:
    """The sessions and bookings as drawn."""

    sessions: list[SimSession] = field(default_factory=list)
    bookings: list[SimBooking] = field(default_factory=list)

    def users(self, site: str, start_ms: int, end_ms: int) -> set[str]:
        """Distinct pseudonyms of the site's sessions begun in ``[start, end)``."""
        return {s.user for s in self.sessions if s.site == site and start_ms <= s.start_ms < end_ms}

    def sessions_in(self, site: str, start_ms: int, end_ms: int) -> int:
        return sum(1 for s in self.sessions if s.site == site and start_ms <= s.start_ms < end_ms)

    def organisations(self, site: str, start_ms: int, end_ms: int) -> set[str]:
        """Outside organisations that came (a booking used, not a no-show) in the window."""
        return {
            b.organisation
            for b in self.bookings
            if b.site == site and b.came and start_ms <= b.start_ms < end_ms
            and b.category in EXTERNAL_CATEGORIES
        }  # fmt: skip


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([n for n, _ in weighted], [w for _, w in weighted])[0]


def _clock(ms: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d %H:%M")


def _day_lines(days: list[DeviceDay], interval: float, day_ms: int) -> list[str]:
    """The collector's rollups of one local day's samples and sessions (its schema)."""
    hourly: dict[tuple[str, str, str, str, str, int], list[float]] = {}
    apps: dict[tuple[str, str, str, str, int], float] = defaultdict(float)
    seats: dict[tuple[str, int], set[str]] = defaultdict(set)  # (site, slot) -> devices
    begun: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for found in days:
        d = found.device
        for s in found.samples:
            hour = s.start_ms - s.start_ms % HOUR_MS
            first_half = s.start_ms < hour + HALF_HOUR_MS
            acc = hourly.setdefault((d.site, d.lab, d.id, d.kind, s.category, hour), [0.0] * 5)
            acc[0] += s.in_use_s
            acc[1] += interval
            acc[2] += s.in_use_s if first_half else 0.0
            acc[3] += interval if first_half else 0.0
            acc[4] += 1
            if s.app:
                apps[(d.site, d.lab, d.id, s.category, hour)] += interval
                seats[(d.site, s.start_ms)].add(d.id)
        for session in found.sessions:
            begun[(d.site, d.lab, d.id, session.category)].append(session.user)
    out = []
    device = device_rollup(Period.hourly).name
    for (site, lab, dev, kind, category, hour), (used, seen, used1, seen1, n) in hourly.items():
        tags = dict(zip(FACT_TAGS, (site, lab, dev, kind, category), strict=True))
        fields: dict[str, FieldValue] = dict.fromkeys(STATE_FIELDS, 0.0)
        fields |= {IN_USE: used, "idle_s": seen - used, OBSERVED: seen, SAMPLES: int(n)}
        fields |= {h1_name(IN_USE): used1, h1_name(OBSERVED): seen1}
        out.append(line(device, tags, fields, hour))
    for (site, lab, dev, category, hour), running in apps.items():
        tags = dict(zip(APP_TAGS, (site, lab, dev, category, APP), strict=True))
        out.append(line(app_rollup(Period.hourly).name, tags, {RUNNING: running}, hour))
    peaks: dict[tuple[str, int], tuple[int, float]] = {}
    for (site, slot), devices in seats.items():
        hour = slot - slot % HOUR_MS
        peak, hours = peaks.get((site, hour), (0, 0.0))
        peaks[(site, hour)] = (max(peak, len(devices)), hours + len(devices) * interval / 3600)
    for (site, hour), (peak, hours) in peaks.items():
        seat: dict[str, FieldValue] = {PEAK_SEATS: peak, SEAT_HOURS: hours}
        tags = dict(zip(SEAT_TAGS, (site, APP), strict=True))
        out.append(line(seats_rollup(Period.hourly).name, tags, seat, hour))
    for key, users in begun.items():
        tags = dict(zip(SESSION_TAGS, key, strict=True))
        counted: dict[str, FieldValue] = {SESSIONS: len(users), USERS: join_users(set(users))}
        out.append(line(sessions_rollup(Period.daily).name, tags, counted, day_ms))
    return out


def write_rollups(influx: InfluxV1, region: Region, batch: int = 50_000) -> int:
    """The region's samples into ``influx`` as the collector would have rolled them up: the
    hourly rollups (``Region.rollup_lines``), then the collector's own ``backfill`` for the
    days and months (usage per device, asset and lab, busy devices), then the daily session
    rollups with their sums per asset and per lab and the collector's ``month_lines`` for the
    months (after the backfill, which finds no raw sample to count sessions in); the points
    written."""
    from labmeter.collector.daily import backfill
    from labmeter.collector.sessions import coarse_lines, month_lines
    from labmeter.opening import OpeningHours

    sessions: list[str] = []
    pending: list[str] = []
    written = 0
    name = sessions_rollup(Period.daily).name
    for lines in region.rollup_lines():
        for text in lines:
            (sessions if text.startswith(name) else pending).append(text)
        if len(pending) >= batch:
            influx.write_lines(pending)
            written, pending = written + len(pending), []
    influx.write_lines(pending)
    written += len(pending)
    written += backfill(
        influx, influx, region.start_ms, region.end_ms, "+", OpeningHours(region.inventory)
    )
    for i in range(0, len(sessions), batch):
        influx.write_lines(sessions[i : i + batch])
    written += len(sessions)
    cal = region.calendar
    month = cal.month_of(region.start_ms)
    while month < region.end_ms:
        after = cal.next_month(month)
        summed = coarse_lines(influx, month, after, Period.daily) + month_lines(
            influx, month, "+", cal
        )
        influx.write_lines(summed)
        written += len(summed)
        month = after
    return written


def inventory_yaml(region: Region) -> str:
    """The region's inventory: each site with its patron saint, a PC lab and a machine lab
    with their hours, the Christmas and August closures, equipment with fund, CUP, cost,
    *collaudo* and final payment, and the PCs' licence (one seat fewer than the PCs)."""
    years = sorted({(region.first + timedelta(days=n)).year for n in range(region.days)})
    closures = ", ".join(
        f'{{from: {y}-12-24, to: {y + 1}-01-06, reason: "vacanze natalizie"}}, '
        f'{{from: {y}-08-10, to: {y}-08-21, reason: "chiusura estiva"}}'
        for y in [years[0] - 1, *years]
    )
    lines = [
        "version: 1", f"timezone: {region.tz}",
        "useful_life: {pc: 5, cnc: 10, printer3d: 5, laser: 8}", "sites:",
    ]  # fmt: skip
    for s in region.sites:
        lines.append(f'  - {{id: {s.id}, name: "Fondazione ITS {s.city}", '
                     f'patron_day: "{s.patron_day}"}}')  # fmt: skip
    lines.append("labs:")
    for s in region.sites:
        lines.append(
            f'  - {{id: {CAD}, site: {s.id}, name: "Laboratorio CAD", '
            f'hours: {{mon-fri: "08:30-13:00, 14:00-18:30"}}, closures: [{closures}]}}'
        )
        lines.append(
            f'  - {{id: {FAB}, site: {s.id}, name: "Laboratorio di fabbricazione", '
            f'hours: {{mon-fri: "08:00-13:00, 14:00-18:00"}}, closures: [{closures}]}}'
        )
    lines.append("equipment:")
    collaudo = date(years[0] - 1, 3, 2)
    bought, final = collaudo - timedelta(days=30), date(years[0] - 1, 6, 30)
    for d in region.devices():
        fund, call, cup, cost = FUNDING[d.kind]
        pnrr = ", pnrr: true" if fund == "PNRR" else ""
        lines.append(
            f'  - {{id: {d.id}, site: {d.site}, lab: {d.lab}, kind: {d.kind}, fund: "{fund}"'
            f'{pnrr}, call: "{call}", cup: {cup}, cost: {cost}, purchased: {bought}, '
            f"collaudo: {collaudo}, final_payment: {final}}}"
        )  # fmt: skip
    lines.append("software:")
    for s in region.sites:
        lines.append(f"  - {{id: {APP}, site: {s.id}, seats: {max(1, s.pcs - 1)}}}")
    return "\n".join(lines) + "\n"


def small_region(seed: int = 7) -> Region:
    """The region the tests use: five sites, one a pilot (outside share +0.25 from
    3 November 2025), one with agents that observe under half of the days, over 19 weeks
    from 1 September 2025 that hold the Christmas holidays and a change of year."""
    sites = (
        SiteSpec("its-fi", *CITIES[0], outside=0.2),
        SiteSpec("its-pi", *CITIES[1], outside=0.2, busy=0.5),
        SiteSpec("its-li", *CITIES[2], outside=0.25, busy=0.65),
        SiteSpec("its-ar", *CITIES[3], outside=0.15, busy=0.55),
        SiteSpec("its-si", *CITIES[4], coverage=0.45),
    )
    return Region(sites, "its-fi", date(2025, 11, 3), 0.25, date(2025, 9, 1), 133, seed)


def bench_region(seed: int = 7, first: date = date(2025, 1, 1), days: int = 365) -> Region:
    """The benchmark's region: 10 sites of 18 PCs and 12 machines (300 devices) over a year,
    the pilot at the first site from 1 September, one site with poor coverage."""
    sites = tuple(
        SiteSpec(f"its-{i + 1:02d}", city, patron, coverage=0.5 if i == 9 else 0.97,
                 busy=0.5 + 0.02 * i, outside=0.15 + 0.01 * i, pcs=18, machines=12)
        for i, (city, patron) in enumerate(CITIES)
    )  # fmt: skip
    return Region(sites, "its-01", date(first.year, 9, 1), 0.2, first, days, seed)
