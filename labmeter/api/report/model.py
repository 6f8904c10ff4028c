"""The report's content as typed records, section by section (DESIGN.md's *Rapporto di
utilizzo*): ``build.py`` fills it, every renderer reads it, mypy checks both sides."""

from __future__ import annotations

from datetime import date

from typing_extensions import TypedDict  # one kind with the records (api/records.py)

from labmeter.api.bookings import CommercialUse, CompanyUse, FeedRow, Reconciliation
from labmeter.api.costs import Costs
from labmeter.api.records import DeviceRow, GroupRow, OpennessRow, SessionSummary, SoftwareRow
from labmeter.inventory import Funding


class Meta(TypedDict):
    start_ms: int
    end_ms: int
    generated_ms: int
    timezone: str
    inventory: str | None  # the file's path
    labmeter: str  # version
    filters: dict[str, str]
    rolled_until_ms: int | None


class Funded(TypedDict):
    """An asset's ``Funding`` (labmeter/inventory/model.py) as a row carries it, flat."""

    fund: str
    call: str
    cup: str
    pnrr: bool


def funded(funding: Funding | None) -> Funded:
    """The row's funding fields (empty for a device the inventory does not list)."""
    f = funding or Funding()
    return Funded(fund=f.fund, call=f.call, cup=f.cup, pnrr=f.pnrr)


class FrameworkRow(Funded):
    """Section 1: one fund, call and CUP with the assets it financed."""

    assets: int
    cost: float
    final_payment: date | None
    durability_until: date | None
    retention_until: date | None


# "from" is a Python keyword: the functional form keeps the JSON key.
Closure = TypedDict("Closure", {"from": date, "to": date, "reason": str})


class AvailabilityRow(TypedDict):
    """Section 3: a lab's declared hours and closures, and its open time in the window."""

    site: str
    lab: str
    name: str
    hours: dict[str, str]  # weekday -> "08:30-13:00, 14:00-18:30"
    closures: list[Closure]
    available_s: float


class EquipmentRow(DeviceRow, Funded):
    """Sections 2, 4 and 7: a device's figures with its inventory entry."""

    description: str
    cost: float | None
    purchased: date | None
    collaudo: date | None
    sessions: int  # sessions begun in the window (labmeter/sessions.py)
    cost_per_hour: float | None  # the window's cost (api/costs.py) ÷ hours in use
    agent: str | None  # agent version last announced


class MonthRow(TypedDict):
    """Section 4's trend: a lab in one month."""

    site: str
    lab: str
    period_start_ms: int
    period_end_ms: int
    in_use_s: float
    in_use_open_s: float
    after_hours_s: float | None
    observed_s: float
    observed_open_s: float
    available_s: float | None
    utilisation: float | None
    coverage: float | None
    devices: int


class MonthOpenness(TypedDict):
    period_start_ms: int
    period_end_ms: int
    in_use_s: float
    external_s: float
    quota_esterna: float | None
    categories: dict[str, float]  # in-use seconds per category


class Openness(TypedDict):
    labs: list[OpennessRow]
    months: list[MonthOpenness]
    outside_organisations: int | None  # distinct external organisations that came (bookings)
    external_sessions: int  # sessions begun by external categories


class DeviceRef(TypedDict):
    site: str
    lab: str
    device: str


class Gap(DeviceRef):
    """An asset observed for too little of its opening hours (sections 8 and 9)."""

    coverage: float | None


class Underused(DeviceRef):
    utilisation: float | None


class CrossCheck(DeviceRef):
    """A machine whose protocol said in use while the clamp on its supply said off."""

    conflict_s: float


class AgentVersion(TypedDict):
    version: str
    devices: int


class Thresholds(TypedDict):
    underused_below: float
    low_coverage_below: float
    durability_years: int
    retention_years: int
    session_gap_tolerance_s: float
    no_show_below: float | None  # None: no bookings
    useful_life_years: dict[str, float]  # per kind, as used for the costs


class ClosedPeriod(TypedDict):
    """The closed period a report's window lies in, and its evidence package's manifest."""

    start_ms: int
    end_ms: int
    site: str
    state: str  # "closing" while its package is written, then "closed"
    manifest_sha256: str


class Fingerprint(TypedDict):
    """What made the figures: the inventory file, the software and its settings."""

    inventory_sha256: str | None
    labmeter: str
    settings: dict[str, float | int | str]
    closed: ClosedPeriod | None


class Evidence(TypedDict):
    """Section 8: how much was observed, what is missing, and every threshold used."""

    available_s: float
    observed_open_s: float
    coverage: float | None
    gaps: list[Gap]
    never_seen: list[DeviceRef]
    unregistered: list[DeviceRef]
    agent_versions: list[AgentVersion]
    thresholds: Thresholds
    fingerprint: Fingerprint
    refused: dict[str, int]  # messages the collectors refused during the window, by reason
    external_categories: list[str]
    categories: list[str]
    feeds: list[FeedRow]  # booking feeds: the age of the copy the figures used


class Conclusions(TypedDict):
    underused: list[Underused]
    low_coverage: list[Gap]
    commercial_use: list[CommercialUse]  # PNRR assets used under commercial bookings
    company_without_commercial_booking: list[CompanyUse]  # never called commercial
    crosscheck: list[CrossCheck]  # protocol in use, clamp off (with_clamp agents)


class Report(TypedDict):
    meta: Meta
    framework: list[FrameworkRow]
    availability: list[AvailabilityRow]
    equipment: list[EquipmentRow]
    labs: list[GroupRow]
    months: list[MonthRow]
    licences: list[SoftwareRow]
    users: OpennessRow
    sessions: SessionSummary  # sessions and distinct users, registered devices
    openness: Openness
    evidence: Evidence
    conclusions: Conclusions
    bookings: Reconciliation | None  # None: no bookings configured
    costs: Costs
