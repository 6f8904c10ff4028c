"""The region's view over HTTP: every site side by side, the pilot before and after, saturation
and the funding indicators, in the format asked for; and its page with download links."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse

from labmeter.api.auth import exchange_key, require_page
from labmeter.api.deps import SEGMENT, KeysDep, ServicesDep, WindowDep
from labmeter.api.keys import Role
from labmeter.api.plan import Filters
from labmeter.api.region.build import MIN_COVERAGE, RegionOptions, build_region
from labmeter.api.region.formats import MEDIA, Format, filename, produce, to_html
from labmeter.api.region.make import PilotArgs
from labmeter.api.region.model import RegionReport
from labmeter.api.report.texts import Lang
from labmeter.api.scope import open_scope

router = APIRouter(tags=["region"], dependencies=[Depends(require_page(Role.evaluator))])

WINDOW = "START..END, each RFC 3339 or epoch seconds"


def get_pilot(
    pilot_site: Annotated[str | None, Query(pattern=SEGMENT, description="the pilot site")] = None,
    change: Annotated[
        str | None,
        Query(description="the method's start: before it the baseline, after it the pilot"),
    ] = None,
    baseline: Annotated[str | None, Query(description=WINDOW)] = None,
    pilot: Annotated[str | None, Query(description=WINDOW)] = None,
    seed: Annotated[int, Query(ge=0, le=2**32 - 1, description="the bootstrap's seed")] = 1,
    resamples: Annotated[int, Query(ge=100, le=100_000)] = 2000,
    confidence: Annotated[float, Query(ge=0.5, lt=1.0)] = 0.95,
) -> PilotArgs:
    return PilotArgs(pilot_site, change, baseline, pilot, seed, resamples, confidence)


PilotDep = Annotated[PilotArgs, Depends(get_pilot)]
CoverageDep = Annotated[
    float, Query(ge=0.0, le=1.0, description="the coverage a site needs to be ranked")
]


def _build(
    services: ServicesDep, window: WindowDep, pilot: PilotArgs, min_coverage: float
) -> RegionReport:
    try:
        spec = pilot.spec(window.start_ms, window.end_ms)
        options = RegionOptions(
            min_coverage, spec, services.bookings, services.config.bookings.no_show_below
        )
        now_ms = int(time.time() * 1000)
        scope = open_scope(
            services.store.influx, services.opening, window.start_ms, window.end_ms, Filters(),
            now_ms,
        )  # fmt: skip
        return build_region(scope, options)
    except ValueError as exc:  # an unknown pilot site, a window the calendar cannot cut
        raise HTTPException(422, str(exc)) from exc


@router.get(
    "/api/v1/region",
    response_class=Response,
    responses={200: {"content": {m.split(";")[0]: {} for m in MEDIA.values()}}},
)
def region(
    services: ServicesDep,
    window: WindowDep,
    pilot: PilotDep,
    format: Format = Format.json,
    lang: Lang = Lang.it,
    min_coverage: CoverageDep = MIN_COVERAGE,
) -> Response:
    """The regional report: the sites side by side with the site report's definitions and
    their coverage, rankings among the sites whose coverage passes ``min_coverage``, the
    pilot before and after against the other sites (a seeded bootstrap over weeks and a
    difference in differences), saturation and idleness, the funding indicators."""
    data = _build(services, window, pilot, min_coverage)
    body = produce(data, format, lang)
    disposition = "inline" if format in (Format.json, Format.html) else "attachment"
    return Response(
        body,
        media_type=MEDIA[format],
        headers={
            "Content-Disposition": f'{disposition}; filename="{filename(data, format, lang)}"'
        },
    )


@router.get("/region", response_class=HTMLResponse)
def region_page(
    request: Request,
    keys: KeysDep,
    services: ServicesDep,
    window: WindowDep,
    pilot: PilotDep,
    lang: Lang = Lang.it,
    min_coverage: CoverageDep = MIN_COVERAGE,
) -> Response:
    """The regional report as a page, with links to download it in every format (by cookie)."""
    moved = exchange_key(request, keys)
    if moved is not None:
        return moved
    html = to_html(_build(services, window, pilot, min_coverage), lang)
    query = request.url.query.replace("&", "&amp;")
    links = " | ".join(
        f'<a href="/api/v1/region?{query}&amp;format={f}">{f.upper()}</a>'
        for f in ("pdf", "xlsx", "csv", "json")
    )
    bar = f'<p class="downloads" style="font-size:12px">{links}</p>'
    return HTMLResponse(html.replace("</h1>", "</h1>" + bar, 1))
