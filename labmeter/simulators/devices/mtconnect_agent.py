"""An MTConnect agent serving a simulated CNC's MTConnectStreams documents (``current`` and
``sample?from=&count=``) from a buffer of observations with sequence numbers, in the
namespace of MTConnect 1.3 or 2.0, behind a ``Gate``.

Script steps become what a Haas or Fanuc controller's agent shows: ``idle`` READY in
AUTOMATIC, ``setup`` ACTIVE in MANUAL (jogging, touching off tools), ``in_use`` ACTIVE in
AUTOMATIC, ``paused`` FEED_HOLD, ``alarm`` a Fault condition (the program STOPPED), ``off``
everything UNAVAILABLE.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

from labmeter.simulators.devices.network import Gate, LoopThread, free_port

DEVICE = "haas-vf2"
# step -> (Availability, Execution, ControllerMode, fault)
SHOWS: dict[str, tuple[str, str, str, bool]] = {
    "idle": ("AVAILABLE", "READY", "AUTOMATIC", False),
    "setup": ("AVAILABLE", "ACTIVE", "MANUAL", False),
    "in_use": ("AVAILABLE", "ACTIVE", "AUTOMATIC", False),
    "paused": ("AVAILABLE", "FEED_HOLD", "AUTOMATIC", False),
    "alarm": ("AVAILABLE", "STOPPED", "AUTOMATIC", True),
    "off": ("UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE", False),
}
ITEMS = {"avail": "Availability", "exec": "Execution", "mode": "ControllerMode",
         "program": "Program"}  # fmt: skip


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class MTConnectAgent:
    def __init__(
        self,
        version: str = "2.0",
        wall_ms: Callable[[], int] | None = None,
        port: int | None = None,
    ) -> None:
        self.version = version
        self.wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self.instance_id = str(int(time.time()))
        # (sequence, timestamp ms, item, value, condition code); sequence 1 first
        self.buffer: list[tuple[int, int, str, str, str]] = []
        self.first = 1
        self._lock = threading.Lock()
        self.state = ""
        self.requests = 0
        backend = free_port()
        self.http = ThreadingHTTPServer(("127.0.0.1", backend), self._handler())
        self.http.daemon_threads = True
        self._serve = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.loop = LoopThread("sim-mtconnect-gate")
        self.gate = Gate(self.loop, backend, port)
        self.set_state("idle")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gate.port}"

    def start(self) -> MTConnectAgent:
        self._serve.start()
        self.gate.open()
        return self

    def stop(self) -> None:
        self.gate.cut()
        self.http.shutdown()
        self.http.server_close()
        self.loop.close()

    def restart_agent(self) -> None:
        """The agent process restarts: a new instanceId, sequences start over at 1."""
        with self._lock:
            latest = {item: (value, code) for _, _, item, value, code in self.buffer}
            self.instance_id = str(int(self.instance_id) + 1)
            self.buffer, self.first = [], 1
            now = self.wall_ms()
            for item, (value, code) in latest.items():
                self._add(now, item, value, code)

    def set_state(self, state: str, program: str = "O1234") -> None:
        availability, execution, mode, fault = SHOWS[state]
        with self._lock:
            now = self.wall_ms()  # one timestamp: one change of the machine
            self.state = state
            self._add(now, "avail", availability)
            self._add(now, "exec", execution)
            self._add(now, "mode", mode)
            self._add(now, "program", program if availability == "AVAILABLE" else "UNAVAILABLE")
            self._add(now, "logic", "Fault" if fault else "Normal", "1010" if fault else "")

    def apply(self, step: str) -> None:
        if step == "disconnect":
            self.gate.cut()
        elif step == "reconnect":
            self.gate.mend()
        else:
            self.set_state(step)

    def _add(self, ts: int, item: str, value: str, code: str = "") -> None:
        latest = next((b for b in reversed(self.buffer) if b[2] == item), None)
        if latest is not None and (latest[3], latest[4]) == (value, code):
            return  # MTConnect reports changes only
        seq = self.buffer[-1][0] + 1 if self.buffer else self.first
        self.buffer.append((seq, ts, item, value, code))

    # --- documents -----------------------------------------------------------------------

    def document(self, path: str, query: dict[str, list[str]]) -> tuple[int, str]:
        with self._lock:
            last = self.buffer[-1][0]
            if path.endswith("/current"):
                latest: dict[str, tuple[int, int, str, str, str]] = {}
                for entry in self.buffer:
                    latest[entry[2]] = entry
                return 200, self._streams(sorted(latest.values()), last + 1, last)
            if path.endswith("/sample"):
                try:
                    start = int(query.get("from", [str(self.first)])[0])
                    count = int(query.get("count", ["100"])[0])
                except ValueError:
                    return 400, self._error("INVALID_REQUEST", "from and count are integers")
                if start < self.first or start > last + 1:
                    return 404, self._error(
                        "OUT_OF_RANGE", f"from must be in {self.first}..{last + 1}"
                    )
                picked = [e for e in self.buffer if e[0] >= start][:count]
                nxt = picked[-1][0] + 1 if picked else start
                return 200, self._streams(picked, nxt, last)
            return 404, self._error("UNSUPPORTED", f"{path} is not current or sample")

    def _ns(self, kind: str) -> str:
        return f"urn:mtconnect.org:{kind}:{self.version}"

    def _error(self, code: str, text: str) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<MTConnectError xmlns="{self._ns("MTConnectError")}">'
            f'<Header creationTime="{_iso(self.wall_ms())}" instanceId="{self.instance_id}" '
            f'sender="sim" version="{self.version}"/><Errors><Error errorCode="{code}">'
            f"{escape(text)}</Error></Errors></MTConnectError>"
        )

    def _streams(self, entries: list[tuple[int, int, str, str, str]], nxt: int, last: int) -> str:
        events, conditions = [], []
        for seq, ts, item, value, code in entries:
            stamp = f'dataItemId="{item}" timestamp="{_iso(ts)}" sequence="{seq}"'
            if item == "logic":
                native = f' nativeCode="{code}"' if code else ""
                conditions.append(f'<{value} {stamp} type="LOGIC_PROGRAM"{native}/>')
            else:
                events.append(f"<{ITEMS[item]} {stamp}>{escape(value)}</{ITEMS[item]}>")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<MTConnectStreams xmlns="{self._ns("MTConnectStreams")}">'
            f'<Header creationTime="{_iso(self.wall_ms())}" sender="sim" '
            f'instanceId="{self.instance_id}" '
            f'version="{self.version}" bufferSize="1048576" nextSequence="{nxt}" '
            f'firstSequence="{self.first}" lastSequence="{last}"/>'
            f'<Streams><DeviceStream name="{DEVICE}" uuid="{DEVICE}">'
            f'<ComponentStream component="Controller" componentId="ctrl">'
            f"<Events>{''.join(events)}</Events><Condition>{''.join(conditions)}</Condition>"
            f"</ComponentStream></DeviceStream></Streams></MTConnectStreams>"
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                agent.requests += 1
                url = urlparse(self.path)
                status, body = agent.document(url.path, parse_qs(url.query))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet

        return Handler
