"""``labmeter agent check -c machine.toml`` connects to the machine and says what it sees."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from labmeter.cli.main import app
from labmeter.simulators.devices.opcua_machine import PROGRAM_TAG, OpcUaMachine
from labmeter.simulators.devices.ur_dashboard import URDashboard

CONFIG = """
[agent]
site = "its"
lab = "fab"
device = "mill-1"
kind = "cnc"
source = "{source}"
pseudonym_secret = "0123456789abcdef0123"
queue_path = "{queue}"
[agent.options]
{options}
"""


def check(tmp_path: Path, source: str, options: str) -> str:
    path = tmp_path / "machine.toml"
    path.write_text(CONFIG.format(source=source, queue=tmp_path / "q.db", options=options))
    result = CliRunner().invoke(app, ["agent", "check", "-c", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def test_an_opcua_machine_shows_its_state_substate_and_program(tmp_path: Path) -> None:
    machine = OpcUaMachine(users={"tech": "pa55-w0rd"}).start()
    try:
        machine.set_state("in_use", program="O1234 BRACKET")
        program = machine.tag(PROGRAM_TAG)
        options = (
            f'endpoint = "{machine.endpoint}"\nusername = "tech"\npassword = "pa55-w0rd"\n'
            f"program_node = '{program}'"
        )
        out = check(tmp_path, "opcua", options)
    finally:
        machine.stop()
    assert "in_use" in out and "Executing/Processing" in out and "O1234 BRACKET" in out
    assert "mqtt.url" in out  # what the config still lacks
    assert "agent.apps" not in out  # a PC's catalogue is nothing a machine needs
    assert "pa55-w0rd" not in out


def test_a_machine_that_does_not_answer_is_unobserved_with_the_reason(tmp_path: Path) -> None:
    robot = URDashboard().start()
    port = robot.port
    robot.stop()  # nobody listens there now
    out = check(tmp_path, "ur", f'host = "127.0.0.1"\nport = {port}\nreconnect_s = 0.2')
    assert "unobserved" in out and "Connection refused" in out.replace("\n", " ")
