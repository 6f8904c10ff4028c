"""The worked example of docs/numbers.md, through the collector's conversion and the real API.

The day is written as the agent's samples (one a minute), converted to line protocol by the
collector's own code, into a real InfluxDB; the expected values are the ones the page shows.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from labmeter.collector.convert import parse
from labmeter.config import Config
from labmeter.contract import Sample, Topic, encode
from labmeter.influx import InfluxV1
from tests.api.client import make_api

ROME = ZoneInfo("Europe/Rome")
DOC = Path(__file__).parents[2] / "docs" / "numbers.md"
INVENTORY = """version: 1
timezone: Europe/Rome
sites:
  - {id: its-prime, name: "ITS Prime"}
labs:
  - id: lab-cad
    site: its-prime
    hours:
      mon-fri: "08:30-13:00, 14:00-18:30"
equipment:
  - {id: pc-01, site: its-prime, lab: lab-cad, kind: pc, fund: FESR, cup: "J19J21000120007",
     cost: 1850, purchased: 2025-02-10, collaudo: 2025-03-05}
"""


def at(hour: int, minute: int = 0, day: int = 23) -> int:
    """Epoch ms of a local time on Monday 23 November 2026."""
    return int(datetime(2026, 11, day, hour, minute, tzinfo=ROME).timestamp() * 1000)


TEACHER, PUPIL, STUDENT, EMPLOYEE = (f"p_00000000000000{x}" for x in ("a1", "b2", "c3", "d4"))
# (from, to, state, category, pseudonym): the table of the page; 15:00-16:00 has no samples.
DAY = [
    (at(8), at(8, 30), "in_use", "staff", TEACHER),
    (at(8, 30), at(9), "idle", "unknown", None),
    (at(9), at(12), "in_use", "school", PUPIL),
    (at(12), at(14), "idle", "unknown", None),
    (at(14), at(15), "in_use", "its_student", STUDENT),
    (at(16), at(17, 30), "in_use", "company", EMPLOYEE),
    (at(17, 30), at(18), "idle", "unknown", None),
    (at(18), at(19), "in_use", "its_student", STUDENT),
]


def day_lines() -> list[str]:
    topic = Topic("its-prime", "lab-cad", "pc-01", "sample")
    lines: list[str] = []
    seq = 0
    for start, end, state, category, user in DAY:
        for begin in range(start, end, 60_000):
            seq += 1
            sample = Sample(begin + 60_000, seq, 60, {state: 60.0}, category, user, "pc", state)
            lines += parse(str(topic).encode(), encode(sample), at(23, 59))[1]
    return lines


@pytest.fixture
def example_api(config: Config, influx: InfluxV1, tmp_path: Path):  # type: ignore[no-untyped-def]
    influx.write_lines(day_lines())
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    return make_api(config, tmp_path / "api", inventory)


def test_the_worked_example_holds(example_api) -> None:  # type: ignore[no-untyped-def]
    window = {"start": at(0) // 1000, "end": at(0, day=24) // 1000}
    [row] = example_api.get("/api/v1/utilisation", group_by="device", **window)
    assert row["available_s"] == 9 * 3600
    assert row["in_use_s"] == 7 * 3600
    assert row["in_use_open_s"] == 6 * 3600
    assert row["after_hours_s"] == 1 * 3600
    assert row["observed_s"] == 10 * 3600
    assert row["observed_open_s"] == 8 * 3600
    assert round(row["utilisation"] * 100, 1) == 66.7
    assert round(row["coverage"] * 100, 1) == 88.9

    openness = example_api.get("/api/v1/openness", **window)["total"]
    assert round(openness["quota_esterna"] * 100, 1) == 64.3
    hours = {c: v["in_use_s"] / 3600 for c, v in openness["categories"].items() if v["in_use_s"]}
    assert hours == {"school": 3, "its_student": 2, "company": 1.5, "staff": 0.5}

    sessions = example_api.get("/api/v1/sessions", **window)
    assert [(s["user"], s["duration_s"]) for s in sessions] == [
        (TEACHER, 1800),
        (PUPIL, 3 * 3600),
        (STUDENT, 3600),
        (EMPLOYEE, 5400),
        (STUDENT, 3600),
    ]

    report = example_api.get("/api/v1/report", format="json", **window)
    [asset] = report["equipment"]
    assert round(asset["cost_per_hour"], 4) == 0.1448  # 1,850 € / 5 years / 365 days / 7 h

    # The page shows the same values.
    page = DOC.read_text()
    for shown in ("**66.7 %**", "**88.9 %**", "**64.3 %**", "0.1448 €/h", "| 5 |"):
        assert shown in page
