"""The report in every format, checked by reading each back with its own tools."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from labmeter.api.keys import Role
from labmeter.api.report.sheets import SHEET_NAME_MAX, sheet_name
from labmeter.cli.main import app
from tests.api import lab_data as d
from tests.api.client import Api

DAY = {"start": d.T0 // 1000, "end": (d.T0 + 24 * d.HOUR) // 1000}


def _get(api: Api, fmt: str, lang: str = "it") -> bytes:
    response = api.client.get(
        "/api/v1/report",
        params={**DAY, "format": fmt, "lang": lang},
        headers={"X-API-Key": api.tokens[Role.evaluator]},
    )
    assert response.status_code == 200, response.text
    return response.content


def test_json_report_has_the_nine_sections_and_the_figures(lab_api: Api) -> None:
    report = lab_api.get("/api/v1/report", **DAY)
    assert isinstance(report, dict)
    assert {"framework", "equipment", "availability", "labs", "licences", "users", "openness",
            "evidence", "conclusions"} <= report.keys()  # fmt: skip
    pc1 = next(e for e in report["equipment"] if e["device"] == "pc-01")
    assert pc1["utilisation"] == 0.5 and pc1["sessions"] == 1
    # 1,800 € over a PC's 5 years is 360 € a year; the window is one day of 2026's 365
    # (23 hours of 2 March and one of 3 March in Rome); pc-01 was in use 2 hours.
    assert pc1["cost_per_hour"] == pytest.approx(1800 / 5 / 365 / 2, rel=1e-12)
    assert report["users"]["quota_esterna"] == 1.0
    assert report["evidence"]["unregistered"] == [
        {"site": "its-prime", "lab": "lab-cad", "device": "pc-99"}
    ]
    assert report["evidence"]["agent_versions"] == [{"version": "0.1.0", "devices": 3}]
    assert report["evidence"]["never_seen"] == [
        {"site": "its-prime", "lab": "lab-cad", "device": "pc-03"}
    ]
    # pc-02 is PNRR-funded and a company used it, with no commercial booking behind it: that
    # is reported as company use, never as commercial use.
    assert report["conclusions"]["commercial_use"] == []
    (company,) = report["conclusions"]["company_without_commercial_booking"]
    assert (company["device"], company["in_use_s"] > 0) == ("pc-02", True)
    assert [u["device"] for u in report["conclusions"]["underused"]] == ["pc-02", "pc-03"]


def test_csv_parses_with_italian_numbers(lab_api: Api) -> None:
    text = _get(lab_api, "csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    header = rows.index(["4. Utilizzo per attrezzatura"]) + 1
    columns = rows[header]
    assert columns[:7] == ["Bene", "Laboratorio", "Tipo", "Ore di utilizzo in orario",
                           "Ore fuori orario", "Ore disponibili", "Tasso di utilizzo"]  # fmt: skip
    pc1 = dict(zip(columns, rows[header + 1], strict=True))
    assert (pc1["Bene"], pc1["Ore di utilizzo in orario"], pc1["Tasso di utilizzo"]) == (
        "pc-01",
        "2,0",
        "50,0 %",
    )
    assert pc1["Ore fuori orario"] == "0,0"
    assert pc1["Copertura del monitoraggio"] == "75,0 %"
    english = list(csv.reader(io.StringIO(_get(lab_api, "csv", "en").decode("utf-8-sig"))))
    assert ["4. Use per piece of equipment"] in english


def test_xlsx_opens_with_numbers_not_text(lab_api: Api) -> None:
    book = load_workbook(io.BytesIO(_get(lab_api, "xlsx")))
    sheet = book["4. Utilizzo per attrezzatura"]
    header = [c.value for c in sheet[1]]
    pc1 = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert pc1["Bene"] == "pc-01"
    assert pc1["Ore di utilizzo in orario"] == 2.0
    assert pc1["Tasso di utilizzo"] == 0.5
    assert sheet.cell(2, header.index("Tasso di utilizzo") + 1).number_format == "0.0%"
    assert "2. Inventario" in book.sheetnames


def test_html_has_sections_charts_and_italian_formats(lab_api: Api) -> None:
    html = _get(lab_api, "html").decode()
    for n, title in enumerate(["Quadro di riferimento", "Inventario", "Disponibilità",
                               "Utilizzo per attrezzatura", "Utenza", "Apertura", "Efficienza",
                               "Evidenze e metodo", "Conclusioni"], start=1):  # fmt: skip
        assert f"<h2>{n}. {title}</h2>" in html
    assert html.count("<svg") == 3
    assert "02/03/2026" in html  # Italian dates
    assert "1.800,00" in html  # Italian numbers: pc-01's cost
    assert "Tasso di utilizzo = ore di utilizzo in orario di apertura" in html
    assert "Utilisation = hours in use" in _get(lab_api, "html", "en").decode()


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
def test_pdf_text_contains_the_tables(lab_api: Api, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(_get(lab_api, "pdf"))
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "Rapporto di utilizzo" in text
    assert "4. Utilizzo per attrezzatura" in text
    line = next(row for row in text.splitlines() if row.strip().startswith("pc-01") and "%" in row)
    assert line.split()[:9] == ["pc-01", "lab-cad", "pc", "2,0", "0,0", "4,0", "50,0", "%", "3,0"]
    assert "Quota esterna" in text and "J19J21000120007" in text


def test_cli_report_writes_the_file(lab_api: Api, tmp_path: Path) -> None:
    out = tmp_path / "r.xlsx"
    cfg = lab_api.config
    env = {"LABMETER_INFLUX_URL": cfg.influx.url, "LABMETER_INFLUX_DATABASE": cfg.influx.database,
           "LABMETER_API_INVENTORY": cfg.api.inventory}  # fmt: skip
    result = CliRunner().invoke(
        app,
        ["report", "--start", str(DAY["start"]), "--end", str(DAY["end"]), "--format", "xlsx",
         "--out", str(out)],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_workbook(out)["4. Utilizzo per attrezzatura"]["A2"].value == "pc-01"


def test_report_months_agree_with_the_utilisation_endpoint(lab_api: Api) -> None:
    window = {"start": d.T0 // 1000 - 3 * 86400, "end": d.T0 // 1000 + 2 * 86400}
    report = lab_api.get("/api/v1/report", **window)
    endpoint = lab_api.get("/api/v1/utilisation", group_by="lab", every="month", **window)
    fields = ("in_use_s", "observed_s", "available_s", "utilisation", "coverage", "devices")
    assert len(report["months"]) == 2  # February and March, in Rome's calendar
    assert [[m[f] for f in fields] for m in report["months"]] == [
        [r[f] for f in fields] for r in endpoint
    ]
    # The unregistered pc-99's 600 s of student use are left out of openness.
    assert [m["in_use_s"] for m in report["openness"]["months"]] == [0, 9000]
    assert report["openness"]["months"][1]["quota_esterna"] == 1.0


def test_sheet_names_are_ones_excel_opens() -> None:
    used: set[str] = set()
    long = "6. Prenotazioni e utilizzo per organizzazione e categoria"
    names = [sheet_name(title, used) for title in [long] * 12 + ["a/b[c]:d*e?f\\g", "A/B"]]
    assert all(len(n) <= SHEET_NAME_MAX for n in names), names
    assert len({n.casefold() for n in names}) == len(names), names
    assert names[0] == long[:31] and names[11].endswith(" (12)")
    assert names[12] == "a-b-c--d-e-f-g" and names[13] == "A-B"
