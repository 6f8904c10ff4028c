"""Checks that need neither Grafana nor a database: files parse and refer to each other rightly."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.dashboards.grafana import (
    BUILTIN,
    DASHBOARDS,
    DATASOURCE_UID,
    GRAFANA,
    load,
    targets,
    used_variables,
)

PROVISIONING = sorted(GRAFANA.glob("**/*.yaml"))
EXPECTED = {
    "labmeter-live",
    "labmeter-utilisation",
    "labmeter-software",
    "labmeter-openness",
    "labmeter-data-quality",
    "labmeter-collector",
}


def _datasources() -> list[dict[str, Any]]:
    out = []
    for path in PROVISIONING:
        out += yaml.safe_load(path.read_text()).get("datasources", [])
    return out


def test_provisioning_parses_and_both_datasource_variants_share_the_uid() -> None:
    assert len(PROVISIONING) == 3
    sources = _datasources()
    assert [s["uid"] for s in sources] == [DATASOURCE_UID, DATASOURCE_UID]
    for source in sources:
        assert source["type"] == "influxdb"
        assert source["jsonData"]["version"] == "InfluxQL"
        assert source["url"] == "${LABMETER_INFLUX_URL}"
    v2, v1 = (
        next(s for s in sources if "httpHeaderName1" in s["jsonData"]),
        next(s for s in sources if "user" in s),
    )
    assert v2["jsonData"]["httpHeaderName1"] == "Authorization"
    assert v2["secureJsonData"]["httpHeaderValue1"] == "Token ${LABMETER_INFLUX_TOKEN}"
    assert v1["secureJsonData"]["password"] == "${LABMETER_INFLUX_PASSWORD}"
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/labmeter.yaml").read_text())
    assert provider["providers"][0]["type"] == "file"


def test_dashboard_uids_are_unique_and_all_there() -> None:
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))
    assert set(uids) == EXPECTED


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_is_self_contained_and_laid_out(path: Any) -> None:
    text = path.read_text()
    assert "__inputs" not in text and "${DS_" not in text
    board = load(path)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["h"] > 0 and pos["x"] + pos["w"] <= 24
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            assert var["datasource"]["uid"] == DATASOURCE_UID


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_queries_filter_on_time_and_use_only_defined_variables(path: Any) -> None:
    board = load(path)
    variables = [v["name"] for v in board["templating"]["list"]]
    for target in targets(board):
        assert "$timeFilter" in target.query, target.name
        unknown = used_variables(target.query) - BUILTIN - set(variables)
        assert not unknown, f"{target.name} uses undefined {unknown}"
    # Variables are chained: each one's query uses only variables defined before it.
    for i, var in enumerate(board["templating"]["list"]):
        if var["type"] == "query":
            assert used_variables(var["query"]) <= set(variables[:i]), var["name"]
    chain = {v["name"]: used_variables(v.get("query", "")) for v in board["templating"]["list"]}
    assert chain["site"] == set() and chain["lab"] == {"site"}
    assert chain.get("device", {"site", "lab"}) == {"site", "lab"}
