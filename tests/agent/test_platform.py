"""Platform modules' pure parts (Windows included, on Linux) and the suspend detector."""

from __future__ import annotations

from labmeter.agent.clock import Gap, GapDetector
from labmeter.agent.meter import UNKNOWN, Meter, Reading
from labmeter.agent.platform import linux, windows

T0 = 1_764_147_600_000

SHOW = """Id=2
Name=gdm
User=120
Class=greeter
Type=wayland
Remote=no
Active=yes
State=active
LockedHint=no
IdleHint=no
IdleSinceHint=0

Id=5
Name=mrossi
User=1001
Class=user
Type=x11
Remote=no
Active=yes
State=active
LockedHint=yes
IdleHint=yes
IdleSinceHint=1764147540000000

Id=9
Name=lbianchi
User=1002
Class=user
Type=tty
Remote=yes
Active=yes
State=online
LockedHint=no
IdleHint=no
IdleSinceHint=1764147580000000

Id=11
Name=gone
User=1003
Class=user
Type=tty
Remote=no
Active=no
State=closing
LockedHint=no
IdleHint=no
IdleSinceHint=0

Id=12
Name=gverdi
User=1004
Class=user
Type=wayland
Remote=no
Active=yes
State=active
LockedHint=no
IdleHint=no
IdleSinceHint=1764147000000000

Id=14
Name=abianco
User=1005
Class=user
Type=x11
Remote=no
Active=yes
State=active
LockedHint=no
IdleHint=no
IdleSinceHint=0
"""


def test_logind_sessions_and_the_idle_signal_each_has() -> None:
    found = linux.parse_show_session(SHOW, now_us=T0 * 1000)
    assert [
        (s.id, s.login, s.uid, s.locked, s.remote, s.display, s.idle_s, s.idle_signal)
        for s in found
    ] == [
        # Greeters and closing sessions are nobody's use.
        ("5", "mrossi", 1001, True, False, True, 60.0, "logind"),  # declared idle 60 s ago
        ("9", "lbianchi", 1002, False, True, False, 20.0, "tty"),  # the terminal's last input
        ("12", "gverdi", 1004, False, False, True, 0.0, "logind"),  # declared active again
        # A desktop that never set IdleHint: "no" means nothing, the idle time is unknown.
        ("14", "abianco", 1005, False, False, True, None, "none"),
    ]


def test_tty_fallback_uses_access_time() -> None:
    found = linux.tty_sessions(
        [("mrossi", "pts/0", "10.0.0.5"), ("root", "tty1", None), ("x", None, None)],
        {"pts/0": 1000.0, "tty1": 1090.0},
        now=1100.0,
    )
    assert [(s.login, s.idle_s, s.remote) for s in found] == [
        ("mrossi", 100.0, True),
        ("root", 10.0, False),
        ("x", None, False),
    ]


def test_windows_idle_ticks_wrap_every_49_7_days() -> None:
    assert windows.idle_ms(5_000, 2_000) == 3_000
    # GetTickCount64 is past 2**32; dwTime (32 bits) wrapped with it.
    assert windows.idle_ms((1 << 32) + 500, 4_294_966_796) == 1_000
    assert windows.idle_ms(3 * (1 << 32) + 10, 10) == 0


def test_windows_lock_flags_and_the_windows_7_inversion() -> None:
    assert windows.is_locked(windows.WTS_SESSIONSTATE_LOCK, (10, 0)) is True
    assert windows.is_locked(windows.WTS_SESSIONSTATE_UNLOCK, (10, 0)) is False
    assert windows.is_locked(windows.WTS_SESSIONSTATE_LOCK, (6, 1)) is False
    assert windows.is_locked(-1, (10, 0)) is None


def test_windows_sessions_from_wts() -> None:
    rdp = windows.session_from_wts(
        3, windows.WTS_ACTIVE, "mrossi", windows.PROTOCOL_RDP, 1, 10**17, 10**17 + 45 * 10**7
    )
    assert rdp is not None
    assert (rdp.login, rdp.remote, rdp.locked, rdp.active, rdp.idle_s, rdp.id) == (
        "mrossi",
        True,
        False,
        True,
        45.0,
        "3",
    )
    console = windows.session_from_wts(1, windows.WTS_ACTIVE, "eve", 0, 0, 0, 10**17)
    assert console is not None and console.locked and console.idle_s is None
    assert windows.session_from_wts(0, windows.WTS_DISCONNECTED, "", 0, 1, 0, 0) is None
    assert windows.session_from_wts(65536, 6, "x", 0, 1, 0, 0) is None  # the RDP listener
    # Off Windows the module imports and reports nothing rather than failing.
    assert windows.sessions() == [] and windows.input_idle_s() is None
    assert windows.groups("mrossi", "scuola") == []


def test_suspend_is_the_jump_between_wall_and_monotonic_clocks() -> None:
    gaps = GapDetector(1000, wall=T0, mono=50_000)
    assert gaps.check(T0 + 1000, 51_000) is None
    # 10 minutes of wall time, 0.4 s of monotonic time: the machine slept.
    assert gaps.check(T0 + 601_400, 51_400) == Gap(T0 + 1400, "suspend")
    assert gaps.check(T0 + 602_400, 52_400) is None
    # Awake but not polled for 10 s (a stalled process): a stall.
    assert gaps.check(T0 + 612_400, 62_400) == Gap(T0 + 603_400, "stall")


def test_back_dating_stays_inside_open_samples_and_keeps_unknown_unknown() -> None:
    meter = Meter(60, T0, lookback_s=30)
    meter.observe(T0, Reading("in_use"))
    meter.observe(T0 + 20_000, UNKNOWN)  # e.g. a suspend
    meter.observe(T0 + 30_000, Reading("in_use"))
    # Idle for the last 50 s: the unknown 10 s stay unknown, the rest becomes idle.
    assert meter.observe(T0 + 50_000, Reading("idle", since_s=50)) == []
    (sample,) = meter.observe(T0 + 90_000, Reading("idle"))
    assert dict(sample.state_s) == {"idle": 50.0} and sample.observed_s == 50.0
    # A sample already cut is never revised: back-dating is clamped to the open sample.
    meter.observe(T0 + 100_000, Reading("in_use", since_s=500))
    (last,) = meter.flush(T0 + 120_000)
    assert dict(last.state_s) == {"in_use": 60.0}


def test_every_platform_module_offers_the_same_interface() -> None:
    from labmeter.agent.platform import current

    for module in (linux, windows, current()):
        for name in ("sessions", "input_idle_s", "own_session_id", "groups", "own_idle_signal"):
            assert callable(getattr(module, name)), (module.__name__, name)
    assert current() is linux  # these tests run on Linux
