"""The session helper: reports a desktop session's input idleness to an agent running outside it.

Windows tells input idleness only to programs inside the user's desktop session, and on Linux
only a program with access to the user's display (X11) or session bus (GNOME) can read it,
while the agent is best run once per machine, as a service, with its secrets out of users'
reach. The helper (``labmeter agent idle-helper``, started in each user's session at logon:
a scheduled task on Windows, a ``systemd --user`` unit or an XDG autostart entry on Linux)
writes one small file per session, ``<session id>.json``, into a shared folder; the PC source
reads it for that session. The file carries no name, only the session id and two numbers.
On Linux the agent takes a session's file only if that session's user owns it, so one user
cannot speak for another's session.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from types import ModuleType

from labmeter.agent.platform import current
from labmeter.errors import LabmeterError

log = logging.getLogger(__name__)


def write_idle(folder: Path, session_id: str, idle_s: float, wall_ms: int) -> None:
    """Replace the session's file atomically, so the agent never reads half of it."""
    target = folder / f"{session_id}.json"
    tmp = folder / f".{session_id}.tmp"
    tmp.write_text(json.dumps({"v": 1, "wall_ms": wall_ms, "idle_ms": round(idle_s * 1000)}))
    os.replace(tmp, target)


def read_idle(
    folder: Path, session_id: str, now_ms: int, max_age_ms: int, owner: int | None = None
) -> float | None:
    """Idle seconds of the session now, or None if its helper is silent, stale or garbled, or
    (with ``owner``, a uid) if someone other than the session's user wrote the file."""
    if not session_id:
        return None
    try:
        with (folder / f"{session_id}.json").open("rb") as file:
            if owner is not None and os.fstat(file.fileno()).st_uid != owner:
                return None
            data = json.loads(file.read())
        wall_ms, idle_ms = int(data["wall_ms"]), int(data["idle_ms"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    age = now_ms - wall_ms
    if not 0 <= age <= max_age_ms or idle_ms < 0:
        return None
    return (idle_ms + age) / 1000


def run_helper(
    folder: Path, poll_s: float, stop: threading.Event, platform: ModuleType | None = None
) -> None:
    """Write this session's idle time every ``poll_s`` until ``stop``; remove the file after."""
    platform = platform or current()
    session_id = platform.own_session_id()
    if not session_id:
        raise LabmeterError("not inside a desktop session: no session id to report for")
    with contextlib.suppress(OSError):  # the agent's service usually creates it
        folder.mkdir(parents=True, exist_ok=True)
    failing = False
    try:
        while True:
            # No reading (no display, a Wayland desktop without an idle monitor): no file, so
            # the agent counts the session's time as unknown rather than guessing.
            idle = platform.input_idle_s()
            if idle is not None:
                try:
                    write_idle(folder, session_id, idle, time.time_ns() // 1_000_000)
                    failing = False
                except OSError as exc:  # the agent's folder is gone for now: try again later
                    if not failing:
                        log.warning("cannot write %s: %s", folder, exc)
                    failing = True
            if stop.wait(poll_s):
                break
    finally:
        with contextlib.suppress(OSError):
            (folder / f"{session_id}.json").unlink()
