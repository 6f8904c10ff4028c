"""The records the figures hand to the routes and the report: typed, so mypy sees every key a
renderer reads, and plain dicts, so they encode to JSON as they are."""

from __future__ import annotations

from typing import NotRequired

from typing_extensions import TypedDict  # pydantic reads these as response models on 3.11


class Iso22400(TypedDict):
    """The ISO 22400-2 time elements labmeter can give, beside its own names (OPC 40001-1
    Annex C; ``labmeter/machinery.py``): the opening hours are the operation calendar."""

    planned_busy_time_s: float | None  # PBT: available_s, the opening hours
    actual_production_time_s: float  # APT: in_use_open_s (Executing + Processing)
    actual_unit_setup_time_s: float  # AUST: setup_s (Executing + Setup)
    availability: float | None  # APT / PBT: the same ratio as utilisation


class Figures(TypedDict):
    """Utilisation with its denominator and its coverage, for a device or a group."""

    in_use_s: float  # all in-use time, after hours too
    in_use_open_s: float  # within opening hours: the utilisation numerator
    after_hours_s: float | None  # in_use_s - in_use_open_s; None: no denominator
    observed_s: float
    observed_open_s: float  # within opening hours: the coverage numerator
    setup_s: float  # all setup time (machines: Executing in Setup or Maintenance)
    alarm_s: float
    off_s: float
    available_s: float | None  # opening hours (minus closures, holidays); None: unregistered
    utilisation: float | None  # in_use_open / available, never above 1
    coverage: float | None  # observed_open / available
    iso22400: Iso22400
    devices: NotRequired[int]  # groups: how many devices


class DeviceRow(Figures):
    site: str
    lab: str
    device: str
    kind: str
    period_start_ms: int
    period_end_ms: int
    registered: bool  # listed in the inventory
    former: NotRequired[list[str]]  # an asset's former identities: "lab/device until date"
    # Observed seconds measured under one of its identities outside that identity's period
    # (the inventory's dates are off, or a gap): counted, and flagged.
    outside_period_s: NotRequired[float]


class GroupRow(Figures):
    """A lab, site, kind or stakeholder category: only its own keys are present."""

    period_start_ms: int
    period_end_ms: int
    site: NotRequired[str]
    lab: NotRequired[str]
    kind: NotRequired[str]
    category: NotRequired[str]


UtilisationRow = DeviceRow | GroupRow


class CategoryShare(TypedDict):
    in_use_s: float
    share: float | None


class OpennessRow(TypedDict):
    in_use_s: float
    external_s: float
    quota_esterna: float | None  # (school + company + training_agency) / all in-use time
    categories: dict[str, CategoryShare]
    site: NotRequired[str]  # per lab
    lab: NotRequired[str]


class SoftwareRow(TypedDict):
    site: str
    app: str
    hours: float
    devices: int
    peak_seats: int  # most devices running it in the same minute
    seats_owned: int | None
    peak_share: float | None  # peak_seats / seats_owned
    registered: bool


class SessionRow(TypedDict):
    """One session (``labmeter/sessions.py``) as the API, the register and the report list
    it."""

    site: str
    lab: str
    device: str
    user: str  # a pseudonym (HMAC at the agent), never a name
    category: str
    start: str  # RFC 3339, UTC
    end: str
    start_ms: int
    end_ms: int
    duration_s: float
    in_use_s: float
    source: str  # "event" (session_start/end from the agent) or "samples"


class SessionFigures(TypedDict):
    sessions: int  # sessions begun in the window (labmeter/sessions.py)
    users: int  # distinct pseudonyms among them


class LabSessions(SessionFigures):
    site: str
    lab: str
    categories: dict[str, SessionFigures]


class SessionSummary(SessionFigures):
    """Sessions and distinct users of registered devices, in all, per category, per lab."""

    categories: dict[str, SessionFigures]
    labs: list[LabSessions]


class WindowSessions(SessionSummary):
    """``/sessions/summary``: the summary with its window."""

    start: str  # RFC 3339, UTC
    end: str


class OpennessReport(TypedDict):
    """``/openness``: in all, and per lab."""

    total: OpennessRow
    labs: list[OpennessRow]
