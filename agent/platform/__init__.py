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


def current() -> ModuleType:
    """The platform module for this OS."""
    if sys.platform == "win32":
        from agent.platform import windows

        return windows
    from agent.platform import linux

    return linux
