"""An asset moved between labs and another renamed, mid-window, through the real agent queue and
publisher, Mosquitto, the collector and InfluxDB: the API follows each asset across its
identities, and splits its seconds per lab by date, as the ground truth does.

The moved PC's agent is offline across the move: what it measured in the CAD lab waits in its
queue, the agent is restarted in the fablab, and only then does it reach the broker, publishing
its backlog under the old topic and its new samples under the new one.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from labmeter.agent.identity import pseudonym
from labmeter.agent.meter import Meter, Reading
from labmeter.agent.publisher import Publisher
from labmeter.agent.queue import DurableQueue
from labmeter.api.keys import Role
from labmeter.collector.service import Collector
from labmeter.config import Config
from labmeter.contract import Topic, encode
from labmeter.influx import InfluxV1
from labmeter.simulators.lab import open_ms
from tests.api.client import make_api
from tests.helpers import pinned_collector, utc_ms, wait_for

pytestmark = pytest.mark.e2e

ROME = ZoneInfo("Europe/Rome")
MIN_MS = 60_000
START = utc_ms("2025-11-28T00:00+01:00")
MOVE_DAY = date(2025, 11, 30)  # the inventory's 'until': the old identity ends at its midnight
MOVE = utc_ms("2025-11-30T00:00+01:00")
END = utc_ms("2025-12-01T00:00+01:00")  # pinned: three local days, never the wall clock
# Opening hours, stated independently of the inventory code under test.
HOURS = {"lab-cad": (8, 18), "lab-fab": (9, 20)}
# asset -> its identities (lab, device) before and from the move
ASSETS = {
    "pc-07": (("lab-cad", "pc-07"), ("lab-fab", "pc-07")),  # moved
    "cnc-mill-01": (("lab-fab", "cnc-01"), ("lab-fab", "cnc-mill-01")),  # renamed
    "pc-01": (("lab-cad", "pc-01"), ("lab-cad", "pc-01")),  # stays
}
KINDS = {"pc-07": "pc", "cnc-mill-01": "cnc", "pc-01": "pc"}
# pc-01's agent ran a day before the inventory says it was installed: its first day is still
# its own, flagged as outside its period, and not in its available time.
INSTALLED = date(2025, 11, 29)


def _is_open(lab: str, half_ms: int) -> bool:
    local = datetime.fromtimestamp(half_ms / 1000, ROME)
    first, last = HOURS[lab]
    return first <= local.hour < last


def _inventory(tmp_path: Path, site: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        f"""version: 1
timezone: Europe/Rome
sites: [{{id: {site}}}]
labs:
  - {{id: lab-cad, site: {site}, hours: {{mon-sun: "08:00-18:00"}}, public_holidays: false}}
  - {{id: lab-fab, site: {site}, hours: {{mon-sun: "09:00-20:00"}}, public_holidays: false}}
equipment:
  - id: pc-07
    site: {site}
    lab: lab-fab
    kind: pc
    history: [{{lab: lab-cad, until: {MOVE_DAY}}}]
  - id: cnc-mill-01
    site: {site}
    lab: lab-fab
    kind: cnc
    history: [{{device: cnc-01, until: {MOVE_DAY}}}]
  - {{id: pc-01, site: {site}, lab: lab-cad, kind: pc, since: {INSTALLED}}}
"""
    )
    return path


Segment = tuple[int, str | None, str | None]  # start ms, state (None: unobserved), user


def _timeline(asset: str) -> list[Segment]:
    """Spells of use, idleness, off and unobserved time, on whole minutes."""
    rng = random.Random(asset)
    out: list[Segment] = []
    t = START
    while t < END:
        state = rng.choice(("in_use", "in_use", "idle", "off", None))
        user = pseudonym("moved-assets-secret", f"u{rng.randrange(5)}") if state else None
        out.append((t, state, user if state == "in_use" else None))
        t += rng.randint(5, 150) * MIN_MS
    return out


def _truth(timelines: dict[str, list[Segment]]) -> dict[tuple[str, str, date], dict[str, float]]:
    """Seconds per (asset, lab it was in, local day): in use and observed, all and open."""
    out: dict[tuple[str, str, date], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for asset, segments in timelines.items():
        bounds = [s[0] for s in segments[1:]] + [END]
        for (a, state, _user), b in zip(segments, bounds, strict=True):
            if state is None:
                continue
            t = a
            while t < b:  # cut at local midnights (the move is one)
                local = datetime.fromtimestamp(t / 1000, ROME)
                day = local.date()
                midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), ROME)
                piece_end = min(b, int(midnight.timestamp() * 1000))
                lab = ASSETS[asset][0 if t < MOVE else 1][0]
                cell = out[(asset, lab, day)]
                seconds, open_s = (
                    (piece_end - t) / 1000,
                    open_ms(lab, t, piece_end, _is_open) / 1000,
                )
                cell["observed_s"] += seconds
                cell["observed_open_s"] += open_s
                if state == "in_use":
                    cell["in_use_s"] += seconds
                    cell["in_use_open_s"] += open_s
                t = piece_end
    return out


def _queue_samples(queue: DurableQueue, asset: str, site: str, segments: list[Segment]) -> int:
    """What the asset's agent measured, queued under the identity it had at the time: the
    agent stops at the move and starts again under its new identity (same queue file)."""
    queued, seq = 0, 0
    for part, (a, b) in enumerate(((START, MOVE), (MOVE, END))):
        lab, device = ASSETS[asset][part]
        topic = Topic(site, lab, device, "sample")
        meter = Meter(60, a, kind=KINDS[asset], seq=seq)
        changes = [(max(s, a), state, user) for s, state, user in segments if s < b]
        changes = [c for c in changes if c[0] >= a]
        ticks = [(t, None) for t in range(a + MIN_MS, b, MIN_MS)]
        events = sorted(
            [(t, (state, user)) for t, state, user in changes] + ticks, key=lambda e: e[0]
        )
        samples = []
        for t, change in events:
            reading = meter.reading if change is None else Reading(change[0], change[1], "school")
            samples += meter.observe(t, reading)
        samples += meter.flush(b)
        for sample in samples:
            queue.put(topic, sample.ts, encode(sample))
        queued += len(samples)
        seq = meter.seq
    return queued


@pytest.mark.parametrize("read", ["raw", "rollups"])
def test_moved_and_renamed_assets_keep_their_seconds_per_lab_by_date(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path, read: str
) -> None:
    site = uid
    inventory = _inventory(tmp_path, site)
    timelines = {asset: _timeline(asset) for asset in ASSETS}
    truth = _truth(timelines)

    config = pinned_collector(config, END)
    if read == "rollups":
        config = dataclasses.replace(
            config,
            collector=dataclasses.replace(
                config.collector, rollup_grace_s=0, rollup_settle_s=0.2, inventory=str(inventory)
            ),
        )
    collector = Collector(config, influx, reader=influx if read == "rollups" else None)
    collector.start()
    try:
        assert collector.connected.wait(10)
        time.sleep(0.2)  # let the SUBSCRIBE land before anything is published
        expected = 0
        for asset, segments in timelines.items():
            queue = DurableQueue(tmp_path / f"{asset}.db", clock_ms=lambda: END)
            expected += _queue_samples(queue, asset, site, segments)
            lab, device = ASSETS[asset][1]  # the agent reconnects where it is now
            topic = Topic(site, lab, device, "sample")
            publisher = Publisher(config.mqtt, topic, kind=KINDS[asset])
            publisher.connect()
            try:
                assert publisher.drain(queue, timeout=60)
            finally:
                publisher.close()
                queue.close()

        def written() -> bool:
            rows = influx.query("SELECT count(seq) FROM sample")
            return bool(rows) and rows[0].values[0][1] == expected

        wait_for(written, timeout=60)
        # The backlog went out under the old topics.
        old = influx.query(
            f"SELECT count(seq) FROM sample WHERE site = '{site}' AND lab = 'lab-cad' "
            "AND device = 'pc-07'"
        )
        assert old and old[0].values[0][1] > 0
        owed = collector.rollups
        if owed is not None:
            wait_for(lambda: not owed.pending(), timeout=120)
    finally:
        collector.stop()
    assert sum(collector.dead_letters.counts.values()) == 0

    api = make_api(config, tmp_path, inventory)
    bounds = {"start": START // 1000, "end": END // 1000}

    def total(name: str, asset: str | None = None, lab: str | None = None) -> float:
        return sum(
            cell[name]
            for (a, lab_of, _day), cell in truth.items()
            if (asset is None or a == asset) and (lab is None or lab_of == lab)
        )

    # One row per asset, under its current identity, with all its identities' seconds.
    rows = api.get("/api/v1/utilisation", Role.viewer, **bounds)
    got = {r["device"]: r for r in rows}
    assert got.keys() == set(ASSETS)
    assert {r["lab"] for r in rows if r["device"] == "pc-07"} == {"lab-fab"}
    assert got["pc-07"]["former"] == [f"lab-cad/pc-07 until {MOVE_DAY}"]
    assert got["cnc-mill-01"]["former"] == [f"lab-fab/cnc-01 until {MOVE_DAY}"]
    assert got["pc-01"]["former"] is None
    installed = utc_ms(f"{INSTALLED}T00:00+01:00")
    for asset, row in got.items():
        assert row["registered"], asset
        for name in ("in_use_s", "observed_s", "in_use_open_s", "observed_open_s"):
            assert row[name] == pytest.approx(total(name, asset), abs=1e-6), (asset, name)
        before, after = (ASSETS[asset][i][0] for i in (0, 1))
        first = installed if asset == "pc-01" else START
        available = (
            open_ms(before, first, MOVE, _is_open) + open_ms(after, MOVE, END, _is_open)
        ) / 1000
        assert row["available_s"] == pytest.approx(available, abs=1e-6), asset
    early = truth[("pc-01", "lab-cad", date(2025, 11, 28))]["observed_s"]
    assert got["pc-01"]["outside_period_s"] == pytest.approx(early, abs=1e-6) and early > 0
    assert got["pc-07"]["outside_period_s"] is None
    assert got["pc-07"]["in_use_s"] > 0 and total("in_use_s", "pc-07", "lab-cad") > 0

    # Per lab and local day: each identity's seconds in the lab it was in that day.
    days = api.get("/api/v1/utilisation", Role.viewer, group_by="lab", every="day", **bounds)

    def local_day(text: str) -> date:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(ROME).date()

    assert {(r["lab"], local_day(r["period_start"])) for r in days} == {
        (lab, day) for lab in HOURS for day in (date(2025, 11, d) for d in (28, 29, 30))
    }
    for row in days:
        day, lab = local_day(row["period_start"]), row["lab"]
        cells = [c for (_a, lab_of, d), c in truth.items() if lab_of == lab and d == day]
        for name in ("in_use_s", "observed_s", "in_use_open_s", "observed_open_s"):
            assert row[name] == pytest.approx(sum(c[name] for c in cells), abs=1e-6), (row, name)
        there = {
            a
            for a, ids in ASSETS.items()
            if ids[0 if day < MOVE_DAY else 1][0] == lab and (a != "pc-01" or day >= INSTALLED)
        }
        assert row["devices"] == len(there), row
        a = utc_ms(f"{day}T00:00+01:00")
        b = utc_ms(f"{day + timedelta(days=1)}T00:00+01:00")
        assert row["available_s"] == pytest.approx(len(there) * open_ms(lab, a, b, _is_open) / 1000)

    listed = api.get("/api/v1/equipment", Role.viewer)
    assert {e["device"]: e["former"] for e in listed["equipment"]} == {
        asset: got[asset]["former"] or [] for asset in ASSETS
    }
    assert listed["unregistered"] == []

    # Occupancy lists each asset where it is now, not its former identities.
    now = {(r["lab"], r["device"]) for r in api.get("/api/v1/occupancy", Role.viewer)}
    assert now == {ids[1] for ids in ASSETS.values()}

    # Nothing is unregistered: the old identities are their assets'.
    report = api.get("/api/v1/report", **bounds)
    assert report["evidence"]["unregistered"] == []
    assert sorted(e["device"] for e in report["equipment"]) == sorted(ASSETS)
    months = {m["lab"]: m for m in report["months"]}
    for lab in HOURS:
        assert months[lab]["in_use_s"] == pytest.approx(total("in_use_s", lab=lab), abs=1e-6)
