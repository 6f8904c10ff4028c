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
