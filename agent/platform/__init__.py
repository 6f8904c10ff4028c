"""Operating-system specifics behind one interface: ``sessions()`` with idle seconds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Session:
    """An interactive login session as the OS reports it."""

    login: str
    idle_s: float | None  # None: the OS cannot tell
    locked: bool = False
    remote: bool = False
    active: bool = True
