"""Declared use against measured use: ``/api/v1/bookings``."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from labmeter.api.auth import Evaluator
from labmeter.api.bookings import Reconciliation, reconcile
from labmeter.api.deps import BookingsDep, ConfigDep, ScopeDep

router = APIRouter(prefix="/api/v1", tags=["bookings"], dependencies=[Evaluator])


@router.get("/bookings", response_model=Reconciliation)
def bookings(books: BookingsDep, config: ConfigDep, scope: ScopeDep) -> Reconciliation:
    """Each booking's booked hours, in-use hours of its devices and used share (no-show
    below ``bookings.no_show_below``); per lab the use outside every booking; booked vs used
    by category and organisation; PNRR assets used under commercial bookings (with their
    reference) and company use of them without one; the feeds' last good copies and ages."""
    if books is None:  # after the window and filters are checked: a bad one is a 422
        raise HTTPException(404, "no bookings: set bookings.sources in the API's config")
    return reconcile(
        scope,
        books.between(scope.start_ms, scope.end_ms),
        config.bookings.no_show_below,
        books.feed_states(),
    )
