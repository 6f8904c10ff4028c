"""The session helper: reports a desktop session's input idleness to an agent running outside it.

Windows tells input idleness only to programs inside the user's desktop session, while the
agent is best run once per machine, as SYSTEM, with its secrets out of users' reach. The
helper (``labmeter agent idle-helper``, started in each user's session at logon) writes one
small file per session, ``<session id>.json``, into a shared folder; the PC source reads it
for that session. The file carries no name, only the session id and two numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from types import ModuleType

from agent.platform import current
from labmeter.errors import LabmeterError


def write_idle(folder: Path, session_id: str, idle_s: float, wall_ms: int) -> None:
    """Replace the session's file atomically, so the agent never reads half of it."""
    target = folder / f"{session_id}.json"
    tmp = folder / f".{session_id}.tmp"
    tmp.write_text(json.dumps({"v": 1, "wall_ms": wall_ms, "idle_ms": round(idle_s * 1000)}))
    os.replace(tmp, target)


def read_idle(folder: Path, session_id: str, now_ms: int, max_age_ms: int) -> float | None:
    """Idle seconds of the session now, or None if its helper is silent, stale or garbled."""
    if not session_id:
        return None
    try:
        data = json.loads((folder / f"{session_id}.json").read_text())
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
    folder.mkdir(parents=True, exist_ok=True)
    try:
        while True:
            idle = platform.input_idle_s()
            if idle is not None:
                write_idle(folder, session_id, idle, time.time_ns() // 1_000_000)
            if stop.wait(poll_s):
                break
    finally:
        with contextlib.suppress(OSError):
            (folder / f"{session_id}.json").unlink()
