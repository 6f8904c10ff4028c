"""Upload labmeter's datasource and dashboards into an existing Grafana, idempotent by uid.

For a Grafana that labmeter does not provision from files (a shared, central one). The
payloads come from the same files provisioning uses, so both paths give the same result: the
datasource YAML with its ``${VAR}`` placeholders filled in, and the dashboard JSON as is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from labmeter.errors import ConfigError, ServiceError

# The repository's folder (a source checkout or the container's copy of it).
GRAFANA_DIR = Path(__file__).resolve().parents[1] / "dashboards" / "grafana"
DATASOURCE_FILES = {
    2: Path("provisioning") / "datasources" / "labmeter-influxdb.yaml",
    1: Path("datasource-influxdb-1x.yaml"),
}
FOLDER_UID = "labmeter"
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def _fill(value: Any, env: Mapping[str, str], source: Path) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, env, source) for k, v in value.items()}
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            if match.group(1) not in env:
                raise ConfigError(match.group(1), f"needed by {source.name}")
            return env[match.group(1)]

        return _PLACEHOLDER.sub(one, value)
    return value


def datasource_payload(
    influx_version: int, env: Mapping[str, str], grafana_dir: Path = GRAFANA_DIR
) -> dict[str, Any]:
    """The provisioned datasource as an HTTP API payload, placeholders filled from ``env``."""
    source = grafana_dir / DATASOURCE_FILES[influx_version]
    provisioned = yaml.safe_load(source.read_text())["datasources"][0]
    payload: dict[str, Any] = _fill(provisioned, env, source)
    payload.pop("orgId", None)
    payload.pop("editable", None)  # a provisioning-only key
    return payload


def dashboard_payloads(grafana_dir: Path = GRAFANA_DIR) -> list[dict[str, Any]]:
    """One ``POST /api/dashboards/db`` body per dashboard: replace by uid, in labmeter's folder."""
    out = []
    for path in sorted((grafana_dir / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        board["id"] = None  # the uid identifies it; an id from another Grafana would not
        out.append(
            {
                "dashboard": board,
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "labmeter grafana push",
            }
        )
    return out


@dataclass
class PushReport:
    datasource: str  # "created" or "updated"
    dashboards: list[str]  # uids


def push(
    url: str,
    token: str,
    datasource: dict[str, Any],
    dashboards: list[dict[str, Any]],
    timeout_s: float = 10.0,
) -> PushReport:
    """Create or update the datasource (by uid), the folder and every dashboard (by uid).

    Plain httpx against Grafana's HTTP API rather than grafana-client: that package pulls in
    niquests, whose urllib3-future replaces urllib3 in the environment and breaks requests-based
    tools (schemathesis failed on it here). The five calls below are the whole contract.
    """
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def call(client: httpx.Client, method: str, path: str, body: Any = None) -> httpx.Response:
        response = client.request(method, path, json=body)
        if response.status_code >= 400 and not (method == "GET" and response.status_code == 404):
            raise ServiceError(
                f"Grafana at {url} refused {method} {path}: HTTP {response.status_code} "
                f"{response.text[:300]}"
            )
        return response

    try:
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s) as client:
            uid = datasource["uid"]
            if call(client, "GET", f"/api/datasources/uid/{uid}").status_code == 404:
                call(client, "POST", "/api/datasources", datasource)
                action = "created"
            else:
                call(client, "PUT", f"/api/datasources/uid/{uid}", datasource)
                action = "updated"
            if call(client, "GET", f"/api/folders/{FOLDER_UID}").status_code == 404:
                call(client, "POST", "/api/folders", {"uid": FOLDER_UID, "title": "labmeter"})
            uids = []
            for body in dashboards:
                call(client, "POST", "/api/dashboards/db", body)
                uids.append(body["dashboard"]["uid"])
    except httpx.HTTPError as exc:
        raise ServiceError(f"Grafana at {url} unreachable: {exc}") from exc
    return PushReport(action, uids)
