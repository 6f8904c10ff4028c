"""Each source folder's sample.toml loads and passes its source's own option checks."""

import dataclasses
from pathlib import Path

import pytest

import labmeter.agent.sources
from labmeter.agent.sources import SOURCES
from labmeter.config import load
from labmeter.localstack import free_port

SAMPLES = sorted(Path(labmeter.agent.sources.__file__).parent.glob("*/sample.toml"))
# The PC source observes this machine's real sessions; only machine sources start blind.
SERIAL_SAMPLES = [p for p in SAMPLES if p.parent.name != "pc"]


def test_every_machine_source_has_a_sample() -> None:
    assert {p.parent.name for p in SAMPLES} >= {"grbl", "marlin", "clamp", "modbus", "badge"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.parent.name)
def test_sample_config_loads(path: Path) -> None:
    config = load(path).agent
    assert config.source in SOURCES


@pytest.mark.parametrize("path", SERIAL_SAMPLES, ids=lambda p: p.parent.name)
def test_sample_config_is_accepted(path: Path, tmp_path: Path) -> None:
    config = load(path).agent
    options = dict(config.options)
    # Networked printers are asked on a closed loopback port: a test never dials the network.
    closed = free_port()
    if "url" in options:
        options["url"] = f"http://127.0.0.1:{closed}"
    if "host" in options:
        options["host"], options["port"] = "127.0.0.1", closed
    if "badge" in options:  # the table file named in the sample exists only on a lab machine
        table = tmp_path / "badges.csv"
        table.write_text("0415AB12CD,staff\n")
        options["badge"] = {**options["badge"], "badge_table": str(table)}
    # The ports do not exist here: the sources start and keep retrying in the background.
    source = SOURCES[config.source](dataclasses.replace(config, options=options))
    try:
        assert source.poll().state is None  # nothing observed: unknown, never idle
    finally:
        source.close()


def test_a_simulated_device_runs_standalone_for_manual_trials(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from labmeter.agent.sources.grbl.source import GrblSource
    from labmeter.config import AgentConfig
    from tests.helpers import wait_for

    path = tmp_path / "ttyGRBL"
    proc = subprocess.Popen(
        [sys.executable, "-m", "labmeter.simulators.devices", "grbl", str(path), "--speed", "10"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("grbl on")
        source = GrblSource(AgentConfig(options={"port": str(path), "reconnect_s": 0.1}))
        try:
            wait_for(lambda: source.poll().state == "idle", timeout=5)
            wait_for(lambda: source.poll().state == "setup", timeout=5)  # Home at 2 s
        finally:
            source.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    assert not path.exists()  # unplugged on the way out
