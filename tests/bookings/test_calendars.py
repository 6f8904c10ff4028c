"""Bookings from iCalendar and CSV: recurrences across DST, all-day events, feeds that go
away, and every malformed input answered with its file and line."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from labmeter.bookings import BookingError, Bookings, Defaults, check_file
from labmeter.bookings.ics import IcsCalendar
from labmeter.cli.main import app
from labmeter.inventory import Inventory, parse
from tests.helpers import utc_ms

ROME = ZoneInfo("Europe/Rome")
INVENTORY = """version: 1
timezone: Europe/Rome
sites: [{id: its-prime}]
labs:
  - {id: lab-cad, site: its-prime, hours: {mon-fri: "08:30-13:00, 14:00-18:30"}}
  - {id: lab-fab, site: its-prime, hours: {mon-fri: "08:00-19:00"}}
equipment:
  - {id: pc-01, site: its-prime, lab: lab-cad, kind: pc}
  - {id: pc-02, site: its-prime, lab: lab-cad, kind: pc}
  - {id: cnc-01, site: its-prime, lab: lab-fab, kind: cnc, fund: PNRR}
"""


def ics(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\n{e.strip()}\nEND:VEVENT\n" for e in events)
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//labmeter//test//EN\n{body}END:VCALENDAR\n"


WEEKLY = """UID:course-1
DTSTART;TZID=Europe/Rome:20251013T090000
DTEND;TZID=Europe/Rome:20251013T110000
RRULE:FREQ=WEEKLY;COUNT=5
EXDATE;TZID=Europe/Rome:20251103T090000
SUMMARY:Corso CAD
ORGANIZER;CN=IIS Leonardo da Vinci:mailto:segreteria@example.org
CATEGORIES:school
X-LABMETER-LAB:its-prime/lab-cad"""


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY)
    return parse(INVENTORY, str(path))


def test_weekly_rrule_with_exdate_keeps_local_time_across_october_dst() -> None:
    """Rome's clocks go back on 26 October 2025: the course stays at 09:00 local, which is
    07:00 UTC before and 08:00 UTC after; the EXDATE removes 3 November."""
    calendar = IcsCalendar(ics(WEEKLY), "cad.ics", Defaults(), ROME)
    assert calendar.check(None) == []
    got = calendar.between(utc_ms("2025-10-01T00:00+00:00"), utc_ms("2025-12-01T00:00+00:00"))
    starts = [datetime.fromtimestamp(b.start_ms / 1000, ROME).isoformat() for b in got]
    assert starts == [
        "2025-10-13T09:00:00+02:00",
        "2025-10-20T09:00:00+02:00",
        "2025-10-27T09:00:00+01:00",
        "2025-11-10T09:00:00+01:00",
    ]
    assert [b.start_ms for b in got][1:3] == [
        utc_ms("2025-10-20T07:00+00:00"),
        utc_ms("2025-10-27T08:00+00:00"),
    ]
    assert all(b.end_ms - b.start_ms == 2 * 3600_000 for b in got)
    first = got[0]
    assert (first.site, first.lab, first.devices) == ("its-prime", "lab-cad", ())
    assert (first.organisation, first.category, first.activity) == (
        "IIS Leonardo da Vinci",
        "school",
        "Corso CAD",
    )
    assert first.source == "cad.ics:4"  # the line of its BEGIN:VEVENT
    assert len({b.uid for b in got}) == 4  # each occurrence its own id


def test_a_moved_occurrence_replaces_the_rule_s_one() -> None:
    moved = """UID:course-1
RECURRENCE-ID;TZID=Europe/Rome:20251020T090000
DTSTART;TZID=Europe/Rome:20251021T140000
DTEND;TZID=Europe/Rome:20251021T150000
SUMMARY:Corso CAD (recupero)
CATEGORIES:school
ORGANIZER;CN=IIS Leonardo da Vinci:mailto:segreteria@example.org
X-LABMETER-LAB:its-prime/lab-cad"""
    calendar = IcsCalendar(ics(WEEKLY, moved), "cad.ics", Defaults(), ROME)
    got = calendar.between(utc_ms("2025-10-19T00:00+02:00"), utc_ms("2025-10-26T00:00+02:00"))
    assert [(b.start_ms, b.activity) for b in got] == [
        (utc_ms("2025-10-21T14:00+02:00"), "Corso CAD (recupero)")
    ]


def test_all_day_events_are_local_days_flagged_all_day() -> None:
    event = """UID:open-day
DTSTART;VALUE=DATE:20251027
DTEND;VALUE=DATE:20251029
SUMMARY:Open day
X-LABMETER-ORGANISATION:Agenzia Formativa Arno
X-LABMETER-CATEGORY:training_agency"""
    defaults = Defaults(site="its-prime", lab="lab-fab")
    calendar = IcsCalendar(ics(event), "fab.ics", defaults, ROME)
    assert calendar.check(None) == []
    (got,) = calendar.between(utc_ms("2025-10-01T00:00+00:00"), utc_ms("2025-11-01T00:00+00:00"))
    assert got.all_day
    assert (got.start_ms, got.end_ms) == (
        utc_ms("2025-10-27T00:00+01:00"),
        utc_ms("2025-10-29T00:00+01:00"),
    )
    assert (got.site, got.lab) == ("its-prime", "lab-fab")  # the calendar's defaults


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (ics(WEEKLY).replace("SUMMARY:Corso CAD", "SUMMARY Corso CAD"), 10, "not an iCalendar"),
        (ics(WEEKLY).replace("END:VEVENT\n", ""), 4, "BEGIN:VEVENT is never closed"),
        (ics(WEEKLY).replace("20251013T090000\n", "2025-10-13 09:00\n", 1), 6, "DTSTART"),
        (ics(WEEKLY).replace("its-prime/lab-cad", "its-prime/lab-xyz"), 13, "lab-xyz"),
        (ics(WEEKLY + "\nX-LABMETER-DEVICES:pc-01,pc-99"), 14, "'pc-99'"),
        (ics(WEEKLY).replace("CATEGORIES:school", "CATEGORIES:scuola"), 12, "category"),
        (ics(WEEKLY + "\nX-LABMETER-COMMERCIAL:TRUE"), 14, "reference"),
        (ics(WEEKLY).replace("T110000", "T080000"), 7, "ends before it starts"),
        ("hello\n", 1, "not an iCalendar"),
    ],
)
def test_malformed_calendars_say_file_and_line(
    inventory: Inventory, text: str, line: int, words: str
) -> None:
    calendar = IcsCalendar(text, "cad.ics", Defaults(), ROME)
    problems = calendar.check(inventory)
    assert problems, text
    assert any(p.startswith(f"cad.ics:{line}: ") and words in p for p in problems), problems


def test_csv_bookings_and_their_errors(tmp_path: Path, inventory: Inventory) -> None:
    good = tmp_path / "convenzioni.csv"
    good.write_text(
        "site;lab;devices;start;end;organisation;category;activity;commercial;reference\n"
        "its-prime;lab-fab;cnc-01;20/10/2025 14:30;20/10/2025 17:45;Officine Galilei srl;"
        "company;Prototipo;sì;CONV-2025-07\n"
        "its-prime;lab-cad;;2025-10-27;2025-10-27;ITI Meucci;school;Open day;no;\n"
    )
    problems, rows = check_file(good, inventory)
    assert (problems, rows) == ([], 2)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "site,lab,devices,start,end,organisation,category,commercial,reference\n"
        "its-prime,lab-fab,cnc-09,2025-10-20 14:30,2025-10-20 17:45,Galilei,company,yes,C-1\n"
        "its-prime,lab-zzz,,2025-10-20 14:30,2025-10-20 17:45,Galilei,company,no,\n"
        "its-prime,lab-fab,,2025-10-20 25:30,2025-10-20 17:45,Galilei,company,no,\n"
        "its-prime,lab-fab,,2025-10-20 14:30,2025-10-20 17:45,Galilei,company,forse,\n"
    )
    problems, _ = check_file(bad, inventory)
    assert [p.split(": ")[0] for p in problems] == [f"{bad}:{n}" for n in (2, 3, 4, 5)]
    assert "cnc-09" in problems[0] and "lab-zzz" in problems[1] and "forse" in problems[3]


def test_cli_check_exits_non_zero_with_file_line(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(INVENTORY)
    cal = tmp_path / "cad.ics"
    cal.write_text(ics(WEEKLY).replace("its-prime/lab-cad", "its-prime/lab-xyz"))
    result = CliRunner().invoke(app, ["bookings", "check", str(cal), "--inventory", str(inv)])
    assert result.exit_code == 1
    assert f"{cal}:13: lab its-prime/lab-xyz is not in the inventory" in result.output
    cal.write_text(ics(WEEKLY))
    result = CliRunner().invoke(app, ["bookings", "check", str(cal), "--inventory", str(inv)])
    assert result.exit_code == 0, result.output


class _Feed(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *_args: object) -> None:
        return None


@pytest.fixture
def feed_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_feed_unreachable_or_broken_keeps_the_last_good_copy_and_says_its_age(
    tmp_path: Path, inventory: Inventory, feed_server: http.server.ThreadingHTTPServer
) -> None:
    url = f"http://127.0.0.1:{feed_server.server_address[1]}/cad.ics"
    sources = tmp_path / "bookings.yaml"
    sources.write_text(
        f"version: 1\ncalendars:\n  - {{url: '{url}', name: cad, site: its-prime, lab: lab-cad}}\n"
        "allow_hosts: [127.0.0.1]\n"  # a feed on a loopback address: allowed by name
    )
    now = [utc_ms("2025-10-25T08:00+00:00") / 1000]
    books = Bookings(sources, inventory, clock=lambda: now[0])
    window = (utc_ms("2025-10-01T00:00+00:00"), utc_ms("2025-12-01T00:00+00:00"))
    (state,) = books.feed_states()
    assert (state.fetched_ms, state.error) == (None, "never fetched")
    assert books.between(*window) == []

    _Feed.body = ics(WEEKLY).encode()
    (state,) = books.refresh()
    assert state.error == "" and state.fetched_ms == now[0] * 1000
    assert len(books.between(*window)) == 4

    # A broken copy is refused: the last good one stays.
    now[0] += 3600
    _Feed.body = ics(WEEKLY).replace("its-prime/lab-cad", "its-prime/lab-xyz").encode()
    (state,) = books.refresh()
    assert "1 problem(s) (lines 13)" in state.error and "lab-xyz" not in state.error
    assert state.age_s(int(now[0] * 1000)) == 3600
    assert len(books.between(*window)) == 4

    # The server goes away: still the last good copy, two hours old now.
    feed_server.shutdown()
    feed_server.server_close()
    now[0] += 3600
    (state,) = books.refresh()
    assert state.error.startswith("unreachable")
    assert state.age_s(int(now[0] * 1000)) == 7200
    assert len(books.between(*window)) == 4
    # A server restarting reads the copy from its cache.
    again = Bookings(sources, inventory, clock=lambda: now[0])
    (state,) = again.feed_states()
    assert state.error.startswith("unreachable") and state.fetched_ms == (now[0] - 7200) * 1000
    assert len(again.between(*window)) == 4


def test_sources_file_with_a_bad_calendar_refuses_to_load(
    tmp_path: Path, inventory: Inventory
) -> None:
    (tmp_path / "cad.ics").write_text(ics(WEEKLY + "\nX-LABMETER-DEVICES:pc-77"))
    sources = tmp_path / "bookings.yaml"
    sources.write_text("version: 1\ncalendars:\n  - {file: cad.ics}\n  - {file: x.csv, bad: 1}\n")
    with pytest.raises(BookingError) as caught:
        Bookings(sources, inventory)
    assert caught.value.problems == [f"{sources}:4: unknown key 'bad' (known: category, file, "
                                     "lab, name, organisation, site, url)"]  # fmt: skip
    sources.write_text("version: 1\ncalendars:\n  - {file: cad.ics}\n")
    with pytest.raises(BookingError) as caught:
        Bookings(sources, inventory)
    assert caught.value.problems == [
        f"{tmp_path / 'cad.ics'}:14: device 'pc-77' is not in the inventory's lab its-prime/lab-cad"
    ]
