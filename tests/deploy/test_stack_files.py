"""The compose stack, the Dockerfile and the systemd units, checked without a Docker engine.

Where a tool exists (the compose plugin, systemd-analyze) it is run; otherwise the files are
parsed and their cross-references checked: services, health checks, volumes, mounts of files
that exist, and every variable defined in .env.example.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
import shutil
import ssl
import subprocess
import sys
import sysconfig
import threading
import zipfile
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from labmeter import config as config_mod
from labmeter.cli.main import app
from labmeter.collector.service import Collector
from labmeter.deploy import COLLECTOR_USER
from labmeter.influx import InfluxV1
from labmeter.localstack import free_port
from tests.api.client import make_api
from tests.deploy.conftest import SecureBroker
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
SERVICES = {"mosquitto", "influxdb", "collector", "api", "api-tls", "grafana"}
# Made on the server, never committed: broker passwords, certificates, the lab's inventory.
GENERATED = {"mosquitto/passwd", "mosquitto/certs", "mosquitto/certs/ca.crt", "inventory.yaml"}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


def test_docker_compose_config_accepts_the_file() -> None:
    if not _compose_plugin():
        pytest.skip("the docker compose plugin is not installed here (docker client only)")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--env-file", str(DEPLOY / ".env.example"),
         "config", "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_services_health_checks_and_named_volumes() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name
    declared = set(compose["volumes"])
    used = {
        v.split(":")[0]
        for s in services.values()
        for v in s.get("volumes", [])
        if not v.startswith((".", "/"))
    }
    assert used == declared
    assert {"mosquitto-data", "influxdb-data", "grafana-data"} <= declared
    assert services["collector"]["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert services["api"]["image"] == services["collector"]["image"]
    for name in ("collector", "api"):
        deps = services[name]["depends_on"]
        assert deps["influxdb"]["condition"] == "service_healthy"
    assert services["collector"]["depends_on"]["mosquitto"]["condition"] == "service_healthy"


def test_the_api_is_published_only_through_tls() -> None:
    """The finding: the stack published the API in plain HTTP on every interface. Now only
    the TLS proxy publishes it, and the API believes forwarded headers from that proxy's
    fixed address alone (so its session cookie is Secure)."""
    import ipaddress

    compose = _compose()
    services = compose["services"]
    api = services["api"]
    assert "ports" not in api  # on the stack's network only
    published = {
        str(port).split(":")[-2] if str(port).count(":") else str(port): name
        for name, service in services.items()
        for port in service.get("ports", [])
    }
    assert "8000" not in published and published["8443"] == "api-tls"
    proxy = services["api-tls"]
    address = proxy["networks"]["default"]["ipv4_address"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    assert api["environment"]["LABMETER_API_FORWARDED_ALLOW_IPS"] == address
    caddyfile = (DEPLOY / "api-tls" / "Caddyfile").read_text()
    site = caddyfile[caddyfile.index(":8443") :]
    assert "tls /certs/server.crt /certs/server.key" in site and "reverse_proxy api:8000" in site
    assert "./api-tls/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert "./mosquitto/certs:/certs:ro" in proxy["volumes"]
    assert api["healthcheck"]["test"][-1].endswith("/healthz', timeout=5)")


def test_each_role_has_its_own_influx_user_and_the_api_only_reads() -> None:
    services = _compose()["services"]
    users = {
        name: services[name]["environment"]["LABMETER_INFLUX_USERNAME"]
        for name in ("collector", "api")
    }
    assert users == {
        "collector": "${INFLUX_COLLECTOR_USERNAME:?set it in deploy/.env}",
        "api": "${INFLUX_API_USERNAME:?set it in deploy/.env}",
    }
    script = (DEPLOY / "influxdb" / "init-labmeter.sh").read_text()
    auths = re.findall(r"influx v1 auth create \\\n(.*?)--description", script, flags=re.S)
    by_user = {re.search(r'--username "\$(\w+)"', a).group(1): a for a in auths}  # type: ignore[union-attr]
    assert "--write-bucket" not in by_user["INFLUX_API_USERNAME"]
    assert "--read-bucket" in by_user["INFLUX_API_USERNAME"]
    assert "--write-bucket" in by_user["INFLUX_COLLECTOR_USERNAME"]
    assert "--write-bucket" in by_user["INFLUX_CLOSER_USERNAME"]


def test_the_windows_agent_config_is_for_system_and_administrators_only() -> None:
    """The finding: the per-user install let every local user read the site's pseudonym
    secret. Every ACL of the config grants SYSTEM and Administrators only, and the only task
    that reads it runs as SYSTEM."""
    readme = (DEPLOY / "windows" / "README.md").read_text()
    acls = [
        line for line in readme.splitlines() if line.startswith("icacls") and "agent.toml" in line
    ]
    assert acls
    for line in acls:
        granted = set(re.findall(r'"\*(S-[\d-]+):', line))
        assert granted == {"S-1-5-18", "S-1-5-32-544"}, line
    tasks = re.findall(r"^Register-ScheduledTask .*?-Settings", readme, flags=re.M | re.S)
    readers = [t for t in tasks if "agent -c" in t]
    assert readers and all('-UserId "SYSTEM"' in t for t in readers), readers
    assert 'pseudonym_secret = "replace-me"' in readme and "token_urlsafe" in readme


def test_bind_mounts_point_at_shipped_files_and_the_broker_gets_its_config() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                rel = (DEPLOY / source).resolve().relative_to(ROOT)
                shipped = (ROOT / rel).exists()
                assert shipped or str(rel.relative_to("deploy")) in GENERATED, f"{name}: {source}"
    broker = services["mosquitto"]["volumes"]
    assert "./mosquitto:/mosquitto/config:ro" in broker
    assert "./mosquitto/certs:/mosquitto/certs:ro" in broker
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    assert "include_dir /mosquitto/config/conf.d" in conf
    for path in re.findall(r"^\w+ (/mosquitto/\S+)", conf, flags=re.M):
        if path.startswith("/mosquitto/config/"):
            name = path.removeprefix("/mosquitto/config/")
            assert (DEPLOY / "mosquitto" / name).exists() or f"mosquitto/{name}" in GENERATED
    grafana = services["grafana"]["volumes"]
    provider = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/dashboards/labmeter.yaml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    assert f"../dashboards/grafana/dashboards:{path}:ro" in grafana
    assert "../dashboards/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana


def test_every_variable_is_in_env_example_and_every_labmeter_key_exists() -> None:
    text = COMPOSE.read_text()
    example = dict(
        line.split("=", 1)
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    needed = set(re.findall(r"\$\{(\w+)(?::\?[^}]*)?\}", text))
    assert needed, "compose refers to no variable"
    assert needed <= set(example), needed - set(example)
    # Grafana's provisioning reads these from the grafana service's environment.
    datasource = ROOT / "dashboards/grafana/provisioning/datasources/labmeter-influxdb.yaml"
    env = _compose()["services"]["grafana"]["environment"]
    assert set(re.findall(r"\$\{(\w+)\}", datasource.read_text())) <= set(env)
    # LABMETER_<SECTION>_<KEY> variables name real config keys.
    fields = {
        f"{section}.{f}"
        for section, cls in (
            ("mqtt", config_mod.MqttConfig),
            ("influx", config_mod.InfluxConfig),
            ("collector", config_mod.CollectorConfig),
            ("api", config_mod.ApiConfig),
            ("evidence", config_mod.EvidenceConfig),
        )
        for f in cls.__dataclass_fields__
    }
    used = set()
    for name in ("collector", "api"):
        for key in _compose()["services"][name]["environment"]:
            section, _, rest = key.removeprefix("LABMETER_").lower().partition("_")
            used.add(f"{section}.{rest}")
    assert used <= fields, used - fields
    # The InfluxDB init script's variables are given to the influxdb service.
    script = (DEPLOY / "influxdb" / "init-labmeter.sh").read_text()
    influx_env = set(_compose()["services"]["influxdb"]["environment"])
    assert set(re.findall(r"\$\{?(LABMETER_\w+)", script)) <= influx_env


def test_dockerfile_copies_every_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.search(r"include = \[(.*?)\]", pyproject)
    assert packages is not None
    for pattern in re.findall(r'"(\w+)\*"', packages.group(1)):
        assert f"COPY {pattern}/ {pattern}/" in text
    for source in re.findall(r"^COPY (\S+)", text, flags=re.M):
        assert (ROOT / source).exists(), source
    assert "COPY dashboards/ dashboards/" in text and "LABMETER_GRAFANA_DIR" in text


def test_broker_health_check_login_works_on_the_shipped_acl(secure_broker: SecureBroker) -> None:
    """The compose health check logs in as the collector and reads $SYS/broker/uptime."""
    test = " ".join(_compose()["services"]["mosquitto"]["healthcheck"]["test"][1:])
    assert f"-u {COLLECTOR_USER}" in test and "$$SYS/broker/uptime" in test
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(COLLECTOR_USER, secure_broker.passwords[COLLECTOR_USER])
    client.tls_set(ca_certs=str(secure_broker.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    got = threading.Event()
    client.on_connect = lambda c, *_: c.subscribe("$SYS/broker/uptime")
    client.on_message = lambda *_: got.set()
    client.connect("localhost", secure_broker.service.port)
    client.loop_start()
    try:
        assert got.wait(15), "no $SYS/broker/uptime for the collector user"
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("unit", ["labmeter-collector.service", "labmeter-api.service"])
def test_systemd_unit(unit: str, tmp_path: Path) -> None:
    text = (DEPLOY / "systemd" / unit).read_text()
    parsed = configparser.ConfigParser(strict=False, interpolation=None)
    parsed.optionxform = str  # type: ignore[assignment,method-assign]
    parsed.read_string(text)
    role = unit.removeprefix("labmeter-").removesuffix(".service")
    exec_start = parsed["Service"]["ExecStart"]
    assert exec_start.split()[1:3] == [role, "--config"]
    assert parsed["Service"]["User"] == "labmeter"
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    # The role exists in the CLI, and --config is one of its options.
    help_text = CliRunner().invoke(app, [role, "--help"])
    assert help_text.exit_code == 0 and "--config" in help_text.stdout
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: parsed only")
    # Verified with the ExecStart binary moved to this venv's labmeter (verify needs it to exist).
    local = tmp_path / unit
    local.write_text(
        text.replace(
            "/opt/labmeter/.venv/bin/labmeter", str(Path(sys.executable).parent / "labmeter")
        )
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(local)], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_collector_health_check_command_passes_on_a_running_collector(
    config: config_mod.Config, influx: InfluxV1
) -> None:
    """The compose health check, run as is (port moved) against a real collector."""
    argv = _compose()["services"]["collector"]["healthcheck"]["test"][1:]
    port = free_port()
    argv = [a.replace(":9108/", f":{port}/") for a in argv]
    assert argv[0] == "python"
    cfg = dataclasses.replace(
        config,
        collector=dataclasses.replace(config.collector, metrics_port=port),
    )
    collector = Collector(cfg, influx)
    collector.start()
    try:
        assert collector.connected.wait(10)
        health = [sys.executable, *argv[1:]]
        wait_for(lambda: subprocess.run(health, capture_output=True).returncode == 0, timeout=15)
    finally:
        collector.stop()
    # And it fails when nothing answers: a health check that cannot fail checks nothing.
    assert subprocess.run([sys.executable, *argv[1:]], capture_output=True).returncode != 0


def test_api_health_check_path_needs_no_key(config: config_mod.Config, tmp_path: Path) -> None:
    argv = _compose()["services"]["api"]["healthcheck"]["test"]
    url = re.search(r"http://127\.0\.0\.1:8000(/\S+?)'", " ".join(argv))
    assert url is not None
    client = make_api(config, tmp_path, None).client
    assert client.get(url.group(1)).status_code == 200
    assert client.get("/api/v1/occupancy").status_code == 401  # while the data needs one


def test_the_image_install_runs_from_a_wheel_of_what_the_dockerfile_copies(
    tmp_path: Path,
) -> None:
    """The Dockerfile's build, natively: copy what it copies, build the wheel it installs
    (not editable), and run the CLI from that wheel alone with the image's environment."""
    text = (ROOT / "Dockerfile").read_text()
    src = tmp_path / "opt-labmeter"
    src.mkdir()
    for line in re.findall(r"^COPY (.+)$", text, flags=re.M):
        for item in line.split()[:-1]:
            source = ROOT / item.rstrip("/")
            if source.is_dir():
                shutil.copytree(
                    source, src / source.name, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy(source, src / source.name)
    out = tmp_path / "out"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    site = tmp_path / "site"
    with zipfile.ZipFile(next(out.glob("labmeter-*.whl"))) as wheel:
        names = wheel.namelist()
        wheel.extractall(site)
    # One top-level package: nothing generic such as `api` lands in the user's site-packages.
    assert {n.split("/")[0] for n in names if n.endswith("__init__.py")} == {"labmeter"}
    assert {"labmeter/agent/__init__.py", "labmeter/api/__init__.py"} <= set(names)
    env_line = re.search(r"^ENV LABMETER_GRAFANA_DIR=(\S+)$", text, flags=re.M)
    assert env_line is not None
    grafana_dir = env_line.group(1).replace("/opt/labmeter", str(src))
    deps = sysconfig.get_paths()["purelib"]
    # -S: no site hooks, so this venv's editable labmeter cannot stand in for the wheel; and
    # not from the repository's folder, which -c would put first on sys.path.
    run = {"capture_output": True, "text": True, "cwd": tmp_path}
    script = (
        f"import sys; sys.path.append({deps!r}); import labmeter; "
        f"assert labmeter.__file__.startswith({str(site)!r}), labmeter.__file__; "
        "from labmeter.cli.main import app; app(sys.argv[1:])"
    )
    push = subprocess.run(
        [sys.executable, "-S", "-c", script, "grafana", "push", "--url", "http://127.0.0.1:9",
         "--token", "t", "--influx-url", "http://influxdb:8086", "--influx-token", "t"],
        env={"PYTHONPATH": str(site), "LABMETER_GRAFANA_DIR": grafana_dir}, **run,
    )  # fmt: skip
    # It read the provisioning and the dashboards, then found no Grafana at that address.
    assert push.returncode == 1 and "unreachable" in push.stderr, push.stderr[-2000:]
    for role in ("collector", "api"):
        shown = subprocess.run(
            [sys.executable, "-S", "-c", script, role, "--help"],
            env={"PYTHONPATH": str(site)}, **run,
        )  # fmt: skip
        assert shown.returncode == 0 and "--config" in shown.stdout, shown.stderr[-2000:]
