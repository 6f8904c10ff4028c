"""The issue's end-to-end check: a simulated lab's day on real Mosquitto, collector and
InfluxDB is closed; the same samples published again with other values, and samples older
than the horizon, all land in dead letters with their reasons; the closed period's report is
unchanged in every figure and its package verifies.

The day is pinned (2026-03-10 in Europe/Rome) and the collectors' clock shifted to the day
after (``collector.clock_offset_s``): nothing depends on the hour the test runs at.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from labmeter.api.report.formats import Format, produce
from labmeter.api.report.texts import Lang
from labmeter.archive.manifest import Trust, generate_key
from labmeter.collector.service import Collector
from labmeter.config import ApiConfig, Config, EvidenceConfig
from labmeter.evidence.close import close_period
from labmeter.evidence.report import REPORT_JSON, build_report
from labmeter.evidence.verify import differences, verify
from labmeter.influx import InfluxV1
from labmeter.simulators import lab
from tests.helpers import pinned_collector, simulate_through_collector, wait_for

pytestmark = pytest.mark.e2e

ROME = ZoneInfo("Europe/Rome")
DAY = int(datetime(2026, 3, 10, tzinfo=ROME).timestamp() * 1000)
NEXT = int(datetime(2026, 3, 11, tzinfo=ROME).timestamp() * 1000)
NOW = NEXT + 6 * 3_600_000
DEVICES = 5


def _inventory(path: Path, site: str) -> Path:
    equipment = "\n".join(
        f"  - {{id: {d.topic.device}, site: {site}, lab: {d.topic.lab}, kind: {d.kind}}}"
        for d in lab.layout(DEVICES, site)
    )
    path.write_text(
        f"""version: 1
timezone: Europe/Rome
sites: [{{id: {site}}}]
labs:
  - {{id: lab-cad, site: {site}, hours: {{mon-sat: "08:00-20:00"}}}}
  - {{id: lab-fab, site: {site}, hours: {{mon-sat: "08:00-20:00"}}}}
equipment:
{equipment}
"""
    )
    return path


def test_a_closed_simulated_day_refuses_replays_and_old_data_and_its_report_holds(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    inventory = _inventory(tmp_path / "inventory.yaml", uid)
    key = tmp_path / "evidence.pem"
    generate_key(key)
    config = dataclasses.replace(
        config,
        api=ApiConfig(inventory=str(inventory)),
        evidence=EvidenceConfig(archive_dir=str(tmp_path / "archive"), signing_key=str(key)),
    )
    truth, _ = simulate_through_collector(
        config, influx, devices=DEVICES, hours=24, seed=5, end_ms=NEXT, rollups=inventory
    )
    assert truth["samples_published"] > 1000
    closed = close_period(config, DAY, NEXT, now_ms=NOW)
    archived = orjson.loads((closed.folder / REPORT_JSON).read_bytes())
    assert sum(e["in_use_s"] for e in archived["equipment"]) > 0

    # A collector that reads the closures (the first one has stopped), its clock at NOW.
    pinned = pinned_collector(config, NOW)
    collector = Collector(pinned, influx, influx)
    collector.start()
    assert collector.connected.wait(10)
    time.sleep(0.2)
    try:
        again = lab.run(
            config.mqtt, devices=DEVICES, hours=24, seed=6, speed=0, site=uid, end_ms=NEXT
        )
        old = lab.run(
            config.mqtt, devices=DEVICES, hours=1, seed=7, speed=0, site=uid,
            end_ms=NOW - 91 * 86_400_000,
        )  # fmt: skip
        expected = {
            "period_closed": again["samples_published"],
            "too_old": old["samples_published"],
        }
        wait_for(lambda: dict(collector.dead_letters.counts) == expected, timeout=60)
    finally:
        collector.stop()
    records = [orjson.loads(r) for r in collector.dead_letters.path.read_text().splitlines()]
    assert {r["reason"] for r in records} == {"period_closed", "too_old"}
    assert all(f"/{uid}/" in r["topic"] and "/sample" in r["topic"] for r in records)

    rebuilt = build_report(config.influx, inventory, DAY, NEXT, "", NOW)
    assert differences(archived, orjson.loads(produce(rebuilt, Format.json, Lang.it))) == []
    problems, signer = verify(closed.folder, Trust(key.with_suffix(".pub.pem")))
    assert problems == [] and signer.startswith("ed25519:")
