"""Linux sessions: systemd-logind first, ``psutil.users()`` with tty access times as a fallback."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import psutil

from agent.platform import Session

_PROPS = "Name,Class,Type,Remote,Active,State,LockedHint,IdleHint,IdleSinceHint"


def _logind_sessions() -> list[Session] | None:
    """Sessions of class ``user`` (not the greeter) from ``loginctl``; None if logind is absent."""
    loginctl = shutil.which("loginctl")
    if loginctl is None:
        return None
    try:
        listed = subprocess.run(
            [loginctl, "list-sessions", "--no-legend"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        return None
    sessions: list[Session] = []
    now_us = time.time() * 1e6
    for row in listed.stdout.splitlines():
        session_id = row.split()[0] if row.split() else ""
        if not session_id:
            continue
        shown = subprocess.run(
            [loginctl, "show-session", session_id, f"--property={_PROPS}"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        props = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
        if props.get("Class") != "user" or props.get("State") == "closing":
            continue
        idle_s: float | None = 0.0
        if props.get("IdleHint") == "yes":
            since = int(props.get("IdleSinceHint") or 0)
            idle_s = max(0.0, (now_us - since) / 1e6) if since else None
        sessions.append(
            Session(
                login=props.get("Name", ""),
                idle_s=idle_s,
                locked=props.get("LockedHint") == "yes",
                remote=props.get("Remote") == "yes",
                active=props.get("Active") == "yes",
            )
        )
    return sessions


def _tty_sessions() -> list[Session]:
    """Fallback: a tty's access time is its last input, as ``w`` reports it."""
    sessions = []
    now = time.time()
    for user in psutil.users():
        idle: float | None = None
        if user.terminal:
            try:
                idle = max(0.0, now - os.stat(f"/dev/{user.terminal}").st_atime)
            except OSError:
                idle = None
        sessions.append(Session(login=user.name, idle_s=idle, remote=bool(user.host)))
    return sessions


def sessions() -> list[Session]:
    found = _logind_sessions()
    return found if found is not None else _tty_sessions()
