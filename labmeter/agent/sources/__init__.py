"""Agent sources, registered by name. A source is anything with ``poll() -> Reading``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from labmeter.agent.meter import Reading
from labmeter.config import AgentConfig


@dataclass(frozen=True)
class SourceEvent:
    """Something a source saw happen (job start, badge, alarm); the runner publishes it."""

    type: str  # one of labmeter.contract.EVENT_TYPES
    data: dict[str, str | int | float | bool] = field(default_factory=dict)
    user: str | None = None  # a pseudonym, never a raw id
    category: str = "unknown"
    ts_ms: int | None = None  # None: when the runner drains it


class Source(Protocol):
    """What the agent needs from a source: a cheap, non-blocking look at the device now.

    Sources that see discrete happenings also implement ``drain_events() -> list[SourceEvent]``;
    the runner calls it after each poll when present.
    """

    def poll(self) -> Reading: ...

    def close(self) -> None: ...


def _pc(config: AgentConfig) -> Source:
    from labmeter.agent.sources.pc.source import PcSource

    return PcSource(config)


def _grbl(config: AgentConfig) -> Source:
    from labmeter.agent.sources.grbl.source import GrblSource

    return GrblSource(config)


def _marlin(config: AgentConfig) -> Source:
    from labmeter.agent.sources.marlin.source import MarlinSource

    return MarlinSource(config)


def _clamp(config: AgentConfig) -> Source:
    from labmeter.agent.sources.clamp.source import ClampSource

    return ClampSource(config)


def _modbus(config: AgentConfig) -> Source:
    from labmeter.agent.sources.modbus.source import ModbusSource

    return ModbusSource(config)


def _badge(config: AgentConfig) -> Source:
    from labmeter.agent.sources.badge.source import BadgeSource

    return BadgeSource(config)


def _with_badge(config: AgentConfig) -> Source:
    from labmeter.agent.sources.badge.with_badge import WithBadge

    return WithBadge(config)


def _prusalink(config: AgentConfig) -> Source:
    from labmeter.agent.sources.prusalink.source import PrusaLinkSource

    return PrusaLinkSource(config)


def _octoprint(config: AgentConfig) -> Source:
    from labmeter.agent.sources.octoprint.source import OctoPrintSource

    return OctoPrintSource(config)


def _moonraker(config: AgentConfig) -> Source:
    from labmeter.agent.sources.moonraker.source import MoonrakerSource

    return MoonrakerSource(config)


def _bambu(config: AgentConfig) -> Source:
    from labmeter.agent.sources.bambu.source import BambuSource

    return BambuSource(config)


def _with_clamp(config: AgentConfig) -> Source:
    from labmeter.agent.sources.clamp.with_clamp import WithClamp

    return WithClamp(config)


def _opcua(config: AgentConfig) -> Source:
    from labmeter.agent.sources.opcua.source import OpcUaSource

    return OpcUaSource(config)


def _mtconnect(config: AgentConfig) -> Source:
    from labmeter.agent.sources.mtconnect.source import MTConnectSource

    return MTConnectSource(config)


def _ur(config: AgentConfig) -> Source:
    from labmeter.agent.sources.ur.source import URSource

    return URSource(config)


def _s7(config: AgentConfig) -> Source:
    from labmeter.agent.sources.s7.source import S7Source

    return S7Source(config)


# name -> factory; factories import lazily so a PC agent never loads pyserial and vice versa.
SOURCES: dict[str, Callable[[AgentConfig], Source]] = {
    "pc": _pc,
    "grbl": _grbl,
    "marlin": _marlin,
    "clamp": _clamp,
    "modbus": _modbus,
    "badge": _badge,
    "with_badge": _with_badge,
    # Networked 3D printers (labmeter[printers] for the HTTP ones; bambu needs paho only).
    "prusalink": _prusalink,
    "octoprint": _octoprint,
    "moonraker": _moonraker,
    "bambu": _bambu,
    # Machines on the network: labmeter[opcua], labmeter[mtconnect], labmeter[s7]; ur needs none.
    "opcua": _opcua,
    "mtconnect": _mtconnect,
    "ur": _ur,
    "s7": _s7,
    "with_clamp": _with_clamp,  # a machine's protocol cross-checked by a clamp on its supply
}
