"""Operating-system specifics behind one interface, one module per OS (as ActivityWatch does).

Each module exports ``sessions() -> list[Session]`` (interactive sessions with their idle
seconds), ``groups(login, domain) -> list[str]`` (the login's group names, for categories)
and ``input_idle_s() -> float | None`` (seconds since the last keyboard or mouse
input seen from this process's own desktop session, None when it cannot tell). ``current()``
picks the module for ``sys.platform``; every module imports everywhere so its pure parts are
tested on Linux.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType

# Where a session's idle seconds come from (``labmeter agent check`` shows it per session).
X11 = "x11"  # the X screensaver extension, read from inside the session's display
MUTTER = "mutter"  # GNOME's idle monitor over D-Bus (Wayland sessions)
WINDOWS_INPUT = "getlastinputinfo"  # Windows, from inside the session
HELPER = "helper"  # a session helper's file in idle_dir
LOGIND = "logind"  # the IdleHint a desktop declared to logind
TTY = "tty"  # a text session's terminal access time (through logind, or utmp)
WTS = "wts"  # Windows Remote Desktop Services' last input of a remote session
NONE = "none"  # nothing: the session's seconds are unknown


@dataclass(frozen=True)
class Session:
    """An interactive login session as the OS reports it. ``login`` never leaves the agent."""

    login: str
    idle_s: float | None  # None: the OS cannot tell
    locked: bool = False
    remote: bool = False
    active: bool = True
    id: str = ""
    display: bool = False  # a graphical session (X11, Wayland, console desktop, RDP)
    domain: str = ""  # Windows: the account's domain (or the computer, for local accounts)
    idle_signal: str = NONE  # where ``idle_s`` comes from (one of the names above)
    uid: int | None = None  # POSIX: the session's user, who alone may write its helper file


def current() -> ModuleType:
    """The platform module for this OS."""
    if sys.platform == "win32":
        from labmeter.agent.platform import windows

        return windows
    from labmeter.agent.platform import linux

    return linux
