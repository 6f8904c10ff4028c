"""A machine source plus a badge reader: the machine says what, the badge says who.

``[agent] source = "with_badge"``; ``[agent.options] machine = "grbl"`` names the machine
source, whose own options sit beside it; the reader's options are ``[agent.options.badge]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agent.meter import Reading
from agent.sources import SOURCES, SourceEvent
from agent.sources.badge.source import BadgeSource
from agent.sources.options import Options
from labmeter.config import AgentConfig
from labmeter.errors import ConfigError


class WithBadge:
    def __init__(self, config: AgentConfig) -> None:
        opts = Options(config.options)
        machine = opts.string("machine")
        if machine not in SOURCES or machine in ("with_badge", "badge"):
            known = ", ".join(n for n in SOURCES if n not in ("with_badge", "badge"))
            raise ConfigError("agent.options.machine", f"{machine!r} is not one of {known}")
        rest: dict[str, Any] = {
            k: v for k, v in config.options.items() if k not in ("machine", "badge")
        }
        self.badge = BadgeSource(config, opts.sub("badge"))
        try:
            self.machine = SOURCES[machine](dataclasses.replace(config, options=rest))
        except BaseException:
            self.badge.close()
            raise

    def poll(self) -> Reading:
        reading = self.machine.poll()
        metrics = {**reading.metrics, **self.badge.metrics()}
        session = self.badge.session()
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
