"""A simulated region in a real InfluxDB, written the way the collector writes it: the agents'
messages through the collector's own conversion (``collector.convert.parse``), every hour with
samples rolled up by its ``rollup_lines``, the days and months (usage, sessions, busy devices)
by its ``backfill``, with the region's inventory as the collector's. The API serves it with
the same inventory and the region's bookings. Built once for every test of the package: the
hourly rollups of a region's 19 weeks are most of the suite's wait. Time is pinned: the
simulated weeks lie in the past and the collector's clock is the simulation's end."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labmeter.collector.convert import parse
from labmeter.collector.daily import backfill
from labmeter.collector.rollups import rollup_lines
from labmeter.config import BookingsConfig, Config, InfluxConfig
from labmeter.influx import InfluxV1
from labmeter.inventory import load
from labmeter.localstack import Service
from labmeter.opening import OpeningHours
from labmeter.schema import DAY_MS, hour_of
from labmeter.simulators.region import Region, Truth, inventory_yaml, small_region
from tests.api.client import Api, make_api


@dataclasses.dataclass
class Simulated:
    region: Region
    truth: Truth
    api: Api
    influx: InfluxV1
    inventory: Path
    workdir: Path


@pytest.fixture(scope="session")
def simulated(
    influx_server: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Simulated]:
    region = small_region()
    truth = region.truth()
    work = tmp_path_factory.mktemp("region")
    inventory = work / "region.yaml"
    inventory.write_text(inventory_yaml(region), encoding="utf-8")
    (work / "bookings.csv").write_text(region.bookings_csv(truth), encoding="utf-8")
    (work / "bookings.yaml").write_text("version: 1\ncalendars:\n  - {file: bookings.csv}\n")
    config = Config(
        influx=InfluxConfig(url=f"http://127.0.0.1:{influx_server.port}", database="region_sim"),
        bookings=BookingsConfig(sources=str(work / "bookings.yaml")),
    )
    influx = InfluxV1(config.influx)
    influx.create_database()
    received = region.end_ms + 3 * DAY_MS  # the collector's clock, for the future check
    lines = [
        text
        for topic, payload in region.messages()
        for text in parse(topic.encode(), payload, received)[1]
    ]
    for i in range(0, len(lines), 20_000):
        influx.write_lines(lines[i : i + 20_000])
    hours = sorted({hour_of(int(t.rsplit(" ", 1)[1])) for t in lines if t.startswith("sample,")})

    def roll(hour: int) -> None:
        influx.write_lines(rollup_lines(influx, hour, "+"))

    with ThreadPoolExecutor(2) as pool:  # InfluxDB answers each query on one core
        list(pool.map(roll, hours))
    opening = OpeningHours(load(inventory))
    assert backfill(influx, influx, region.start_ms, region.end_ms, "+", opening) > 0
    api = make_api(config, work / "api", inventory)
    yield Simulated(region, truth, api, influx, inventory, work)
    influx.query('DROP DATABASE "region_sim"')
    influx.close()
