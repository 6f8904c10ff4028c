"""A machine's own protocol cross-checked by a current clamp on its supply.

``[agent] source = "with_clamp"``; ``[agent.options] machine = "opcua"`` names the machine
source, whose own options sit beside it; the clamp's are ``[agent.options.clamp]``. The
machine's protocol gives the state, as alone; the clamp only checks it. Seconds in which the
protocol says ``in_use`` while the clamp says ``off`` (a machine reporting a job with its
spindle unpowered: a stale OPC UA server, an emulator left running, a wrong NodeId) are summed
per sample interval into the metric ``crosscheck_conflict_s``, with ``clamp_amps`` and
``clamp_state`` (the clamp's state as a number, ``CLAMP_CODES``) beside it; the report flags
a machine with such seconds. Time either side cannot see is no conflict.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from labmeter.agent.clock import REAL_CLOCK, Clock
from labmeter.agent.meter import Reading
from labmeter.agent.sources import SOURCES, SourceEvent
from labmeter.agent.sources.clamp.source import ClampSource
from labmeter.agent.sources.options import Options
from labmeter.config import AgentConfig
from labmeter.errors import ConfigError
from labmeter.schema import CROSSCHECK_CONFLICT

CLAMP_CODES = {"off": 0.0, "idle": 1.0, "in_use": 2.0}
NOT_MACHINES = ("with_badge", "with_clamp", "badge", "clamp", "pc")


class WithClamp:
    def __init__(self, config: AgentConfig, clock: Clock = REAL_CLOCK) -> None:
        opts = Options(config.options)
        machine = opts.string("machine")
        if machine not in SOURCES or machine in NOT_MACHINES:
            known = ", ".join(n for n in SOURCES if n not in NOT_MACHINES)
            raise ConfigError("agent.options.machine", f"{machine!r} is not one of {known}")
        rest: dict[str, Any] = {k: v for k, v in config.options.items()
                                if k not in ("machine", "clamp")}  # fmt: skip
        self.clock = clock
        self.interval_ms = config.interval_s * 1000
        self.clamp = ClampSource(dataclasses.replace(config, options=opts.table("clamp")))
        try:
            self.machine = SOURCES[machine](dataclasses.replace(config, options=rest))
        except BaseException:
            self.clamp.close()
            raise
        self.lookback_s = float(getattr(self.machine, "lookback_s", 0.0))
        self._window = -1  # the sample interval (wall clock) the conflict seconds belong to
        self._conflict_ms = 0
        self._last: tuple[int, bool] | None = None  # (wall ms, in conflict then)

    def poll(self) -> Reading:
        reading = self.machine.poll()
        clamp = self.clamp.poll()
        now = self.clock.wall_ms()
        window = now // self.interval_ms
        # What the last poll saw held until now: its conflict counts in this interval only.
        held = self._last is not None and self._last[1]
        if window != self._window:
            self._window = window
            self._conflict_ms = now - window * self.interval_ms if held else 0
        elif held and self._last is not None:
            self._conflict_ms += now - self._last[0]
        conflict = reading.state == "in_use" and clamp.state == "off"
        self._last = (now, conflict)
        metrics = {**reading.metrics, CROSSCHECK_CONFLICT: self._conflict_ms / 1000}
        if clamp.state is not None:
            metrics["clamp_state"] = CLAMP_CODES[clamp.state]
        if "current_a" in clamp.metrics:
            metrics["clamp_amps"] = clamp.metrics["current_a"]
        return dataclasses.replace(reading, metrics=metrics)

    def drain_events(self) -> list[SourceEvent]:
        drain = getattr(self.machine, "drain_events", None)
        return list(drain()) if drain is not None else []

    def close(self) -> None:
        self.machine.close()
        self.clamp.close()
