"""Every dashboard query, as Grafana would send it, on real InfluxDB holding a simulated lab.

The lab goes through the real path (agent publisher -> mosquitto -> collector -> InfluxDB), so
the panels are checked against the schema the collector really writes, and their numbers
against the API's on the same data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from labmeter.agent.publisher import Publisher
from labmeter.api.keys import Role
from labmeter.collector.service import Collector
from labmeter.config import CollectorConfig, Config, InfluxConfig, MqttConfig
from labmeter.contract import EXTERNAL_CATEGORIES, Event, Topic
from labmeter.influx import InfluxV1
from labmeter.localstack import Service
from labmeter.simulators import lab
from tests.api.client import make_api
from tests.dashboards.grafana import DASHBOARDS, interpolate, interval_s, load, targets
from tests.helpers import pinned_collector, utc_ms, wait_for

pytestmark = pytest.mark.e2e
SITE = f"dash-{int(time.time()) % 10**6}"
EVICTIONS = 3
# A pinned Wednesday morning (classes, bookings, jobs), never the hour the suite runs at.
END_MS = utc_ms("2025-11-26T12:00+00:00")


@dataclass
class Lab:
    config: Config
    influx: InfluxV1
    truth: dict[str, Any]
    # Status points are stamped with the real time the agents connected and said goodbye,
    # samples and events with the lab's pinned, simulated time: panels on status read here.
    status_window: tuple[int, int]
    api: TestClient  # the real API on the same database, with a viewer's key


@pytest.fixture(scope="module")
def simulated(
    broker: Service, influx_server: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    config = Config(
        mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{broker.port}"),
        influx=InfluxConfig(
            url=f"http://127.0.0.1:{influx_server.port}", database=SITE.replace("-", "_")
        ),
        collector=CollectorConfig(
            client_id=f"collector-{SITE}",
            site=SITE,
            dead_letter_path=str(tmp_path_factory.mktemp("dash") / "dead.jsonl"),
            session_expiry_s=60,
            batch_interval_s=0.2,
            rollup_grace_s=0,  # the lab is in the past: roll its closed hours up at once
            rollup_settle_s=0.2,
        ),
    )
    config = pinned_collector(config, END_MS)
    influx = InfluxV1(config.influx)
    influx.create_database()
    collector = Collector(config, influx, reader=influx)  # with its hourly rollups
    collector.start()
    assert collector.connected.wait(10)
    time.sleep(0.2)
    ran_from = int(time.time() * 1000) - 60_000
    try:
        truth = lab.run(config.mqtt, devices=8, hours=3, seed=9, speed=0, site=SITE, end_ms=END_MS)
        # One agent reports that its disk queue overflowed (the data quality dashboard shows it).
        first = next(iter(truth["devices"].values()))
        agent = Publisher(config.mqtt, Topic(SITE, first["lab"], first["device"], "event"))
        agent.connect()
        for i in range(EVICTIONS):
            agent.event(Event(truth["end_ms"] - 1000 * i, 10**6 + i, "queue_eviction"))
        agent.close()

        def written() -> bool:
            rows = influx.query("SELECT count(seq) FROM sample; SELECT count(seq) FROM event")
            return len(rows) == 2 and rows[0].values[0][1] == truth["samples_published"]

        wait_for(written, timeout=60)
        wait_for(lambda: influx.query("SELECT count(seq) FROM event WHERE type = 'queue_eviction'"))
        closed = f"time < {truth['end_ms'] // 3600_000 * 3600_000}ms"

        def rolled_up() -> bool:
            raw = influx.query(f"SELECT count(seq) FROM sample WHERE {closed}")
            rolled = influx.query(f"SELECT sum(samples) FROM rollup_device_hourly WHERE {closed}")
            return bool(rolled) and rolled[0].values[0][1] == raw[0].values[0][1]

        wait_for(rolled_up, timeout=60)
    finally:
        collector.stop()
    api = make_api(config, tmp_path_factory.mktemp("api"), None).client_as(Role.viewer)
    yield Lab(config, influx, truth, (ran_from, int(time.time() * 1000) + 60_000), api)
    influx.query(f'DROP DATABASE "{config.influx.database}"')
    influx.close()


def _rows(lab: Lab, query: str) -> list[list[Any]]:
    return [row for series in lab.influx.query(query) for row in series.values]


def _variable_values(lab: Lab, board: dict[str, Any], start: int, end: int) -> dict[str, list[str]]:
    """Resolve the variables in order, as Grafana does, each with 'All' of the one before."""
    values: dict[str, list[str]] = {}
    for var in board["templating"]["list"]:
        if var["type"] == "textbox":
            values[var["name"]] = [var["query"]]
            continue
        rows = _rows(lab, interpolate(var["query"], values, start, end))
        assert rows, f"{board['uid']}: variable {var['name']} has no values"
        values[var["name"]] = sorted(row[1] for row in rows)
    return values


def _panel_rows(lab: Lab, uid: str, title: str, tag: str) -> dict[str, float]:
    """A panel's first query over the lab's simulated span: value per ``tag``."""
    board = next(load(p) for p in DASHBOARDS if load(p)["uid"] == uid)
    panel = next(p for p in board["panels"] if p["title"] == title)
    start, end = lab.truth["start_ms"], lab.truth["end_ms"]
    values = _variable_values(lab, board, start, end)
    query = interpolate(panel["targets"][0]["query"], values, start, end, interval_s(panel))
    return {s.tags[tag]: s.values[0][1] for s in lab.influx.query(query)}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_variable_and_panel_query_returns_rows(simulated: Lab, path: Path) -> None:
    board = load(path)
    start, end = simulated.truth["start_ms"], simulated.truth["end_ms"]
    values = _variable_values(simulated, board, start, end)
    assert values["site"] == [SITE]
    checked = 0
    for target in targets(board):
        a, b = simulated.status_window if 'FROM "status"' in target.query else (start, end)
        query = interpolate(target.query, values, a, b, interval_s(target.panel))
        rows = _rows(simulated, query)
        assert rows, f"{target.name}: no rows for {query}"
        assert any(v is not None for row in rows for v in row[1:]), f"{target.name}: all null"
        checked += 1
    assert checked == sum(len(p["targets"]) for p in board["panels"])


def test_utilisation_panels_show_the_api_numbers(simulated: Lab) -> None:
    start, end = simulated.truth["start_ms"], simulated.truth["end_ms"]
    api = simulated.api
    window = {"start": start // 1000, "end": end // 1000}

    per_device = _panel_rows(
        simulated, "labmeter-utilisation", "Utilisation per device (% of range)", "device"
    )
    rows = api.get("/api/v1/utilisation", params=window).json()
    assert per_device.keys() == {r["device"] for r in rows}
    for row in rows:
        assert per_device[row["device"]] == pytest.approx(row["utilisation"] * 100, abs=1e-9)
        # And both equal the simulated lab's ground truth.
        truth = simulated.truth["devices"][f"{row['site']}/{row['lab']}/{row['device']}"]
        assert row["in_use_s"] == truth["in_use_s"]

    coverage = _panel_rows(
        simulated, "labmeter-utilisation", "Coverage per device (% of range)", "device"
    )
    for row in rows:
        assert coverage[row["device"]] == pytest.approx(row["coverage"] * 100, abs=1e-9)
    assert any(row["coverage"] < 1 for row in rows)  # the scenario has gaps: not a trivial 100%

    per_lab = _panel_rows(simulated, "labmeter-utilisation", "Utilisation per lab", "lab")
    labs = api.get("/api/v1/utilisation", params={**window, "group_by": "lab"}).json()
    assert per_lab.keys() == {r["lab"] for r in labs} and len(labs) > 1
    for row in labs:
        assert per_lab[row["lab"]] == pytest.approx(row["utilisation"] * 100, abs=1e-9)


def test_queue_evictions_panel_counts_the_evictions(simulated: Lab) -> None:
    board = next(load(p) for p in DASHBOARDS if load(p)["uid"] == "labmeter-data-quality")
    panel = next(p for p in board["panels"] if p["title"] == "Queue evictions")
    start, end = simulated.truth["start_ms"], simulated.truth["end_ms"]
    query = interpolate(
        panel["targets"][0]["query"], _variable_values(simulated, board, start, end), start, end
    )
    assert sum(row[1] for row in _rows(simulated, query)) == EVICTIONS


def test_openness_and_software_hours_equal_the_ground_truth(simulated: Lab) -> None:
    devices = simulated.truth["devices"].values()
    by_category: dict[str, float] = {}
    by_app: dict[str, float] = {}
    for dev in devices:
        for category, secs in dev["in_use_by_category_s"].items():
            by_category[category] = by_category.get(category, 0.0) + secs
        for app, secs in dev["apps_s"].items():
            by_app[app] = by_app.get(app, 0.0) + secs
    assert len(by_category) > 2 and len(by_app) > 1  # the scenario is not trivial

    shown = _panel_rows(simulated, "labmeter-openness", "In-use hours by category", "category")
    # Categories with samples but no in-use time (e.g. 'unknown' while idle) show 0 h.
    assert {c for c, h in shown.items() if h > 0} == {c for c, s in by_category.items() if s > 0}
    for category, hours in shown.items():
        assert hours == pytest.approx(by_category.get(category, 0) / 3600, abs=1e-9), category

    board = next(load(p) for p in DASHBOARDS if load(p)["uid"] == "labmeter-openness")
    panel = next(p for p in board["panels"] if p["title"] == "External share of in-use time")
    start, end = simulated.truth["start_ms"], simulated.truth["end_ms"]
    query = interpolate(
        panel["targets"][0]["query"], _variable_values(simulated, board, start, end), start, end
    )
    external = sum(s for c, s in by_category.items() if c in EXTERNAL_CATEGORIES)
    assert 0 < external < sum(by_category.values())
    share = _rows(simulated, query)[0][1]
    assert share == pytest.approx(external / sum(by_category.values()) * 100, abs=1e-9)

    shown = _panel_rows(simulated, "labmeter-software", "Hours per title", "app")
    assert {a for a, h in shown.items() if h > 0} == {a for a, s in by_app.items() if s > 0}
    for app, hours in shown.items():
        assert hours == pytest.approx(by_app.get(app, 0) / 3600, abs=1e-9), app


def test_rollup_trend_equals_the_raw_trend(simulated: Lab) -> None:
    """Also guards against InfluxDB 1.6 mangling a time-grouped subquery that has fill(0)."""
    board = next(load(p) for p in DASHBOARDS if load(p)["uid"] == "labmeter-utilisation")
    # The collector's closed hours; a rollup point stands at its hour's start, so a range that
    # began mid-hour would leave it out.
    start = simulated.truth["start_ms"] // 3600_000 * 3600_000
    end = simulated.truth["end_ms"] // 3600_000 * 3600_000 - 1
    values = _variable_values(simulated, board, start, end)

    def series(title: str) -> dict[str, list[list[Any]]]:
        panel = next(p for p in board["panels"] if p["title"] == title)
        # Both at one-hour buckets (Grafana picks larger ones for long ranges).
        query = interpolate(panel["targets"][0]["query"], values, start, end, 3600)
        return {s.tags["lab"]: s.values for s in simulated.influx.query(query)}

    raw = series("Utilisation trend per lab")
    rolled = series("Utilisation trend per lab, long ranges (hourly rollups)")
    assert raw.keys() == rolled.keys() and len(raw) > 1
    for lab_id, rows in raw.items():
        assert [r[0] for r in rows] == [r[0] for r in rolled[lab_id]]
        assert [r[1] for r in rows] == pytest.approx([r[1] for r in rolled[lab_id]], abs=1e-9)
        assert any(r[1] for r in rows)


def test_peak_seats_equal_a_count_from_the_raw_points(simulated: Lab) -> None:
    """Peak devices running a title in one minute, recounted here from every app_usage point."""
    points = simulated.influx.query(
        'SELECT "running_s" FROM "app_usage" WHERE "running_s" > 0 GROUP BY "app", "device"'
    )
    minutes: dict[str, dict[int, set[str]]] = {}
    for series in points:
        for t, _ in series.values:
            per_minute = minutes.setdefault(series.tags["app"], {})
            per_minute.setdefault(t // 60_000, set()).add(series.tags["device"])
    expected = {app: max(len(d) for d in m.values()) for app, m in minutes.items()}
    assert max(expected.values()) > 1  # some minute had a title open on several PCs

    shown = _panel_rows(
        simulated, "labmeter-software", "Peak concurrent seats / seats owned", "app"
    )
    # The panel shows the peak as % of the 'Seats owned' variable.
    board = next(load(p) for p in DASHBOARDS if load(p)["uid"] == "labmeter-software")
    owned = int(next(v for v in board["templating"]["list"] if v["name"] == "seats_owned")["query"])
    assert {app: round(pct * owned / 100) for app, pct in shown.items()} == expected


def test_live_panels_match_the_api_occupancy(simulated: Lab) -> None:
    start, end = simulated.truth["start_ms"], simulated.truth["end_ms"]
    board = next(load(p) for p in DASHBOARDS if load(p)["uid"] == "labmeter-live")
    values = _variable_values(simulated, board, start, end)
    panel = next(p for p in board["panels"] if p["title"] == "Devices by state (last sample)")
    query = interpolate(panel["targets"][0]["query"], values, start, end)
    shown = {s.tags["device"]: s.values[0][1] for s in simulated.influx.query(query)}
    occupancy = simulated.api.get("/api/v1/occupancy").json()
    assert shown == {row["device"]: row["last_state"] for row in occupancy}

    quality = next(load(p) for p in DASHBOARDS if load(p)["uid"] == "labmeter-data-quality")
    panel = next(p for p in quality["panels"] if p["title"] == "Agents offline now")
    query = interpolate(
        panel["targets"][0]["query"],
        _variable_values(simulated, quality, start, end),
        *simulated.status_window,
    )
    offline = sum(not row["online"] for row in occupancy)
    assert offline > 0
    assert _rows(simulated, query)[0][1] == offline
