"""A real HTTP server in front of the real influxd that fails writes on cue, else forwards.

InfluxDB 1.6 itself gives real 400s and 404s; 413, 429, 5xx and 401 need a server that says
them on purpose. This one is a socket server the collector talks HTTP to, not a mock client.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

# Given the number of lines in a /write body, return (status, headers) to fail it, or None.
Rule = Callable[[int], tuple[int, dict[str, str]] | None]


@dataclass
class WriteSeen:
    at: float
    lines: int
    status: int


@dataclass
class Proxy:
    upstream: str
    rule: Rule = lambda _lines: None
    writes: list[WriteSeen] = field(default_factory=list)
    url: str = ""

    def fail_next(self, count: int, status: int, headers: dict[str, str] | None = None) -> None:
        """Fail the next ``count`` writes with ``status``, then forward again."""
        left = [count]

        def rule(_lines: int) -> tuple[int, dict[str, str]] | None:
            if left[0] <= 0:
                return None
            left[0] -= 1
            return status, headers or {}

        self.rule = rule


@contextmanager
def influx_proxy(upstream: str) -> Iterator[Proxy]:
    proxy = Proxy(upstream)
    client = httpx.Client(base_url=upstream, timeout=30)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/write"):
                raw = gzip.decompress(body) if self.headers.get("Content-Encoding") else body
                lines = len(raw.splitlines())
                with lock:
                    verdict = proxy.rule(lines)
                if verdict is not None:
                    status, headers = verdict
                    proxy.writes.append(WriteSeen(time.monotonic(), lines, status))
                    self._reply(status, b'{"error":"injected by the test proxy"}', headers)
                    return
            keep = ("content-type", "content-encoding", "authorization")
            response = client.request(
                method,
                self.path,
                content=body,
                headers={k: v for k, v in self.headers.items() if k.lower() in keep},
            )
            if self.path.startswith("/write"):
                proxy.writes.append(WriteSeen(time.monotonic(), lines, response.status_code))
            self._reply(response.status_code, response.content, {})

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._forward("GET")

        def do_POST(self) -> None:
            self._forward("POST")

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads ``proxy.writes`` instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        client.close()
