"""A TestClient on the real app with a key per role: what API tests and e2e tests share."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from labmeter.api.keys import KeyStore, Role
from labmeter.config import Config
from labmeter.server import create_app


@dataclasses.dataclass
class Api:
    client: TestClient
    tokens: dict[Role, str]
    config: Config

    def get(self, path: str, role: Role = Role.evaluator, **params: object) -> Any:
        response = self.client.get(path, params=params, headers={"X-API-Key": self.tokens[role]})
        assert response.status_code == 200, response.text
        return response.json()

    def client_as(self, role: Role) -> TestClient:
        """The client with this role's key in every request's headers."""
        self.client.headers["X-API-Key"] = self.tokens[role]
        return self.client


def make_api(config: Config, tmp_path: Path, inventory: Path | None) -> Api:
    tmp_path.mkdir(parents=True, exist_ok=True)
    keys_path = tmp_path / "keys.sqlite"
    config = dataclasses.replace(
        config,
        api=dataclasses.replace(
            config.api, keys_path=str(keys_path), inventory=str(inventory) if inventory else ""
        ),
    )
    store = KeyStore(keys_path)
    tokens = {role: store.create(f"test-{role.value}", role)[1] for role in Role}
    return Api(TestClient(create_app(config)), tokens, config)
