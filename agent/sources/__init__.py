"""Agent sources, registered by name. A source is anything with ``poll() -> Reading``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from agent.meter import Reading
from labmeter.config import AgentConfig


class Source(Protocol):
    """What the agent needs from a source: a cheap, non-blocking look at the device now."""

    def poll(self) -> Reading: ...

    def close(self) -> None: ...


def _pc(config: AgentConfig) -> Source:
    from agent.sources.pc.source import PcSource

    return PcSource(config)


# name -> factory; factories import lazily so a PC agent never loads pyserial and vice versa.
SOURCES: dict[str, Callable[[AgentConfig], Source]] = {"pc": _pc}
