"""Licensed-software catalogue: which titles run on this PC, and which are busy.

A title matches a process by its name or executable's file name against shell patterns,
case-insensitively (``sldworks.exe``, ``matlab*``). Only process names are read: never
window titles, command lines or file names, which can carry personal data.
"""

from __future__ import annotations

import fnmatch
import ntpath
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psutil


@dataclass(frozen=True)
class App:
    title: str  # sent as the key of ``apps_s``
    patterns: tuple[str, ...]
    seats: int = 0

    def matches(self, name: str, exe: str) -> bool:
        names = {name.lower(), ntpath.basename(exe).lower(), posixpath.basename(exe).lower()}
        names.discard("")
        return any(fnmatch.fnmatchcase(n, p.lower()) for n in names for p in self.patterns)


def catalogue(raw: Mapping[str, Any]) -> list[App]:
    """Apps from ``[agent.apps.<title>]`` tables (already checked by ``AgentConfig.check``)."""
    return [
        App(title, tuple(entry["patterns"]), int(entry.get("seats", 0)))
        for title, entry in raw.items()
    ]


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str
    exe: str
    cpu_s: float | None  # user + system CPU seconds so far; None when not readable


class ProcessScan:
    """Running and busy titles from successive process lists; CPU from deltas between scans."""

    def __init__(self, apps: list[App], busy_cpu_pct: float) -> None:
        self.apps = apps
        self.busy_cpu_pct = busy_cpu_pct
        self._cpu: dict[int, float] = {}
        self._t: float | None = None

    def update(self, procs: Iterable[Proc], t: float) -> tuple[frozenset[str], frozenset[str]]:
        """(running titles, titles above ``busy_cpu_pct`` of one core since the last scan)."""
        running: set[str] = set()
        cpu_delta: dict[str, float] = {}
        seen: dict[int, float] = {}
        for proc in procs:
            for app in self.apps:
                if not app.matches(proc.name, proc.exe):
                    continue
                running.add(app.title)
                if proc.cpu_s is not None:
                    seen[proc.pid] = proc.cpu_s
                    before = self._cpu.get(proc.pid)
                    if before is not None and proc.cpu_s >= before:
                        cpu_delta[app.title] = cpu_delta.get(app.title, 0.0) + proc.cpu_s - before
        elapsed = None if self._t is None else t - self._t
        self._cpu, self._t = seen, t
        busy = frozenset(
            title
            for title, used in cpu_delta.items()
            if elapsed and used / elapsed * 100 >= self.busy_cpu_pct
        )
        return frozenset(running), busy


def processes(apps: list[App]) -> list[Proc]:
    """This machine's processes that belong to a catalogued title (CPU read only for those)."""
    found: list[Proc] = []
    for proc in psutil.process_iter(["name", "exe"], ad_value=""):
        name, exe = proc.info["name"] or "", proc.info["exe"] or ""
        if not any(app.matches(name, exe) for app in apps):
            continue
        try:
            times = proc.cpu_times()
            cpu_s: float | None = times.user + times.system
        except psutil.Error:
            cpu_s = None
        found.append(Proc(proc.pid, name, exe, cpu_s))
    return found
