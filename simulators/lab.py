"""A simulated lab with known ground truth, driven through the agent's real publishing path.

Each device gets a random but seeded timeline of segments (state, user, category) on whole
seconds. The ground truth is computed from the timeline directly, not from the agent's meter,
so a test that compares the API with it checks meter, wire, collector and queries together.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from agent.identity import pseudonym
from agent.meter import Meter, Reading
from agent.publisher import Publisher
from labmeter.config import MqttConfig
from labmeter.contract import Topic
from labmeter.opening import HALF_HOUR_MS

SECRET = "simulated-lab-secret-2026"  # pseudonyms only; the simulator has no real people
MACHINE_KINDS = ("cnc", "printer3d", "laser")
USERS = [
    ("student-{}", "its_student", 12),
    ("school-{}", "school", 6),
    ("company-{}", "company", 4),
    ("agency-{}", "training_agency", 3),
    ("staff-{}", "staff", 2),
]


@dataclass(frozen=True)
class Segment:
    start_ms: int
    state: str | None  # None: the agent could not observe (down, unplugged)
    user: str | None = None
    category: str = "unknown"
    apps: frozenset[str] = frozenset()


@dataclass
class SimDevice:
    topic: Topic
    kind: str
    segments: list[Segment] = field(default_factory=list)


def _user(rng: random.Random) -> tuple[str, str]:
    pattern, category, count = rng.choices(USERS, weights=[u[2] for u in USERS])[0]
    return pseudonym(SECRET, pattern.format(rng.randrange(count))), category


def _minutes(rng: random.Random, low: int, high: int) -> int:
    return rng.randint(low * 60, high * 60) * 1000


def _pc_timeline(rng: random.Random, start: int, end: int) -> list[Segment]:
    out: list[Segment] = []
    t = start
    while t < end:
        roll = rng.random()
        if roll < 0.08:  # agent down or PC unplugged: unknown, neither idle nor in use
            out.append(Segment(t, None))
            t += _minutes(rng, 3, 25)
        elif roll < 0.35:
            out.append(Segment(t, rng.choice(("idle", "off"))))
            t += _minutes(rng, 5, 40)
        else:  # a session: spells of input and idleness by one user
            user, category = _user(rng)
            apps = frozenset(
                rng.sample(("solidworks", "autocad", "matlab", "tia_portal"), k=rng.randint(0, 2))
            )
            session_end = t + _minutes(rng, 20, 120)
            while t < min(session_end, end):
                out.append(Segment(t, "in_use", user, category, apps))
                t += _minutes(rng, 4, 30)
                out.append(Segment(t, "idle", user, category, apps))
                t += _minutes(rng, 1, 6)
    return out


def _machine_timeline(rng: random.Random, start: int, end: int) -> list[Segment]:
    out: list[Segment] = []
    t = start
    while t < end:
        roll = rng.random()
        if roll < 0.05:
            out.append(Segment(t, None))
            t += _minutes(rng, 2, 20)
        elif roll < 0.3:
            out.append(Segment(t, rng.choice(("idle", "off"))))
            t += _minutes(rng, 5, 60)
        else:  # a job: set-up, run (perhaps paused or alarmed), by one badge holder
            user, category = _user(rng)
            out.append(Segment(t, "setup", user, category))
            t += _minutes(rng, 2, 15)
            out.append(Segment(t, "in_use", user, category))
            t += _minutes(rng, 10, 90)
            if rng.random() < 0.2:
                out.append(Segment(t, rng.choice(("paused", "alarm")), user, category))
                t += _minutes(rng, 1, 10)
                out.append(Segment(t, "in_use", user, category))
                t += _minutes(rng, 5, 30)
            out.append(Segment(t, "idle"))
            t += _minutes(rng, 1, 10)
    return out


def build_lab(
    devices: int, start_ms: int, end_ms: int, seed: int, site: str = "its-prime"
) -> list[SimDevice]:
    """PCs in a CAD lab, machines in a fabrication lab; 60/40."""
    rng = random.Random(seed)
    lab: list[SimDevice] = []
    pcs = max(1, round(devices * 0.6)) if devices > 1 else devices
    for i in range(devices):
        if i < pcs:
            device = SimDevice(Topic(site, "lab-cad", f"pc-{i + 1:02d}", "sample"), "pc")
            device.segments = _pc_timeline(rng, start_ms, end_ms)
        else:
            kind = MACHINE_KINDS[(i - pcs) % len(MACHINE_KINDS)]
            device = SimDevice(Topic(site, "lab-fab", f"{kind}-{i - pcs + 1:02d}", "sample"), kind)
            device.segments = _machine_timeline(rng, start_ms, end_ms)
        lab.append(device)
    return lab


IsOpen = Callable[[int], bool]  # is the half hour starting at this epoch ms within opening hours?


def open_ms(a: int, b: int, is_open: IsOpen) -> int:
    """How much of ``[a, b)`` falls in open half hours."""
    total = 0
    for half in range(a - a % HALF_HOUR_MS, b, HALF_HOUR_MS):
        if is_open(half):
            total += max(0, min(b, half + HALF_HOUR_MS) - max(a, half))
    return total


def ground_truth(
    lab: list[SimDevice],
    start_ms: int,
    end_ms: int,
    interval_s: int,
    is_open: IsOpen = lambda _half: True,
) -> dict[str, Any]:
    """Per device: in-use and observed seconds (all, and within the opening hours that
    ``is_open`` states), in-use by category, app seconds, final state; per app: peak
    concurrent seats (one lab = one site)."""
    out: dict[str, Any] = {
        "start_ms": start_ms,
        "end_ms": end_ms,
        "interval_s": interval_s,
        "devices": {},
    }
    # app -> minute (epoch ms // 60000) -> devices with the app running during that minute
    app_minutes: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for dev in lab:
        in_use = observed = in_use_open = observed_open = 0
        by_category: dict[str, int] = defaultdict(int)
        apps: dict[str, int] = defaultdict(int)
        final: str | None = None
        bounds = [s.start_ms for s in dev.segments[1:]] + [end_ms]
        for seg, seg_end in zip(dev.segments, bounds, strict=True):
            span = max(0, min(seg_end, end_ms) - max(seg.start_ms, start_ms))
            if span == 0:
                continue
            a = max(seg.start_ms, start_ms)
            if seg.state is not None:
                observed += span
                observed_open += open_ms(a, a + span, is_open)
                final = seg.state
            if seg.state == "in_use":
                in_use += span
                in_use_open += open_ms(a, a + span, is_open)
                by_category[seg.category] += span
            for app in seg.apps:
                apps[app] += span
                for minute in range(a // 60_000, (a + span - 1) // 60_000 + 1):
                    app_minutes[app][minute].add(dev.topic.device)
        last = next(s for s in reversed(dev.segments) if s.start_ms < end_ms)
        t = dev.topic
        out["devices"][f"{t.site}/{t.lab}/{t.device}"] = {
            "site": t.site,
            "lab": t.lab,
            "device": t.device,
            "kind": dev.kind,
            "in_use_s": in_use / 1000,
            "observed_s": observed / 1000,
            "in_use_open_s": in_use_open / 1000,
            "observed_open_s": observed_open / 1000,
            "in_use_by_category_s": {k: v / 1000 for k, v in sorted(by_category.items())},
            "apps_s": {k: v / 1000 for k, v in sorted(apps.items())},
            # The state the device's last sample reports (None if the end was unobserved).
            "final_state": last.state,
            "last_observed_state": final,
        }
    # Peak concurrent seats: the most devices running an app within the same clock minute.
    out["peak_seats"] = {
        app: max(len(devices) for devices in minutes.values())
        for app, minutes in sorted(app_minutes.items())
    }
    return out


def _timeline_events(
    lab: list[SimDevice], start_ms: int, end_ms: int, interval_s: int
) -> list[tuple[int, int, Segment | None]]:
    """All segment changes and interval ticks (``None``), in time order, ties by device."""
    events: list[tuple[int, int, int, Segment | None]] = []
    for i, dev in enumerate(lab):
        events.extend(
            (s.start_ms, i, n, s) for n, s in enumerate(dev.segments) if s.start_ms < end_ms
        )
        step = interval_s * 1000
        events.extend((t, i, -1, None) for t in range(start_ms + step, end_ms, step))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return [(t, i, seg) for t, i, _, seg in events]


def run(
    mqtt: MqttConfig,
    *,
    devices: int,
    site: str = "its-prime",
    hours: float,
    seed: int,
    speed: float,
    interval_s: int = 60,
    truth_path: Path | None = None,
    live: bool = False,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
    is_open: IsOpen = lambda _half: True,
) -> dict[str, Any]:
    """Publish the lab's samples; ``speed`` 0 = as fast as the broker takes them.

    The simulated clock starts ``hours`` before now on a minute boundary, so every timestamp
    is in the past. With ``live`` it then keeps going in real time until ``stop`` is set.
    """
    stop = stop or threading.Event()
    now_ms = int(time.time() * 1000)
    start_ms = (now_ms - int(hours * 3600_000)) // 60_000 * 60_000
    end_ms = start_ms + int(hours * 3600_000)
    horizon = end_ms + (7 * 24 * 3600_000 if live else 0)
    lab = build_lab(devices, start_ms, horizon, seed, site)
    meters = [Meter(interval_s, start_ms, kind=d.kind) for d in lab]
    publishers = [Publisher(mqtt, d.topic, kind=d.kind, interval_s=interval_s) for d in lab]
    for p in publishers:
        p.connect()
    wall0 = time.time()
    last_t = start_ms
    published = 0
    events = _timeline_events(lab, start_ms, horizon, interval_s)
    try:
        for n, (t, i, seg) in enumerate(events):
            target = wall0 + (t - start_ms) / 1000 / speed if speed > 0 else 0.0
            target = max(target, t / 1000) if t > end_ms else target
            delay = target - time.time()
            if delay > 0 and stop.wait(delay):
                break
            if stop.is_set():
                break
            reading = (
                meters[i].reading
                if seg is None
                else Reading(seg.state, seg.user, seg.category, seg.apps)
            )
            for sample in meters[i].observe(t, reading):
                publishers[i].sample(sample)
                published += 1
            if publishers[i].unacked > 5000:
                publishers[i].wait_acked(60, below=1000)
            last_t = t
            if progress is not None and n % 500 == 0:
                progress(n, len(events))
        else:
            last_t = end_ms
        final_ms = last_t if live else end_ms
        for meter, pub in zip(meters, publishers, strict=True):
            for sample in meter.flush(final_ms):
                pub.sample(sample)
                published += 1
    finally:
        for pub in publishers:
            pub.close()
    truth = ground_truth(lab, start_ms, final_ms, interval_s, is_open)
    truth["samples_published"] = published
    if truth_path is not None:
        truth_path.write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    return truth
