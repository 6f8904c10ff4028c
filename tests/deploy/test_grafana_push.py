"""`labmeter grafana push` (httpx, Grafana's HTTP API) against a recording HTTP server.

No Grafana server can run here, so a small HTTP server stands in for the endpoints the push
uses: it records every request the push really sends and keeps what was created by uid,
so the second push must find it and update it instead of creating it again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from labmeter.cli.main import app
from labmeter.grafana import datasource_payload
from tests.dashboards.grafana import DASHBOARDS, load

TOKEN = "glsa_test-token"


@dataclass
class Recorder:
    requests: list[tuple[str, str, str, Any]] = field(
        default_factory=list
    )  # method, path, auth, body
    datasources: dict[str, Any] = field(default_factory=dict)
    folders: dict[str, Any] = field(default_factory=dict)
    dashboards: dict[str, int] = field(default_factory=dict)  # uid -> version


def _handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            rec.requests.append(
                (self.command, self.path, self.headers.get("Authorization", ""), body)
            )
            return body

        def do_GET(self) -> None:
            self._record()
            kind, _, uid = self.path.rpartition("/")
            store = {"/api/datasources/uid": rec.datasources, "/api/folders": rec.folders}
            found = store.get(kind, {}).get(uid)
            self._reply(200, found) if found else self._reply(404, {"message": "not found"})

        def do_POST(self) -> None:
            body = self._record()
            if self.path == "/api/datasources":
                rec.datasources[body["uid"]] = body
                self._reply(200, {"id": 1, "message": "Datasource added"})
            elif self.path == "/api/folders":
                rec.folders[body["uid"]] = body
                self._reply(200, {"uid": body["uid"]})
            elif self.path == "/api/dashboards/db":
                uid = body["dashboard"]["uid"]
                rec.dashboards[uid] = rec.dashboards.get(uid, 0) + 1
                self._reply(200, {"status": "success", "uid": uid, "version": rec.dashboards[uid]})
            else:
                self._reply(404, {"message": "not found"})

        def do_PUT(self) -> None:
            body = self._record()
            uid = self.path.rpartition("/")[2]
            if self.path.startswith("/api/datasources/uid/") and uid in rec.datasources:
                rec.datasources[uid] = body
                self._reply(200, {"message": "Datasource updated"})
            else:
                self._reply(404, {"message": "not found"})

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", rec
    server.shutdown()
    server.server_close()


def _push(url: str, *extra: str) -> Any:
    return CliRunner().invoke(
        app,
        [
            "grafana", "push", "--url", url, "--token", TOKEN,
            "--influx-url", "http://influxdb:8086", "--influx-token", "influx-read-token", *extra,
        ],
    )  # fmt: skip


def test_push_creates_then_updates_by_uid(grafana: tuple[str, Recorder]) -> None:
    url, rec = grafana
    first = _push(url)
    assert first.exit_code == 0, first.output
    uids = {load(p)["uid"] for p in DASHBOARDS}
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth, _ in rec.requests)
    calls = [(m, p) for m, p, _, _ in rec.requests]
    assert calls[:5] == [
        ("GET", "/api/datasources/uid/labmeter-influxdb"),
        ("POST", "/api/datasources"),
        ("GET", "/api/folders/labmeter"),
        ("POST", "/api/folders"),
        ("POST", "/api/dashboards/db"),
    ]
    source = rec.datasources["labmeter-influxdb"]
    assert source["url"] == "http://influxdb:8086"
    assert source["jsonData"]["dbName"] == "labmeter"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Token influx-read-token"
    bodies = [b for m, p, _, b in rec.requests if p == "/api/dashboards/db"]
    assert {b["dashboard"]["uid"] for b in bodies} == uids
    assert all(b["overwrite"] is True and b["folderUid"] == "labmeter" for b in bodies)
    assert all(b["dashboard"]["id"] is None for b in bodies)

    rec.requests.clear()
    second = _push(url)
    assert second.exit_code == 0, second.output
    calls = [(m, p) for m, p, _, _ in rec.requests]
    assert ("POST", "/api/datasources") not in calls and ("POST", "/api/folders") not in calls
    assert calls[:3] == [
        ("GET", "/api/datasources/uid/labmeter-influxdb"),
        ("PUT", "/api/datasources/uid/labmeter-influxdb"),
        ("GET", "/api/folders/labmeter"),
    ]
    assert len(rec.datasources) == 1 and len(rec.folders) == 1
    assert rec.dashboards == dict.fromkeys(uids, 2)  # each one replaced, none duplicated


def test_influx_1x_payload_and_missing_values(grafana: tuple[str, Recorder]) -> None:
    payload = datasource_payload(
        1,
        {
            "LABMETER_INFLUX_URL": "http://db:8086",
            "LABMETER_INFLUX_DATABASE": "labmeter",
            "LABMETER_INFLUX_USERNAME": "grafana",
            "LABMETER_INFLUX_PASSWORD": "pw",
        },
    )
    assert payload["user"] == "grafana" and payload["secureJsonData"] == {"password": "pw"}
    assert "httpHeaderName1" not in payload["jsonData"]
    url, rec = grafana
    result = _push(url, "--influx-version", "1")  # no username/password given
    assert result.exit_code == 1
    assert "LABMETER_INFLUX_USERNAME" in result.stderr
    assert rec.requests == []  # nothing half-pushed


def test_a_refusing_grafana_is_a_clear_error(grafana: tuple[str, Recorder]) -> None:
    url, _ = grafana
    result = _push(url + "/nothing-here")
    assert result.exit_code == 1
    assert "Grafana at" in result.stderr
