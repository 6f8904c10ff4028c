"""The regional report in every format: the PDF read back with pdftotext, the HTML page in
headless Chromium (DOM and screenshot), the XLSX with its definitions sheet and the durability
series, the CSV, and ``labmeter report --scope region``."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from openpyxl import load_workbook
from PIL import Image
from typer.testing import CliRunner

from labmeter.api.keys import Role
from labmeter.cli.main import app
from tests.browser import CHROMIUM, chromium, serve
from tests.region.conftest import Simulated
from tests.region.test_region import _pilot, _window


def _get(simulated: Simulated, **params: object) -> bytes:
    client = simulated.api.client_as(Role.evaluator)
    region = simulated.region
    query = {**_window(region), **_pilot(region), **params}
    response = client.get("/api/v1/region", params=query)
    assert response.status_code == 200, response.text
    return response.content


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
def test_the_pdf_shows_the_ranking_the_flagged_site_the_comparison_and_the_indicators(
    simulated: Simulated, tmp_path: Path
) -> None:
    path = tmp_path / "region.pdf"
    path.write_bytes(_get(simulated, format="pdf"))
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    lines = text.splitlines()
    assert "Rapporto regionale di utilizzo" in text
    # The ranking: four sites numbered, the low-coverage one apart with its coverage.
    start = next(i for i, t in enumerate(lines) if t.startswith("Graduatoria"))
    ranked = [t.split() for t in lines[start + 1 : start + 8] if t.strip()[:1].isdigit()]
    assert [r[0] for r in ranked] == ["1", "2", "3", "4"]
    assert "its-si" not in {r[1] for r in ranked}
    apart = next(i for i, t in enumerate(lines) if t.startswith("Non in graduatoria"))
    assert "(80 %)" in lines[apart]
    assert any(
        t.startswith("its-si") and t.rstrip().endswith("%") for t in lines[apart + 1 : apart + 4]
    )
    # Before and after, with the intervals, and the difference in differences.
    assert "3. Prima e dopo il metodo «laboratorio aperto»" in text
    share = next(i for i, t in enumerate(lines) if t.strip() == "Quota esterna")
    assert "Intervallo -" in lines[share + 1] and "Intervallo +" in lines[share + 1]
    pilot_row = next(t for t in lines[share + 1 : share + 10] if t.startswith("its-fi"))
    assert "pilota" in pilot_row and len(pilot_row.split()) >= 7
    assert "Differenza nelle differenze (pilota meno controlli)" in text
    did = next(t for t in lines if t.startswith("Quota esterna") and "p.p." in t)
    assert did.count("p.p.") == 3  # the change and its interval
    assert "Che cosa il confronto può e non può mostrare" in text
    # Saturation and the funding indicators.
    assert "Saturazione per laboratorio e tipo" in text
    assert "Indicatori per fondo e Fondazione" in text
    report = orjson.loads(_get(simulated, format="json"))
    years = next(
        f for f in report["indicators"]["funds"] if (f["fund"], f["site"]) == ("", "its-fi")
    )
    row = next(t.split() for t in lines if t.startswith("Tutti i fondi") and " its-fi " in t)
    assert row[6:8] == [str(years["users_per_year"][y]) for y in ("2025", "2026")]
    assert "Indicatori per semestre" in text and "2025-S2" in text and "2026-S1" in text
    pages = text.split("\f")[:-1]
    for n, page in enumerate(pages, start=1):
        assert re.search(rf"\b{n}\s*/\s*{len(pages)}$", page.rstrip()), n  # numbered pages


def test_the_xlsx_has_its_definitions_sheet_the_indicators_and_the_durability_series(
    simulated: Simulated,
) -> None:
    book = load_workbook(io.BytesIO(_get(simulated, format="xlsx")), read_only=True)
    names = book.sheetnames
    assert names[0] == "Definizioni"
    definitions = [r[0] for r in book["Definizioni"].iter_rows(values_only=True) if r[0]]
    assert any("RCR71" in str(d) for d in definitions)
    assert any("seme 1" in str(d) and "2.000 ricampionamenti" in str(d) for d in definitions)
    semesters = next(n for n in names if n.startswith("Indicatori per semestre"))
    rows = list(book[semesters].iter_rows(values_only=True))
    assert rows[0][:3] == ("Semestre", "Fondo", "Sede")
    assert {r[0] for r in rows[1:]} == {"2025-S2", "2026-S1"}
    assert all(isinstance(r[3], int) for r in rows[1:])  # numbers stay numbers
    durability = next(n for n in names if n.startswith("Utilizzo mensile nel periodo"))
    series = list(book[durability].iter_rows(values_only=True))
    assert len(series) == 1 + 25 * 5  # an asset a month


def test_the_csv_reads_back_with_every_table(simulated: Simulated) -> None:
    text = _get(simulated, format="csv", lang="en").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    titles = {r[0] for r in rows if len(r) == 1}
    for title in ("Use per Foundation", "Ranking (Foundations with sufficient coverage only)",
                  "External share", "Indicators per six-monthly window (ReGiS reporting)",
                  "Definitions"):  # fmt: skip
        assert title in titles, title


@pytest.fixture
def server(simulated: Simulated) -> Iterator[str]:
    with serve(simulated.api.config) as url:
        yield url


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_the_region_page_in_chromium_shows_ranking_flags_comparison_and_indicators(
    server: str, simulated: Simulated, tmp_path: Path
) -> None:
    from urllib.parse import urlencode

    region = simulated.region
    query = urlencode({**_window(region), **_pilot(region), "lang": "en"})
    url = f"{server}/region?key={simulated.api.tokens[Role.evaluator]}&{query}"
    dom = chromium(tmp_path, "--dump-dom", url, budget_ms=8000, timeout_s=120)
    assert dom.count("<svg") == 2  # sites, and the external share before and after
    for text in ("Ranking (Foundations with sufficient coverage only)",
                 "Not ranked: monitoring coverage below the threshold",
                 "Difference in differences (pilot minus controls)",
                 "What the comparison can and cannot show",
                 "Indicators per fund and Foundation", "format=pdf"):  # fmt: skip
        assert text in dom, text
    shot = tmp_path / "region.png"
    size = "--window-size=1200,2400"
    chromium(tmp_path, f"--screenshot={shot}", size, url, budget_ms=8000, timeout_s=120)
    with Image.open(shot) as image:
        assert image.size == (1200, 2400)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 20


def test_labmeter_report_scope_region_writes_the_report(
    simulated: Simulated, tmp_path: Path
) -> None:
    region = simulated.region
    config = tmp_path / "server.toml"
    config.write_text(
        f'[influx]\nurl = "{simulated.api.config.influx.url}"\ndatabase = "region_sim"\n'
        f'[api]\ninventory = "{simulated.inventory}"\n'
        f'[bookings]\nsources = "{simulated.workdir / "bookings.yaml"}"\n'
    )
    window = _window(region)
    out = tmp_path / "region.json"
    args = ["report", "-c", str(config), "--scope", "region", "--start", window["start"],
            "--end", window["end"], "--pilot-site", "its-fi", "--change",
            window["start"].replace("09-01", "11-03").replace("+02:00", "+01:00"),
            "--format", "json", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    found = orjson.loads(out.read_bytes())
    assert found["comparison"]["site"] == "its-fi"
    assert [s["site"] for s in found["ranking"]["apart"]] == ["its-si"]
    refused = CliRunner().invoke(app, [*args[:9], "--site", "its-fi"])
    assert refused.exit_code == 2 and "no --site" in refused.output
