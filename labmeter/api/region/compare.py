"""The pilot site before and after the open-lab method, against the other sites over the same
weeks: the figures per site and calendar week of both windows, then the seeded bootstrap and
the difference in differences of ``bootstrap.py``.

Per week and site: in-use and available seconds within opening hours (utilisation), in-use
seconds of outside categories and of all (the outside share), the distinct pseudonyms of the
sessions begun that week, and, with bookings, the outside organisations that came (a booking
begun that week, not a no-show). Weeks in which no lab of the region was open (the Christmas
holidays, an August closure) are left out: a week is a unit of time the labs could be used.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from labmeter.api import session_counts
from labmeter.api.bookings import BookingRow
from labmeter.api.figures import ratio
from labmeter.api.region.bootstrap import METRICS, Compared, Weekly, compare
from labmeter.api.region.model import Change, Comparison, SiteChange
from labmeter.api.scope import Scope
from labmeter.api.usage import View
from labmeter.contract import EXTERNAL_CATEGORIES
from labmeter.schema import IN_USE, Calendar, open_name

Span = tuple[int, int]
FEW_UNITS = 8  # fewer weeks than this in a window: the interval says little
MAX_WINDOW_MS = 3 * 366 * 24 * 3600_000  # a window's weeks, each read per lab and day
MAX_TIME_MS = 7_258_118_400_000  # 2200-01-01: beyond it InfluxDB's nanosecond times overflow
FIELDS = (IN_USE, open_name(IN_USE), open_name("observed_s"))
EXTERNAL = frozenset(EXTERNAL_CATEGORIES)


@dataclass(frozen=True)
class PilotSpec:
    """The pilot site and its two windows; the bootstrap's seed, resamples and confidence."""

    site: str
    baseline: Span
    pilot: Span
    seed: int = 1
    resamples: int = 2000
    confidence: float = 0.95

    def check(self) -> None:
        """Refuse windows that are empty or overlap: a week cannot be both before and after."""
        for name, (a, b) in (("baseline", self.baseline), ("pilot", self.pilot)):
            if b <= a:
                raise ValueError(f"{name}: the end must be after the start")
            if b - a > MAX_WINDOW_MS or a < 0 or b > MAX_TIME_MS:
                raise ValueError(f"{name}: at most three years, between 1970 and 2200")
        if self.baseline[0] < self.pilot[1] and self.pilot[0] < self.baseline[1]:
            raise ValueError("the baseline and the pilot windows overlap")
        if not 0.5 <= self.confidence < 1:
            raise ValueError("confidence must lie in [0.5, 1)")
        if not 100 <= self.resamples <= 100_000:
            raise ValueError("resamples must lie between 100 and 100,000")


def weeks(cal: Calendar, start_ms: int, end_ms: int) -> list[Span]:
    """Calendar weeks (Monday to Monday, local midnights) clipped to ``[start, end)``."""
    day = cal.date_of(start_ms)
    day -= timedelta(days=day.weekday())
    out: list[Span] = []
    while True:
        begin = int(datetime.combine(day, time(), cal.zone).timestamp() * 1000)
        if begin >= end_ms:
            return out
        day += timedelta(days=7)
        after = int(datetime.combine(day, time(), cal.zone).timestamp() * 1000)
        if after > start_ms:
            out.append((max(begin, start_ms), min(after, end_ms)))


@dataclass
class _Unit:
    """One site's figures over one week."""

    in_use_open: float = 0.0
    available: float = 0.0
    observed_open: float = 0.0
    external: float = 0.0
    in_use: float = 0.0
    users: float = 0.0
    organisations: float = 0.0


@dataclass(frozen=True)
class Weeks:
    """What the comparison reads: the weeks of both windows, and per (week, site) its figures
    (organisations come later, from the bookings)."""

    spans: list[Span]
    units: dict[tuple[int, str], _Unit]


def read_weeks(scope: Scope, spec: PilotSpec) -> Weeks:
    """The weeks' figures, read side by side with the report's other reads."""
    cal = scope.plan.calendar
    spans = sorted(weeks(cal, *spec.baseline) + weeks(cal, *spec.pilot))
    return Weeks(spans, _units(scope, spans))


def comparison(
    spec: PilotSpec,
    read: Weeks,
    sites: list[str],
    min_coverage: float,
    bookings: list[BookingRow] | None,
    cal: Calendar,
) -> Comparison:
    """Every site's change between the windows, the pilot's against the pooled controls (the
    other sites whose coverage over both windows passes ``min_coverage``)."""
    if spec.site not in sites:
        raise ValueError(f"pilot site {spec.site!r} is not among the sites: {', '.join(sites)}")
    spans = read.spans
    units = _with_organisations(read, sites, bookings)
    # A week in which no lab of the region was open is no unit of use.
    spans = [s for s in spans if sum(units[(s[0], site)].available for site in sites) > 0]

    def series(window: Span, site_list: list[str]) -> Weekly:
        within = [s for s in spans if window[0] <= s[0] < window[1]]
        got = [[units[(s[0], site)] for s in within] for site in site_list]
        return Weekly.pooled([_weekly(u, bookings is not None) for u in got])

    coverage = {site: _coverage([units[(s[0], site)] for s in spans]) for site in sites}
    controls = [
        s for s in sites
        if s != spec.site and (coverage[s] or 0.0) >= min_coverage
    ]  # fmt: skip
    keys = [*sites, *([""] if controls else [])]
    baseline = {k: series(spec.baseline, [k] if k else controls) for k in keys}
    pilot = {k: series(spec.pilot, [k] if k else controls) for k in keys}
    found = compare(
        baseline, pilot, spec.site, "" if controls else None, spec.seed, spec.resamples,
        spec.confidence,
    )  # fmt: skip

    def row(key: str, role: str) -> SiteChange:
        chosen = [key] if key else controls
        return _row(key, role, found, bookings is not None, baseline[key], pilot[key],
                    _coverage([units[(s[0], c)] for s in spans for c in chosen]))  # fmt: skip

    roles = {
        s: "pilot" if s == spec.site else "control" if s in controls else "apart" for s in sites
    }
    ordered = sorted(sites, key=lambda s: (s != spec.site, s))
    n_base = len(baseline[spec.site].in_use) if spec.site in baseline else 0
    n_pilot = len(pilot[spec.site].in_use) if spec.site in pilot else 0
    caveats = []
    if (coverage.get(spec.site) or 0.0) < min_coverage:
        caveats.append("pilot_low_coverage")
    if not controls:
        caveats.append("no_controls")
    if min(n_base, n_pilot) < FEW_UNITS:
        caveats.append("few_units")
    if len(spans) < len(weeks(cal, *spec.baseline)) + len(weeks(cal, *spec.pilot)):
        caveats.append("closed_weeks")
    return Comparison(
        site=spec.site,
        baseline_start_ms=spec.baseline[0],
        baseline_end_ms=spec.baseline[1],
        pilot_start_ms=spec.pilot[0],
        pilot_end_ms=spec.pilot[1],
        unit="week",
        baseline_units=n_base,
        pilot_units=n_pilot,
        seed=spec.seed,
        resamples=spec.resamples,
        confidence=spec.confidence,
        controls=controls,
        sites=[row(s, roles[s]) for s in ordered],
        pooled=row("", "pooled") if controls else _empty(bookings is not None),
        did=found.did,
        caveats=caveats,
    )


def _units(scope: Scope, spans: list[Span]) -> dict[tuple[int, str], _Unit]:
    """Per (week's start, site): the week's figures (registered devices only)."""
    out: dict[tuple[int, str], _Unit] = defaultdict(_Unit)
    read = scope.reader.facts(scope.plan, spans, View.lab, scope.unregistered(), FIELDS)
    for (at, (site, _lab, _d, _k, category)), t in read.items():
        unit = out[(at, site)]
        unit.in_use_open += t.seconds[open_name(IN_USE)]
        unit.observed_open += t.seconds[open_name("observed_s")]
        unit.in_use += t.in_use_s
        if category in EXTERNAL:
            unit.external += t.in_use_s
    members = scope.members()
    for a, b in spans:
        for m in members:
            # A lab's hours once per week; an identity that changed hands within it clipped.
            whole = m.tenure is not None and m.tenure.clip(a, b) == (a, b)
            available = (
                scope.lab_available_s(m.key[0], m.key[1], a, b)
                if whole
                else scope.member_available_s(m, a, b)
            )
            out[(a, m.key[0])].available += available
    # Per site only (registered devices, an asset never leaves its site): read per lab.
    counts = session_counts.count_per(scope, spans)
    for (a, _b), found in zip(spans, counts, strict=True):
        for site, (_n, users) in found.by(lambda k: k[0]).items():
            out[(a, site)].users = users
    return out


def _with_organisations(
    read: Weeks, sites: list[str], bookings: list[BookingRow] | None
) -> dict[tuple[int, str], _Unit]:
    """The weeks' figures with the outside organisations that came, every site every week."""
    spans = read.spans
    out = defaultdict(_Unit, read.units)
    for a, _ in spans:
        for site in sites:
            out[(a, site)] = dataclasses.replace(out[(a, site)])
    if bookings is not None:
        starts = [a for a, _ in spans]
        reached: dict[tuple[int, str], set[str]] = defaultdict(set)
        for r in bookings:
            i = bisect_right(starts, r["start_ms"]) - 1
            came = r["category"] in EXTERNAL and not r["no_show"]
            if came and i >= 0 and r["start_ms"] < spans[i][1]:
                reached[(starts[i], r["site"])].add(r["organisation"])
        for key, names in reached.items():
            out[key].organisations = len(names)
    return out


def _weekly(units: list[_Unit], with_bookings: bool) -> Weekly:
    return Weekly(
        tuple(u.in_use_open for u in units),
        tuple(u.available for u in units),
        tuple(u.external for u in units),
        tuple(u.in_use for u in units),
        tuple(u.users for u in units),
        tuple(u.organisations for u in units) if with_bookings else None,
    )


def _coverage(units: list[_Unit]) -> float | None:
    return ratio(sum(u.observed_open for u in units), sum(u.available for u in units))


def _row(
    key: str,
    role: str,
    found: Compared,
    with_bookings: bool,
    baseline: Weekly,
    pilot: Weekly,
    coverage: float | None,
) -> SiteChange:
    changes = found.changes[key]
    return SiteChange(
        site=key,
        role=role,
        coverage=coverage,
        baseline_open_s=sum(baseline.available),
        pilot_open_s=sum(pilot.available),
        utilisation=changes[METRICS[0]],
        quota_esterna=changes[METRICS[1]],
        users_per_week=changes[METRICS[2]],
        organisations_per_week=changes[METRICS[3]] if with_bookings else None,
    )


def _empty(with_bookings: bool) -> SiteChange:
    none = Change(baseline=None, pilot=None, delta={"value": None, "low": None, "high": None})
    return SiteChange(
        site="",
        role="pooled",
        coverage=None,
        baseline_open_s=0.0,
        pilot_open_s=0.0,
        utilisation=none,
        quota_esterna=none,
        users_per_week=none,
        organisations_per_week=none if with_bookings else None,
    )
