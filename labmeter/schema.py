"""The storage schema: every measurement, tag and field labmeter keeps in InfluxDB, and the
calendar its rollups are cut by.

The collector writes these and the API, the benchmarks and the evidence archive read them;
both import the names from here, so a rename is one edit and a reader cannot drift from the
writer. Tags stay low-cardinality (DESIGN.md): never a pseudonym, a session id or a number.

Rollups are recomputed from InfluxDB by the collector (``collector/rollups.py``): hourly per
UTC hour, daily per local day and monthly per local month of a ``Calendar`` (the inventory's
time zone), so a year's report reads twelve points per series instead of 8,760.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from labmeter.contract import STATES

HALF_HOUR_MS: Final = 1_800_000
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000

DEFAULT_TZ: Final = "Europe/Rome"  # the labs' zone when no inventory says otherwise

# --- tags -----------------------------------------------------------------------------------

SITE, LAB, DEVICE, KIND, CATEGORY, APP, TYPE = (
    "site", "lab", "device", "kind", "category", "app", "type",
)  # fmt: skip
DEVICE_TAGS: Final = (SITE, LAB, DEVICE)
DeviceKey = tuple[str, str, str]  # a topic identity: DEVICE_TAGS' values
FACT_TAGS: Final = (SITE, LAB, DEVICE, KIND, CATEGORY)  # a device's usage, per category
APP_TAGS: Final = (SITE, LAB, DEVICE, CATEGORY, APP)
SEAT_TAGS: Final = (SITE, APP)
ASSET_TAGS: Final = (SITE, LAB, DEVICE, KIND)  # a device's usage, every category together
LAB_TAGS: Final = (SITE, LAB, CATEGORY)  # a lab's usage per category, every device together
APP_ASSET_TAGS: Final = (SITE, LAB, DEVICE, APP)

# --- fields ---------------------------------------------------------------------------------

STATE_FIELDS: Final = tuple(f"{s}_s" for s in STATES)  # seconds per state
IN_USE, OBSERVED = "in_use_s", "observed_s"
SECONDS_FIELDS: Final = (*STATE_FIELDS, OBSERVED)  # what a device rollup sums
SAMPLES = "samples"  # raw samples summed into a rollup point
RUNNING = "running_s"  # seconds an app ran
PEAK_SEATS, SEAT_HOURS = "peak_seats", "seat_hours"
HOURS_LABEL, HOURS_TZ = "hours", "tz"  # rollup_hours_daily: the opening hours a day used
LAYOUT = "layout"  # rollup_hours_daily: which rollups the day has (LAYOUT_VERSION)
# 2: rollups per asset and per lab beside those per device and category.
# 3: session rollups (sessions begun and their pseudonyms) per device, category and day.
# 4: session rollups per asset and per lab and category beside them.
# 5: busy rollups (devices of a kind busy at once) per lab, kind and hour, day and month.
LAYOUT_VERSION: Final = 5
COARSE_LAYOUT: Final = 2  # the first layout whose days have rollups per asset and per lab
SESSIONS_LAYOUT: Final = 3  # the first layout whose days have session rollups
COARSE_SESSIONS_LAYOUT: Final = 4  # ... and session rollups per asset and per lab
BUSY_LAYOUT: Final = 5  # the first layout whose days have busy rollups
SESSIONS, USERS = "sessions", "users"  # session rollups: sessions begun, their pseudonyms
# The seconds split at opening hours (``labmeter/opening.py``): their open part is
# ``<name>_open_s`` (daily and monthly rollups), their first half hour ``<name>_h1_s`` (hourly).
SPLIT_FIELDS: Final = (IN_USE, OBSERVED)


def open_name(field: str) -> str:
    return field.removesuffix("_s") + "_open_s"


def base_name(open_field: str) -> str:
    return open_field.removesuffix("_open_s") + "_s"


def h1_name(field: str) -> str:
    return field.removesuffix("_s") + "_h1_s"


OPEN_FIELDS: Final = tuple(open_name(f) for f in SPLIT_FIELDS)
H1_FIELDS: Final = tuple(h1_name(f) for f in SPLIT_FIELDS)

# --- measurements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """A measurement's name with the tags its points carry and the fields a reader may ask."""

    name: str
    tags: tuple[str, ...]
    fields: tuple[str, ...]

    def __str__(self) -> str:
        return self.name


# Raw points, one per message (collector/convert.py). A sample is stamped at its interval's
# start; ``state`` is the state at its end (live occupancy), ``substate`` the machine's own
# name for it, ``user`` a pseudonym.
SAMPLE: Final = Measurement(
    "sample", FACT_TAGS, (*SECONDS_FIELDS, "interval_s", "seq", "state", "substate", "user")
)
APP_USAGE: Final = Measurement("app_usage", (*APP_TAGS, KIND), (RUNNING, "user"))
DEVICE_METRICS: Final = Measurement("device_metrics", DEVICE_TAGS, ())  # cpu_pct, mem_pct, ...
# A device_metrics field: the seconds of a sample's interval in which a machine's protocol said
# in use while a clamp on its supply said off (the agent's with_clamp source).
CROSSCHECK_CONFLICT: Final = "crosscheck_conflict_s"
EVENT: Final = Measurement("event", (*DEVICE_TAGS, TYPE, CATEGORY), ("seq", "user"))
EVENT_DATA_PREFIX: Final = "d_"  # an event's ``data`` keys become fields d_<key>
STATUS: Final = Measurement(
    "status", DEVICE_TAGS, ("online", "status", KIND, "interval_s", "agent")
)


class Period(StrEnum):
    """How much time one rollup point covers."""

    hourly = "hourly"  # a UTC hour
    daily = "daily"  # a local day of the calendar (23-25 hours)
    monthly = "monthly"  # a local month of the calendar


def _extra(period: Period) -> tuple[str, ...]:
    return H1_FIELDS if period is Period.hourly else OPEN_FIELDS


def device_rollup(period: Period) -> Measurement:
    """Seconds per state per device and category; hourly points also carry each hour's first
    half (``*_h1_s``), daily and monthly ones the seconds within opening hours."""
    fields = (*SECONDS_FIELDS, SAMPLES, *_extra(period))
    return Measurement(f"rollup_device_{period}", FACT_TAGS, fields)


def app_rollup(period: Period) -> Measurement:
    """Seconds each app ran, per device and category."""
    return Measurement(f"rollup_app_{period}", APP_TAGS, (RUNNING,))


# The same seconds as the device rollups, summed over categories (per asset) or over devices
# (per lab and category). InfluxDB 1.6 pays per series and field read (about 50 us each on
# this machine), whatever the span and even when the span holds no point: a 300-device
# region is 1,500 device-and-category series, 300 asset and 150 lab series, so a year's
# figures per asset or per lab, and the hours at a window's edges, read 5-10x less.


def asset_rollup(period: Period) -> Measurement:
    """Seconds per state per device, every stakeholder category together."""
    fields = (*SECONDS_FIELDS, SAMPLES, *_extra(period))
    return Measurement(f"rollup_asset_{period}", ASSET_TAGS, fields)


def lab_rollup(period: Period) -> Measurement:
    """Seconds per state per lab and stakeholder category, every device together (devices the
    inventory does not list included: a reader takes them away)."""
    fields = (*SECONDS_FIELDS, SAMPLES, *_extra(period))
    return Measurement(f"rollup_lab_{period}", LAB_TAGS, fields)


def app_asset_rollup(period: Period) -> Measurement:
    """Seconds each app ran per device, every category together."""
    return Measurement(f"rollup_app_asset_{period}", APP_ASSET_TAGS, (RUNNING,))


def seats_rollup(period: Period) -> Measurement:
    """Peak concurrent seats (devices running the app in the same minute) per site and app."""
    return Measurement(f"rollup_app_concurrency_{period}", SEAT_TAGS, (PEAK_SEATS, SEAT_HOURS))


SESSION_TAGS: Final = (SITE, LAB, DEVICE, CATEGORY)


def sessions_rollup(period: Period) -> Measurement:
    """Per device, category and local day or month: the sessions that began in it
    (``labmeter/sessions.py``) and the distinct pseudonyms among them, sorted and joined by
    spaces. Distinct users do not add up across days, so the pseudonyms are kept and a window's
    users are the exact union of its days' and months'. Pseudonyms are fields, never tags."""
    if period is Period.hourly:
        raise ValueError("sessions are rolled up per local day and month only")
    return Measurement(f"rollup_sessions_{period}", SESSION_TAGS, (SESSIONS, USERS))


def sessions_asset_rollup(period: Period) -> Measurement:
    """Sessions begun per device, every stakeholder category together."""
    if period is Period.hourly:
        raise ValueError("sessions are rolled up per local day and month only")
    return Measurement(f"rollup_sessions_asset_{period}", DEVICE_TAGS, (SESSIONS,))


def sessions_lab_rollup(period: Period) -> Measurement:
    """Sessions begun per lab and stakeholder category, every device together, and the
    distinct pseudonyms among them (devices the inventory does not list included: a reader
    of a lab with such a device reads the rollups per device instead, since a union cannot
    be taken apart). InfluxDB 1.6 reads the 150 series of a region's labs about 5 times
    faster than its 1,500 per device and category (bench/report.py)."""
    if period is Period.hourly:
        raise ValueError("sessions are rolled up per local day and month only")
    return Measurement(f"rollup_sessions_lab_{period}", LAB_TAGS, (SESSIONS, USERS))


SESSION_PERIODS: Final = (Period.daily, Period.monthly)

# Busy devices: saturation per lab and kind of equipment. A device is busy in an hour it was
# in use for at least BUSY_HOUR_S of it (the rollups keep hours, not minutes). Hourly points
# count the devices of a kind that were busy and those with samples; daily and monthly
# points hold, for each k, the open seconds of the hours in which at least k devices of the
# kind were busy (``busy_field(k)``), so a lab with N devices was full for ``busy_N_open_s``
# and its peak is the largest k with seconds. Computed by the collector from the hourly
# rollups per asset, with its inventory's opening hours (the day's label says which).
BUSY_HOUR_S: Final = 2700.0
BUSY, BUSY_DEVICES = "busy", "devices"
BUSY_TAGS: Final = (SITE, LAB, KIND)


def busy_field(k: int) -> str:
    """Open seconds of the hours with at least ``k`` devices busy."""
    return f"busy_{k}_open_s"


def busy_level(field: str) -> int | None:
    """``k`` of a ``busy_field(k)``, None for any other field."""
    middle = field.removeprefix("busy_").removesuffix("_open_s")
    return int(middle) if field != middle and middle.isdigit() else None


def busy_rollup(period: Period) -> Measurement:
    """Busy devices per lab and kind: hourly ``busy`` and ``devices``; daily and monthly
    ``busy_<k>_open_s`` for every k up to the devices seen (the fields vary: read them all)."""
    fields = (BUSY, BUSY_DEVICES) if period is Period.hourly else ()
    return Measurement(f"rollup_busy_{period}", BUSY_TAGS, fields)


# One point per lab and local day: the opening hours its daily rollups were split at, the
# calendar's zone and the rollup layout, so the API can tell days computed with other hours
# than its own, and the lab's samples that day, so it need not read a day that had none.
HOURS_DAILY: Final = Measurement(
    "rollup_hours_daily", (SITE, LAB), (HOURS_LABEL, HOURS_TZ, LAYOUT, SAMPLES)
)

# --- bookkeeping: closed periods and the collectors' word (labmeter/periods.py) -------------

# A closed reporting period: one point per closure (time = its id), tag site when it closes
# one site only; collectors refuse samples inside it.
CLOSED_PERIOD: Final = Measurement(
    "closed_period", (SITE,), ("start_ms", "end_ms", "state", "manifest_sha256", "archive")
)
# Each collector run's heartbeat: alive, which closures applied, rollups owed.
COLLECTOR_HEARTBEAT: Final = Measurement(
    "collector_heartbeat", ("collector",), ("seen_ms", "applied", "owed_from_ms")
)
# Messages refused for a period closure or the late-data horizon, counted per reason.
REFUSALS: Final = Measurement("refusals", ("collector", "reason", SITE), ("count",))
# Each collector run's catch-up of days of an older rollup layout (collector/catchup.py): the
# days it still owes and the one it is at (-1: none).
ROLLUP_CATCHUP: Final = Measurement(
    "rollup_catchup", ("collector", SITE), ("days_left", "day_ms", "seen_ms")
)
BOOKKEEPING: Final = (CLOSED_PERIOD, COLLECTOR_HEARTBEAT, ROLLUP_CATCHUP)  # never evidence

# Sums (and unions) of the device, app and session rollups of the same period and nothing else:
# a period's evidence leaves them out and ``labmeter period verify`` sums them again with the
# collector's code.
DERIVED: Final = (
    *(m(p) for p in Period for m in (asset_rollup, lab_rollup, app_asset_rollup)),
    *(m(p) for p in SESSION_PERIODS for m in (sessions_asset_rollup, sessions_lab_rollup)),
)
ROLLUPS: Final = (
    *(m(p) for p in Period for m in (device_rollup, app_rollup, seats_rollup)),
    *DERIVED,
    *(sessions_rollup(p) for p in SESSION_PERIODS),
    *(busy_rollup(p) for p in Period),
    HOURS_DAILY,
)
RAW: Final = (SAMPLE, APP_USAGE, DEVICE_METRICS, EVENT, STATUS)
ALL: Final = RAW + ROLLUPS + (*BOOKKEEPING, REFUSALS)

# --- the rollup calendar ----------------------------------------------------------------------


def hour_of(ts_ms: int) -> int:
    return ts_ms - ts_ms % HOUR_MS


@dataclass(frozen=True)
class Calendar:
    """Local days and months of one time zone, as epoch milliseconds.

    Daily and monthly rollups are cut at the local midnights of the inventory's zone, because
    the API splits available time and its trends by local days and months: a UTC day would
    straddle two of them. The zones the inventory allows are whole or half hours from UTC,
    so a local day is made of whole UTC half hours (and, in whole-hour zones, whole hours).
    """

    tz: str = DEFAULT_TZ

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def _ms(self, day: date) -> int:
        return _midnight(self.tz, day)

    def date_of(self, ts_ms: int) -> date:
        return datetime.fromtimestamp(ts_ms / 1000, self.zone).date()

    def day_of(self, ts_ms: int) -> int:
        """Start of the local day that holds ``ts_ms``."""
        return self._ms(self.date_of(ts_ms))

    def next_day(self, day_ms: int) -> int:
        """Start of the local day after the one holding ``day_ms`` (23-25 hours later)."""
        return self._ms(self.date_of(day_ms) + timedelta(days=1))

    def first_day_within(self, ts_ms: int) -> int:
        """Start of the first local day that begins at or after ``ts_ms``."""
        day = self.day_of(ts_ms)
        return day if day == ts_ms else self.next_day(day)

    def month_of(self, ts_ms: int) -> int:
        """Start of the local month that holds ``ts_ms``."""
        return self._ms(self.date_of(ts_ms).replace(day=1))

    def next_month(self, month_ms: int) -> int:
        local = self.date_of(month_ms)
        return self._ms(date(local.year + local.month // 12, local.month % 12 + 1, 1))


@lru_cache(maxsize=1 << 16)
def _midnight(tz: str, day: date) -> int:
    """Local midnight starting ``day`` in epoch ms, computed once per zone and day: a region's
    year asks for its days' midnights tens of thousands of times (every lab's labels)."""
    return int(datetime.combine(day, time(), ZoneInfo(tz)).timestamp() * 1000)
