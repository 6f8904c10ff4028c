"""API keys stay out of URLs and logs: pages trade ``?key=`` for a cookie, logs are redacted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from labmeter.api.auth import COOKIE
from labmeter.api.keys import Role
from labmeter.api.redact import redact
from labmeter.localstack import free_port
from tests.api import lab_data as d
from tests.api.client import Api
from tests.browser import CHROMIUM, chromium
from tests.helpers import wait_for


def test_a_page_opened_with_a_key_sets_a_cookie_and_drops_the_key(lab_api: Api) -> None:
    client, token = lab_api.client, lab_api.tokens[Role.evaluator]
    start, end = d.T0 // 1000, (d.T0 + 24 * d.HOUR) // 1000
    moved = client.get(f"/report?start={start}&key={token}&end={end}", follow_redirects=False)
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/report?start={start}&end={end}"
    cookie = moved.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=lax", "Path=/"):
        assert attribute in cookie, cookie
    session = client.cookies.get(COOKIE)
    assert session and session.startswith("ls_") and session != token  # never the key
    page = client.get(moved.headers["location"])
    assert page.status_code == 200 and "4. Utilizzo per attrezzatura" in page.text
    assert token not in page.text and "key=" not in page.text  # download links use the cookie
    download = client.get(f"/api/v1/report?start={start}&end={end}&format=csv")
    assert download.status_code == 200
    assert client.get("/api/v1/occupancy").status_code == 200  # what the board fetches
    # The cookie serves reads only: whatever changes state needs the header.
    client.cookies.clear()
    admin = client.get(f"/board?key={lab_api.tokens[Role.admin]}", follow_redirects=False)
    assert admin.status_code == 303
    assert client.get("/api/v1/admin/apikeys").status_code == 200
    assert client.delete("/api/v1/admin/apikeys/1").status_code == 401
    client.cookies.clear()
    assert client.get("/board", follow_redirects=False).status_code == 401
    wrong = client.get("/board?key=lm_not-a-key", follow_redirects=False)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    viewer = client.get(f"/board?key={lab_api.tokens[Role.viewer]}", follow_redirects=False)
    assert (viewer.status_code, viewer.headers["location"]) == (303, "/board")


def test_redaction_of_log_lines() -> None:
    token = "lm_" + "Ab1-_" * 8
    line = f'127.0.0.1:5 - "GET /board?lang=it&key={token}&x=1 HTTP/1.1" 303'
    assert redact(line) == '127.0.0.1:5 - "GET /board?lang=it&key=[redacted]&x=1 HTTP/1.1" 303'
    assert (
        redact(f"GET /report?API_KEY=secret {token}")
        == "GET /report?API_KEY=[redacted] lm_[redacted]"
    )
    assert redact("monkey business, turnkey=ok") == "monkey business, turnkey=ok"


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_labmeter_api_logs_no_key_and_pages_work_from_the_cookie(
    lab_api: Api, tmp_path: Path
) -> None:
    cfg, port = lab_api.config, free_port()
    toml = tmp_path / "api.toml"
    toml.write_text(
        f'[influx]\nurl = "{cfg.influx.url}"\ndatabase = "{cfg.influx.database}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = {port}\nkeys_path = "{cfg.api.keys_path}"\n'
        f'inventory = "{cfg.api.inventory}"\n'
    )
    log = tmp_path / "api.log"
    labmeter = Path(sys.executable).parent / "labmeter"
    with log.open("wb") as out:
        api = subprocess.Popen(
            [str(labmeter), "api", "-c", str(toml)], stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/healthz"), timeout=30)
        viewer, evaluator = lab_api.tokens[Role.viewer], lab_api.tokens[Role.evaluator]
        board = chromium(tmp_path, "--dump-dom", f"{base}/board?key={viewer}")
        assert 'data-device="pc-01"' in board and "aggiornato alle" in board  # fetched by cookie
        start, end = d.T0 // 1000, (d.T0 + 24 * d.HOUR) // 1000
        report = chromium(
            tmp_path, "--dump-dom", f"{base}/report?key={evaluator}&start={start}&end={end}"
        )
        assert report.count("<svg") == 3 and "format=pdf" in report
        assert evaluator not in report
        # A script that still sends its key in the URL: answered, and redacted all the same.
        assert httpx.get(f"{base}/api/v1/occupancy?key={viewer}").status_code == 401
        time.sleep(0.5)
    finally:
        api.terminate()
        api.wait(15)
    text = log.read_text()
    assert "GET /board HTTP/1.1" in text and "GET /api/v1/occupancy HTTP/1.1" in text
    assert "/board?key=[redacted] HTTP/1.1" in text  # the first visit, before its redirect
    for token in lab_api.tokens.values():
        assert token not in text
    assert "key=lm_" not in text


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
