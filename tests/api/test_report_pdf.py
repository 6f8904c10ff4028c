"""The PDF at a region's size: tables over many pages keep each row whole and their header."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from labmeter.api.plan import Filters
from labmeter.api.report.build import build
from labmeter.api.report.pdf import to_pdf
from labmeter.api.report.texts import Lang
from labmeter.api.scope import open_scope
from labmeter.influx import InfluxV1
from labmeter.inventory import load
from labmeter.opening import OpeningHours
from tests.api import lab_data as d
from tests.api.client import Api

USE_ROW = re.compile(r"pc-\d{3} .*%")  # a copied asset's line in section 4
pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def test_300_assets_keep_rows_whole_and_headers_on_every_page(lab_api: Api, tmp_path: Path) -> None:
    influx = InfluxV1(lab_api.config.influx)
    end = d.T0 + 24 * d.HOUR
    opening = OpeningHours(load(lab_api.config.api.inventory))
    scope = open_scope(influx, opening, d.T0, end, Filters(), end)
    report = build(scope)
    influx.close()
    pc1 = next(e for e in report["equipment"] if e["device"] == "pc-01")
    report["equipment"] = [pc1 | {"device": f"pc-{n:03d}"} for n in range(300)]

    text = _text(to_pdf(report, Lang.it), tmp_path)

    pages = text.split("\f")[:-1]  # pdftotext ends every page with a form feed
    assert len(pages) >= 10
    for n, page in enumerate(pages, start=1):
        assert page.rstrip().endswith(f"{n} / {len(pages)}")
    use = [line.split() for line in text.splitlines() if USE_ROW.match(line)]
    assert len(use) == 300  # section 4: one line per asset, its figures on it
    assert {tuple(row[1:9]) for row in use} == {
        ("lab-cad", "pc", "2,0", "0,0", "4,0", "50,0", "%", "3,0")
    }
    for page in pages:
        if any(USE_ROW.match(line) for line in page.splitlines()):
            assert "osservate" in page  # the header of section 4 ("Ore osservate") repeated
    assert "3. Disponibilità" in text  # the embedded font carries the accents
    assert "Andamento mensile del tasso di utilizzo" in text  # the charts' titles
    assert "Tasso di utilizzo = ore di utilizzo" in text  # the methodology
