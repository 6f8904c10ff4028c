"""Every route but /healthz needs a key; roles keep viewers and evaluators where they belong."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from labmeter.api.keys import KeyStore, Role
from labmeter.cli.main import app
from tests.api.client import Api

EVALUATOR_ONLY = ["/api/v1/openness", "/api/v1/software", "/api/v1/sessions"]
VIEWER = ["/api/v1/occupancy", "/api/v1/occupancy/labs", "/api/v1/utilisation",
          "/api/v1/equipment"]  # fmt: skip


def test_health_is_open_and_everything_else_needs_a_key(lab_api: Api) -> None:
    c = lab_api.client
    assert c.get("/healthz").status_code == 200
    for path in [*VIEWER, *EVALUATOR_ONLY, "/api/v1/admin/apikeys"]:
        response = c.get(path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert c.get(path, headers={"X-API-Key": "lm_not-a-key"}).status_code == 401, path


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.viewer, VIEWER),
        (Role.evaluator, VIEWER + EVALUATOR_ONLY),
        (Role.admin, [*VIEWER, *EVALUATOR_ONLY, "/api/v1/admin/apikeys"]),
    ],
)
def test_roles(lab_api: Api, role: Role, allowed: list[str]) -> None:
    token = lab_api.tokens[role]
    for path in [*VIEWER, *EVALUATOR_ONLY, "/api/v1/admin/apikeys"]:
        by_header = lab_api.client.get(path, headers={"X-API-Key": token})
        by_bearer = lab_api.client.get(path, headers={"Authorization": f"Bearer {token}"})
        expected = 200 if path in allowed else 403
        assert (by_header.status_code, by_bearer.status_code) == (expected, expected), path


def test_revoked_key_is_refused_at_once(lab_api: Api) -> None:
    admin = {"X-API-Key": lab_api.tokens[Role.admin]}
    keys = lab_api.client.get("/api/v1/admin/apikeys", headers=admin).json()
    viewer = next(k for k in keys if k["role"] == "viewer")
    headers = {"X-API-Key": lab_api.tokens[Role.viewer]}
    assert lab_api.client.get("/api/v1/occupancy", headers=headers).status_code == 200
    assert (
        lab_api.client.delete(f"/api/v1/admin/apikeys/{viewer['id']}", headers=admin).status_code
        == 204
    )
    assert lab_api.client.get("/api/v1/occupancy", headers=headers).status_code == 401


def test_keys_are_stored_hashed_and_managed_from_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    env = {"LABMETER_API_KEYS_PATH": str(path)}
    runner = CliRunner()
    created = runner.invoke(
        app, ["apikey", "create", "--name", "valutatore", "--role", "evaluator"], env=env
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("lm_")
    assert token.encode() not in path.read_bytes()  # only the hash is on disk
    key = KeyStore(path).verify(token)
    assert key is not None and key.role is Role.evaluator
    listed = runner.invoke(app, ["apikey", "list"], env=env)
    assert "valutatore" in listed.stdout and token not in listed.stdout
    assert runner.invoke(app, ["apikey", "revoke", str(key.id)], env=env).exit_code == 0
    assert KeyStore(path).verify(token) is None
    assert runner.invoke(app, ["apikey", "revoke", str(key.id)], env=env).exit_code == 1
    bad = runner.invoke(app, ["apikey", "create", "--name", "x", "--role", "root"], env=env)
    assert bad.exit_code == 2
