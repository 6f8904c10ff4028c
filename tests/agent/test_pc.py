"""The PC source's logic, driven with injected clocks and session lists (pure functions)."""

from __future__ import annotations

from types import SimpleNamespace

from labmeter.agent.meter import Meter
from labmeter.agent.platform import Session
from labmeter.agent.sources.pc.apps import App, Proc, ProcessScan
from labmeter.agent.sources.pc.source import PcSource, Verdict, classify, with_own_idle
from labmeter.config import AgentConfig
from labmeter.contract import encode

T0 = 1_764_147_600_000
SECRET = "a-test-secret-of-enough-length"


def session(idle: float | None, **kw: object) -> Session:
    return Session(login=str(kw.pop("login", "mrossi")), idle_s=idle, **kw)  # type: ignore[arg-type]


def test_classify_states() -> None:
    assert classify([session(5)], 180, False) == Verdict("in_use", session(5), 5)
    assert classify([session(200)], 180, False) == Verdict("idle", session(200), 200)
    # A locked session is not in use, however recent its input.
    locked = session(1, locked=True)
    assert classify([locked], 180, False) == Verdict("idle", locked, None)
    # The most recently active of several sessions decides.
    a, b = session(500, login="a"), session(3, login="b", remote=True)
    assert classify([a, b], 180, False) == Verdict("in_use", b, 3)
    # Idle time the OS cannot tell is unknown, not idle.
    assert classify([session(None)], 180, False).state is None
    assert classify([], 180, False) == Verdict("idle", None, None)
    # A catalogued app busy while the user is idle or away keeps the PC in use.
    assert classify([session(900)], 180, True).state == "in_use"
    assert classify([locked], 180, True) == Verdict("in_use", locked, None)
    assert classify([session(2, active=False)], 180, False).state == "idle"
    # Another session idle for long does not make a session nobody can see into idle.
    blind = session(None, login="b", display=True)
    assert classify([session(900), blind], 180, False) == Verdict(None, blind, None)
    assert classify([session(5), blind], 180, False).state == "in_use"  # someone works


def test_own_display_idle_replaces_the_desktop_hint() -> None:
    found = [session(0.0, id="3", display=True), session(40, login="bob", id="7", remote=True)]
    assert [s.idle_s for s in with_own_idle(found, 12.5, "3", "x")] == [12.5, 40]
    assert [s.idle_s for s in with_own_idle(found, 12.5, None, "mrossi")] == [12.5, 40]
    assert with_own_idle(found, None, "3", "mrossi") == found
    added = with_own_idle([], 4.0, None, "eve")
    assert [(s.login, s.idle_s) for s in added] == [("eve", 4.0)]


class FakePlatform(SimpleNamespace):
    """The platform interface with a scripted session list: the OS is the only thing faked."""

    def __init__(self) -> None:
        super().__init__(found=[])

    def sessions(self) -> list[Session]:
        return list(self.found)

    def input_idle_s(self) -> None:
        return None

    def own_session_id(self) -> None:
        return None

    def groups(self, login: str, domain: str = "") -> list[str]:
        return []

    def own_idle_signal(self) -> str:
        return "x11"


def pc(
    platform: FakePlatform, now: list[float], procs: list[Proc] | None = None, **kw: object
) -> PcSource:
    cfg = AgentConfig(
        site="s", lab="l", device="d", pseudonym_secret=SECRET, idle_threshold_s=30, **kw
    )  # type: ignore[arg-type]
    return PcSource(
        cfg,
        platform,  # type: ignore[arg-type]
        clock=lambda: now[0],
        list_processes=lambda apps: list(procs or []),
    )


def run(
    source: PcSource,
    platform: FakePlatform,
    now: list[float],
    script: list[Session | None],
    end: int,
) -> list[dict[str, float]]:
    """Poll once a second; ``script[t]`` is the session seen at second t (None: nobody)."""
    meter = Meter(60, T0, lookback_s=source.lookback_s)
    samples = []
    for t in range(end):
        now[0] = (T0 + t * 1000) / 1000
        found = script[t] if t < len(script) else script[-1]
        platform.found = [] if found is None else [found]
        samples += meter.observe(T0 + t * 1000, source.poll())
    samples += meter.flush(T0 + end * 1000)
    for s in samples:
        assert b"mrossi" not in encode(s)  # only the pseudonym leaves the agent
    return [dict(s.state_s) for s in samples]


def test_in_use_ends_at_the_last_input_not_when_idleness_is_noticed() -> None:
    platform, now = FakePlatform(), [0.0]
    source = pc(platform, now)
    # Input until second 100, then nothing: T = 30 s is crossed at 130 s.
    script = [session(0.0 if t < 100 else float(t - 100)) for t in range(180)]
    states = run(source, platform, now, script, 180)
    assert states == [{"in_use": 60.0}, {"in_use": 40.0, "idle": 20.0}, {"idle": 60.0}]


def test_pause_shorter_than_threshold_stays_in_use_and_returning_input_is_back_dated() -> None:
    platform, now = FakePlatform(), [0.0]
    source = pc(platform, now)
    # Input to 10 s, a 20 s pause (< T), input to 50 s, away 70 s (> T), input again at 120 s.
    inputs = [*range(10), *range(30, 50), *range(120, 180)]
    script = [session(float(t - max(i for i in inputs if i <= t))) for t in range(180)]
    states = run(source, platform, now, script, 180)
    # In use from 0 to the last input at 49 s (the pause inside it included), idle until 120 s.
    assert states == [{"in_use": 49.0, "idle": 11.0}, {"idle": 60.0}, {"in_use": 60.0}]


def test_locking_ends_use_at_the_lock_and_login_emits_session_events() -> None:
    platform, now = FakePlatform(), [0.0]
    source = pc(platform, now)
    script: list[Session | None] = [None] * 10
    script += [session(0.0) for _ in range(30)]
    script += [session(0.0, locked=True) for _ in range(20)]
    assert run(source, platform, now, script, 60) == [
        {"idle": 10.0},
        {"in_use": 30.0, "idle": 20.0},
    ]
    events = source.drain_events()
    assert [e.type for e in events] == ["session_start"]
    assert events[0].user is not None and events[0].user.startswith("p_")
    platform.found = []
    source.poll()
    assert [e.type for e in source.drain_events()] == ["session_end"]


def test_busy_catalogued_app_counts_while_the_user_is_idle() -> None:
    scan = ProcessScan([App("blender", ("blender*",))], busy_cpu_pct=50)
    assert scan.update([Proc(1, "blender", "/usr/bin/blender", 10.0)], 0.0) == (
        frozenset({"blender"}),
        frozenset(),
    )
    # 12 CPU-seconds in 15 s = 80% of a core: busy.
    assert scan.update([Proc(1, "blender", "", 22.0)], 15.0)[1] == {"blender"}
    # 3 CPU-seconds in 15 s = 20%: running, not busy.
    assert scan.update([Proc(1, "blender", "", 25.0)], 30.0) == (
        frozenset({"blender"}),
        frozenset(),
    )
    # A new process (pid reuse or restart) has no previous reading: not busy on its first scan.
    assert scan.update([Proc(2, "Blender.EXE", "", 500.0)], 45.0)[1] == frozenset()
    assert scan.update([Proc(3, "bash", "/bin/bash", 9.0)], 60.0) == (frozenset(), frozenset())


def test_app_patterns_match_names_and_windows_paths_case_insensitively() -> None:
    app = App("solidworks", ("sldworks.exe",))
    assert app.matches("SLDWORKS.EXE", "")
    assert app.matches("x", r"C:\Program Files\SOLIDWORKS Corp\SLDWORKS.exe")
    assert not app.matches("sldworks-helper", "/opt/sldworks-helper")


def test_apps_running_seconds_and_busy_app_in_use_through_the_source() -> None:
    platform, now = FakePlatform(), [T0 / 1000]
    procs = [Proc(42, "blender", "/usr/bin/blender", 100.0)]
    source = pc(platform, now, procs, apps={"blender": {"patterns": ["blender"], "seats": 2}})
    source.scan()
    meter = Meter(60, T0, lookback_s=source.lookback_s)
    out = []
    for t in range(60):
        now[0] = (T0 + t * 1000) / 1000
        platform.found = [session(float(t + 100))]  # the user is long gone
        if t % 10 == 0:  # a scan every 10 s: the render uses a full core until 40 s
            procs[0] = Proc(42, "blender", "", 100.0 + min(t, 40))
            source.scan()
        out += meter.observe(T0 + t * 1000, source.poll())
    out += meter.flush(T0 + 60_000)
    (sample,) = out
    # Busy seen by the scans at 10..40 s, idle from the scan at 50 s that saw no work since 40 s;
    # the first scan at 0 s has no CPU delta yet.
    assert dict(sample.state_s) == {"idle": 20.0, "in_use": 40.0}
    assert dict(sample.apps_s) == {"blender": 60.0}
