"""Lab PC: in use while an unlocked interactive session had input in the last T seconds."""

from __future__ import annotations

import psutil

from agent.identity import pseudonym
from agent.meter import Reading
from agent.platform import Session
from agent.platform.linux import sessions
from labmeter.config import AgentConfig


def classify(found: list[Session], idle_threshold_s: float) -> tuple[str, Session | None]:
    """The PC's state and the session that decides it (the most recently active one)."""
    usable = [s for s in found if s.active and not s.locked]
    known = [s for s in usable if s.idle_s is not None]
    if known:
        best = min(known, key=lambda s: s.idle_s or 0.0)
        return ("in_use" if (best.idle_s or 0.0) < idle_threshold_s else "idle"), best
    if usable:
        # A session whose idle time the OS cannot tell: the seconds are not observable.
        return "unknown", usable[0]
    return "idle", None


class PcSource:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        psutil.cpu_percent(None)  # prime: the first call has no previous sample

    def poll(self) -> Reading:
        state, session = classify(sessions(), self.config.idle_threshold_s)
        metrics = {
            "cpu_pct": float(psutil.cpu_percent(None)),
            "mem_pct": float(psutil.virtual_memory().percent),
        }
        user = None
        category = "unknown"
        if session is not None and session.login:
            user = pseudonym(self.config.pseudonym_secret, session.login)
            category = self.config.categories.get(session.login, self.config.default_category)
        return Reading(
            state=None if state == "unknown" else state,
            user=user,
            category=category,
            metrics=metrics,
        )

    def close(self) -> None:
        return None
