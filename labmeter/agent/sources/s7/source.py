"""Siemens S7 source: the CPU's RUN/STOP and data-block values through python-snap7.

A thread connects (rack and slot from the config; the PLC must allow PUT/GET access), then
every ``poll_s`` reads the CPU's state from the system status list and each configured value.
S7comm has no push, so this polls; a read that fails or takes longer than the connection's
timeout drops the connection, and the PLC is unobserved from its last answer on. Reconnects
back off.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from snap7.client import Client

from labmeter.agent.clock import REAL_CLOCK, Clock
from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.options import Options
from labmeter.agent.sources.reconnect import Backoff
from labmeter.agent.sources.s7.protocol import SZL_CPU_STATE, cpu_state, decide, values
from labmeter.agent.sources.track import Seen, Track
from labmeter.config import AgentConfig

log = logging.getLogger(__name__)


class S7Source:
    def __init__(self, config: AgentConfig, clock: Clock = REAL_CLOCK) -> None:
        opts = Options(config.options)
        opts.reject_unknown({"host", "port", "rack", "slot", "values", "poll_s", "timeout_s",
                             "reconnect_s", "reconnect_max_s"})  # fmt: skip
        self.host = opts.string("host")
        self.port = opts.integer("port", 102, minimum=1, maximum=65535)
        self.rack = opts.integer("rack", 0, maximum=7)
        self.slot = opts.integer("slot", 1, maximum=31)  # S7-1200/1500: 1; S7-300: 2
        self.values = values(opts)
        self.poll_s = opts.number("poll_s", 1.0, minimum=0.05)
        self.track = Track(clock, opts.number("timeout_s", 3 * self.poll_s + 5.0, minimum=0.05))
        self.lookback_s = self.track.timeout_s + 2 * config.poll_s + 1.0
        self._backoff = Backoff(opts.number("reconnect_s", 1.0, minimum=0.01),
                                opts.number("reconnect_max_s", 60.0, minimum=0.01))  # fmt: skip
        self.counters = {"connects": 0, "errors": 0, "reads": 0}
        self.last_error = ""
        self.cpu = "UNKNOWN"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labmeter-s7", daemon=True)
        self._thread.start()

    def poll(self) -> Reading:
        return self.track.reading({f"s7_{k}": float(v) for k, v in self.counters.items()})

    def drain_events(self) -> list[SourceEvent]:
        return self.track.drain_events()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            client = Client()
            try:
                client.connect(self.host, self.rack, self.slot, self.port)
                self.counters["connects"] += 1
                self._session(client)
            except Exception as exc:  # snap7 raises RuntimeError, S7*Error, OSError alike
                if not self._stop.is_set():
                    self._failed(exc)
            finally:
                with contextlib.suppress(Exception):
                    client.disconnect()
            self.track.lost("disconnected")
            self._stop.wait(self._backoff.delay())

    def _failed(self, exc: BaseException) -> None:
        self.counters["errors"] += 1
        reason = f"{type(exc).__name__}: {exc}"[:300]
        if reason != self.last_error:
            log.warning("S7 %s:%d rack %d slot %d: %s", self.host, self.port, self.rack,
                        self.slot, reason)  # fmt: skip
            self.last_error = reason

    def _session(self, client: Client) -> None:
        first = True
        while first or not self._stop.wait(self.poll_s):
            first = False
            szl = client.read_szl(SZL_CPU_STATE, 0)
            self.cpu = cpu_state(bytes(szl.Data[: szl.Header.LengthDR]))
            read = []
            if self.cpu == "RUN":
                for value in self.values:
                    data = client.db_read(value.db, value.offset, value.size)
                    read.append((value, value.decode(bytes(data))))
            self.counters["reads"] += 1
            state, shown = decide(self.cpu, read)
            self.track.report(Seen(state, shown))
            self._backoff.reset()
            self.last_error = ""
