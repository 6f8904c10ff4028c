"""The sessions begun in a window, listed one by one from raw points (at most 31 days)."""

from __future__ import annotations

from labmeter.api.records import (
    SessionRow,
)
from labmeter.api.scope import Scope
from labmeter.sessions import Session
from labmeter.sessions import sessions as session_list
from labmeter.timeparse import iso

MAX_SESSION_WINDOW_MS = 31 * 24 * 3600_000  # the session listing; counts take any window


def sessions(scope: Scope) -> list[SessionRow]:
    """The sessions begun in the window (``labmeter/sessions.py``: the agent's session events
    where it sends them, otherwise runs of samples of one pseudonym), from raw points."""
    found = session_list(
        scope.reader.samples(scope.plan),
        scope.reader.session_events(scope.plan),
        scope.start_ms,
        scope.end_ms,
        scope.plan.calendar,
    )
    return [_row(s) for s in found]


def _row(s: Session) -> SessionRow:
    return SessionRow(
        site=s.site, lab=s.lab, device=s.device, user=s.user, category=s.category,
        start=iso(s.start_ms), end=iso(s.end_ms), start_ms=s.start_ms, end_ms=s.end_ms,
        duration_s=(s.end_ms - s.start_ms) / 1000, in_use_s=round(s.in_use_s, 3),
        source=s.source,
    )  # fmt: skip
