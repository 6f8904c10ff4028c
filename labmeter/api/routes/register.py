"""The lab register (*Registro di utilizzo*) of one lab, for a day or a month."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from labmeter.api.auth import Evaluator
from labmeter.api.deps import SEGMENT, ServicesDep
from labmeter.api.register_formats import MEDIA, RegisterFormat, build, filename, produce, resolve
from labmeter.api.report.texts import Lang

router = APIRouter(prefix="/api/v1", tags=["register"], dependencies=[Evaluator])


@router.get(
    "/register",
    response_class=Response,
    responses={200: {"content": {m.split(";")[0]: {} for m in MEDIA.values()}}},
)
def lab_register(
    services: ServicesDep,
    lab: Annotated[str, Query(pattern=SEGMENT)],
    site: Annotated[str | None, Query(pattern=SEGMENT)] = None,
    day: Annotated[str | None, Query(description="YYYY-MM-DD (local)")] = None,
    month: Annotated[str | None, Query(description="YYYY-MM (local)")] = None,
    format: RegisterFormat = RegisterFormat.json,
    lang: Lang = Lang.it,
) -> Response:
    """Per day: every session (start, end, device, pseudonym, category, the overlapping
    booking's organisation and activity), the day's totals and a signature line."""
    try:
        req = resolve(services.opening, lab, site, day, month)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    now_ms = int(time.time() * 1000)
    reg = build(services.store.influx, services.opening, req, services.bookings, now_ms)
    disposition = "inline" if format is RegisterFormat.json else "attachment"
    return Response(
        produce(reg, format, lang),
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'{disposition}; filename="{filename(req, format, lang)}"'},
    )
