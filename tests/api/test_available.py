"""Available time from the spans a scope computes once equals the inventory's own count."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from labmeter.api.plan import Filters, ReadPlan
from labmeter.api.scope import Every, Scope, periods
from labmeter.api.usage import UsageReader
from labmeter.config import InfluxConfig
from labmeter.influx import InfluxV1
from labmeter.inventory import load
from labmeter.schema import Calendar

EXAMPLE = Path(__file__).parents[2] / "deploy" / "inventory.example.yaml"


def test_every_window_matches_the_inventory() -> None:
    inventory = load(str(EXAMPLE))
    rome = ZoneInfo("Europe/Rome")
    start = int(datetime(2026, 1, 1, 7, 15, tzinfo=rome).timestamp() * 1000)
    end = int(datetime(2027, 1, 1, 7, 15, tzinfo=rome).timestamp() * 1000)
    influx = InfluxV1(InfluxConfig())  # never queried: available time is the inventory's
    plan = ReadPlan(start, end, Filters(), Calendar(inventory.timezone), end)
    scope = Scope(UsageReader(influx), inventory, plan)
    rng = random.Random(5)
    windows = [(start, end), *periods(scope, Every.month), *periods(scope, Every.week)]
    for _ in range(200):  # edges anywhere, inside a span or between two
        a, b = sorted(rng.randrange(start, end) for _ in range(2))
        windows.append((a, b))
    for (site, lab, device), _ in inventory.equipment.items():
        for a, b in windows:
            expected = inventory.available_ms(site, lab, a, b) / 1000
            assert scope.available_s((site, lab, device), a, b) == expected, (lab, a, b)
    assert scope.available_s(next(iter(inventory.equipment)), start, end)  # not all zero
    influx.close()
