"""Bookings reconciled with measured use, against the simulated lab's ground truth, through
real Mosquitto, the collector (with its rollups) and real InfluxDB; the bookings go through
the iCalendar parser as the lab's booking system would export them."""

from __future__ import annotations

import dataclasses
import subprocess
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from labmeter.api.keys import Role
from labmeter.api.register import from_csv
from labmeter.config import BookingsConfig, Config
from labmeter.influx import InfluxV1
from labmeter.simulators import lab
from tests.api.client import Api, make_api
from tests.helpers import simulate_through_collector, utc_ms

pytestmark = pytest.mark.e2e
DEVICES = 10
PNRR = {"cnc-01", "cnc-04"}
PNRR_APPS = {"tia_portal"}
# Monday 27 October 2025 (the day after Rome's clocks went back) and Tuesday, ending at an odd
# minute within bookings: they are clipped to the window, and its last hour is cut.
END, HOURS, SEED = "2025-10-28T14:07+01:00", 30, 8


def _inventory(tmp_path: Path, site: str) -> Path:
    equipment = "\n".join(
        f"  - {{id: {d.topic.device}, site: {site}, lab: {d.topic.lab}, kind: {d.kind}"
        + (", fund: PNRR, cup: J14D22001230006" if d.topic.device in PNRR else "")
        + "}"
        for d in lab.layout(DEVICES, site)
    )
    path = tmp_path / "inventory.yaml"
    path.write_text(
        f"""version: 1
timezone: Europe/Rome
sites: [{{id: {site}}}]
labs:
  - {{id: lab-cad, site: {site}, name: Laboratorio CAD, hours: {{mon-fri: "08:30-18:30"}}}}
  - {{id: lab-fab, site: {site}, name: Fabbricazione, hours: {{mon-fri: "08:30-18:30"}}}}
equipment:
{equipment}
software:
  - {{id: tia_portal, site: {site}, seats: 4, fund: PNRR}}
"""
    )
    return path


@pytest.mark.parametrize("read", ["raw", "rollups"])
def test_every_reconciliation_figure_equals_the_ground_truth(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path, read: str
) -> None:
    """``rollups``: whole hours and days inside bookings from the collector's rollups, the
    edges from raw samples; ``raw``: raw samples only."""
    inventory = _inventory(tmp_path, uid)
    calendar = tmp_path / "prenotazioni.ics"
    truth, collector = simulate_through_collector(
        config, influx, devices=DEVICES, hours=HOURS, seed=SEED, end_ms=utc_ms(END),
        rollups=inventory if read == "rollups" else None, bookings_path=calendar, pnrr=PNRR,
        pnrr_apps=PNRR_APPS,
    )  # fmt: skip
    assert sum(collector.dead_letters.counts.values()) == 0
    sources = tmp_path / "bookings.yaml"
    sources.write_text(f"version: 1\ncalendars:\n  - {{file: {calendar.name}}}\n")
    config = dataclasses.replace(config, bookings=BookingsConfig(sources=str(sources)))
    api = make_api(config, tmp_path / "api", inventory)
    bounds = {"start": truth["start_ms"] // 1000, "end": truth["end_ms"] // 1000}
    got = api.get("/api/v1/bookings", **bounds)
    want = truth["reconciliation"]

    # The lab shows every case the evaluator asks about.
    outcomes = Counter(b["outcome"] for b in want["bookings"])
    assert outcomes.keys() == {"full", "partly", "no_show"}
    assert any(not b["devices"] or len(b["devices"]) > 3 for b in want["bookings"])
    assert any(b["end_ms"] > truth["end_ms"] for b in want["bookings"])  # clipped
    assert all(v["unbooked_s"] > 0 for v in want["labs"].values())
    assert {c["asset"] for c in want["commercial"]} >= {"cnc-01", "tia_portal"}
    assert want["company_without_commercial_booking"]

    rows = {b["uid"].split("#")[0]: b for b in got["bookings"]}
    assert rows.keys() == {b["uid"] for b in want["bookings"]}
    for b in want["bookings"]:
        row = rows[b["uid"]]
        assert row["devices"] == b["devices"], b["uid"]
        assert (row["booked_s"], row["booked_device_s"]) == (b["booked_s"], b["booked_device_s"])
        assert row["in_use_s"] == b["in_use_s"], b["uid"]
        assert row["in_use_by_category_s"] == b["in_use_by_category_s"], b["uid"]
        assert row["used_share"] == pytest.approx(b["used_share"], rel=1e-12)
        assert row["no_show"] == b["no_show"], b["uid"]
        assert (row["commercial"], row["reference"]) == (b["commercial"], b["reference"])
    assert sum(r["no_show"] for r in got["bookings"]) >= 2
    assert got["no_show_below"] == 0.10

    labs = {r["lab"]: r for r in got["labs"]}
    for name, want_lab in want["labs"].items():
        row = labs[name]
        for key in ("in_use_s", "booked_in_use_s", "unbooked_s", "unbooked_by_category_s"):
            assert row[key] == want_lab[key], (name, key)
        assert row["bookings"] == sum(1 for b in want["bookings"] if b["lab"] == name)
        assert row["no_shows"] == sum(
            1 for b in want["bookings"] if b["lab"] == name and b["no_show"]
        )

    commercial = sorted(
        (c["booking"].split("#")[0], c["reference"], c["asset"], c["device"], c["in_use_s"])
        for c in got["commercial"]
    )
    assert commercial == sorted(
        (c["booking"], c["reference"], c["asset"], c["device"], c["in_use_s"])
        for c in want["commercial"]
    )
    assert {c["device"]: c["in_use_s"] for c in got["company_without_commercial_booking"]} == want[
        "company_without_commercial_booking"
    ]
    assert got["outside_organisations"] == len(want["outside_organisations"])

    if read == "rollups":
        _check_register(api, uid, tmp_path)
        _check_report(api, bounds, got)

    by_org = {r["name"]: r for r in got["organisations"]}
    for org in {b["organisation"] for b in want["bookings"]}:
        mine = [b for b in want["bookings"] if b["organisation"] == org]
        assert by_org[org]["bookings"] == len(mine)
        assert by_org[org]["in_use_s"] == pytest.approx(sum(b["in_use_s"] for b in mine), abs=1e-3)


def _sessions(segments: list[lab.Segment], end_ms: int) -> list[tuple[int, int, str]]:
    """Runs of consecutive segments with one pseudonym: a session as the samples show it."""
    out: list[tuple[int, int, str]] = []
    bounds = [s.start_ms for s in segments[1:]] + [end_ms]
    for seg, seg_end in zip(segments, bounds, strict=True):
        if seg.user is None:
            continue
        if out and out[-1][1] == seg.start_ms and out[-1][2] == seg.user:
            out[-1] = (out[-1][0], seg_end, seg.user)
        else:
            out.append((seg.start_ms, seg_end, seg.user))
    return out


def _check_register(api: Api, site: str, tmp_path: Path) -> None:
    """The register of the CAD lab's Monday lists every session the timelines hold, in JSON,
    in the PDF (read back with pdftotext) and in a CSV that reads back the same."""
    day = (utc_ms("2025-10-27T00:00+01:00"), utc_ms("2025-10-28T00:00+01:00"))
    end = utc_ms(END)
    sim = lab.build_lab(DEVICES, end - HOURS * 3600_000, end, SEED, site)
    want = sorted(
        (a, b, dev.topic.device, user)
        for dev in sim.devices
        if dev.topic.lab == "lab-cad"
        for a, b, user in _sessions(dev.segments, end)
        if day[0] <= a < day[1]
    )
    assert len(want) >= 20
    params = {"lab": "lab-cad", "day": "2025-10-27"}
    reg = api.get("/api/v1/register", **params)
    (only,) = reg["days"]
    got = [(s["start_ms"], s["end_ms"], s["device"], s["user"]) for s in only["sessions"]]
    assert got == want
    assert only["totals"]["sessions"] == len(want)
    assert any(s["organisation"] for s in only["sessions"])
    assert any(not s["organisation"] for s in only["sessions"])  # walk-ins, overruns

    client = api.client_as(Role.evaluator)
    pdf = client.get("/api/v1/register", params={**params, "format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    (tmp_path / "register.pdf").write_bytes(pdf.content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "register.pdf"), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = [" ".join(line.split()) for line in text.splitlines()]
    rome = ZoneInfo("Europe/Rome")
    for a, b, device, user in want:
        start, finish = (
            datetime.fromtimestamp(t / 1000, rome).strftime("%H:%M:%S") for t in (a, b)
        )
        assert any(
            line.startswith(f"{start} {finish} {device}") and user in line for line in lines
        ), (start, device)
    assert "Registro di utilizzo" in text and "Firma" in text and "27/10/2025" in text

    csv = client.get("/api/v1/register", params={**params, "format": "csv"})
    assert csv.status_code == 200
    assert from_csv(csv.content.decode("utf-8")) == only["sessions"]


def _check_report(api: Api, bounds: dict[str, int], got: dict[str, Any]) -> None:
    """The report carries the same reconciliation, states commercial use only from the
    commercial bookings, and renders it in every format."""
    report = api.get("/api/v1/report", **bounds)
    assert report["bookings"]["labs"] == got["labs"]
    assert report["conclusions"]["commercial_use"] == got["commercial"]
    assert (
        report["conclusions"]["company_without_commercial_booking"]
        == got["company_without_commercial_booking"]
    )
    assert report["openness"]["outside_organisations"] == got["outside_organisations"]
    assert report["evidence"]["thresholds"]["no_show_below"] == 0.10
    client = api.client_as(Role.evaluator)
    for fmt in ("csv", "xlsx", "html", "pdf"):
        for lang in ("it", "en"):
            response = client.get("/api/v1/report", params={**bounds, "format": fmt, "lang": lang})
            assert response.status_code == 200, (fmt, lang)
    html = client.get("/api/v1/report", params={**bounds, "format": "html"}).text
    reference = got["commercial"][0]["reference"]
    assert "Uso commerciale dichiarato di beni PNRR" in html and reference in html
    assert "Mancate presenze" in html and "Copertura del monitoraggio" in html
