"""Bookings reconciled with measured use, against the simulated lab's ground truth, through
real Mosquitto, the collector (with its rollups) and real InfluxDB; the bookings go through
the iCalendar parser as the lab's booking system would export them."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from labmeter.config import BookingsConfig, Config
from labmeter.influx import InfluxV1
from simulators import lab
from tests.api.client import make_api
from tests.helpers import simulate_through_collector, utc_ms

pytestmark = pytest.mark.e2e
DEVICES = 10
PNRR = {"cnc-01", "cnc-04"}
PNRR_APPS = {"tia_portal"}
# Monday 27 October 2025 (the day after Rome's clocks went back) and Tuesday, ending at an odd
# minute within bookings: they are clipped to the window, and its last hour is cut.
END, HOURS, SEED = "2025-10-28T14:07+01:00", 30, 8


def _inventory(tmp_path: Path, site: str) -> Path:
    equipment = "\n".join(
        f"  - {{id: {d.topic.device}, site: {site}, lab: {d.topic.lab}, kind: {d.kind}"
        + (", fund: PNRR, cup: J14D22001230006" if d.topic.device in PNRR else "")
        + "}"
        for d in lab.layout(DEVICES, site)
    )
    path = tmp_path / "inventory.yaml"
    path.write_text(
        f"""version: 1
timezone: Europe/Rome
sites: [{{id: {site}}}]
labs:
  - {{id: lab-cad, site: {site}, name: Laboratorio CAD, hours: {{mon-fri: "08:30-18:30"}}}}
  - {{id: lab-fab, site: {site}, name: Fabbricazione, hours: {{mon-fri: "08:30-18:30"}}}}
equipment:
{equipment}
software:
  - {{id: tia_portal, site: {site}, seats: 4, fund: PNRR}}
"""
    )
    return path


@pytest.mark.parametrize("read", ["raw", "rollups"])
def test_every_reconciliation_figure_equals_the_ground_truth(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path, read: str
) -> None:
    """``rollups``: whole hours and days inside bookings from the collector's rollups, the
    edges from raw samples; ``raw``: raw samples only."""
    inventory = _inventory(tmp_path, uid)
    calendar = tmp_path / "prenotazioni.ics"
    truth, collector = simulate_through_collector(
        config, influx, devices=DEVICES, hours=HOURS, seed=SEED, end_ms=utc_ms(END),
        rollups=inventory if read == "rollups" else None, bookings_path=calendar, pnrr=PNRR,
        pnrr_apps=PNRR_APPS,
    )  # fmt: skip
    assert sum(collector.dead_letters.counts.values()) == 0
    sources = tmp_path / "bookings.yaml"
    sources.write_text(f"version: 1\ncalendars:\n  - {{file: {calendar.name}}}\n")
    config = dataclasses.replace(config, bookings=BookingsConfig(sources=str(sources)))
    api = make_api(config, tmp_path / "api", inventory)
    bounds = {"start": truth["start_ms"] // 1000, "end": truth["end_ms"] // 1000}
    got = api.get("/api/v1/bookings", **bounds)
    want = truth["reconciliation"]

    # The lab shows every case the evaluator asks about.
    outcomes = Counter(b["outcome"] for b in want["bookings"])
    assert outcomes.keys() == {"full", "partly", "no_show"}
    assert any(not b["devices"] or len(b["devices"]) > 3 for b in want["bookings"])
    assert any(b["end_ms"] > truth["end_ms"] for b in want["bookings"])  # clipped
    assert all(v["unbooked_s"] > 0 for v in want["labs"].values())
    assert {c["asset"] for c in want["commercial"]} >= {"cnc-01", "tia_portal"}
    assert want["company_without_commercial_booking"]

    rows = {b["uid"].split("#")[0]: b for b in got["bookings"]}
    assert rows.keys() == {b["uid"] for b in want["bookings"]}
    for b in want["bookings"]:
        row = rows[b["uid"]]
        assert row["devices"] == b["devices"], b["uid"]
        assert (row["booked_s"], row["booked_device_s"]) == (b["booked_s"], b["booked_device_s"])
        assert row["in_use_s"] == b["in_use_s"], b["uid"]
        assert row["in_use_by_category_s"] == b["in_use_by_category_s"], b["uid"]
        assert row["used_share"] == pytest.approx(b["used_share"], rel=1e-12)
        assert row["no_show"] == b["no_show"], b["uid"]
        assert (row["commercial"], row["reference"]) == (b["commercial"], b["reference"])
    assert sum(r["no_show"] for r in got["bookings"]) >= 2
    assert got["no_show_below"] == 0.10

    labs = {r["lab"]: r for r in got["labs"]}
    for name, want_lab in want["labs"].items():
        row = labs[name]
        for key in ("in_use_s", "booked_in_use_s", "unbooked_s", "unbooked_by_category_s"):
            assert row[key] == want_lab[key], (name, key)
        assert row["bookings"] == sum(1 for b in want["bookings"] if b["lab"] == name)
        assert row["no_shows"] == sum(
            1 for b in want["bookings"] if b["lab"] == name and b["no_show"]
        )

    commercial = sorted(
        (c["booking"].split("#")[0], c["reference"], c["asset"], c["device"], c["in_use_s"])
        for c in got["commercial"]
    )
    assert commercial == sorted(
        (c["booking"], c["reference"], c["asset"], c["device"], c["in_use_s"])
        for c in want["commercial"]
    )
    assert {c["device"]: c["in_use_s"] for c in got["company_without_commercial_booking"]} == want[
        "company_without_commercial_booking"
    ]
    assert got["outside_organisations"] == len(want["outside_organisations"])

    by_org = {r["name"]: r for r in got["organisations"]}
    for org in {b["organisation"] for b in want["bookings"]}:
        mine = [b for b in want["bookings"] if b["organisation"] == org]
        assert by_org[org]["bookings"] == len(mine)
        assert by_org[org]["in_use_s"] == pytest.approx(sum(b["in_use_s"] for b in mine), abs=1e-3)
