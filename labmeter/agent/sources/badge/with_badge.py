"""A machine source plus a badge reader: the machine says what, the badge says who.

``[agent] source = "with_badge"``; ``[agent.options] machine = "grbl"`` names the machine
source, whose own options sit beside it; the reader's options are ``[agent.options.badge]``.
``close_session_after_idle_s`` ends a session nobody swiped out of once the machine has been
idle or off that long, so the next, unbadged use is not charged to the last user.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from labmeter.agent.meter import Reading
from labmeter.agent.sources import SOURCES, SourceEvent
from labmeter.agent.sources.badge.source import BadgeSource
from labmeter.agent.sources.options import Options
from labmeter.config import AgentConfig
from labmeter.errors import ConfigError


class WithBadge:
    def __init__(self, config: AgentConfig) -> None:
        opts = Options(config.options)
        machine = opts.string("machine")
        if machine not in SOURCES or machine in ("with_badge", "badge"):
            known = ", ".join(n for n in SOURCES if n not in ("with_badge", "badge"))
            raise ConfigError("agent.options.machine", f"{machine!r} is not one of {known}")
        own = ("machine", "badge", "close_session_after_idle_s")
        rest: dict[str, Any] = {k: v for k, v in config.options.items() if k not in own}
        self.close_after_s = opts.number("close_session_after_idle_s", 1800.0, minimum=0)
        self._active_t = time.monotonic()  # session start or last sign of work, if later
        self._session: tuple[str, str] | None = None
        self.badge = BadgeSource(config, opts.sub("badge"))
        try:
            self.machine = SOURCES[machine](dataclasses.replace(config, options=rest))
        except BaseException:
            self.badge.close()
            raise

    def poll(self) -> Reading:
        reading = self.machine.poll()
        now = time.monotonic()
        session = self.badge.session()
        # The idle clock restarts with each session and with any sign of work; unknown time
        # does not end a session either.
        if session != self._session or reading.state not in ("idle", "off"):
            self._session, self._active_t = session, now
        elif session is not None and 0 < self.close_after_s <= now - self._active_t:
            self.badge.end_session("idle", session)
            session = self._session = self.badge.session()
        metrics = {**reading.metrics, **self.badge.metrics()}
        user, category = session if session is not None else (None, "unknown")
        return dataclasses.replace(reading, user=user, category=category, metrics=metrics)

    def drain_events(self) -> list[SourceEvent]:
        events = self.badge.drain_events()
        session = self.badge.session()
        drain = getattr(self.machine, "drain_events", None)
        for event in drain() if drain is not None else []:
            if event.user is None and session is not None:
                event = dataclasses.replace(event, user=session[0], category=session[1])
            events.append(event)
        return events

    def close(self) -> None:
        self.machine.close()
        self.badge.close()
