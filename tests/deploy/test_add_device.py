"""`labmeter deploy add-device`: a password entry the broker accepts, a config the agent loads."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from typer.testing import CliRunner

from labmeter import config as config_mod
from labmeter.cli.main import app


def _verify(entry: str, password: str) -> bool:
    _, alg, iterations, salt, digest = entry.split("$")
    assert alg == "7"
    derived = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt), int(iterations)
    )
    return derived == base64.b64decode(digest)


def _add(tmp_path: Path, device: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        [
            "deploy", "add-device", "--site", "its-prime", "--lab", "lab-cad",
            "--device", device, "--password-file", str(tmp_path / "passwd"), *extra,
        ],
    )  # fmt: skip
    return result.exit_code, result.stdout


def test_prints_an_agent_config_that_loads_and_matches_the_password_file(tmp_path: Path) -> None:
    code, toml = _add(tmp_path, "pc-01", "--pseudonym-secret", "a-site-secret-of-32-characters!!")
    assert code == 0
    (tmp_path / "agent.toml").write_text(toml)
    cfg = config_mod.load(tmp_path / "agent.toml")
    cfg.agent.check()
    assert cfg.mqtt.username == "its-prime/lab-cad/pc-01"
    assert cfg.mqtt.tls and cfg.mqtt.ca_file == "/etc/labmeter/ca.crt"
    assert (cfg.agent.site, cfg.agent.lab, cfg.agent.device) == ("its-prime", "lab-cad", "pc-01")
    # What the shipped ACL lets the device do, in the file the technician installs.
    assert (
        "read the collector's confirmations on labmeter/v1/its-prime/lab-cad/pc-01/confirm/+"
        in toml
    )
    assert cfg.mqtt.password is not None and len(cfg.mqtt.password) >= 24
    user, entry = (tmp_path / "passwd").read_text().strip().split(":", 1)
    assert user == "its-prime/lab-cad/pc-01"
    assert _verify(entry, cfg.mqtt.password)
    assert not _verify(entry, cfg.mqtt.password + "x")


def test_a_second_device_is_added_and_a_reset_replaces_only_its_entry(tmp_path: Path) -> None:
    assert _add(tmp_path, "pc-01", "--password", "one")[0] == 0
    assert _add(tmp_path, "pc-02", "--password", "two")[0] == 0
    assert _add(tmp_path, "pc-01", "--password", "three")[0] == 0
    entries = dict(line.split(":", 1) for line in (tmp_path / "passwd").read_text().splitlines())
    assert sorted(entries) == ["its-prime/lab-cad/pc-01", "its-prime/lab-cad/pc-02"]
    assert _verify(entries["its-prime/lab-cad/pc-01"], "three")
    assert _verify(entries["its-prime/lab-cad/pc-02"], "two")
    assert (tmp_path / "passwd").stat().st_mode & 0o777 == 0o640


def test_a_device_name_that_is_not_a_topic_segment_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "deploy", "add-device", "--site", "its-prime", "--lab", "lab-cad",
            "--device", "PC 01/#", "--password-file", str(tmp_path / "passwd"),
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "[a-z0-9_-]" in result.stderr
    assert not (tmp_path / "passwd").exists()
