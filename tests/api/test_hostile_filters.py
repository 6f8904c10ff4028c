"""Hostile filter values never reach InfluxDB as query text and never read another tag's data.

At the edge, every route that takes ``site``/``lab``/``device`` refuses anything that is not a
topic segment (422). Behind it, the reads are built by ``labmeter.influxql`` whatever the
value: the same values handed straight to the read path give empty figures, not an error.
"""

from __future__ import annotations

import pytest

from labmeter.api import figures, openness, session_list, software
from labmeter.api.figures import GroupBy
from labmeter.api.keys import Role
from labmeter.api.plan import Filters
from labmeter.api.report.build import build
from labmeter.api.scope import Every, open_scope
from labmeter.influx import InfluxV1
from labmeter.inventory import load
from labmeter.opening import OpeningHours
from tests.api import lab_data as d
from tests.api.client import Api

HOSTILE = [
    "it's",
    "back\\slash",
    "new\nline",
    '" OR 1=1',
    "' OR '1'='1",
    "its-prime' OR site =~ /.*/ OR site = 'x",
    "ünïcødé-" + "日本" * 500,
]


def _filtered_routes(api: Api) -> list[str]:
    spec = api.client.get("/openapi.json").json()
    return sorted(
        path
        for path, ops in spec["paths"].items()
        if "get" in ops
        and {p["name"] for p in ops["get"].get("parameters", [])} & {"site", "lab", "device"}
    )


def test_every_route_with_filters_refuses_hostile_values(lab_api: Api) -> None:
    routes = _filtered_routes(lab_api)
    assert {"/api/v1/utilisation", "/api/v1/occupancy", "/api/v1/report"} <= set(routes)
    client = lab_api.client_as(Role.admin)
    for route in routes:
        for name in ("site", "lab", "device"):
            for value in HOSTILE:
                response = client.get(route, params={name: value})
                assert response.status_code == 422, (route, name, value, response.text[:200])


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_straight_to_the_reads_give_nothing(lab_api: Api, value: str) -> None:
    """Past the route's check, every read of a report and of utilisation still only matches
    the value itself: nothing of its-prime's lab comes back."""
    influx = InfluxV1(lab_api.config.influx)
    opening = OpeningHours(load(lab_api.config.api.inventory))
    try:
        for filters in (Filters(value), Filters(d.SITE, lab=value), Filters(d.SITE, device=value)):
            scope = open_scope(influx, opening, d.T0, d.T0 + 24 * d.HOUR, filters, d.T0)
            rows = figures.utilisation(scope, GroupBy.device, None)
            assert all(r["in_use_s"] == 0 for r in rows), (filters, rows)
            for group in (GroupBy.lab, GroupBy.category):
                assert all(r["in_use_s"] == 0 for r in figures.utilisation(scope, group, Every.day))
            assert openness.openness_of(scope)["in_use_s"] == 0
            assert all(r["hours"] == 0 for r in software.licences(scope))
            assert session_list.sessions(scope) == []
            report = build(scope)
            assert report["users"]["in_use_s"] == 0
    finally:
        influx.close()
