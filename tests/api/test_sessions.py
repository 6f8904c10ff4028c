"""Sessions, not keys, in cookies: a page opened with ``?key=`` gets a random session id kept
on the server, which expires unused and ends with its key; the cookie is ``Secure`` behind a
TLS proxy the config trusts, and only then; ``/docs`` can require a key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from labmeter.api.auth import COOKIE
from labmeter.api.keys import KeyStore, Role
from labmeter.localstack import free_port
from labmeter.server import create_app
from tests.api.client import Api
from tests.helpers import wait_for


def test_the_cookie_holds_a_session_id_and_it_ends_with_its_key(lab_api: Api) -> None:
    """The finding: the cookie held the raw, long-lived key, with no expiry."""
    client, viewer = lab_api.client, lab_api.tokens[Role.viewer]
    moved = client.get(f"/board?key={viewer}", follow_redirects=False)
    assert moved.status_code == 303
    session = client.cookies.get(COOKIE)
    assert session and session.startswith("ls_") and viewer not in moved.headers["set-cookie"]
    assert client.get("/api/v1/occupancy").status_code == 200  # the board's reads, by cookie
    keys = KeyStore(lab_api.config.api.keys_path)
    assert session.encode() not in keys.path.read_bytes()  # kept hashed, like keys
    # A second page opened with the same key is another session.
    other = TestClient(create_app(lab_api.config))
    other.get(f"/board?key={viewer}", follow_redirects=False)
    assert other.cookies.get(COOKIE) not in (None, session)
    # The key revoked: every session opened with it ends at once.
    admin = {"X-API-Key": lab_api.tokens[Role.admin]}
    listed = client.get("/api/v1/admin/apikeys", headers=admin).json()
    key_id = next(k["id"] for k in listed if k["role"] == "viewer")
    assert client.delete(f"/api/v1/admin/apikeys/{key_id}", headers=admin).status_code == 204
    refused = client.get("/api/v1/occupancy")
    assert refused.status_code == 401 and "session" in refused.json()["detail"]
    assert other.get("/api/v1/occupancy").status_code == 401
    # A forged cookie holding a key (the old way) is no session.
    client.cookies.set(COOKIE, lab_api.tokens[Role.evaluator])
    assert client.get("/api/v1/occupancy").status_code == 401


def test_a_session_expires_after_it_goes_unused(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    keys = KeyStore(tmp_path / "keys.sqlite", idle_s=3600, clock=lambda: now[0])
    key, _token = keys.create("lab screen", Role.viewer)
    session = keys.open_session(key)
    now[0] += 3000
    assert keys.session(session) == key  # used: its hour starts again
    now[0] += 3000
    assert keys.session(session) == key
    now[0] += 3601
    assert keys.session(session) is None  # unused for more than an hour
    now[0] += 1
    assert keys.session(session) is None  # and gone for good
    assert keys.session("ls_made-up") is None and keys.session("lm_a-key") is None


@pytest.fixture
def served(lab_api: Api, tmp_path: Path) -> Iterator[str]:
    """``labmeter api`` as deployed, trusting a proxy at 127.0.0.2 only."""
    cfg, port = lab_api.config, free_port()
    toml = tmp_path / "api.toml"
    toml.write_text(
        f'[influx]\nurl = "{cfg.influx.url}"\ndatabase = "{cfg.influx.database}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = {port}\nkeys_path = "{cfg.api.keys_path}"\n'
        f'inventory = "{cfg.api.inventory}"\nforwarded_allow_ips = "127.0.0.2"\n'
    )
    labmeter = Path(sys.executable).parent / "labmeter"
    api = subprocess.Popen(
        [str(labmeter), "api", "-c", str(toml)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"FORWARDED_ALLOW_IPS": "*", "PATH": "/usr/bin:/bin"},  # ignored: the config says
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/healthz"), timeout=30)
        yield base
    finally:
        api.terminate()
        api.wait(15)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _set_cookie(base: str, token: str, source: str, proto: str | None) -> str:
    """The Set-Cookie of a board opened with ``token`` from ``source`` (a proxy's address)."""
    transport = httpx.HTTPTransport(local_address=source)
    headers = {"X-Forwarded-Proto": proto, "X-Forwarded-For": "203.0.113.9"} if proto else {}
    with httpx.Client(transport=transport) as client:
        moved = client.get(f"{base}/board?key={token}", headers=headers)
    assert moved.status_code == 303, moved.text
    return moved.headers["set-cookie"]


def test_a_cookie_set_behind_a_trusted_tls_proxy_is_secure(lab_api: Api, served: str) -> None:
    """The finding: uvicorn was not told which proxies to trust, so behind a TLS proxy the
    cookie was never ``Secure``. Loopback's 127.0.0.2 stands for the proxy's address."""
    token = lab_api.tokens[Role.viewer]
    behind = _set_cookie(served, token, "127.0.0.2", "https")
    assert "Secure" in behind and "HttpOnly" in behind, behind
    # Plain HTTP through the proxy, or a forged header from anyone else: not Secure.
    assert "Secure" not in _set_cookie(served, token, "127.0.0.2", "http")
    assert "Secure" not in _set_cookie(served, token, "127.0.0.3", "https")
    assert "Secure" not in _set_cookie(served, token, "127.0.0.1", "https")


def test_docs_behind_a_key_when_not_public(lab_api: Api) -> None:
    cfg = dataclasses.replace(
        lab_api.config, api=dataclasses.replace(lab_api.config.api, public_docs=False)
    )
    client = TestClient(create_app(cfg))
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert client.get(path, follow_redirects=False).status_code in (401, 404), path
    viewer = lab_api.tokens[Role.viewer]
    spec = client.get("/openapi.json", headers={"X-API-Key": viewer})
    assert spec.status_code == 200 and "/api/v1/occupancy" in spec.json()["paths"]
    moved = client.get(f"/docs?key={viewer}", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == "/docs"
    page = client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert client.get("/openapi.json").status_code == 200  # what the page fetches, by cookie
    public = TestClient(create_app(lab_api.config))
    assert public.get("/openapi.json").status_code == 200  # the default: public
