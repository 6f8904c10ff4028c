"""What the networked printer sources share: a snapshot of the printer, its jobs, honest silence.

A printer on the network is asked (HTTP) or tells (MQTT) what it is doing; each answer is a
``Snapshot``. ``PrinterWatch`` keeps the last one and turns it into the agent's ``Reading``:
the printer's own state as the substate, its job as a hashed reference (file names can carry a
person's name), and *unknown* from the last answer on once the printer stops answering, never
idle or off (``Reading.since_s`` back-dates the silence to that answer, within the source's
``lookback_s``). It also records the events: job start and end, alarms, losing the printer.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from labmeter.agent.identity import job_ref
from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.options import Options
from labmeter.agent.sources.stamp import EventLog
from labmeter.config import AgentConfig, Secret
from labmeter.errors import ConfigError

log = logging.getLogger(__name__)

JOB_NAMES: Final = ("hash", "none")
NET_KEYS: Final = {"query_s", "timeout_s", "reconnect_max_s", "job_names"}


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Snapshot:
    """One answer of the printer, already mapped to the contract."""

    state: str | None  # a contract state; None: the printer's host cannot tell now
    substate: str  # the printer's own word for it (contract.SUBSTATE_PATTERN)
    job: str | None = None  # the printer's name or id of the job: hashed before it leaves
    metrics: dict[str, float] = field(default_factory=dict)


def heated(*targets: float | None) -> bool:
    """A heater has a target: preheating or a filament change, work on the machine."""
    return any(t is not None and t > 0 for t in targets)


def substate(*words: object) -> str:
    """The printer's words as a substate: what SUBSTATE_PATTERN allows, at most 64 chars."""
    text = "/".join(str(w) for w in words if w not in (None, ""))
    clean = "".join(c if c.isalnum() or c in "_.:/ -" else "_" for c in text).strip(" _")
    return (clean or "unknown")[:64]


class Backoff:
    """Seconds to wait before the next try: doubling from ``first_s`` up to ``max_s``, with a
    little jitter so that a lab's agents do not all knock on a rebooted printer at once."""

    def __init__(self, first_s: float, max_s: float, seed: int | None = None) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.failures = 0
        self._rng = random.Random(seed)

    def next_s(self) -> float:
        delay = min(self.max_s, self.first_s * 2.0 ** min(self.failures, 20))
        self.failures += 1
        return delay * (1 + 0.1 * self._rng.random())

    def reset(self) -> None:
        self.failures = 0


@dataclass(frozen=True)
class NetOptions:
    """Options every networked printer source takes, besides its own."""

    query_s: float
    timeout_s: float
    reconnect_max_s: float
    job_names: str
    secret: Secret

    @classmethod
    def read(cls, opts: Options, config: AgentConfig, *, query_s: float = 2.0) -> NetOptions:
        query = opts.number("query_s", query_s, minimum=0.1)
        return cls(
            query_s=query,
            timeout_s=opts.number("timeout_s", 5.0, minimum=0.1),
            reconnect_max_s=opts.number("reconnect_max_s", 30.0, minimum=query),
            job_names=opts.string("job_names", "hash", choices=JOB_NAMES),
            secret=config.pseudonym_secret,
        )


def base_url(opts: Options, name: str = "url") -> str:
    """The printer's base URL; credentials belong in their own option, never in the URL
    (a URL ends up in logs and error messages, so it is never echoed in one here)."""
    url = opts.string(name).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(opts.key(name), "must start with http:// or https://")
    if "@" in url.split("/")[2]:
        raise ConfigError(opts.key(name), "must not hold credentials: use the key options")
    return url


def secret(opts: Options, name: str, *, required: bool, hint: str = "") -> Secret:
    """A key, password or access code: a string or a number (an 8-digit access code written
    without quotes), never echoed in an error, masked wherever it is printed."""
    value = opts.raw.get(name, "")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(opts.key(name), "must be a string")
    text = value.reveal() if isinstance(value, Secret) else str(value)
    if required and not text:
        raise ConfigError(opts.key(name), f"is required{hint}")
    return Secret(text)


class PrinterWatch:
    """The last answer of one printer, its job and its events; thread-safe.

    The worker (an HTTP poller or an MQTT callback) calls ``answered`` and ``lost``; the agent
    calls ``reading`` and ``drain_events``. ``stale_ms``: with no answer for this long the
    printer is unknown even if no request has failed yet (a request hanging in a timeout).
    """

    def __init__(
        self, net: NetOptions, *, stale_ms: int, clock: Callable[[], int] = wall_ms
    ) -> None:
        self.net = net
        self.stale_ms = stale_ms
        self.clock = clock
        self.events = EventLog()
        self.counters = {"answers": 0, "failures": 0, "outages": 0, "auth_failures": 0}
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self._answer_ms = 0
        self._lost = True  # nothing heard yet
        self._job: str | None = None
        self._alarm = False

    def answered(self, snap: Snapshot, now_ms: int | None = None) -> None:
        now = self.clock() if now_ms is None else now_ms
        with self._lock:
            self.counters["answers"] += 1
            self._snap, self._answer_ms, self._lost = snap, now, False
            self._jobs(snap, now)
            alarm = snap.state == "alarm"
            if alarm and not self._alarm:
                self.events.add(SourceEvent("alarm", {"substate": snap.substate}, ts_ms=now))
            self._alarm = alarm

    def heard(self) -> None:
        """A sign of life without news (a push printer's connection is up): the last answer
        still holds now."""
        now = self.clock()
        with self._lock:
            if not self._lost:
                self._answer_ms = now

    def lost(self, reason: str, now_ms: int | None = None, *, silent_ms: int = 0) -> None:
        """The printer did not answer (``reason``: a short code, never a message that could
        hold a URL or a key); unknown from its last answer on, or from ``silent_ms`` before
        now when the loss was only noticed that late (a keepalive timeout)."""
        now = self.clock() if now_ms is None else now_ms
        with self._lock:
            self._answer_ms = min(self._answer_ms, now - silent_ms)
            self.counters["failures"] += 1
            if reason == "auth":
                self.counters["auth_failures"] += 1
            if not self._lost:
                self.counters["outages"] += 1
                self.events.add(SourceEvent("source_error", {"reason": reason}, ts_ms=now))
            self._lost = True

    def reading(self) -> Reading:
        now = self.clock()
        with self._lock:
            snap = self._snap
            if snap is None:
                return Reading(state=None)
            silent = self._lost or now - self._answer_ms > self.stale_ms
            if silent:
                # Unobserved from the last answer on, not from when the silence was noticed.
                return Reading(state=None, since_s=max(0.0, (now - self._answer_ms) / 1000))
            return Reading(state=snap.state, metrics=dict(snap.metrics), substate=snap.substate)

    def drain_events(self) -> list[SourceEvent]:
        return self.events.drain()

    @property
    def connected(self) -> bool:
        with self._lock:
            return not self._lost

    def ref(self, job: str) -> dict[str, str | int | float | bool]:
        """What an event may say about a job: its hashed name, or nothing."""
        return {"job": job_ref(self.net.secret, job)} if self.net.job_names == "hash" else {}

    def _jobs(self, snap: Snapshot, now: int) -> None:
        """A job that is no longer the printer's ended, with the state it left behind (after a
        reboot mid-job: what the printer reports once it is back)."""
        if snap.job == self._job:
            return
        if self._job is not None:
            data = {"reason": snap.substate, **self.ref(self._job)}
            self.events.add(SourceEvent("job_end", data, ts_ms=now))
        if snap.job is not None:
            self.events.add(SourceEvent("job_start", self.ref(snap.job), ts_ms=now))
        self._job = snap.job
