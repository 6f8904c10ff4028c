"""Utilisation, coverage, openness and licence peaks against the simulated lab's ground truth,
through real Mosquitto, the collector and real InfluxDB, with an inventory in the loop."""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from labmeter.api.keys import Role
from labmeter.config import Config
from labmeter.contract import EXTERNAL_CATEGORIES
from labmeter.influx import InfluxV1
from labmeter.simulators import lab
from tests.api.client import make_api
from tests.helpers import simulate_through_collector, utc_ms

pytestmark = pytest.mark.e2e
DEVICES = 10
UNLISTED = "pc-02"  # left out of the inventory on purpose


# Open from HH:30 to HH+1:30 every other hour: every hour is cut by opening hours, and the
# simulated lab is used inside and outside them.
HOURS = ", ".join(f"{h:02d}:30-{h + 1:02d}:30" for h in range(0, 24, 2))
ROME = ZoneInfo("Europe/Rome")
# Pinned windows (never the wall clock): a Sunday night ending 00:10 UTC on a Monday, and the
# whole local days on which Rome's clocks go forward (23 h) and back (25 h).
WINDOWS = {
    "monday-00:10-utc": ("2025-12-01T00:10+00:00", 3),
    "dst-spring": ("2025-03-30T00:00+02:00", 23),
    "dst-autumn": ("2025-10-27T00:00+01:00", 25),
}


@functools.cache
def _spans(day: date) -> list[tuple[int, int]]:
    """The same hours, stated independently of the inventory code under test. A local time
    is read with the offset in force before a change (RFC 5545): on the spring day 02:30 is
    03:30 CEST, so 02:30-03:30 is empty; on the autumn day 02:30 is its first occurrence, so
    02:30-03:30 lasts two hours."""

    def at(hour: int) -> int:  # fold=0: the earlier offset
        return int(datetime.combine(day, time(hour, 30), ROME).timestamp() * 1000)

    return [(at(h), at(h + 1)) for h in range(0, 24, 2)]


def _is_open(_lab: str, half_ms: int) -> bool:
    day = datetime.fromtimestamp(half_ms / 1000, ROME).date()
    return any(a <= half_ms < b for d in (day - timedelta(days=1), day) for a, b in _spans(d))


def _inventory(tmp_path: Path, site: str) -> Path:
    equipment = "\n".join(
        f"  - {{id: {d.topic.device}, site: {site}, lab: {d.topic.lab}, kind: {d.kind}}}"
        for d in lab.layout(DEVICES, site)
        if d.topic.device != UNLISTED
    )
    path = tmp_path / "inventory.yaml"
    path.write_text(
        f"""version: 1
timezone: Europe/Rome
sites: [{{id: {site}}}]
labs:
  - {{id: lab-cad, site: {site}, hours: {{mon-sun: "{HOURS}"}}, public_holidays: false}}
  - {{id: lab-fab, site: {site}, hours: {{mon-sun: "{HOURS}"}}, public_holidays: false}}
equipment:
{equipment}
software:
  - {{id: solidworks, site: {site}, seats: 3}}
"""
    )
    return path


@pytest.mark.parametrize(
    ("window", "read"),
    [
        ("monday-00:10-utc", "raw"),
        ("monday-00:10-utc", "rollups"),
        ("dst-spring", "rollups"),
        ("dst-autumn", "rollups"),
    ],
)
def test_report_figures_equal_ground_truth(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path, window: str, read: str
) -> None:
    """``raw``: the API sums raw points per half hour. ``rollups``: the collector rolls the
    closed hours up, and whole local days (23 and 25 hours long on the DST days) with the
    same inventory, and the API reads those."""
    end, hours = WINDOWS[window]
    inventory = _inventory(tmp_path, uid)
    truth, collector = simulate_through_collector(
        config, influx, devices=DEVICES, hours=hours, seed=11, end_ms=utc_ms(end),
        opening=_is_open, rollups=inventory if read == "rollups" else None,
    )  # fmt: skip
    assert sum(collector.dead_letters.counts.values()) == 0
    if read == "rollups":
        days = influx.query('SELECT count("hours") FROM rollup_hours_daily')
        assert days and days[0].values[0][1] > 0

    api = make_api(config, tmp_path, inventory)
    bounds = {"start": truth["start_ms"] // 1000, "end": truth["end_ms"] // 1000}
    span = lab.open_ms("lab-cad", truth["start_ms"], truth["end_ms"], _is_open) / 1000
    assert 0 < span < (truth["end_ms"] - truth["start_ms"]) / 1000
    devices = truth["devices"]
    listed = {k: d for k, d in devices.items() if d["device"] != UNLISTED}

    rows = api.get("/api/v1/utilisation", Role.viewer, **bounds)
    got = {f"{r['site']}/{r['lab']}/{r['device']}": r for r in rows}
    assert got.keys() == devices.keys()
    for key, dev in devices.items():
        row = got[key]
        assert row["in_use_s"] == dev["in_use_s"], key
        assert row["observed_s"] == dev["observed_s"], key
        if dev["device"] == UNLISTED:
            assert (row["registered"], row["available_s"], row["utilisation"]) == (
                False,
                None,
                None,
            )
            continue
        assert row["available_s"] == span
        assert row["in_use_open_s"] == dev["in_use_open_s"], key
        assert row["after_hours_s"] == dev["in_use_s"] - dev["in_use_open_s"], key
        assert row["observed_open_s"] == dev["observed_open_s"], key
        assert row["utilisation"] == pytest.approx(dev["in_use_open_s"] / span, rel=1e-12)
        assert row["coverage"] == pytest.approx(dev["observed_open_s"] / span, rel=1e-12)
    assert any(r["coverage"] is not None and r["coverage"] < 1 for r in rows)
    assert any(r["after_hours_s"] for r in rows)  # the lab is used after hours too

    for row in api.get("/api/v1/utilisation", Role.viewer, group_by="lab", **bounds):
        members = [d for d in listed.values() if d["lab"] == row["lab"]]
        assert row["devices"] == len(members)
        assert row["utilisation"] == pytest.approx(
            sum(d["in_use_open_s"] for d in members) / (span * len(members)), rel=1e-12
        )
        assert row["coverage"] == pytest.approx(
            sum(d["observed_open_s"] for d in members) / (span * len(members)), rel=1e-12
        )

    # Openness: registered devices only; the unlisted PC's users are not merged in.
    openness = api.get("/api/v1/openness", **bounds)["total"]
    by_category: dict[str, float] = {}
    for dev in listed.values():
        for category, secs in dev["in_use_by_category_s"].items():
            by_category[category] = by_category.get(category, 0.0) + secs
    total = sum(by_category.values())
    for category, secs in by_category.items():
        assert openness["categories"][category]["in_use_s"] == pytest.approx(secs, abs=1e-6)
    external = sum(by_category.get(c, 0.0) for c in EXTERNAL_CATEGORIES)
    assert openness["quota_esterna"] == pytest.approx(external / total, rel=1e-12)
    assert 0 < openness["quota_esterna"] < 1

    software = {r["app"]: r for r in api.get("/api/v1/software", **bounds)}
    # Titles used, and the inventory's licence even where nobody used it.
    assert set(software) == set(truth["peak_seats"]) | {"solidworks"}
    for app in set(software) - set(truth["peak_seats"]):
        assert (software[app]["hours"], software[app]["peak_seats"]) == (0, 0), app
    for app, peak in truth["peak_seats"].items():
        assert software[app]["peak_seats"] == peak, app
        seconds = sum(d["apps_s"].get(app, 0.0) for d in devices.values())
        assert software[app]["hours"] == pytest.approx(seconds / 3600, abs=1e-6)
    assert software["solidworks"]["seats_owned"] == 3
    assert max(truth["peak_seats"].values()) >= 2  # the peaks are concurrency, not presence

    report = api.get("/api/v1/report", **bounds)
    assert report["users"]["quota_esterna"] == openness["quota_esterna"]
    assert report["evidence"]["unregistered"] == [
        {"site": uid, "lab": "lab-cad", "device": UNLISTED}
    ]
