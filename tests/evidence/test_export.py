"""The raw data of a window restores exactly: values, field types, tags and nanosecond times."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from labmeter.archive.lineprotocol import Dumper, restore
from labmeter.config import Config
from labmeter.influx import InfluxV1
from labmeter.schema import Calendar

T = 1_772_406_000_000  # ms


@pytest.fixture
def copy(config: Config) -> Iterator[InfluxV1]:
    target = InfluxV1(dataclasses.replace(config.influx, database=config.influx.database + "_copy"))
    target.create_database()
    yield target
    target.query(f'DROP DATABASE "{target.config.database}"')
    target.close()


def _all(influx: InfluxV1, measurement: str) -> list[tuple[object, ...]]:
    rows = influx.query(f'SELECT * FROM "{measurement}" GROUP BY *', epoch="ns")
    return sorted((tuple(sorted(s.tags.items())), *row) for s in rows for row in s.values)


def test_a_window_restores_exactly(
    config: Config, influx: InfluxV1, copy: InfluxV1, tmp_path: Path
) -> None:
    ns = T * 1_000_000
    body = "\n".join(
        [
            f"sample,site=s1,lab=a\\ b,device=d\\,1 in_use_s=3600,samples=60i,x=0.1 {ns}",
            f"sample,site=s1,lab=a\\ b,device=d\\,1 in_use_s=1.5e-7,samples=-3i {ns + 1}",
            f'event,site=s1 note="say \\"hi\\", a\\\\b",ok=true,n=2i {ns + 5}',
            f"status,site=s1,device=d1 online=false {ns - 10_000_000_000}",  # before
            f"status,site=s1,device=d1 online=true {ns - 5_000_000_000}",  # last before
            f"status,site=s1,device=d1 online=true {ns + 10}",
            f"sample,site=s1 in_use_s=9.0 {ns + 3_600_000_000_000}",  # after the window
            f"rollup_device_monthly,site=s1 in_use_s=1.0 {ns}",  # its month is not inside
        ]
    )
    response = httpx.post(
        f"{config.influx.url}/write",
        params={"db": config.influx.database, "precision": "ns"},
        content=body,
    )
    assert response.status_code == 204, response.text
    dumper = Dumper(config.influx, Calendar("Europe/Rome"))
    try:
        exported = dumper.dump(tmp_path / "data", T, T + 3_600_000)
    finally:
        dumper.close()
    assert {e.measurement: e.points for e in exported} == {"event": 1, "sample": 2, "status": 2}
    restored = restore(copy.config, sorted(e.path for e in exported))
    assert restored == 5
    for measurement in ("sample", "event"):
        original = [r for r in _all(influx, measurement) if int(str(r[1])) < ns + 3_600_000_000_000]
        assert _all(copy, measurement) == original
    assert _all(copy, "status") == _all(influx, "status")[1:]
    fields = copy.query('SHOW FIELD KEYS FROM "sample"')
    assert sorted(map(tuple, fields[0].values)) == [
        ("in_use_s", "float"), ("samples", "integer"), ("x", "float")
    ]  # fmt: skip
