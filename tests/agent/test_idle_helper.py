"""The session helper's file hand-over, and the PC source using it for the right session."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

from labmeter.agent.idle_helper import read_idle, run_helper, write_idle
from labmeter.agent.platform import Session
from labmeter.agent.sources.pc.source import PcSource
from labmeter.config import AgentConfig

T0 = 1_764_147_600_000


def test_idle_is_aged_by_the_time_since_it_was_written(tmp_path: Path) -> None:
    write_idle(tmp_path, "3", 12.5, T0)
    assert read_idle(tmp_path, "3", T0 + 2000, max_age_ms=5000) == 14.5
    assert read_idle(tmp_path, "3", T0 + 6000, max_age_ms=5000) is None  # helper went silent
    assert read_idle(tmp_path, "4", T0, max_age_ms=5000) is None
    assert read_idle(tmp_path, "", T0, max_age_ms=5000) is None
    (tmp_path / "5.json").write_text("{garbage")
    assert read_idle(tmp_path, "5", T0, max_age_ms=5000) is None
    (tmp_path / "6.json").write_text('{"wall_ms": "x"}')
    assert read_idle(tmp_path, "6", T0, max_age_ms=5000) is None


class InSession(SimpleNamespace):
    """The platform as seen from inside desktop session 7."""

    def own_session_id(self) -> str:
        return "7"

    def input_idle_s(self) -> float:
        return 4.0


def test_helper_writes_its_session_and_cleans_up(tmp_path: Path) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=run_helper, args=(tmp_path / "idle", 0.05, stop, InSession()))
    thread.start()
    deadline = time.monotonic() + 5
    while not (tmp_path / "idle" / "7.json").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    now = time.time_ns() // 1_000_000
    idle = read_idle(tmp_path / "idle", "7", now, max_age_ms=2000)
    assert idle is not None and 4.0 <= idle < 6.0
    stop.set()
    thread.join(5)
    assert not (tmp_path / "idle" / "7.json").exists()


class Service(SimpleNamespace):
    """The platform as seen by a machine-wide agent: sessions, but no input of its own."""

    def sessions(self) -> list[Session]:
        return [
            Session("mrossi", idle_s=None, id="2", display=True),
            Session("lbianchi", idle_s=None, id="3", display=True, active=False),
        ]

    def input_idle_s(self) -> None:
        return None

    def own_session_id(self) -> None:
        return None

    def groups(self, login: str, domain: str = "") -> list[str]:
        return []

    def own_idle_signal(self) -> str:
        return "x11"


def test_pc_source_takes_each_sessions_idle_from_its_helper(tmp_path: Path) -> None:
    now = T0 / 1000
    cfg = AgentConfig(
        site="s",
        lab="l",
        device="d",
        pseudonym_secret="a-test-secret-of-enough-length",
        idle_dir=str(tmp_path),
    )
    source = PcSource(cfg, Service(), clock=lambda: now)  # type: ignore[arg-type]
    assert source.poll().state is None  # no helper yet: the idle time is unknown
    write_idle(tmp_path, "2", 3.0, T0 - 1000)
    write_idle(tmp_path, "3", 0.0, T0)  # a switched-away session does not make the PC used
    assert [s.idle_s for s in source.sessions()] == [4.0, 0.0]
    reading = source.poll()
    assert (reading.state, reading.since_s) == ("in_use", 4.0)
