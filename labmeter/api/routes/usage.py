"""Who used what: openness by stakeholder category, software licences, sessions."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from labmeter.api import analysis, session_counts
from labmeter.api.auth import Evaluator
from labmeter.api.deps import ScopeDep
from labmeter.timeparse import iso

router = APIRouter(prefix="/api/v1", tags=["usage"], dependencies=[Evaluator])


class CategoryShare(BaseModel):
    in_use_s: float
    share: float | None


class Openness(BaseModel):
    site: str | None = None
    lab: str | None = None
    in_use_s: float
    external_s: float
    quota_esterna: float | None  # (school + company + training_agency) / all in-use time
    categories: dict[str, CategoryShare]


class OpennessReport(BaseModel):
    total: Openness
    labs: list[Openness]


@router.get("/openness", response_model=OpennessReport)
def openness(scope: ScopeDep) -> OpennessReport:
    """Share of in-use hours by stakeholder category, overall and per lab."""
    return OpennessReport(
        total=Openness.model_validate(analysis.openness(scope)),
        labs=[Openness.model_validate(row) for row in analysis.openness_per_lab(scope)],
    )


class SoftwareRow(BaseModel):
    site: str
    app: str
    hours: float
    devices: int
    peak_seats: int  # most devices running it in the same minute
    seats_owned: int | None
    peak_share: float | None  # peak_seats / seats_owned
    registered: bool


@router.get("/software", response_model=list[SoftwareRow])
def software(scope: ScopeDep) -> list[SoftwareRow]:
    """Hours per software title and peak concurrent seats against the seats owned."""
    return [SoftwareRow.model_validate(row) for row in analysis.software(scope)]


class Session(BaseModel):
    site: str
    lab: str
    device: str
    user: str  # a pseudonym (HMAC at the agent), never a name
    category: str
    start: str
    end: str
    duration_s: float
    in_use_s: float
    source: str  # "event" (session_start/end from the agent) or "samples"


@router.get("/sessions", response_model=list[Session])
def sessions(scope: ScopeDep) -> list[Session]:
    """The sessions begun in the window: session events where agents send them, else
    consecutive samples of one pseudonym.

    At most 31 days at a time: each session is listed from raw points. Counts and distinct
    users over any window: ``/sessions/summary``.
    """
    if scope.end_ms - scope.start_ms > analysis.MAX_SESSION_WINDOW_MS:
        raise HTTPException(
            422,
            "sessions are listed from raw samples: at most 31 days at a time "
            "(/api/v1/sessions/summary counts any window)",
        )
    return [
        Session.model_validate({**s, "start": iso(s["start_ms"]), "end": iso(s["end_ms"])})
        for s in analysis.sessions(scope)
    ]


class SessionFigures(BaseModel):
    sessions: int  # sessions begun in the window
    users: int  # distinct pseudonyms among them


class LabSessions(SessionFigures):
    site: str
    lab: str
    categories: dict[str, SessionFigures]


class SessionSummary(SessionFigures):
    start: str
    end: str
    categories: dict[str, SessionFigures]
    labs: list[LabSessions]


@router.get("/sessions/summary", response_model=SessionSummary)
def session_summary(scope: ScopeDep) -> SessionSummary:
    """Sessions begun and distinct users over any window, in all, per category and per lab,
    registered devices only: whole days from the collector's session rollups, the rest from
    raw points, by the same definition as ``/sessions``."""
    found = session_counts.count(scope.reader.influx, scope.plan)
    summary = session_counts.summary(found, lambda k: scope.is_registered((k[0], k[1], k[2])))
    return SessionSummary.model_validate(
        {**summary, "start": iso(scope.start_ms), "end": iso(scope.end_ms)}
    )
