"""The collector's own health: Prometheus metrics and ``/healthz`` on one small HTTP server.

Each Collector has its own registry, so several collectors in one process (tests, the demo)
never share counters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

PREFIX = "labmeter_collector"


# Gauges every worker reports alike: the summed exposition takes their maximum.
SHARED_GAUGES = frozenset({f"{PREFIX}_closed_periods"})


def summed(texts: list[str]) -> bytes:
    """Prometheus text expositions added up sample by sample (same name and labels).

    Counters and histograms add up as they should; gauges become totals (``connected``: how
    many workers are connected, ``unacked``: messages unacked in all of them), but for
    SHARED_GAUGES. ``_created`` timestamps are left out: a sum of them means nothing.
    """
    families: dict[str, tuple[str, str]] = {}  # name -> (type, help), first seen order
    values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            families.setdefault(family.name, (family.type, family.documentation))
            rows = values.setdefault(family.name, {})
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                key = ((" name", sample.name), *sorted(sample.labels.items()))
                if sample.name in SHARED_GAUGES:
                    rows[key] = max(rows.get(key, 0.0), sample.value)
                else:
                    rows[key] = rows.get(key, 0.0) + sample.value
    out = []
    for name, (kind, doc) in families.items():
        out.append(f"# HELP {name} {doc}")
        out.append(f"# TYPE {name} {kind}")
        for key, value in values[name].items():
            sample_name = key[0][1]
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in key[1:])
            out.append(
                f"{sample_name}{{{labels}}} {value!r}" if labels else f"{sample_name} {value!r}"
            )
    return ("\n".join(out) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Counters the worker updates; ``received``/``acked``/``written_lines`` read them back."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received_total = Counter(f"{PREFIX}_received", "MQTT messages received", registry=r)
        self.acked_total = Counter(
            f"{PREFIX}_acked", "messages acked to the broker after their write", registry=r
        )
        self.confirmed_total = Counter(
            f"{PREFIX}_confirmed_rows",
            "agents' rows confirmed to them once written or dead-lettered",
            registry=r,
        )
        self.confirmations_total = Counter(
            f"{PREFIX}_confirmations",
            "confirmation messages published to agents (one per device and interval)",
            registry=r,
        )
        self.written_total = Counter(
            f"{PREFIX}_written_lines", "line-protocol lines written to InfluxDB", registry=r
        )
        self.rejected_total = Counter(
            f"{PREFIX}_rejected",
            "messages or lines sent to dead letters, by reason",
            ["reason"],
            registry=r,
        )
        self.write_errors_total = Counter(
            f"{PREFIX}_write_errors",
            "failed write attempts by HTTP status (0 = connection error)",
            ["status"],
            registry=r,
        )
        self.unacked = Gauge(
            f"{PREFIX}_unacked", "messages received and not yet acked (or given up)", registry=r
        )
        self.connected = Gauge(f"{PREFIX}_connected", "1 while connected to the broker", registry=r)
        self.write_held = Gauge(
            f"{PREFIX}_write_held",
            "1 while writes are refused for credentials (401/403): held, never dropped",
            registry=r,
        )
        self.batch_lines = Histogram(
            f"{PREFIX}_batch_lines",
            "lines per written batch",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000),
            registry=r,
        )
        self.batch_seconds = Histogram(
            f"{PREFIX}_batch_seconds",
            "time to write one batch, retries included (its acks follow)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.rollup_lag = Gauge(
            f"{PREFIX}_rollup_lag_seconds",
            "age of the oldest closed hour whose rollups are not yet recomputed",
            registry=r,
        )
        self.rollups_total = Counter(
            f"{PREFIX}_rollup_hours", "hourly rollups recomputed", registry=r
        )
        self.closed_periods = Gauge(
            f"{PREFIX}_closed_periods",
            "closed reporting periods applied (samples and events in them are refused)",
            registry=r,
        )
        self.catchup_days = Gauge(
            f"{PREFIX}_catchup_days",
            "local days of an older rollup layout (or hourly rollups only) still to bring up "
            "to date",
            registry=r,
        )
        self.catchup_total = Counter(
            f"{PREFIX}_catchup_done", "local days brought up to date by the catch-up", registry=r
        )

    def _value(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    @property
    def received(self) -> int:
        return int(self._value(f"{PREFIX}_received_total"))

    @property
    def acked(self) -> int:
        return int(self._value(f"{PREFIX}_acked_total"))

    @property
    def unacked_now(self) -> int:
        return int(self._value(f"{PREFIX}_unacked"))

    @property
    def written_lines(self) -> int:
        return int(self._value(f"{PREFIX}_written_lines_total"))

    def write_errors(self, status: int) -> int:
        return int(self._value(f"{PREFIX}_write_errors_total", {"status": str(status)}))


class HealthServer:
    """``GET /metrics`` (Prometheus text) and ``GET /healthz`` (200 healthy, 503 with why not).

    ``exposition``: what ``/metrics`` serves instead of ``metrics``' own registry (the parent
    of ``--workers N`` serves the sum of its workers').
    """

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        health: Callable[[], list[str]],
        exposition: Callable[[], bytes] | None = None,
    ) -> None:
        registry = metrics.registry
        render = exposition or (lambda: generate_latest(registry))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, render(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    problems = health()
                    body = ("\n".join(problems) if problems else "ok").encode() + b"\n"
                    self._reply(503 if problems else 200, body, "text/plain; charset=utf-8")
                else:
                    self._reply(404, b"not found: try /metrics or /healthz\n", "text/plain")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Scrapes every few seconds would flood the log."""

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="collector-health", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
