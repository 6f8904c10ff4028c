"""Least privilege in InfluxDB: ``labmeter influx init`` makes a user per role on an influxd
that enforces authentication; the API's user reads and cannot write (a closure least of all),
the collector's writes but administers nothing, the admin closes periods."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from labmeter.cli.main import app
from labmeter.config import Config, EvidenceConfig, InfluxConfig, Secret
from labmeter.errors import InfluxError, QueryError, WriteError
from labmeter.evidence.close import closing_influx
from labmeter.influx import InfluxV1
from labmeter.localstack import influxd, wait_influx_ready
from labmeter.periods import Closure, closures_query, parse_closures
from tests.api import lab_data
from tests.api.client import make_api

ADMIN_PASSWORD = "an-admin-password-for-this-test"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An influxd with ``auth-enabled``, and its first user, an admin."""
    service = influxd(tmp_path_factory.mktemp("influxd-auth"), auth=True)
    service.start()
    url = f"http://127.0.0.1:{service.port}"
    try:
        wait_influx_ready(url)
        first = f"CREATE USER \"admin\" WITH PASSWORD '{ADMIN_PASSWORD}' WITH ALL PRIVILEGES"
        assert httpx.post(f"{url}/query", data={"q": first}).status_code == 200
        yield url
    finally:
        service.stop()


def _admin(url: str, database: str) -> InfluxConfig:
    return InfluxConfig(url=url, database=database, username="admin", password=ADMIN_PASSWORD)


def _init(url: str, database: str, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    toml = tmp_path / "admin.toml"
    toml.write_text(
        f'[influx]\nurl = "{url}"\ndatabase = "{database}"\nusername = "admin"\n'
        f'password = "{ADMIN_PASSWORD}"\n'
    )
    result = CliRunner().invoke(app, ["influx", "init", "-c", str(toml), *args])
    return result.exit_code, result.stdout, " ".join(result.output.split())


def _role(stdout: str, role: str, url: str, database: str) -> InfluxConfig:
    block = re.search(rf"# {role}\n(\[influx\]\n.*?\n.*?\n)", stdout)
    assert block, stdout
    creds = tomllib.loads(block.group(1))["influx"]
    return InfluxConfig(url=url, database=database, username=creds["username"],
                        password=creds["password"])  # fmt: skip


def test_the_apis_influx_user_cannot_write_and_the_admin_closes(
    secured: str, tmp_path: Path
) -> None:
    code, stdout, out = _init(
        secured, "evidence", tmp_path, "--collector-user", "lm-collector", "--api-user", "lm-api"
    )
    assert code == 0, out
    collector = _role(stdout, "collector", secured, "evidence")
    api = _role(stdout, "api", secured, "evidence")
    assert ADMIN_PASSWORD not in stdout and api.password != collector.password

    closure = Closure(1_767_222_000_000, 1_767_222_000_000, 1_767_308_400_000, state="closed")
    writer = InfluxV1(collector)
    samples = [line for line in lab_data.raw_lines() if line.startswith("sample,")]
    writer.write_lines(samples[:50])  # the collector writes
    reader = InfluxV1(api)
    try:
        assert reader.query("SELECT count(in_use_s) FROM sample")[0].values[0][1] == 50
        # The finding: whoever held the API's credentials could rewrite a closure.
        with pytest.raises(WriteError) as refused:
            reader.write_lines([closure.to_line()])
        assert refused.value.status == 403 and not refused.value.retryable
        with pytest.raises(WriteError):
            reader.write_lines(samples[50:60])
        # The collector writes but administers nothing.
        with pytest.raises(QueryError):
            writer.query('DROP DATABASE "evidence"')
        with pytest.raises(QueryError):
            writer.query("CREATE USER \"x\" WITH PASSWORD 'y' WITH ALL PRIVILEGES")
    finally:
        reader.close()
        writer.close()
    # The API's admin route closing with the API's own user: refused, saying which to use.
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from labmeter.errors import EvidenceError
    from labmeter.evidence.close import close_period

    day = int(datetime(2026, 3, 2, tzinfo=ZoneInfo("Europe/Rome")).timestamp() * 1000)
    as_api = Config(influx=api, evidence=EvidenceConfig(archive_dir=str(tmp_path / "archive")))
    with pytest.raises(EvidenceError, match="closing user"):
        close_period(as_api, day, day + 86_400_000, now_ms=day + 3 * 86_400_000)
    # Closing uses the admin's credentials, named apart from the API's own.
    config = Config(
        influx=api,
        evidence=EvidenceConfig(influx_username="admin", influx_password=Secret(ADMIN_PASSWORD)),
    )
    closer = InfluxV1(closing_influx(config))
    try:
        closer.write_lines([closure.to_line()])
        assert parse_closures(closer.query(closures_query())) == [closure]
    finally:
        closer.close()
    assert ADMIN_PASSWORD not in repr(config)


def test_init_again_resets_each_roles_privilege_and_never_makes_an_admin_a_role(
    secured: str, tmp_path: Path
) -> None:
    code, stdout, out = _init(secured, "again", tmp_path, "--api-user", "lm-api-2")
    assert code == 0, out
    api = _role(stdout, "api", secured, "again")
    admin = InfluxV1(_admin(secured, "again"))
    try:
        admin.query('GRANT ALL ON "again" TO "lm-api-2"')  # someone widened it
        code, stdout, out = _init(secured, "again", tmp_path, "--api-user", "lm-api-2")
        assert code == 0 and "exists (password unchanged)" in out and "# api" not in stdout
        with pytest.raises(InfluxError):
            InfluxV1(api).write_lines(lab_data.raw_lines()[:1])
        code, _stdout, out = _init(secured, "again", tmp_path, "--api-user", "admin")
        assert code == 1 and "is an InfluxDB admin" in out
    finally:
        admin.close()


def test_the_api_serves_reads_with_its_read_only_user(secured: str, tmp_path: Path) -> None:
    code, stdout, out = _init(secured, "served", tmp_path, "--api-user", "lm-api-3")
    assert code == 0, out
    admin = InfluxV1(_admin(secured, "served"))
    try:
        admin.write_lines(lab_data.raw_lines() + lab_data.status_lines())
    finally:
        admin.close()
    config = Config(influx=_role(stdout, "api", secured, "served"))
    served = make_api(config, tmp_path / "api", lab_data.inventory_file(tmp_path))
    start, end = lab_data.T0 // 1000, (lab_data.T0 + 24 * lab_data.HOUR) // 1000
    rows = served.get("/api/v1/utilisation", start=start, end=end)
    assert rows and any(r["in_use_s"] > 0 for r in rows)
