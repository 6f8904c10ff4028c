"""Agent configuration is validated at start with errors naming the key; ``agent check``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from labmeter import config as config_mod
from labmeter.cli.main import app
from labmeter.errors import ConfigError

BASE = """
[agent]
site = "its"
lab = "cad"
device = "pc-01"
pseudonym_secret = "0123456789abcdef0123"
queue_path = "{queue}"
"""


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('[agent.apps.solidworks]\npatterns = "sldworks.exe"', "agent.apps.solidworks.patterns"),
        ('[agent.apps.solidworks]\npatterns = ["x"]\nseats = -2', "agent.apps.solidworks.seats"),
        ('[agent.apps.solidworks]\npatterns = ["x"]\nseat = 2', "agent.apps.solidworks.seat"),
        ('[agent.apps."Solid Works"]\npatterns = ["x"]', "agent.apps.Solid Works"),
        ("[agent.apps]\nmatlab = 3", "agent.apps.matlab"),
    ],
)
def test_bad_catalogue_entries_name_their_key(tmp_path: Path, extra: str, key: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(BASE.format(queue=tmp_path / "q.db") + extra)
    cfg = config_mod.load(path)
    with pytest.raises(ConfigError) as caught:
        cfg.agent.check()
    assert str(caught.value).startswith(key + ":")


def test_bounds_and_types_name_their_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(BASE.format(queue=tmp_path / "q.db") + "queue_max_rows = 0\n")
    with pytest.raises(ConfigError, match=r"^agent.queue_max_rows: must be > 0"):
        config_mod.load(path).agent.check()
    path.write_text(BASE.format(queue=tmp_path / "q.db") + 'scan_s = "often"\n')
    with pytest.raises(ConfigError, match=r"^agent.scan_s: must be a number"):
        config_mod.load(path)
    path.write_text(BASE.format(queue=tmp_path / "q.db") + "interval_s = 70\n")
    with pytest.raises(ConfigError, match=r"^agent.interval_s: must divide 1800"):
        config_mod.load(path).agent.check()
    path.write_text(BASE.format(queue=tmp_path / "q.db") + "quue_path = 'x'\n")
    with pytest.raises(ConfigError, match=r"^agent.quue_path: unknown key"):
        config_mod.load(path)
    path.write_text(BASE.format(queue=tmp_path / "q.db") + "resend_s = 0\n")
    with pytest.raises(ConfigError, match=r"^agent.resend_s: must be > 0"):
        config_mod.load(path).agent.check()
    path.write_text(BASE.format(queue=tmp_path / "q.db") + "send_window = 0\n")
    with pytest.raises(ConfigError, match=r"^agent.send_window: must be >= 1"):
        config_mod.load(path).agent.check()


def test_check_command_reports_what_it_sees(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        BASE.format(queue=tmp_path / "state" / "q.db")
        + '[agent.apps.python]\npatterns = ["python*"]\nseats = 1\n'
    )
    result = CliRunner().invoke(app, ["agent", "check", "-c", str(path)])
    assert result.exit_code == 0, result.output
    for expected in ("Interactive sessions", "state now:", "Serial ports", "not created yet"):
        assert expected in result.output
    # The test runs in python: the catalogue finds it.
    assert "catalogued apps running: python" in result.output
    # Once the queue exists, check says what its rows wait for.
    from labmeter.agent.runner import open_queue

    open_queue(config_mod.load(path)).close()
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["agent", "check", "-c", str(path)])
    assert "0 messages waiting, 0 bytes, each until the broker acknowledges it" in result.output


def test_check_command_fails_on_an_invalid_config(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(BASE.format(queue=tmp_path / "q.db").replace("0123456789abcdef0123", "short"))
    result = CliRunner().invoke(app, ["agent", "check", "-c", str(path)])
    assert result.exit_code == 2
    assert "agent.pseudonym_secret" in result.output


def test_the_shipped_sample_config_is_valid() -> None:
    sample = Path(__file__).parents[2] / "labmeter" / "agent" / "sources" / "pc" / "sample.toml"
    # Valid once its placeholder secret is replaced by a real one (refused as it ships).
    cfg = config_mod.load(sample, {"agent.pseudonym_secret": "a-site-secret-of-this-period"})
    cfg.agent.check()
    assert set(cfg.agent.apps) == {"solidworks", "matlab", "blender"}


def test_check_without_a_config_shows_what_it_sees_and_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labmeter.agent.platform import current

    monkeypatch.delenv("LABMETER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no config file here, and nothing written here
    result = CliRunner().invoke(app, ["agent", "check"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    for seen in ("Interactive sessions", "state now:", "own desktop input idle:", "Serial ports"):
        assert seen in out
    assert "of 3 in the catalogue: the example of sample.toml" in out
    missing = out[out.index("What the config must still say") :]
    for key in ("agent.site, agent.lab, agent.device", "agent.pseudonym_secret", "mqtt.url"):
        assert key in missing
    assert "labmeter agent check -c agent.toml" in missing
    # Logins are shown only as pseudonyms, as the agent would send them.
    sessions = out[out.index("Interactive sessions") : out.index("state now:")]
    for session in current().sessions():
        assert f" {session.login} " not in sessions
    assert list(tmp_path.iterdir()) == []


def test_check_without_a_config_lists_only_what_is_still_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABMETER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    env = {
        "COLUMNS": "200",
        "LABMETER_AGENT_SITE": "its-prime",
        "LABMETER_AGENT_LAB": "lab-cad",
        "LABMETER_AGENT_DEVICE": "pc-01",
        "LABMETER_AGENT_PSEUDONYM_SECRET": "0123456789abcdef0123",
    }
    result = CliRunner().invoke(app, ["agent", "check"], env=env)
    assert result.exit_code == 0, result.output
    missing = result.output[result.output.index("What the config must still say") :]
    assert "agent.site" not in missing
    assert "agent.pseudonym_secret" not in missing
    assert "mqtt.url" in missing


def test_a_retired_key_of_the_shipped_sample_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An agent upgraded with its old config (the sample had ``replay_s``) keeps measuring."""
    path = tmp_path / "agent.toml"
    path.write_text(BASE.format(queue=tmp_path / "q.db") + "replay_s = 300\n")
    config_mod.load(path).agent.check()
    assert "agent.replay_s is ignored: rows stay queued until the collector confirms" in caplog.text
