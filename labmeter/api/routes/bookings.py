"""Declared use against measured use: ``/api/v1/bookings``."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from labmeter.api.auth import Evaluator
from labmeter.api.bookings import Reconciliation, reconcile
from labmeter.api.deps import ScopeDep
from labmeter.bookings import Bookings

router = APIRouter(prefix="/api/v1", tags=["bookings"], dependencies=[Evaluator])


def bookings_of(request: Request) -> Bookings:
    found: Bookings | None = request.app.state.bookings
    if found is None:
        raise HTTPException(404, "no bookings: set bookings.sources in the API's config")
    return found


@router.get("/bookings", response_model=Reconciliation)
def bookings(request: Request, scope: ScopeDep) -> Reconciliation:
    """Each booking's booked hours, in-use hours of its devices and used share (no-show
    below ``bookings.no_show_below``); per lab the use outside every booking; booked vs used
    by category and organisation; PNRR assets used under commercial bookings (with their
    reference) and company use of them without one; the feeds' last good copies and ages."""
    books = bookings_of(request)
    return reconcile(
        scope,
        books.between(scope.start_ms, scope.end_ms),
        request.app.state.config.bookings.no_show_below,
        books.feed_states(),
    )
