"""The evaluators' report over HTTP, in the format asked for."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from labmeter.api.auth import require_page
from labmeter.api.deps import DeclaredDep, ScopeDep
from labmeter.api.keys import Role
from labmeter.api.report.build import build
from labmeter.api.report.formats import MEDIA, Format, filename, produce
from labmeter.api.report.texts import Lang

router = APIRouter(
    prefix="/api/v1", tags=["reports"], dependencies=[Depends(require_page(Role.evaluator))]
)


@router.get(
    "/report",
    response_class=Response,
    responses={200: {"content": {m.split(";")[0]: {} for m in MEDIA.values()}}},
)
def report(
    scope: ScopeDep, declared: DeclaredDep, format: Format = Format.json, lang: Lang = Lang.it
) -> Response:
    """*Rapporto di utilizzo*: the 9 sections of DESIGN.md, Italian by default."""
    data = build(scope, declared=declared)
    body = produce(data, format, lang)
    disposition = "inline" if format in (Format.json, Format.html) else "attachment"
    return Response(
        body,
        media_type=MEDIA[format],
        headers={
            "Content-Disposition": f'{disposition}; filename="{filename(data, format, lang)}"'
        },
    )
