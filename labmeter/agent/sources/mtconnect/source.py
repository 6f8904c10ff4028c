"""MTConnect source: ``current`` once, then ``sample?from=`` with the agent's sequence numbers.

A thread asks the MTConnect agent (the machine's, e.g. a Haas NGC's on port 8082, or one
beside the machine) every ``poll_s`` for everything since the last sequence it saw, and
replays each observation in order, at its own timestamp (relative to the document's
``creationTime``, so the two clocks need not agree): no change between two polls is lost. A
new ``instanceId`` (the agent restarted) or a sequence already gone from its buffer starts
over from ``current``. Every answer is an answer; none for ``timeout_s``, or a connection
refused, makes the machine unobserved from its last answer on. Reconnects back off.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx

from labmeter.agent.clock import REAL_CLOCK, Clock
from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.mtconnect.protocol import Machine, Stream, StreamError, parse
from labmeter.agent.sources.options import Options
from labmeter.agent.sources.reconnect import Backoff
from labmeter.agent.sources.track import Seen, Track
from labmeter.config import AgentConfig, Secret
from labmeter.errors import ConfigError

log = logging.getLogger(__name__)


class OutOfStep(Exception):
    """The agent restarted or dropped what was asked for: start over from ``current``."""


class MTConnectSource:
    def __init__(self, config: AgentConfig, clock: Clock = REAL_CLOCK) -> None:
        opts = Options(config.options)
        opts.reject_unknown(
            {"url", "device", "poll_s", "count", "timeout_s", "request_timeout_s",
             "reconnect_s", "reconnect_max_s", "username", "password"}
        )  # fmt: skip
        url = opts.string("url").rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(opts.key("url"), f"{url!r} is not http(s)://host:port")
        device = opts.string("device", "") if "device" in config.options else ""
        self.base = f"{url}/{device}" if device else url
        self.poll_s = opts.number("poll_s", 2.0, minimum=0.05)
        self.count = opts.integer("count", 1000, minimum=1, maximum=100_000)
        request_timeout = opts.number("request_timeout_s", 5.0, minimum=0.1)
        self.track = Track(clock, opts.number("timeout_s", 3 * self.poll_s + request_timeout,
                                              minimum=0.1))  # fmt: skip
        self.lookback_s = self.track.timeout_s + self.poll_s + 2 * config.poll_s + 1.0
        auth = None
        if "username" in config.options:
            password = Secret(opts.string("password"))  # masked wherever it is shown
            auth = httpx.BasicAuth(opts.string("username"), password.reveal())
        # The CA bundle only for an https agent: on plain HTTP it would cost ~3 MB for nothing.
        self._http = httpx.Client(
            timeout=request_timeout,
            auth=auth,
            follow_redirects=False,
            verify=url.startswith("https://"),
        )
        self._backoff = Backoff(opts.number("reconnect_s", 1.0, minimum=0.01),
                                opts.number("reconnect_max_s", 60.0, minimum=0.01))  # fmt: skip
        self.counters = {"requests": 0, "errors": 0, "restarts": 0, "observations": 0}
        self.last_error = ""
        self.machine = Machine()
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labmeter-mtconnect", daemon=True)
        self._thread.start()

    # --- the runner's side ---------------------------------------------------------------

    def poll(self) -> Reading:
        return self.track.reading({f"mtconnect_{k}": float(v) for k, v in self.counters.items()})

    def drain_events(self) -> list[SourceEvent]:
        return self.track.drain_events()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._http.close()

    # --- the thread's side ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except (httpx.HTTPError, StreamError, OutOfStep) as exc:
                self._failed(exc)
            if isinstance(self._last_exc, OutOfStep):
                self.counters["restarts"] += 1
                continue  # straight back to current: the agent answers
            self.track.lost("disconnected")
            self._stop.wait(self._backoff.delay())

    _last_exc: BaseException | None = None

    def _failed(self, exc: BaseException) -> None:
        self._last_exc = exc
        if isinstance(exc, OutOfStep):
            log.info("MTConnect %s: %s; reading current again", self.base, exc)
            return
        self.counters["errors"] += 1
        reason = f"{type(exc).__name__}: {exc}"[:300]
        if reason != self.last_error:  # each new reason once, not every retry
            log.warning("MTConnect %s: %s", self.base, reason)
            self.last_error = reason

    def _get(self, path: str, params: dict[str, Any] | None = None) -> tuple[Stream, float]:
        self.counters["requests"] += 1
        response = self._http.get(f"{self.base}/{path}", params=params)
        received = self._clock.monotonic()
        try:
            stream = parse(response.content)
        except StreamError as exc:
            if exc.code in ("OUT_OF_RANGE", "OutOfRange"):
                raise OutOfStep(f"sequence gone from the buffer ({exc})") from exc
            if response.status_code != 200:
                raise StreamError(f"HTTP {response.status_code}: {exc}", exc.code) from exc
            raise
        self.track.answered(received)
        return stream, received

    def _follow(self) -> None:
        """``current``, then ``sample?from=`` until something goes wrong or the agent stops."""
        self._last_exc = None
        stream, _ = self._get("current")
        self.machine = Machine()
        for observation in stream.observations:
            self.machine.observe(observation)
        self._report(None)  # as of now: nothing before this connection was observed
        self._backoff.reset()
        self.last_error = ""
        instance, after = stream.instance_id, stream.next_sequence
        while not self._stop.wait(self.poll_s):
            while True:  # a full page means more is waiting
                stream, received = self._get("sample", {"from": after, "count": self.count})
                if stream.instance_id != instance:
                    raise OutOfStep(f"the agent restarted (instanceId {stream.instance_id})")
                if stream.first_sequence > after:
                    raise OutOfStep(f"sequences {after}..{stream.first_sequence - 1} are gone")
                # Observations stamped alike are one change (Execution and ControllerMode
                # written together): applied together, reported once.
                fresh = [o for o in stream.observations if o.sequence >= after]
                for i, observation in enumerate(fresh):
                    self.counters["observations"] += 1
                    self.machine.observe(observation)
                    if i + 1 < len(fresh) and fresh[i + 1].timestamp == observation.timestamp:
                        continue
                    ago = (stream.created - observation.timestamp).total_seconds()
                    self._report(received - max(0.0, ago))
                after = max(after, stream.next_sequence)
                if after > stream.last_sequence or self._stop.is_set():
                    break

    def _report(self, at: float | None) -> None:
        state, shown = self.machine.state()
        self.track.report(Seen(state, shown, self.machine.program), at=at)
