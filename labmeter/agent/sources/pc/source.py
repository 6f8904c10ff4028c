"""Lab PC: in use while an unlocked interactive session had input in the last T seconds.

State model (README "Agent"): an active, unlocked session (local or remote) with input in
the last ``idle_threshold_s`` is ``in_use``, from its first input to its *last* input (the
meter back-dates idleness to the last input, not to when T ran out); a catalogued app busy
above ``busy_cpu_pct`` keeps the PC ``in_use`` while the user is idle or the screen locked;
otherwise a session that is idle or locked, or no session at all, is ``idle``; a session whose
idle time nothing can tell (no X11 access, no session helper, a desktop that never sets
logind's IdleHint) makes the PC's time unknown (in no state), unless another session is in
use: it might be in use itself, so neither ``in_use`` nor ``idle`` would be honest.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import psutil

from labmeter.agent.categories import Categories
from labmeter.agent.identity import pseudonym
from labmeter.agent.idle_helper import read_idle
from labmeter.agent.meter import Reading
from labmeter.agent.platform import HELPER, X11, Session, current
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.pc.apps import App, Proc, ProcessScan, catalogue, processes
from labmeter.agent.sources.pc.gpu import Gpu
from labmeter.config import AgentConfig


@dataclass(frozen=True)
class Verdict:
    state: str | None  # None: not observable
    session: Session | None  # whose use it is
    since_s: float | None  # the state has held this long (back-dated by the meter)


def with_own_idle(
    found: list[Session],
    idle_s: float | None,
    own_id: str | None,
    own_login: str,
    signal: str = X11,
) -> list[Session]:
    """Put the exact idle time of this process's own desktop (X11, GetLastInputInfo) on its
    session: logind's hint for desktops lags by the desktop's own idle delay, or is absent."""
    if idle_s is None:
        return found
    own = replace_idle(idle_s, signal)
    ids = {s.id for s in found}
    if own_id and own_id in ids:
        return [own(s) if s.id == own_id else s for s in found]
    mine = [s for s in found if s.login == own_login and s.display and not s.remote]
    if mine:
        return [own(s) if s in mine else s for s in found]
    return [
        *found,
        Session(login=own_login, idle_s=idle_s, id=own_id or "", display=True, idle_signal=signal),
    ]


def replace_idle(idle_s: float, signal: str) -> Callable[[Session], Session]:
    return lambda s: replace(s, idle_s=idle_s, idle_signal=signal)


def classify(found: list[Session], idle_threshold_s: float, busy_app: bool) -> Verdict:
    """The PC's state and the session that decides it (the most recently active one).

    A usable session whose idle time nobody can tell makes the PC's time unknown unless some
    session is known to be in use: it may be in use itself, so "idle" would be a guess.
    """
    usable = [s for s in found if s.active and not s.locked]
    known = [s for s in usable if s.idle_s is not None]
    blind = [s for s in usable if s.idle_s is None]
    if known:
        best = min(known, key=lambda s: s.idle_s or 0.0)
        idle = best.idle_s or 0.0
        if idle < idle_threshold_s:
            return Verdict("in_use", best, idle)
        if busy_app:
            return Verdict("in_use", best, None)
        return Verdict(None, blind[0], None) if blind else Verdict("idle", best, idle)
    owner = usable[0] if usable else next((s for s in found if s.active), None)
    if busy_app:
        return Verdict("in_use", owner, None)
    if usable:
        # A session whose idle time the OS cannot tell: the seconds are not observable.
        return Verdict(None, owner, None)
    return Verdict("idle", owner, None)  # locked, or nobody logged in


class PcSource:
    def __init__(
        self,
        config: AgentConfig,
        platform: ModuleType | None = None,
        clock: Callable[[], float] = time.time,
        list_processes: Callable[[list[App]], list[Proc]] = processes,
    ) -> None:
        self.config = config
        self.platform = platform or current()
        self._clock = clock
        self._list_processes = list_processes
        # Idleness found at T is back-dated to the last input, so samples stay open this long.
        self.lookback_s = float(config.idle_threshold_s) + 2 * config.poll_s
        self.apps = catalogue(config.apps)
        self._scan = ProcessScan(self.apps, config.busy_cpu_pct)
        self._running: frozenset[str] = frozenset()
        self._busy: frozenset[str] = frozenset()
        self._busy_end: float | None = None  # when a busy app was first seen no longer busy
        self._was_busy = False
        self._owner: tuple[str, str] | None = None  # (pseudonym, category) of the open session
        self._events: list[SourceEvent] = []
        self._login = getpass.getuser()
        self.categories = Categories(
            config.categories, config.default_category, self.platform.groups
        )
        self._gpu = Gpu.open()
        psutil.cpu_percent(None)  # prime: the first call has no previous sample

    def scan(self) -> None:
        """The costly part, on its own slower schedule: which catalogued apps run, which work."""
        if self.apps:
            found = self._list_processes(self.apps)
            self._running, self._busy = self._scan.update(found, self._clock())

    @property
    def running_apps(self) -> frozenset[str]:
        return self._running

    @property
    def busy_apps(self) -> frozenset[str]:
        return self._busy

    def sessions(self) -> list[Session]:
        """Sessions with the best idle signal each has (``Session.idle_signal`` says which)."""
        found = with_own_idle(
            self.platform.sessions(),
            self.platform.input_idle_s(),
            self.platform.own_session_id(),
            self._login,
            self.platform.own_idle_signal(),
        )
        if not self.config.idle_dir:
            return found
        # Session helpers know the exact idle time of sessions this process cannot see into.
        folder, now_ms = Path(self.config.idle_dir), int(self._clock() * 1000)
        max_age_ms = int(3 * self.config.poll_s * 1000) + 2000
        out = []
        for s in found:
            idle = read_idle(folder, s.id, now_ms, max_age_ms, s.uid)
            out.append(s if idle is None else replace_idle(idle, HELPER)(s))
        return out

    def poll(self) -> Reading:
        now = self._clock()
        busy = bool(self._busy)
        if busy != self._was_busy:
            self._busy_end = None if busy else now
            self._was_busy = busy
        verdict = classify(self.sessions(), self.config.idle_threshold_s, busy)
        since = verdict.since_s
        if verdict.state == "idle" and since is not None and self._busy_end is not None:
            # Idle since the last input, but not over the time an app was still working.
            since = min(since, max(0.0, now - self._busy_end))
        user, category = None, "unknown"
        session = verdict.session
        if session is not None and session.login:
            user = pseudonym(self.config.pseudonym_secret, session.login)
            category = self.categories.of(session.login, session.domain)
        self._track(user, category, session)
        metrics = {
            "cpu_pct": float(psutil.cpu_percent(None)),
            "mem_pct": float(psutil.virtual_memory().percent),
        }
        if self._gpu is not None and (gpu := self._gpu.utilisation()) is not None:
            metrics["gpu_pct"] = gpu
        return Reading(
            state=verdict.state,
            user=user,
            category=category,
            apps=self._running,
            metrics=metrics,
            since_s=since,
        )

    def _track(self, user: str | None, category: str, session: Session | None) -> None:
        """Session start and end events when the person at the PC changes (pseudonyms only)."""
        owner = (user, category) if user is not None else None
        if owner == self._owner:
            return
        if self._owner is not None:
            self._events.append(SourceEvent("session_end", {}, self._owner[0], self._owner[1]))
        if owner is not None and user is not None:
            remote = bool(session and session.remote)
            self._events.append(SourceEvent("session_start", {"remote": remote}, user, category))
        self._owner = owner

    def drain_events(self) -> list[SourceEvent]:
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        if self._gpu is not None:
            self._gpu.close()
