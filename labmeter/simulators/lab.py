"""A simulated lab with known ground truth, driven through the agent's real publishing path.

The lab follows a plan of activities (``simulators/schedule.py``: classes and bookings in
opening hours, some evening courses, quiet closed days). Each device's timeline of segments
(state, user, category, apps) on whole seconds is drawn from the activities it takes part
in, with the background in between (idle, off, the agent down). The ground truth is computed
from the timeline directly, not from the agent's meter, so a test that compares the API with
it checks meter, wire, collector and queries together.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from labmeter import inventory
from labmeter.agent.identity import pseudonym
from labmeter.agent.meter import Meter, Reading
from labmeter.agent.publisher import Publisher
from labmeter.config import MqttConfig, Secret
from labmeter.contract import Topic
from labmeter.machinery import SHOWN_AS, substate
from labmeter.opening import OpeningHours
from labmeter.schema import HALF_HOUR_MS
from labmeter.simulators import bookings
from labmeter.simulators.bookings import Declared, declare
from labmeter.simulators.schedule import (
    MIN_MS,
    ORGANISATIONS,
    Activity,
    Opening,
    Segment,
    plan,
    school_hours,
)

SECRET = Secret("simulated-lab-secret-2026")  # pseudonyms only; the simulator has no real people
NETWORKED_KIND = "printer3d"  # the lab's first printer is a Klipper printer read over Moonraker
_PHASES = {"in_use": "printing", "setup": "heating", "paused": "paused", "alarm": "error",
           "idle": "idle", "off": "off"}  # fmt: skip


class NetworkedPrinter:
    """A device whose state goes through a real protocol: its segments drive a Moonraker
    emulator on loopback and the agent's real Moonraker source reads it back (with the
    printer's own word as the substate), on the simulated clock, so the truth stays exact."""

    def __init__(self) -> None:
        from labmeter.agent.sources.moonraker.source import MoonrakerSource
        from labmeter.config import AgentConfig
        from labmeter.simulators.devices.moonraker import MoonrakerPrinter
        from labmeter.simulators.devices.printer import PrinterModel

        self.now = 0
        self.emulator = MoonrakerPrinter(PrinterModel(clock=lambda: self.now)).start()
        self.source = MoonrakerSource(
            AgentConfig(pseudonym_secret=SECRET, options={"url": self.emulator.url}),
            clock=lambda: self.now,
            background=False,
        )
        self.reachable = True
        # The lab's unobserved spells are the agent down, not a printer to warn about.
        quiet = logging.getLogger(f"{__name__}.printer")
        quiet.setLevel(logging.ERROR)
        self.source.poller.log = quiet

    def reading(self, t: int, seg: Segment) -> Reading:
        self.now = t
        self.source.poller.step()  # its last answer is now: nothing before is back-dated
        if seg.state is None:
            if self.reachable:
                self.emulator.down()
                self.reachable = False
        else:
            if not self.reachable:
                self.emulator.up()
                self.reachable = True
            self.emulator.apply(_PHASES[seg.state])
        self.source.poller.step()
        seen = self.source.poll()
        self.source.drain_events()
        return Reading(seen.state, seg.user, seg.category, seg.apps, substate=seen.substate)

    def close(self) -> None:
        self.source.close()
        self.emulator.stop()


MACHINE_KINDS = ("cnc", "printer3d", "laser")
CAD, FAB = "lab-cad", "lab-fab"


@dataclass
class SimDevice:
    topic: Topic
    kind: str
    segments: list[Segment] = field(default_factory=list)
    source: str | None = None  # a machine's protocol; "opcua": its samples name its state too

    def substate(self, state: str | None) -> str | None:
        """What the agent's source would send beside ``state`` (the opcua source reading an
        OPC 40001-1 server whose PLC has a Held tag)."""
        if self.source != "opcua" or state is None:
            return None
        shown = SHOWN_AS[state]
        return "Held:true" if shown.held else substate(shown.item.value, shown.mode.value)


@dataclass
class SimLab:
    devices: list[SimDevice]
    activities: list[Activity]  # as performed
    bookings: list[Declared] = field(default_factory=list)  # as declared


def _minutes(rng: random.Random, low: int, high: int) -> int:
    return rng.randint(low * 60, high * 60) * 1000


def _person(rng: random.Random, act: Activity) -> tuple[str, str]:
    org = ORGANISATIONS[act.organisation]
    return pseudonym(SECRET, f"{org.slug}-{rng.randrange(org.people)}"), org.category


def _background(rng: random.Random, machine: bool, a: int, b: int) -> list[Segment]:
    """Nobody at the device: idle or off, now and then the agent down (unknown)."""
    out: list[Segment] = []
    t = a
    while t < b:
        if rng.random() < (0.05 if machine else 0.08):
            out.append(Segment(t, None))
            t += _minutes(rng, 2 if machine else 3, 20 if machine else 25)
        else:
            out.append(Segment(t, rng.choice(("idle", "off"))))
            t += _minutes(rng, 5, 60 if machine else 40)
    return out


def _pc_session(rng: random.Random, act: Activity, t: int) -> tuple[list[Segment], int]:
    """One person at a PC for the activity: spells of input and idleness, a late arrival,
    sometimes a stay past its end; rarely the agent restarts meanwhile."""
    user, category = _person(rng, act)
    apps = frozenset(act.apps)
    out = [Segment(t, "idle")]
    t = max(t, act.start_ms + _minutes(rng, 0, 8))
    leave = act.end_ms + (_minutes(rng, 1, 20) if rng.random() < 0.2 else -_minutes(rng, 0, 10))
    while t < leave:
        if rng.random() < 0.03:
            out.append(Segment(t, None))
            t += _minutes(rng, 2, 10)
            continue
        out.append(Segment(t, "in_use", user, category, apps))
        t += _minutes(rng, 4, 30)
        out.append(Segment(t, "idle", user, category, apps))
        t += _minutes(rng, 1, 6)
    return out, t


def _machine_jobs(rng: random.Random, act: Activity, t: int) -> tuple[list[Segment], int]:
    """Jobs for the activity: set-up, run (perhaps paused or alarmed), each by one badge
    holder; the last job may run past the activity's end (a print finishing after closing)."""
    out = [Segment(t, "idle")]
    t = max(t, act.start_ms + _minutes(rng, 0, 10))
    while t < act.end_ms - 10 * MIN_MS:
        user, category = _person(rng, act)
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
    return out, t


def _timeline(
    device: str, machine: bool, acts: list[Activity], start_ms: int, end_ms: int, seed: int
) -> list[Segment]:
    """The device's segments over ``[start_ms, end_ms)``; the first starts at ``start_ms``."""
    begin = min([start_ms] + [a.start_ms for a in acts])
    out: list[Segment] = []
    t = begin
    for act in acts:
        # Per activity and per gap, so that a day's timeline does not depend on the window.
        rng = random.Random(f"{seed}/{device}/{act.start_ms}")
        if act.start_ms > t:
            out.extend(_background(rng, machine, t, act.start_ms))
            t = act.start_ms
        spells, t = (_machine_jobs if machine else _pc_session)(rng, act, t)
        out.extend(spells)
    if t < end_ms:
        out.extend(_background(random.Random(f"{seed}/{device}/{t}"), machine, t, end_ms))
    # Clip to the window: the segment holding at ``start_ms`` starts there.
    first = max(i for i, s in enumerate(out) if s.start_ms <= start_ms)
    kept = [s for s in out[first:] if s.start_ms < end_ms]
    kept[0] = dataclasses.replace(kept[0], start_ms=start_ms)
    return kept


def layout(devices: int, site: str = "its-prime") -> list[SimDevice]:
    """PCs in a CAD lab, machines in a fabrication lab (60/40), with no timeline yet."""
    pcs = max(1, round(devices * 0.6)) if devices > 1 else devices
    sims: list[SimDevice] = []
    for i in range(devices):
        if i < pcs:
            sims.append(SimDevice(Topic(site, CAD, f"pc-{i + 1:02d}", "sample"), "pc"))
        else:
            kind = MACHINE_KINDS[(i - pcs) % len(MACHINE_KINDS)]
            # The first machine is a CNC with an OPC UA server (OPC 40001-1).
            source = "opcua" if i == pcs and kind == "cnc" else None
            topic = Topic(site, FAB, f"{kind}-{i - pcs + 1:02d}", "sample")
            sims.append(SimDevice(topic, kind, source=source))
    return sims


def build_lab(
    devices: int,
    start_ms: int,
    end_ms: int,
    seed: int,
    site: str = "its-prime",
    opening: Opening | None = None,
) -> SimLab:
    """The lab's devices, used as their plan says."""
    sims = layout(devices, site)
    activities: list[Activity] = []
    declared: list[Declared] = []
    for lab_id in (CAD, FAB):
        members = [d for d in sims if d.topic.lab == lab_id]
        if not members:
            continue
        acts = plan(
            lab_id,
            [d.topic.device for d in members],
            machines=lab_id == FAB,
            start_ms=start_ms,
            end_ms=end_ms,
            seed=seed,
            opening=opening or school_hours(),
        )
        # Booked activities are declared; some then never happen or end early.
        acts, booked = declare(acts, {lab_id: [d.topic.device for d in members]}, seed)
        declared.extend(booked)
        activities.extend(acts)
        for dev in members:
            mine = [a for a in acts if dev.topic.device in a.devices]
            dev.segments = _timeline(
                dev.topic.device, dev.kind != "pc", mine, start_ms, end_ms, seed
            )
    return SimLab(
        sims,
        sorted(activities, key=lambda a: (a.start_ms, a.lab, a.devices)),
        sorted(declared, key=lambda d: (d.start_ms, d.lab, d.devices)),
    )


def inventory_opening(path: str | Path, site: str = "its-prime") -> Opening:
    """The labs' opening hours as an inventory file states them (the demo's, for its plan)."""
    hours = OpeningHours(inventory.load(path))
    return lambda lab, half: hours.is_open(site, lab, half)


def open_ms(lab: str, a: int, b: int, is_open: Opening) -> int:
    """How much of ``[a, b)`` falls in the lab's open half hours."""
    total = 0
    for half in range(a - a % HALF_HOUR_MS, b, HALF_HOUR_MS):
        if is_open(lab, half):
            total += max(0, min(b, half + HALF_HOUR_MS) - max(a, half))
    return total


def ground_truth(
    lab: list[SimDevice],
    start_ms: int,
    end_ms: int,
    interval_s: int,
    is_open: Opening | None = None,
) -> dict[str, Any]:
    """Per device: in-use and observed seconds (all, and within the opening hours that
    ``is_open`` states; every half hour without it), in-use by category, app seconds, final
    state; per app: peak concurrent seats (one lab = one site)."""
    is_open = is_open or (lambda _lab, _half: True)
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
                observed_open += open_ms(dev.topic.lab, a, a + span, is_open)
                final = seg.state
            if seg.state == "in_use":
                in_use += span
                in_use_open += open_ms(dev.topic.lab, a, a + span, is_open)
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
    end_ms: int | None = None,
    opening: Opening | None = None,
    bookings_path: Path | None = None,
    pnrr: Collection[str] = (),
    pnrr_apps: Collection[str] = (),
) -> dict[str, Any]:
    """Publish the lab's samples; ``speed`` 0 = as fast as the broker takes them.

    The simulated clock runs for ``hours`` up to ``end_ms`` (tests pin it; by default now),
    both on minute boundaries. With ``live`` it starts ``hours`` before now and then keeps
    going in real time until ``stop`` is set. ``opening`` (per lab and half hour) shapes the
    plan of activities and splits the ground truth's open seconds; without it the plan keeps
    school hours and the truth counts every half hour open, as the API does without an
    inventory. ``bookings_path`` gets the declared bookings as iCalendar; the truth's
    ``reconciliation`` holds every bookings figure (``pnrr`` devices and ``pnrr_apps``
    titles being PNRR-funded).
    """
    if live and end_ms is not None:
        raise ValueError("a live lab ends now; end_ms is for a lab wholly in the past")
    stop = stop or threading.Event()
    end = int(time.time() * 1000) if end_ms is None else end_ms
    end_ms = end // MIN_MS * MIN_MS
    start_ms = (end_ms - int(hours * 3600_000)) // MIN_MS * MIN_MS
    horizon = end_ms + (7 * 24 * 3600_000 if live else 0)
    sim = build_lab(devices, start_ms, horizon, seed, site, opening)
    lab = sim.devices
    meters = [Meter(interval_s, start_ms, kind=d.kind) for d in lab]
    publishers = [Publisher(mqtt, d.topic, kind=d.kind, interval_s=interval_s) for d in lab]
    for p in publishers:
        p.connect()
    net = next((i for i, d in enumerate(lab) if d.kind == NETWORKED_KIND), None)
    printer = NetworkedPrinter() if net is not None else None
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
            if seg is None:
                reading = meters[i].reading
            elif i == net and printer is not None:
                reading = printer.reading(t, seg)
            else:
                reading = Reading(
                    seg.state, seg.user, seg.category, seg.apps, substate=lab[i].substate(seg.state)
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
        if printer is not None:
            printer.close()
    truth = ground_truth(lab, start_ms, final_ms, interval_s, opening)
    seen = [a for a in sim.activities if a.start_ms < final_ms and a.end_ms > start_ms]
    truth["activities"] = [dataclasses.asdict(a) for a in seen]
    declared = [b for b in sim.bookings if b.start_ms < final_ms and b.end_ms > start_ms]
    timelines = {(d.topic.lab, d.topic.device): d.segments for d in lab}
    truth["reconciliation"] = bookings.truth(
        timelines, declared, start_ms, final_ms, pnrr=pnrr, pnrr_apps=pnrr_apps
    )
    if bookings_path is not None:
        bookings_path.write_text(bookings.to_ics(declared, site))
    truth["samples_published"] = published
    if truth_path is not None:
        truth_path.write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    return truth
