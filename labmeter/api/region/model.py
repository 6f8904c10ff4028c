"""The regional report's content as typed records: ``build.py`` fills it, every renderer reads
it, mypy checks both sides. Numbers stay raw (seconds, ratios, epoch ms)."""

from __future__ import annotations

from datetime import date

from typing_extensions import TypedDict  # one kind with the records (api/records.py)


class RegionMeta(TypedDict):
    start_ms: int
    end_ms: int
    generated_ms: int
    timezone: str
    inventory: str | None  # the file's path
    inventory_sha256: str | None
    labmeter: str
    rolled_until_ms: int | None


class RegionThresholds(TypedDict):
    min_coverage: float  # sites below it are listed apart, never ranked
    underused_below: float  # assets below it for the whole window are idle
    busy_hour_s: float  # a device is busy in an hour it was in use this long
    durability_years: int  # after the final payment, unless the grant states its own
    low_coverage_below: float  # the site report's own flag, for assets


class SiteRow(TypedDict):
    """One site (or the whole region, ``site`` = ""), with the site report's definitions."""

    site: str
    name: str
    labs: int
    devices: int
    available_s: float | None
    in_use_s: float  # after hours too
    in_use_open_s: float
    observed_open_s: float
    utilisation: float | None
    coverage: float | None
    ranked: bool  # coverage passes the threshold
    rank_utilisation: int | None
    rank_outside: int | None
    external_s: float
    quota_esterna: float | None
    categories: dict[str, float]  # in-use seconds per stakeholder category
    sessions: int
    users: int  # distinct pseudonyms among the window's sessions
    organisations: int | None  # outside organisations that came (bookings); None: no bookings
    cost_eur: float  # the equipment's cost over the window
    cost_per_hour: float | None  # cost_eur ÷ hours in use


class KindRow(TypedDict):
    """One kind of equipment at one site (``site`` = "": the whole region)."""

    site: str
    kind: str
    devices: int
    available_s: float | None
    in_use_s: float
    in_use_open_s: float
    observed_open_s: float
    utilisation: float | None
    coverage: float | None
    sessions: int
    users: int
    cost_eur: float
    cost_per_hour: float | None


class Unranked(TypedDict):
    site: str
    coverage: float | None


class Ranking(TypedDict):
    """Sites ranked only among those whose coverage passes ``min_coverage``."""

    min_coverage: float
    by_utilisation: list[str]  # site ids, best first
    by_outside_share: list[str]
    apart: list[Unranked]  # below the threshold: listed with their coverage, never ranked


class Interval(TypedDict):
    value: float | None
    low: float | None  # the bootstrap's percentile interval
    high: float | None


class Change(TypedDict):
    """One figure before and after, and its change with a confidence interval."""

    baseline: float | None
    pilot: float | None
    delta: Interval


class SiteChange(TypedDict):
    site: str  # "" for the pooled control sites
    role: str  # "pilot", "control", "apart" (coverage below the threshold), "pooled"
    coverage: float | None  # over both windows
    baseline_open_s: float
    pilot_open_s: float
    utilisation: Change
    quota_esterna: Change
    users_per_week: Change
    organisations_per_week: Change | None  # None: no bookings


class Comparison(TypedDict):
    """Before and after at the pilot site, and the same at the others as a control."""

    site: str
    baseline_start_ms: int
    baseline_end_ms: int
    pilot_start_ms: int
    pilot_end_ms: int
    unit: str  # what the bootstrap resamples: "week"
    baseline_units: int
    pilot_units: int
    seed: int
    resamples: int
    confidence: float
    controls: list[str]  # the sites pooled as the control
    sites: list[SiteChange]  # every site, the pilot first
    pooled: SiteChange  # the control sites together
    did: dict[str, Interval]  # difference in differences: pilot's change - the control's
    caveats: list[str]  # codes the texts explain: low_coverage, no_controls, few_units, ...


class LabKindLoad(TypedDict):
    """Saturation of one kind of equipment in one lab."""

    site: str
    lab: str
    kind: str
    devices: int  # registered devices of that kind in the lab
    open_s: float  # the lab's opening hours in the window
    full_s: float  # of them, in hours with every device of the kind busy
    full_share: float | None
    peak_busy: int  # the most devices of the kind busy in the same hour
    peak_share: float | None  # peak_busy ÷ devices
    bookings_in_full: int | None  # bookings overlapping a full hour; None: no bookings


class LicenceLoad(TypedDict):
    site: str
    app: str
    seats_owned: int | None
    peak_seats: int
    peak_share: float | None


class IdleAsset(TypedDict):
    """An asset below the low-use threshold over the whole window, with its cost."""

    site: str
    lab: str
    device: str
    kind: str
    fund: str
    utilisation: float | None
    coverage: float | None
    in_use_open_s: float
    available_s: float | None
    cost: float | None  # purchase
    cost_eur: float  # over the window


class Saturation(TypedDict):
    labs: list[LabKindLoad]
    licences: list[LicenceLoad]
    idle: list[IdleAsset]


class FundSite(TypedDict):
    """Funding indicators of one fund at one site (``site`` = "": every site)."""

    fund: str
    site: str
    assets: int
    cost: float  # purchase cost of its assets
    users_per_year: dict[str, int]  # calendar year -> distinct pseudonyms (RCR71-style)
    users: int  # over the window (ESF+ participants)
    sessions: int
    in_use_s: float
    external_s: float
    external_per_1000_eur: float | None  # external in-use hours per 1,000 euros of cost
    cost_eur: float  # over the window
    cost_per_external_hour: float | None
    organisations: dict[str, int] | None  # outside organisations per category; None: no bookings


class Semester(TypedDict):
    """A fund at a site over one six-monthly window (PNRR's ReGiS), clipped to the report."""

    fund: str
    site: str
    semester: str  # "2025-S2"
    start_ms: int
    end_ms: int
    users: int
    sessions: int
    in_use_s: float
    external_s: float
    quota_esterna: float | None
    cost_eur: float


class MonthUse(TypedDict):
    start_ms: int
    in_use_s: float
    in_use_open_s: float
    available_s: float | None
    utilisation: float | None


class Durability(TypedDict):
    """An asset's measured use month by month within its durability period (and the window)."""

    site: str
    lab: str
    device: str
    kind: str
    fund: str
    cup: str
    collaudo: date | None
    final_payment: date | None
    durability_until: date | None
    months: list[MonthUse]


class Indicators(TypedDict):
    funds: list[FundSite]
    semesters: list[Semester]
    durability: list[Durability]


class RegionReport(TypedDict):
    meta: RegionMeta
    thresholds: RegionThresholds
    sites: list[SiteRow]
    region: SiteRow
    kinds: list[KindRow]
    ranking: Ranking
    comparison: Comparison | None
    saturation: Saturation
    indicators: Indicators
    unregistered: list[str]  # site/lab/device seen but in no inventory entry
