"""Web pages served by the API: a live occupancy board and the report page.

The board is one static page that fetches ``/api/v1/occupancy`` every few seconds, so a lab
screen needs nothing but a browser and a bookmark (``/board?key=...``): the key is traded for
a session cookie on the first visit (``api.auth.exchange_key``) and the page's own requests
carry it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from labmeter.api.auth import exchange_key, require_page
from labmeter.api.deps import FiltersDep, KeysDep, ServicesDep, WindowDep, report_data
from labmeter.api.keys import Role
from labmeter.api.report.formats import Format
from labmeter.api.report.html import to_html
from labmeter.api.report.texts import Lang

router = APIRouter(tags=["pages"])

BOARD = """<!DOCTYPE html>
<html lang="it"><head><meta charset="utf-8"><title>labmeter - occupazione</title>
<style>
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 16px; background: #f4f6f9; }
h1 { font-size: 20px; margin: 0 0 4px; } #updated { color: #666; font-size: 12px; }
section { margin-top: 16px; } h2 { font-size: 16px; margin: 0 0 8px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); gap: 8px; }
.tile { border-radius: 6px; padding: 10px; color: #fff; min-height: 54px; }
.tile b { display: block; font-size: 14px; } .tile span { font-size: 12px; }
.in_use { background: #1f7a34; } .idle { background: #8a8f98; } .setup { background: #1f5fa8; }
.paused { background: #c98a14; } .alarm { background: #b23a48; } .off { background: #444; }
.offline, .unknown { background: #c7cbd1; color: #333; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 4px; border-radius: 4px;
  font-size: 12px; color: #fff; }
</style></head><body>
<h1>Occupazione dei laboratori</h1><div id="updated">caricamento...</div>
<div class="legend"><span class="in_use">in uso</span><span class="idle">inattivo</span>
<span class="setup">preparazione</span><span class="alarm">allarme</span>
<span class="offline">non in linea</span></div>
<div id="labs"></div>
<script>
const LABELS = {in_use: "in uso", idle: "inattivo", setup: "preparazione", paused: "in pausa",
  alarm: "allarme", off: "spento", offline: "non in linea", unknown: "sconosciuto"};
function tile(d) {
  const el = document.createElement("div");
  el.className = "tile " + d.state;
  el.dataset.device = d.device;
  const name = document.createElement("b");
  name.textContent = d.device;
  const state = document.createElement("span");
  state.textContent = LABELS[d.state] || d.state;
  el.append(name, state);
  return el;
}
async function refresh() {
  try {
    const r = await fetch("/api/v1/occupancy", {credentials: "same-origin"});
    if (r.status === 401) throw new Error("sessione scaduta o chiave revocata: riaprire il link");
    if (!r.ok) throw new Error("HTTP " + r.status);
    const rows = await r.json();
    const labs = new Map();
    for (const d of rows) {
      const k = d.site + " / " + d.lab;
      if (!labs.has(k)) labs.set(k, []);
      labs.get(k).push(d);
    }
    const root = document.getElementById("labs");
    root.replaceChildren();
    for (const [name, devices] of labs) {
      const section = document.createElement("section");
      const h = document.createElement("h2");
      const busy = devices.filter(d => d.state === "in_use").length;
      h.textContent = name + " - " + busy + "/" + devices.length + " in uso";
      const grid = document.createElement("div");
      grid.className = "grid";
      grid.append(...devices.map(tile));
      section.append(h, grid);
      root.append(section);
    }
    document.getElementById("updated").textContent =
      "aggiornato alle " + new Date().toLocaleTimeString("it-IT");
  } catch (e) {
    document.getElementById("updated").textContent = "errore: " + e.message;
  }
}
refresh();
setInterval(refresh, REFRESH_MS);
</script></body></html>
"""
REFRESH_MS = 5000


@router.get(
    "/board",
    response_class=HTMLResponse,
    dependencies=[Depends(require_page(Role.viewer))],
)
def board(request: Request, keys: KeysDep) -> Response:
    """Live occupancy board: a grid of devices per lab that refreshes itself."""
    return exchange_key(request, keys) or HTMLResponse(BOARD.replace("REFRESH_MS", str(REFRESH_MS)))


@router.get(
    "/report",
    response_class=HTMLResponse,
    dependencies=[Depends(require_page(Role.evaluator))],
)
def report_page(
    request: Request,
    keys: KeysDep,
    services: ServicesDep,
    window: WindowDep,
    filters: FiltersDep,
    lang: Lang = Lang.it,
) -> Response:
    """The report with its charts, plus links to download it in every format (by cookie)."""
    moved = exchange_key(request, keys)
    if moved is not None:
        return moved
    start, end = window.start_ms / 1000, window.end_ms / 1000
    query = f"start={start:.0f}&amp;end={end:.0f}&amp;lang={lang.value}"
    links = " | ".join(
        f'<a href="/api/v1/report?{query}&amp;format={f}">{f.upper()}</a>'
        for f in ("pdf", "xlsx", "csv", "json")
    )
    data, sealed = report_data(services, window, filters)
    if sealed is not None:
        html = services.closed.render(sealed, Format.html, lang).decode()
    else:
        html = to_html(data, lang)
    bar = f'<p class="downloads" style="font-size:12px">{links}</p>'
    return HTMLResponse(html.replace("</h1>", "</h1>" + bar, 1))
