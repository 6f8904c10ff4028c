"""Linux: sessions from systemd-logind (``loginctl``), idle from logind, X11 or a session helper.

What logind knows of a session's input depends on its type. For a text session it reads the
terminal's access time: ``IdleSinceHint`` is the last input. A desktop session has only what
the desktop declares (``SetIdleHint``), after its own delay, and some desktops never declare
anything: their ``IdleHint`` stays ``no`` and ``IdleSinceHint`` stays 0 for the whole session,
which says nothing about input at all. Such a session's seconds are unknown, never in use,
unless the X11 screensaver extension (read from inside the display) or a session helper gives
the real time since the last input. Without logind (containers, old systems),
``psutil.users()`` with tty access times is the fallback.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import threading
import time

import psutil

from labmeter.agent.platform import LOGIND, MUTTER, NONE, TTY, X11, Session

PROPERTIES = "Id,Name,User,Class,Type,Remote,Active,State,LockedHint,IdleHint,IdleSinceHint"
GRAPHICAL = ("x11", "wayland", "mir")
RELIST_S = 15.0  # the session list changes rarely; each poll reads only the known sessions


def parse_show_session(text: str, now_us: int) -> list[Session]:
    """Sessions from ``loginctl show-session ID... --property=...`` (blocks split by blank lines).

    Only class ``user``: greeters, lock screens of the display manager and background
    sessions are nobody's use. A closing session (logged out, processes lingering) is gone.
    ``IdleSinceHint`` 0 means logind never had an idle signal for the session (a desktop that
    never declared idleness, a session without a terminal): its idle time is unknown.
    """
    found: list[Session] = []
    for block in text.split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Class") != "user" or props.get("State") == "closing":
            continue
        since = int(props.get("IdleSinceHint") or 0)
        graphical = props.get("Type") in GRAPHICAL
        idle_s: float | None = None
        signal = NONE
        if since and graphical:
            # The desktop declares idleness: "no" since it last saw input, "yes" since it
            # declared the session idle (its own delay after the last input).
            idle_s = max(0.0, (now_us - since) / 1e6) if props.get("IdleHint") == "yes" else 0.0
            signal = LOGIND
        elif since:
            idle_s, signal = max(0.0, (now_us - since) / 1e6), TTY  # the terminal's last input
        uid = props.get("User", "")
        found.append(
            Session(
                login=props.get("Name", ""),
                idle_s=idle_s,
                locked=props.get("LockedHint") == "yes",
                remote=props.get("Remote") == "yes",
                active=props.get("Active") == "yes",
                id=props.get("Id", ""),
                display=graphical,
                idle_signal=signal,
                uid=int(uid) if uid.isdigit() else None,
            )
        )
    return found


class _Logind:
    """Lists session ids now and then, reads their properties on every poll (one process)."""

    def __init__(self, loginctl: str) -> None:
        self.loginctl = loginctl
        self._ids: list[str] | None = None  # None: logind did not answer (no systemd)
        self._listed = -RELIST_S
        self._lock = threading.Lock()

    def _run(self, *args: str) -> str | None:
        try:
            done = subprocess.run(
                [self.loginctl, *args], capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    def sessions(self) -> list[Session] | None:
        with self._lock:
            now = time.monotonic()
            if now - self._listed >= RELIST_S:
                listed = self._run("list-sessions", "--no-legend")
                self._listed = now
                self._ids = (
                    None
                    if listed is None
                    else [row.split()[0] for row in listed.splitlines() if row.split()]
                )
            if self._ids is None:
                return None
            if not self._ids:
                return []
            shown = self._run("show-session", *self._ids, f"--property={PROPERTIES}")
            if shown is None:  # a session vanished: list again next time
                self._listed = -RELIST_S
                return None
            return parse_show_session(shown, time.time_ns() // 1000)


_logind: _Logind | None = None


def tty_sessions(
    users: list[tuple[str, str | None, str | None]], atimes: dict[str, float], now: float
) -> list[Session]:
    """Fallback from (name, terminal, host) triples: a tty's access time is its last input."""
    found = []
    for name, terminal, host in users:
        atime = atimes.get(terminal or "")
        found.append(
            Session(
                login=name,
                idle_s=None if atime is None else max(0.0, now - atime),
                remote=bool(host),
                id=terminal or "",
                idle_signal=NONE if atime is None else TTY,
            )
        )
    return found


def _tty_sessions() -> list[Session]:
    users = [(u.name, u.terminal, u.host) for u in psutil.users()]
    atimes: dict[str, float] = {}
    for _, terminal, _ in users:
        if terminal:
            try:
                atimes[terminal] = os.stat(f"/dev/{terminal}").st_atime
            except OSError:
                continue
    return tty_sessions(users, atimes, time.time())


def sessions() -> list[Session]:
    global _logind
    if _logind is None and (loginctl := shutil.which("loginctl")):
        _logind = _Logind(loginctl)
    found = _logind.sessions() if _logind is not None else None
    return found if found is not None else _tty_sessions()


class _XScreenSaverInfo(ctypes.Structure):
    _fields_ = (
        ("window", ctypes.c_ulong),
        ("state", ctypes.c_int),
        ("kind", ctypes.c_int),
        ("til_or_since", ctypes.c_ulong),
        ("idle", ctypes.c_ulong),
        ("event_mask", ctypes.c_ulong),
    )


class X11Idle:
    """Milliseconds since the last input on ``$DISPLAY`` through libXss (optional)."""

    def __init__(self) -> None:
        self.display: int | None = None
        if not os.environ.get("DISPLAY"):  # a service: no display, and no ldconfig run either
            return
        xlib_name, xss_name = ctypes.util.find_library("X11"), ctypes.util.find_library("Xss")
        if not (xlib_name and xss_name):
            return
        self.xlib = ctypes.CDLL(xlib_name)
        self.xss = ctypes.CDLL(xss_name)
        self.xlib.XOpenDisplay.restype = ctypes.c_void_p
        self.xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self.xlib.XDefaultRootWindow.restype = ctypes.c_ulong
        self.xlib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        self.xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_XScreenSaverInfo)
        self.xss.XScreenSaverQueryInfo.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(_XScreenSaverInfo),
        ]
        display = self.xlib.XOpenDisplay(None)
        if display:
            self.display = display
            self.info = self.xss.XScreenSaverAllocInfo()

    def idle_s(self) -> float | None:
        if self.display is None:
            return None
        root = self.xlib.XDefaultRootWindow(self.display)
        if not self.xss.XScreenSaverQueryInfo(self.display, root, self.info):
            return None
        return float(self.info.contents.idle) / 1000.0


_x11: X11Idle | None = None


def parse_mutter_idletime(text: str) -> float | None:
    """Seconds from ``gdbus call ... GetIdletime`` output, ``(uint64 1234,)`` (milliseconds)."""
    parts = text.strip().strip("(),").split()
    if len(parts) != 2 or parts[0] != "uint64" or not parts[1].isdigit():
        return None
    return int(parts[1]) / 1000.0


def mutter_idle_s() -> float | None:
    """Idle seconds from GNOME's idle monitor on the session bus (X11 and Wayland alike)."""
    gdbus = shutil.which("gdbus")
    if gdbus is None or not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return None
    try:
        done = subprocess.run(
            [
                gdbus,
                "call",
                "--session",
                "--dest=org.gnome.Mutter.IdleMonitor",
                "--object-path=/org/gnome/Mutter/IdleMonitor/Core",
                "--method=org.gnome.Mutter.IdleMonitor.GetIdletime",
            ],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_mutter_idletime(done.stdout) if done.returncode == 0 else None


def wayland() -> bool:
    return (
        bool(os.environ.get("WAYLAND_DISPLAY")) or os.environ.get("XDG_SESSION_TYPE") == "wayland"
    )


def input_idle_s() -> float | None:
    """Seconds since the last input of this process's desktop; None when it cannot tell.

    On Wayland the X server (XWayland) sees only its own clients' input, so its screensaver
    counter would call a busy user idle: only GNOME's idle monitor is asked there.
    """
    global _x11
    if wayland():
        return mutter_idle_s()
    if _x11 is None:
        try:
            _x11 = X11Idle()
        except OSError:  # a library that is there but does not load
            return None
    return _x11.idle_s()


def own_idle_signal() -> str:
    """Where ``input_idle_s`` reads from, named for ``labmeter agent check``."""
    return MUTTER if wayland() else X11


def groups(login: str, domain: str = "") -> list[str]:
    """POSIX group names of ``login`` (primary and supplementary, through NSS: local files,
    LDAP or SSSD alike); empty for a login the system does not know. ``domain`` is unused:
    NSS names domain users itself (``user@domain`` with SSSD)."""
    import grp
    import pwd

    try:
        primary = pwd.getpwnam(login).pw_gid
    except KeyError:
        return []
    names = []
    for gid in os.getgrouplist(login, primary):
        try:
            names.append(grp.getgrgid(gid).gr_name)
        except KeyError:  # a gid without a name
            continue
    return names


_own_session: list[str | None] = []  # looked up once: a process never changes session


def own_session_id() -> str | None:
    """The logind session this process's desktop belongs to, if any.

    ``XDG_SESSION_ID`` (set by pam_systemd) is there for programs the session starts itself;
    a ``systemd --user`` unit runs in the user's manager, outside any session, so there the
    answer is the user's graphical session as logind names it (``Display`` of the user).
    """
    if not _own_session:
        _own_session.append(os.environ.get("XDG_SESSION_ID") or _display_session())
    return _own_session[0]


def _display_session() -> str | None:
    loginctl = shutil.which("loginctl")
    if loginctl is None:
        return None
    try:
        done = subprocess.run(
            [loginctl, "show-user", str(os.getuid()), "--property=Display", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
