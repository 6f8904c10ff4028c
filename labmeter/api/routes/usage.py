"""Who used what: openness by stakeholder category, software licences, sessions."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from labmeter.api import session_counts, session_list
from labmeter.api.auth import Evaluator
from labmeter.api.deps import ScopeDep
from labmeter.api.openness import openness_of, openness_per_lab
from labmeter.api.records import OpennessReport, SessionRow, SoftwareRow, WindowSessions
from labmeter.api.software import licences
from labmeter.timeparse import iso

router = APIRouter(prefix="/api/v1", tags=["usage"], dependencies=[Evaluator])


@router.get("/openness", response_model=OpennessReport)
def openness(scope: ScopeDep) -> OpennessReport:
    """Share of in-use hours by stakeholder category, overall and per lab."""
    return OpennessReport(total=openness_of(scope), labs=openness_per_lab(scope))


@router.get("/software", response_model=list[SoftwareRow])
def software(scope: ScopeDep) -> list[SoftwareRow]:
    """Hours per software title and peak concurrent seats against the seats owned."""
    return licences(scope)


@router.get("/sessions", response_model=list[SessionRow])
def sessions(scope: ScopeDep) -> list[SessionRow]:
    """The sessions begun in the window: session events where agents send them, else
    consecutive samples of one pseudonym.

    At most 31 days at a time: each session is listed from raw points. Counts and distinct
    users over any window: ``/sessions/summary``.
    """
    if scope.end_ms - scope.start_ms > session_list.MAX_SESSION_WINDOW_MS:
        raise HTTPException(
            422,
            "sessions are listed from raw samples: at most 31 days at a time "
            "(/api/v1/sessions/summary counts any window)",
        )
    return session_list.sessions(scope)


@router.get("/sessions/summary", response_model=WindowSessions)
def session_summary(scope: ScopeDep) -> WindowSessions:
    """Sessions begun and distinct users over any window, in all, per category and per lab,
    registered devices only: whole days from the collector's session rollups, the rest from
    raw points, by the same definition as ``/sessions``."""
    counts = scope.once("sessions", lambda: session_counts.count(scope))
    summary = session_counts.summary(counts)
    return WindowSessions(**summary, start=iso(scope.start_ms), end=iso(scope.end_ms))
