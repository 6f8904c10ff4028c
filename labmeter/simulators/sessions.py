"""A year of lab sessions with known ground truth, at high speed: the messages agents would
publish (samples, and session events from the devices that send them) and the sessions they
hold, to check session counts and distinct users over any window.

Each device's day is drawn from a seeded generator: morning and afternoon sessions, now and
then an evening one that runs past local midnight (a few past the whole next day), users
from a pool per stakeholder category (so users recur and distinct users are fewer than
sessions), a different user straight after the previous one, the same user again after
samples with nobody logged in or after the agent was off. Samples are cut on the interval
grid; devices with ``events`` also send ``session_start``/``session_end``. The truth is the
list of sessions as drawn, never derived from the messages.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from labmeter.contract import Event, Sample, Topic, encode

CATEGORY_USERS = {"its_student": 40, "school": 60, "company": 8, "training_agency": 12, "staff": 4}


@dataclass(frozen=True)
class SimDevice:
    lab: str
    device: str
    kind: str
    events: bool  # sends session_start / session_end


DEVICES = (
    SimDevice("lab-a", "pc-01", "pc", events=True),
    SimDevice("lab-a", "pc-02", "pc", events=False),
    SimDevice("lab-b", "cnc-01", "cnc", events=False),
    SimDevice("lab-b", "pc-03", "pc", events=True),
)


@dataclass(frozen=True)
class TrueSession:
    site: str
    lab: str
    device: str
    user: str
    category: str
    start_ms: int
    end_ms: int


@dataclass
class SessionYear:
    site: str
    messages: list[tuple[str, bytes]] = field(default_factory=list)  # topic, payload
    sessions: list[TrueSession] = field(default_factory=list)

    def truth(self, start_ms: int, end_ms: int) -> dict[str, dict[str, tuple[int, int]]]:
        """Sessions begun in ``[start, end)`` and their distinct users: in all, per category,
        per lab and per lab and category (keys ``lab/category``)."""
        groups: dict[str, dict[str, list[str]]] = {
            k: defaultdict(list) for k in ("all", "category", "lab", "lab_category")
        }
        for s in self.sessions:
            if start_ms <= s.start_ms < end_ms:
                groups["all"][""].append(s.user)
                groups["category"][s.category].append(s.user)
                groups["lab"][s.lab].append(s.user)
                groups["lab_category"][f"{s.lab}/{s.category}"].append(s.user)
        return {
            name: {k: (len(users), len(set(users))) for k, users in found.items()}
            for name, found in groups.items()
        }


def _pseudonym(seed: int, category: str, n: int) -> str:
    return "p_" + hashlib.sha256(f"{seed}/{category}/{n}".encode()).hexdigest()[:16]


class _Device:
    """One device's stream: samples on the interval grid, events, the sessions drawn."""

    def __init__(self, year: SessionYear, sim: SimDevice, interval_ms: int) -> None:
        self.year, self.sim, self.interval_ms = year, sim, interval_ms
        self.topic = Topic(year.site, sim.lab, sim.device, "sample")
        self.cursor = 0  # end of the last sample
        self.last_user: str | None = None  # user of the last sample, None: nobody
        self.seq = 0

    def _publish_sample(
        self, begin: int, user: str | None, category: str, rng: random.Random
    ) -> None:
        self.seq += 1
        interval_s = self.interval_ms / 1000
        used = float(rng.randint(0, int(interval_s))) if user else 0.0
        sample = Sample(
            ts=begin + self.interval_ms, seq=self.seq, interval_s=interval_s,
            state_s={"in_use": used, "idle": interval_s - used}, category=category, user=user,
            kind=self.sim.kind, state="in_use" if used else "idle",
        )  # fmt: skip
        self.year.messages.append((str(self.topic), encode(sample)))
        self.cursor = begin + self.interval_ms
        self.last_user = user

    def _publish_event(self, ts: int, kind: str, user: str, category: str) -> None:
        self.seq += 1
        event = Event(ts=ts, seq=self.seq, type=kind, category=category, user=user)
        self.year.messages.append((str(self.topic.with_channel("event")), encode(event)))

    def session(
        self, start: int, samples: int, user: str, category: str, rng: random.Random
    ) -> None:
        """A session from ``start`` (on the grid, not before the cursor) for ``samples``."""
        begin = max(start - start % self.interval_ms, self.cursor)
        if begin == self.cursor and self.last_user == user:
            # The same user straight after would continue the run: nobody logged in between.
            self._publish_sample(begin, None, "unknown", rng)
            begin = self.cursor
        end = begin + samples * self.interval_ms
        if self.sim.events:
            self._publish_event(begin, "session_start", user, category)
        for n in range(samples):
            self._publish_sample(begin + n * self.interval_ms, user, category, rng)
        if self.sim.events:
            self._publish_event(end, "session_end", user, category)
        self.year.sessions.append(
            TrueSession(self.year.site, self.sim.lab, self.sim.device, user, category, begin, end)
        )
        if rng.random() < 0.3:  # nobody logged in for a while, the agent still up
            for _ in range(rng.randint(1, 3)):
                self._publish_sample(self.cursor, None, "unknown", rng)


def simulate_year(
    site: str, first: date, days: int, tz: str, seed: int = 7, interval_s: int = 300
) -> SessionYear:
    """``days`` local days of sessions from ``first`` in zone ``tz``."""
    rng = random.Random(seed)
    zone = ZoneInfo(tz)
    year = SessionYear(site)
    interval_ms = interval_s * 1000
    devices = [_Device(year, sim, interval_ms) for sim in DEVICES]
    users = {c: [_pseudonym(seed, c, n) for n in range(k)] for c, k in CATEGORY_USERS.items()}
    categories = list(CATEGORY_USERS)

    def person() -> tuple[str, str]:
        category = rng.choice(categories)
        return rng.choice(users[category]), category

    def at(day: date, hour: int, minute: int) -> int:
        return int(datetime.combine(day, time(hour, minute), zone).timestamp() * 1000)

    for n in range(days):
        day = first + timedelta(days=n)
        for device in devices:
            busy = day.weekday() < 5 or rng.random() < 0.2
            if not busy:
                continue
            for hour in (8, 10, 14, 16):
                if rng.random() < 0.6:
                    user, category = person()
                    if device.last_user and rng.random() < 0.25:
                        user = device.last_user  # the same user again: a new session
                        category = next(c for c, names in users.items() if user in names)
                    start = at(day, hour, rng.randint(0, 50))
                    device.session(start, rng.randint(2, 20), user, category, rng)
            if rng.random() < 0.15:  # an evening session past midnight
                user, category = person()
                long = rng.random() < 0.1  # now and then past the whole next day
                samples = rng.randint(30, 50) * (10 if long else 1)
                device.session(at(day, 22, rng.randint(0, 59)), samples, user, category, rng)
    return year
