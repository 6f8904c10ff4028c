"""Booking feeds served by an adversary: redirects to internal pages, endless or huge replies,
errors whose text must not be echoed, and URLs that carry a secret token.

Real HTTP servers on loopback. The feed's host is ``localhost``, which the sources file
allows by name (``allow_hosts``); the internal page lives at ``127.0.0.1``, which it does not.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.server
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labmeter.bookings import Bookings
from labmeter.bookings.fetch import shown_url
from labmeter.config import BookingsConfig, Config
from labmeter.evidence import bookings as archived_bookings
from labmeter.influx import InfluxV1
from labmeter.inventory import Inventory, parse
from tests.api.client import make_api
from tests.bookings.test_calendars import INVENTORY, WEEKLY, ics

SECRET = "internal-secret-42 root:x:0:0"
TOKEN = "tok-3f9a0c1d2e4b5a69"
WINDOW = {"start": "2025-10-01T00:00:00Z", "end": "2025-11-01T00:00:00Z"}

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class _Server:
    """A loopback HTTP server whose answer to every GET is ``handle``; counts its hits."""

    def __init__(self, handle: Handler) -> None:
        outer = self
        self.hits = 0

        class _H(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                handle(self)

            def log_message(self, *_args: object) -> None:
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], _Server]]:
    servers: list[_Server] = []

    def start(handle: Handler) -> _Server:
        servers.append(_Server(handle))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _reply(status: int, body: bytes, headers: dict[str, str] | None = None) -> Handler:
    def handle(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status, "Secret Reason Phrase" if status >= 400 else None)
        for key, value in (headers or {"Content-Type": "text/calendar"}).items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handle


def _redirect(location: str) -> Handler:
    return _reply(302, b"", {"Location": location})


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    return parse(INVENTORY, str(tmp_path / "inventory.yaml"))


def _sources(tmp_path: Path, url: str, allow: str = "[localhost]") -> Path:
    path = tmp_path / "bookings.yaml"
    path.write_text(
        f"version: 1\ncalendars:\n  - {{url: '{url}', site: its-prime, lab: lab-cad}}\n"
        f"allow_hosts: {allow}\n"
    )
    return path


def _everything(tmp_path: Path) -> str:
    """Every file under ``tmp_path`` (caches, copies, archives) as text."""
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file()
    )


def test_a_redirect_to_a_loopback_page_is_refused_and_its_text_appears_nowhere(
    tmp_path: Path,
    inventory: Inventory,
    serve: Callable[[Handler], _Server],
    config: Config,
    influx: InfluxV1,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The finding: the feed redirected to an internal page, which was fetched, failed the
    calendar checks, and the first line of its text was shown in ``/api/v1/bookings``."""
    caplog.set_level(logging.DEBUG)
    internal = serve(_reply(200, SECRET.encode(), {"Content-Type": "text/plain"}))
    for target in (
        f"http://127.0.0.1:{internal.port}/admin",  # another origin, not https, loopback
        f"https://127.0.0.1:{internal.port}/admin",  # https, but a loopback address
        f"http://localhost.:{internal.port}/admin",  # a name for loopback, not the one allowed
    ):
        feed = serve(_redirect(target))
        sources = _sources(tmp_path, f"http://localhost:{feed.port}/cad.ics")
        books = Bookings(sources, inventory, cache_dir=tmp_path / "cache")
        (state,) = books.refresh()
        assert "refused" in state.error and SECRET not in state.error, state.error
        assert internal.hits == 0  # never even asked

    config = dataclasses.replace(config, bookings=BookingsConfig(sources=str(sources),
                                 cache_dir=str(tmp_path / "cache")))  # fmt: skip
    api = make_api(config, tmp_path / "api", None)
    shown = [
        api.client.get(path, params=params, headers={"X-API-Key": api.tokens[role]}).text
        for path, params in (
            ("/api/v1/bookings", WINDOW),
            ("/api/v1/report", WINDOW),
            ("/api/v1/report", {**WINDOW, "format": "csv"}),
        )
        for role in api.tokens
    ]
    (tmp_path / "package").mkdir()
    archived_bookings.archive(books, tmp_path / "package", 0.1)
    assert "refused" in shown[0] or "refused" in "".join(shown)
    assert SECRET not in "".join(shown) + _everything(tmp_path) + caplog.text


def test_a_feed_url_with_a_token_is_shown_and_archived_redacted(
    tmp_path: Path,
    inventory: Inventory,
    serve: Callable[[Handler], _Server],
    config: Config,
    influx: InfluxV1,
) -> None:
    feed = serve(_reply(200, ics(WEEKLY).encode()))
    url = f"http://user:pw@localhost:{feed.port}/cad.ics?token={TOKEN}&x=1#frag"
    sources = _sources(tmp_path, url)
    books = Bookings(sources, inventory, cache_dir=tmp_path / "cache")
    (state,) = books.refresh()
    assert state.error == "" and state.name == f"http://localhost:{feed.port}/cad.ics?[redacted]"
    config = dataclasses.replace(config, bookings=BookingsConfig(sources=str(sources),
                                 cache_dir=str(tmp_path / "cache")))  # fmt: skip
    api = make_api(config, tmp_path / "api", None)
    evaluator = {"X-API-Key": api.tokens[list(api.tokens)[1]]}
    got = api.client.get("/api/v1/bookings", params=WINDOW, headers=evaluator).json()
    assert [f["url"] for f in got["feeds"]] == [shown_url(url)]
    report = api.client.get("/api/v1/report", params=WINDOW, headers=evaluator).text
    assert got["feeds"][0]["fetched_ms"] is not None and got["feeds"][0]["error"] == ""
    (tmp_path / "package").mkdir()
    meta = archived_bookings.archive(books, tmp_path / "package", 0.1)
    assert [c["url"] for c in meta["calendars"]] == [shown_url(url)]
    archived = _everything(tmp_path / "package")
    assert "BEGIN:VCALENDAR" in archived  # the calendar's copy is kept: verify reads it
    for text in (str(meta), archived, str(got), report):
        assert TOKEN not in text and "pw@" not in text


def test_errors_name_the_status_and_its_reason_never_the_reply(
    tmp_path: Path, inventory: Inventory, serve: Callable[[Handler], _Server]
) -> None:
    feed = serve(_reply(500, f"Traceback: {SECRET}".encode(), {"Content-Type": "text/plain"}))
    books = Bookings(_sources(tmp_path, f"http://localhost:{feed.port}/x"), inventory)
    (state,) = books.refresh()
    assert state.error == "HTTP 500 Internal Server Error"
    # A 200 that is no calendar: where its problems lie, never what they quote.
    page = serve(_reply(200, f"<html><title>{SECRET}</title></html>".encode()))
    books = Bookings(_sources(tmp_path, f"http://localhost:{page.port}/x"), inventory)
    (state,) = books.refresh()
    assert "not a calendar that passes its checks" in state.error and SECRET not in state.error


def test_a_private_address_is_refused_unless_allowed_by_name(
    tmp_path: Path, inventory: Inventory, serve: Callable[[Handler], _Server]
) -> None:
    feed = serve(_reply(200, ics(WEEKLY).encode()))
    url = f"http://localhost:{feed.port}/cad.ics"
    (state,) = Bookings(_sources(tmp_path, url, allow="[]"), inventory).refresh()
    assert "loopback, link-local or private address: refused" in state.error
    assert feed.hits == 0
    (state,) = Bookings(_sources(tmp_path, url), inventory).refresh()
    assert state.error == ""


def test_redirects_within_the_origin_are_followed_others_over_http_refused(
    tmp_path: Path, inventory: Inventory, serve: Callable[[Handler], _Server]
) -> None:
    calendar = ics(WEEKLY).encode()

    def moved(h: http.server.BaseHTTPRequestHandler) -> None:
        if h.path == "/old.ics":
            _redirect("/cad.ics")(h)
        else:
            _reply(200, calendar)(h)

    feed = serve(moved)
    books = Bookings(_sources(tmp_path, f"http://localhost:{feed.port}/old.ics"), inventory)
    (state,) = books.refresh()
    assert state.error == "" and len(books.between(0, 2**42)) == 4
    away = serve(_redirect(f"http://example.invalid/cad.ics?token={TOKEN}"))
    (state,) = Bookings(_sources(tmp_path, f"http://localhost:{away.port}/x"), inventory).refresh()
    assert state.error.startswith("a redirect to http://example.invalid/cad.ics?[redacted]")
    loop = serve(_redirect("/x"))
    (state,) = Bookings(_sources(tmp_path, f"http://localhost:{loop.port}/x"), inventory).refresh()
    assert state.error == "more than 5 redirects"


def test_a_reply_too_large_or_compressed_is_refused(
    tmp_path: Path, inventory: Inventory, serve: Callable[[Handler], _Server]
) -> None:
    big = serve(_reply(200, b"BEGIN:VCALENDAR\n" + b"X" * (2 << 20)))
    books = Bookings(
        _sources(tmp_path, f"http://localhost:{big.port}/x"), inventory, max_bytes=1 << 20
    )
    (state,) = books.refresh()
    assert state.error == "the reply is larger than 1,048,576 bytes: refused"
    bomb = gzip.compress(b"BEGIN:VCALENDAR\n" + b"X" * (64 << 20))
    zipped = serve(_reply(200, bomb, {"Content-Type": "text/calendar", "Content-Encoding": "gzip"}))
    books = Bookings(_sources(tmp_path, f"http://localhost:{zipped.port}/x"), inventory)
    (state,) = books.refresh()
    assert state.error == "a compressed reply, which was not asked for: refused"


def test_a_reply_that_never_ends_stops_at_the_total_deadline(
    tmp_path: Path, inventory: Inventory, serve: Callable[[Handler], _Server]
) -> None:
    stop = threading.Event()

    def drip(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/calendar")
        h.end_headers()
        while not stop.is_set():  # a byte now and then: no single read ever times out
            try:
                h.wfile.write(b"X")
                h.wfile.flush()
            except OSError:
                return
            time.sleep(0.05)

    feed = serve(drip)
    books = Bookings(
        _sources(tmp_path, f"http://localhost:{feed.port}/x"), inventory, timeout_s=1.0
    )
    found: list[str] = []
    worker = threading.Thread(target=lambda: found.extend(s.error for s in books.refresh()))
    worker.start()
    worker.join(60)  # without a total deadline it would never end
    stop.set()
    assert not worker.is_alive()
    assert found == ["no complete answer within 1 s"]
