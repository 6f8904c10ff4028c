"""Busy rollups: per lab, kind and hour the devices busy at once (in use 45 minutes of the
hour, every stakeholder category together), per day and month the open seconds of the hours
with at least k busy; a recompute that finds fewer busy devices overwrites what it wrote."""

from __future__ import annotations

from pathlib import Path

from labmeter.collector.daily import backfill
from labmeter.influx import InfluxV1, line
from labmeter.inventory import load
from labmeter.opening import OpeningHours
from labmeter.schema import HOUR_MS, Calendar, Period, busy_rollup, device_rollup
from tests.helpers import utc_ms

ROME = Calendar("Europe/Rome")
MONDAY = utc_ms("2026-02-02T00:00:00+01:00")  # a working Monday, no holiday
INVENTORY = """version: 1
timezone: Europe/Rome
sites: [{id: its-b, name: ITS B}]
labs: [{id: lab-cad, site: its-b, hours: {mon-fri: "09:00-13:00"}}]
equipment:
  - {id: pc-01, site: its-b, lab: lab-cad, kind: pc}
  - {id: pc-02, site: its-b, lab: lab-cad, kind: pc}
  - {id: cnc-01, site: its-b, lab: lab-cad, kind: cnc}
"""


def _hour(local: int) -> int:
    return MONDAY + local * HOUR_MS


def _use(device: str, kind: str, local_hour: int, **by_category: float) -> list[str]:
    """An hourly device rollup point per category, with its in-use seconds."""
    name = device_rollup(Period.hourly).name
    out = []
    for category, in_use in by_category.items():
        tags = {"site": "its-b", "lab": "lab-cad", "device": device, "kind": kind,
                "category": category}  # fmt: skip
        fields = {"in_use_s": in_use, "idle_s": 3600.0 - in_use, "observed_s": 3600.0,
                  "samples": 60, "in_use_h1_s": in_use / 2, "observed_h1_s": 1800.0}  # fmt: skip
        out.append(line(name, tags, fields, _hour(local_hour)))
    return out


def _points(influx: InfluxV1, period: Period) -> dict[tuple[str, int], dict[str, object]]:
    out = {}
    query = f"SELECT * FROM {busy_rollup(period).name} GROUP BY site, lab, kind"
    for series in influx.query(query):
        for row in series.values:
            fields = {
                c: v for c, v in zip(series.columns[1:], row[1:], strict=True) if v is not None
            }
            out[(series.tags["kind"], int(row[0]))] = fields
    return out


def test_busy_devices_per_hour_day_and_month(influx: InfluxV1, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    opening = OpeningHours(load(inventory))
    lines = [
        # 09: pc-01 busy (two categories together), pc-02 not; the CNC busy
        *_use("pc-01", "pc", 9, school=1500.0, its_student=1500.0),
        *_use("pc-02", "pc", 9, its_student=600.0),
        *_use("cnc-01", "cnc", 9, company=3600.0),
        # 10: both PCs busy: the lab's PCs are full
        *_use("pc-01", "pc", 10, school=2700.0),
        *_use("pc-02", "pc", 10, school=2800.0),
        # 11: in use, but not 45 minutes
        *_use("pc-01", "pc", 11, school=2000.0),
        # 19: both busy after closing: a busy hour, no open seconds
        *_use("pc-01", "pc", 19, staff=3600.0),
        *_use("pc-02", "pc", 19, staff=3600.0),
    ]
    influx.write_lines(lines)
    day, month = ROME.day_of(MONDAY), ROME.month_of(MONDAY)
    assert backfill(influx, influx, day, ROME.next_day(day), "its-b", opening) > 0

    hourly = _points(influx, Period.hourly)
    assert hourly == {
        ("pc", _hour(9)): {"busy": 1, "devices": 2},
        ("cnc", _hour(9)): {"busy": 1, "devices": 1},
        ("pc", _hour(10)): {"busy": 2, "devices": 2},
        ("pc", _hour(11)): {"busy": 0, "devices": 1},
        ("pc", _hour(19)): {"busy": 2, "devices": 2},
    }
    expected = {("pc", day): {"busy_1_open_s": 7200.0, "busy_2_open_s": 3600.0},
                ("cnc", day): {"busy_1_open_s": 3600.0}}  # fmt: skip
    assert _points(influx, Period.daily) == expected
    assert _points(influx, Period.monthly) == {(k, month): v for (k, _d), v in expected.items()}

    # pc-02's hour 10 was not busy after all (its point rewritten): the day is recomputed
    # and its level 2 goes to zero instead of keeping the old seconds.
    influx.write_lines(_use("pc-02", "pc", 10, school=1000.0))
    backfill(influx, influx, day, ROME.next_day(day), "its-b", opening)
    assert _points(influx, Period.daily)[("pc", day)] == {
        "busy_1_open_s": 7200.0,
        "busy_2_open_s": 0.0,
    }
    assert _points(influx, Period.monthly)[("pc", month)]["busy_2_open_s"] == 0.0
