"""Utilisation, coverage, openness and licence peaks against the simulated lab's ground truth,
through real Mosquitto, the collector and real InfluxDB, with an inventory in the loop."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.keys import Role
from labmeter.config import Config
from labmeter.contract import EXTERNAL_CATEGORIES
from labmeter.influx import InfluxV1
from simulators import lab
from tests.api.client import make_api
from tests.helpers import simulate_through_collector

pytestmark = pytest.mark.e2e
UNLISTED = "pc-02"  # left out of the inventory on purpose


# Open from HH:30 to HH+1:30 every other hour: every hour is cut by opening hours, and the
# simulated lab is used inside and outside them.
HOURS = ", ".join(f"{h:02d}:30-{h + 1:02d}:30" for h in range(0, 24, 2))
ROME = ZoneInfo("Europe/Rome")


def _is_open(half_ms: int) -> bool:
    """The same hours, stated independently of the inventory code under test."""
    local = datetime.fromtimestamp(half_ms / 1000, ROME)
    return (local.hour % 2 == 0) == (local.minute == 30)


def _inventory(tmp_path: Path, site: str, truth: dict[str, Any]) -> Path:
    equipment = "\n".join(
        f"  - {{id: {d['device']}, site: {site}, lab: {d['lab']}, kind: {d['kind']}}}"
        for d in truth["devices"].values()
        if d["device"] != UNLISTED
    )
    path = tmp_path / "inventory.yaml"
    path.write_text(
        f"""version: 1
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


def test_report_figures_equal_ground_truth(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    truth, collector = simulate_through_collector(
        config, influx, devices=10, hours=3, seed=11, is_open=_is_open
    )
    assert sum(collector.dead_letters.counts.values()) == 0

    api = make_api(config, tmp_path, _inventory(tmp_path, uid, truth))
    window = {"start": truth["start_ms"] // 1000, "end": truth["end_ms"] // 1000}
    span = lab.open_ms(truth["start_ms"], truth["end_ms"], _is_open) / 1000
    assert 0 < span < (truth["end_ms"] - truth["start_ms"]) / 1000
    devices = truth["devices"]
    listed = {k: d for k, d in devices.items() if d["device"] != UNLISTED}

    rows = api.get("/api/v1/utilisation", Role.viewer, **window)
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

    for row in api.get("/api/v1/utilisation", Role.viewer, group_by="lab", **window):
        members = [d for d in listed.values() if d["lab"] == row["lab"]]
        assert row["devices"] == len(members)
        assert row["utilisation"] == pytest.approx(
            sum(d["in_use_open_s"] for d in members) / (span * len(members)), rel=1e-12
        )
        assert row["coverage"] == pytest.approx(
            sum(d["observed_open_s"] for d in members) / (span * len(members)), rel=1e-12
        )

    # Openness: registered devices only; the unlisted PC's users are not merged in.
    openness = api.get("/api/v1/openness", **window)["total"]
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

    software = {r["app"]: r for r in api.get("/api/v1/software", **window)}
    assert set(software) == set(truth["peak_seats"])
    for app, peak in truth["peak_seats"].items():
        assert software[app]["peak_seats"] == peak, app
        seconds = sum(d["apps_s"].get(app, 0.0) for d in devices.values())
        assert software[app]["hours"] == pytest.approx(seconds / 3600, abs=1e-6)
    assert software["solidworks"]["seats_owned"] == 3
    assert max(truth["peak_seats"].values()) >= 2  # the peaks are concurrency, not presence

    report = api.get("/api/v1/report", **window)
    assert report["users"]["quota_esterna"] == openness["quota_esterna"]
    assert report["evidence"]["unregistered"] == [
        {"site": uid, "lab": "lab-cad", "device": UNLISTED}
    ]
