"""The evaluators' report over HTTP, in the format asked for."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from labmeter.api.auth import require_page
from labmeter.api.closed import SEALED_HEADER
from labmeter.api.deps import FiltersDep, ServicesDep, WindowDep, report_data
from labmeter.api.keys import Role
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
    services: ServicesDep,
    window: WindowDep,
    filters: FiltersDep,
    format: Format = Format.json,
    lang: Lang = Lang.it,
) -> Response:
    """*Rapporto di utilizzo*: the 9 sections of DESIGN.md, Italian by default. A closed
    period's report comes from its evidence package (header ``X-Labmeter-Sealed``)."""
    headers: dict[str, str] = {}
    data, sealed = report_data(services, window, filters)
    if sealed is not None:
        body = services.closed.render(sealed, format, lang)
        headers[SEALED_HEADER] = sealed.closure.manifest_sha256
    else:
        body = produce(data, format, lang)
    disposition = "inline" if format in (Format.json, Format.html) else "attachment"
    headers["Content-Disposition"] = f'{disposition}; filename="{filename(data, format, lang)}"'
    return Response(body, media_type=MEDIA[format], headers=headers)
