"""Sessions: the one definition that the API's listing and the collector's session rollups
share, so a window's count read from raw points equals the sum of its days' rollups.

A session is one pseudonym's stretch of use of one device:

- on a device that sent a session event (``session_start``/``session_end``) on that local
  day, a ``session_start`` with a pseudonym opens one, and the next ``session_end`` or
  ``session_start`` of that pseudonym on the device ends it (still open: it ends with the
  device's last sample read);
- on any other device-day, a run of the device's samples with the same pseudonym, each
  beginning at most ``SESSION_GAP_TOLERANCE_MS`` after the previous one ends.

A session belongs to the local day, and to any window, its start falls in, and is counted
there once however long it runs: a session across midnight counts on the day it began, not
again on the next. Deciding that needs the samples just before a day (does its first sample
continue a run?) and the events of its whole local day (does the device send events that
day?): ``sample_range`` and ``event_range`` say which, and both readers use them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final

from labmeter.influxql import Select, col, select
from labmeter.schema import (
    CATEGORY,
    DEVICE_TAGS,
    EVENT,
    HOUR_MS,
    IN_USE,
    SAMPLE,
    TYPE,
    Calendar,
    DeviceKey,
)

SESSION_GAP_TOLERANCE_MS: Final = 1000
# How far before a window its samples are read, to tell whether its first sample continues a
# run: a sample is stamped at its start, so one longer than this is not seen (agents send
# one a minute).
SESSION_LOOK_BACK_MS: Final = HOUR_MS
SESSION_EVENTS: Final = ("session_start", "session_end")

Record = Mapping[str, Any]


@dataclass
class Session:
    site: str
    lab: str
    device: str
    user: str  # a pseudonym, never a name
    category: str
    start_ms: int
    end_ms: int
    in_use_s: float
    source: str  # "event" (session_start/end from the agent) or "samples"

    @property
    def key(self) -> DeviceKey:
        return (self.site, self.lab, self.device)


def join_users(users: set[str]) -> str:
    """A session rollup's ``users``: the pseudonyms, sorted, joined by spaces."""
    return " ".join(sorted(users))


def split_users(text: object) -> set[str]:
    return set(str(text).split()) if text else set()


def sample_range(start_ms: int, end_ms: int) -> tuple[int, int]:
    """The samples the sessions of ``[start, end)`` are found in."""
    return start_ms - SESSION_LOOK_BACK_MS, end_ms


def event_range(start_ms: int, end_ms: int, calendar: Calendar) -> tuple[int, int]:
    """The events the sessions of ``[start, end)`` are found in: whole local days."""
    return calendar.day_of(start_ms), calendar.next_day(calendar.day_of(end_ms - 1))


def samples_query(start_ms: int, end_ms: int) -> Select:
    """Samples of ``sample_range(start, end)`` in time order per device (add filters)."""
    q = select(*map(col, (IN_USE, "interval_s", "user", CATEGORY)), source=SAMPLE)
    return q.between(*sample_range(start_ms, end_ms)).group_by(*DEVICE_TAGS)


def events_query(start_ms: int, end_ms: int, calendar: Calendar) -> Select:
    """Session events of ``event_range(start, end)`` in time order per device (add filters)."""
    q = select(*map(col, ("user", TYPE, CATEGORY)), source=EVENT)
    q = q.between(*event_range(start_ms, end_ms, calendar)).where_in(TYPE, SESSION_EVENTS)
    return q.group_by(*DEVICE_TAGS)


def sessions(
    samples: Iterable[Record],
    events: Iterable[Record],
    start_ms: int,
    end_ms: int,
    calendar: Calendar,
) -> list[Session]:
    """The sessions that begin in ``[start, end)``, from the samples of ``sample_range`` and
    the events of ``event_range`` (records with site, lab, device, time and fields), each in
    time order per device."""
    samples = list(samples)
    events = list(events)
    with_events = {(_key(e), calendar.day_of(int(e["time"]))) for e in events}
    found = [s for s in _event_sessions(events, samples) if start_ms <= s.start_ms < end_ms]
    for run in _sample_runs(samples):
        if start_ms <= run.start_ms < end_ms and (
            (run.key, calendar.day_of(run.start_ms)) not in with_events
        ):
            found.append(run)
    return sorted(found, key=lambda s: (s.key, s.start_ms, s.user))


def _key(record: Record) -> DeviceKey:
    return (str(record["site"]), str(record["lab"]), str(record["device"]))


def _event_sessions(events: list[Record], samples: list[Record]) -> list[Session]:
    """Sessions from the events; in-use seconds are those of the device's samples that start
    inside the session."""
    open_: dict[tuple[DeviceKey, str], Session] = {}
    out: list[Session] = []
    for e in events:
        key, user, t = _key(e), str(e.get("user") or ""), int(e["time"])
        if not user:
            continue
        ended = open_.pop((key, user), None)
        if ended is not None:
            ended.end_ms = t
        if e[TYPE] == "session_start":
            session = Session(
                *key, user=user, category=str(e.get(CATEGORY) or "unknown"), start_ms=t,
                end_ms=t, in_use_s=0.0, source="event",
            )  # fmt: skip
            open_[(key, user)] = session
            out.append(session)
    times: dict[DeviceKey, list[int]] = {}
    seconds: dict[DeviceKey, list[float]] = {}
    last: dict[DeviceKey, int] = {}
    for r in samples:
        key, begin = _key(r), int(r["time"])
        times.setdefault(key, []).append(begin)
        seconds.setdefault(key, []).append(float(r.get(IN_USE) or 0.0))
        last[key] = max(last.get(key, 0), begin + round(float(r.get("interval_s") or 0) * 1000))
    for session in open_.values():
        session.end_ms = max(session.start_ms, last.get(session.key, 0))
    sums = {key: list(accumulate(values, initial=0.0)) for key, values in seconds.items()}
    for session in out:
        at = times.get(session.key, [])
        a = bisect_left(at, session.start_ms)
        b = bisect_left(at, session.end_ms)
        if b > a:
            session.in_use_s = sums[session.key][b] - sums[session.key][a]
    return out


def _sample_runs(samples: list[Record]) -> list[Session]:
    """Runs of consecutive samples of one pseudonym on one device."""
    out: list[Session] = []
    current: Session | None = None
    for r in samples:
        begin = int(r["time"])
        end = begin + round(float(r.get("interval_s") or 0) * 1000)
        key, user = _key(r), str(r.get("user") or "")
        if (
            current is not None
            and user
            and current.user == user
            and current.key == key
            and begin - current.end_ms <= SESSION_GAP_TOLERANCE_MS
        ):
            current.end_ms = end
            current.in_use_s += float(r.get(IN_USE) or 0.0)
            continue
        if current is not None:
            out.append(current)
        current = None
        if user:
            current = Session(
                *key, user=user, category=str(r.get(CATEGORY) or "unknown"), start_ms=begin,
                end_ms=end, in_use_s=float(r.get(IN_USE) or 0.0), source="samples",
            )  # fmt: skip
    if current is not None:
        out.append(current)
    return out
