"""Secrets in the config never print: not in a repr, an error, a log line or an f-string."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from labmeter.agent.identity import pseudonym
from labmeter.config import AgentConfig, InfluxConfig, MqttConfig, Secret, load
from labmeter.errors import ConfigError

PASSWORD = "hunter2-the-broker-password"
TOKEN = "influx-token-of-the-collector"
SECRET = "pseudonym-secret-of-the-site"


def test_secrets_never_print(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    toml = tmp_path / "server.toml"
    toml.write_text(
        f'[mqtt]\nusername = "collector"\npassword = "{PASSWORD}"\n'
        f'[influx]\nflavour = "v2"\norg = "o"\nbucket = "b"\ntoken = "{TOKEN}"\n'
        f'[agent]\npseudonym_secret = "{SECRET}"\n'
    )
    cfg = load(toml)
    shown = [repr(cfg), str(cfg), f"{cfg.mqtt.password}", "%s" % cfg.influx.token]  # noqa: UP031
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("config %s, token %s", cfg, cfg.influx.token)
    shown.append(caplog.text)
    for text in shown:
        assert PASSWORD not in text and TOKEN not in text and SECRET not in text, text
    assert "'********'" in repr(cfg.mqtt)
    # The one call that needs a value gets it.
    assert cfg.mqtt.password is not None and cfg.mqtt.password.reveal() == PASSWORD
    assert pseudonym(cfg.agent.pseudonym_secret, "mrossi") == pseudonym(SECRET, "mrossi")


def test_secrets_given_in_code_are_hidden_too() -> None:
    configs = [
        MqttConfig(password=PASSWORD),
        InfluxConfig(token=TOKEN),
        AgentConfig(pseudonym_secret=SECRET),  # type: ignore[arg-type]
    ]
    for config in configs:
        assert PASSWORD not in repr(config) and TOKEN not in repr(config)
        assert SECRET not in repr(config)
    assert isinstance(configs[2].pseudonym_secret, Secret)
    assert repr(Secret("")) == "''"


def test_a_secret_of_the_wrong_type_is_refused_without_showing_it(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("[mqtt]\npassword = 123456789\n")
    with pytest.raises(ConfigError) as info:
        load(toml)
    assert "123456789" not in str(info.value) and info.value.key == "mqtt.password"


ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDERS = [
    "change-me", "change-me-influx-admin-password", "rotate-me-every-reporting-period",
    "replace-me", "REPLACE_ME", "...", "<password>", "xxxxxxxx", "your-secret-here", "secret",
]  # fmt: skip


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_a_placeholder_secret_is_refused_at_start_naming_the_key(
    value: str, tmp_path: Path
) -> None:
    """The finding: ``change-me-*`` and ``rotate-me-every-reporting-period`` were accepted."""
    from typer.testing import CliRunner

    from labmeter.cli.main import app

    toml = tmp_path / "agent.toml"
    toml.write_text(
        '[mqtt]\nurl = "mqtt://127.0.0.1:1883"\npassword = "a-real-broker-password-x9"\n'
        f'[agent]\nsite = "s"\nlab = "l"\ndevice = "d"\npseudonym_secret = "{value}"\n'
        f'queue_path = "{tmp_path / "queue.db"}"\n'
    )
    result = CliRunner().invoke(app, ["agent", "check", "-c", str(toml)])
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "agent.pseudonym_secret" in out and "placeholder" in out and "token_urlsafe" in out
    assert f'"{value}"' not in out and f"'{value}'" not in out  # the key, never the value


@pytest.mark.parametrize(
    "example",
    ["labmeter/agent/sources/pc/sample.toml", "labmeter/agent/sources/badge/sample.toml"],
)
def test_the_shipped_examples_do_not_start_as_they_are(example: str) -> None:
    from typer.testing import CliRunner

    from labmeter.cli.main import app

    result = CliRunner().invoke(app, ["collector", "-c", str(ROOT / example)])
    assert result.exit_code == 2, result.output
    assert "placeholder" in result.output
    text = (ROOT / example).read_text()
    assert "token_urlsafe" in text  # and they say how to make a real one


def test_the_env_example_placeholders_are_refused_by_the_roles(tmp_path: Path) -> None:
    """docker compose hands .env's values to the roles as LABMETER_* variables."""
    from typer.testing import CliRunner

    from labmeter.cli.main import app

    env = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy" / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert "openssl rand" in (ROOT / "deploy" / ".env.example").read_text()
    role = {
        "LABMETER_INFLUX_USERNAME": env["INFLUX_API_USERNAME"],
        "LABMETER_INFLUX_PASSWORD": env["INFLUX_API_PASSWORD"],
    }
    result = CliRunner().invoke(app, ["period", "list"], env=role)
    assert result.exit_code == 2 and "influx.password" in result.output, result.output


def test_add_device_refuses_a_placeholder_site_secret(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from labmeter.cli.main import app

    result = CliRunner().invoke(
        app,
        ["deploy", "add-device", "--site", "s", "--lab", "l", "--device", "d",
         "--password-file", str(tmp_path / "passwd"),
         "--pseudonym-secret", "rotate-me-every-reporting-period"],
    )  # fmt: skip
    assert result.exit_code != 0 and "agent.pseudonym_secret" in result.output
    assert not (tmp_path / "passwd").exists()


def test_a_source_credential_left_as_the_example_is_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from labmeter.cli.main import app

    sample = ROOT / "labmeter" / "agent" / "sources" / "prusalink" / "sample.toml"
    result = CliRunner().invoke(app, ["agent", "check", "-c", str(sample)])
    assert result.exit_code == 2 and "agent.options" in result.output, result.output
    assert "placeholder" in result.output
