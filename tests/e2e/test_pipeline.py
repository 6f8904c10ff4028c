"""A simulated lab through real Mosquitto, the collector and real InfluxDB, read back by the API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from labmeter.api.keys import Role
from labmeter.config import Config
from labmeter.influx import InfluxV1
from tests.api.client import make_api
from tests.helpers import simulate_through_collector, utc_ms

pytestmark = pytest.mark.e2e


def test_api_utilisation_equals_ground_truth_to_the_second(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    # A Tuesday morning: classes in the CAD lab, jobs in the fab lab.
    end = utc_ms("2025-11-25T12:00+00:00")
    truth, collector = simulate_through_collector(
        config, influx, devices=10, hours=4, seed=7, end_ms=end
    )
    assert (truth["start_ms"], truth["end_ms"]) == (end - 4 * 3600_000, end)
    assert truth["samples_published"] >= 10 * 4 * 60
    assert sum(collector.dead_letters.counts.values()) == 0

    # Every route needs an API key now; without an inventory the window is the denominator.
    client = make_api(config, tmp_path, None).client_as(Role.viewer)
    start_s, end_s = truth["start_ms"] // 1000, truth["end_ms"] // 1000
    rows = client.get("/api/v1/utilisation", params={"start": start_s, "end": end_s}).json()
    got = {f"{r['site']}/{r['lab']}/{r['device']}": r for r in rows}
    assert got.keys() == truth["devices"].keys()
    span = end_s - start_s
    for key, dev in truth["devices"].items():
        row = got[key]
        assert row["in_use_s"] == dev["in_use_s"], key
        assert row["observed_s"] == dev["observed_s"], key
        assert row["available_s"] == span
        assert row["coverage"] == pytest.approx(dev["observed_s"] / span, abs=1e-12)
        assert row["utilisation"] == pytest.approx(dev["in_use_s"] / span, abs=1e-12)
    # Some devices were unobserved for a while: coverage is honest, not 100 %.
    assert any(r["coverage"] < 1 for r in rows)

    # RFC 3339 times give the same answer, grouped by lab.
    labs = client.get(
        "/api/v1/utilisation",
        params={
            "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_s)),
            "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end_s)),
            "group_by": "lab",
        },
    ).json()
    for row in labs:
        members = [d for d in truth["devices"].values() if d["lab"] == row["lab"]]
        assert row["devices"] == len(members)
        assert row["in_use_s"] == sum(d["in_use_s"] for d in members)
        assert row["observed_s"] == sum(d["observed_s"] for d in members)

    occupancy = client.get("/api/v1/occupancy").json()
    assert {f"{r['site']}/{r['lab']}/{r['device']}" for r in occupancy} == truth["devices"].keys()
    for row in occupancy:
        dev = truth["devices"][f"{row['site']}/{row['lab']}/{row['device']}"]
        assert row["last_state"] == dev["final_state"]
        # The simulated agents said "offline" when they stopped.
        assert (row["state"], row["online"]) == ("offline", False)


def test_bad_time_window_is_a_clear_422(config: Config, influx: InfluxV1, tmp_path: Path) -> None:
    client = make_api(config, tmp_path, None).client_as(Role.viewer)
    response = client.get("/api/v1/utilisation", params={"start": "yesterday"})
    assert response.status_code == 422
    assert "RFC 3339" in response.text
    response = client.get("/api/v1/utilisation", params={"start": 2000, "end": 1000})
    assert response.status_code == 422
