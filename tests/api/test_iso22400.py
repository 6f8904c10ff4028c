"""A CNC's day read by its OPC UA source, through the collector's conversion and the real API:
labmeter's figures and their ISO 22400-2 names (OPC 40001-1 Annex C) agree, to the second."""

from __future__ import annotations

from pathlib import Path

import pytest

from labmeter.api.keys import Role
from labmeter.collector.convert import parse
from labmeter.config import Config
from labmeter.contract import Sample, Topic, encode
from labmeter.influx import InfluxV1
from labmeter.machinery import SHOWN_AS
from labmeter.schema import CROSSCHECK_CONFLICT
from tests.api.client import make_api
from tests.api.test_numbers_example import INVENTORY, at

# (from, to, state) on Monday 23 November 2026; opening hours 08:30-13:00, 14:00-18:30
DAY = [
    (at(8), at(9), "setup"),  # 08:30-09:00 within opening hours
    (at(9), at(11), "in_use"),
    (at(11), at(11, 30), "paused"),
    (at(11, 30), at(12), "alarm"),
    (at(12), at(14), "idle"),
    (at(14), at(14, 30), "setup"),
    (at(14, 30), at(17), "in_use"),
    (at(17), at(19), "off"),  # 18:30-19:00 after hours
]


@pytest.fixture
def cnc_api(config: Config, influx: InfluxV1, tmp_path: Path):  # type: ignore[no-untyped-def]
    topic = Topic("its-prime", "lab-cad", "cnc-01", "sample")
    lines: list[str] = []
    seq = 0
    for start, end, state in DAY:
        shown = SHOWN_AS[state]  # what its OPC UA server said, kept as the substate
        for begin in range(start, end, 60_000):
            seq += 1
            # 10:00-10:30 its OPC UA server said in use while the clamp said off (with_clamp).
            conflict = 60.0 if at(10) <= begin < at(10, 30) else 0.0
            sample = Sample(begin + 60_000, seq, 60, {state: 60.0}, kind="cnc", state=state,
                            substate=f"{shown.item.value}/{shown.mode.value}",
                            metrics={CROSSCHECK_CONFLICT: conflict})  # fmt: skip
            lines += parse(str(topic).encode(), encode(sample), at(23, 59))[1]
    influx.write_lines(lines)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY.replace("pc-01", "cnc-01").replace("kind: pc", "kind: cnc"))
    return make_api(config, tmp_path / "api", inventory)


def test_iso_availability_and_setup_beside_our_names(cnc_api) -> None:  # type: ignore[no-untyped-def]
    window = {"start": at(0) // 1000, "end": at(0, day=24) // 1000}
    [row] = cnc_api.get("/api/v1/utilisation", group_by="device", **window)
    assert row["setup_s"] == 1.5 * 3600  # 08:00-09:00 and 14:00-14:30
    assert row["in_use_open_s"] == 4.5 * 3600
    assert row["iso22400"] == {
        "planned_busy_time_s": 9 * 3600,  # PBT: the opening hours
        "actual_production_time_s": 4.5 * 3600,  # APT: Executing + Processing, open hours
        "actual_unit_setup_time_s": 1.5 * 3600,  # AUST: Executing + Setup
        "availability": row["utilisation"],  # APT / PBT
    }
    assert row["utilisation"] == 0.5
    report = cnc_api.get("/api/v1/report", format="json", **window)
    [asset] = report["equipment"]
    assert asset["iso22400"]["availability"] == 0.5 and asset["setup_s"] == 5400
    client = cnc_api.client_as(Role.evaluator)
    html = client.get("/api/v1/report", params={"format": "html", "lang": "en", **window}).text
    assert "ISO 22400-2 availability = APT ÷ PBT" in html and "Hours in setup" in html
    # The clamp's cross-check: half an hour of a job the machine's supply says did not run.
    assert report["conclusions"]["crosscheck"] == [
        {"site": "its-prime", "lab": "lab-cad", "device": "cnc-01", "conflict_s": 1800.0}
    ]
    assert "Protocol 'in use' while the current clamp says 'off'" in html
