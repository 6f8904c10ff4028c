"""Closed reporting periods, kept in InfluxDB where every collector and the API already read.

A closure is one point of ``closed_period`` (time = its id, tag ``site`` when it closes one
site only). InfluxDB rather than a shared file: collectors on several hosts sharing one
subscription need no shared file system, the closures survive restarts and are backed up
with the data, and nothing else has to be deployed. Agents never write to InfluxDB (only
the collector does), so a device credential cannot reopen a period.

Collectors say what they have applied through ``collector_heartbeat`` (one point per
collector run, overwritten every few seconds); ``labmeter period close`` waits until every
live collector has applied a new closure and owes no rollup inside it before it exports.
Refused messages are counted in ``refusals`` so that a report can state them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from labmeter.influx import FieldValue, InfluxV1, QueryResult, line
from labmeter.influxql import STAR, Select, agg, select
from labmeter.schema import CLOSED_PERIOD, COLLECTOR_HEARTBEAT, REFUSALS
from labmeter.sessions import SESSION_LOOK_BACK_MS
from labmeter.timeparse import iso

CLOSED: Final = CLOSED_PERIOD.name
HEARTBEAT: Final = COLLECTOR_HEARTBEAT.name

State = Literal["closing", "closed", "withdrawn"]


@dataclass(frozen=True, slots=True)
class Closure:
    """``[start_ms, end_ms)`` closed for ``site`` ("" = every site) since ``id`` (epoch ms).

    ``closing`` while the evidence package is being written (messages are already refused),
    ``closed`` once it is complete, with the manifest's hash; ``withdrawn`` when a close lost
    the race to another close of an overlapping window (``owner``: the close that wrote it).
    """

    id: int
    start_ms: int
    end_ms: int
    site: str = ""
    state: State = "closing"
    manifest_sha256: str = ""
    archive: str = ""
    owner: str = ""

    def overlaps(self, start_ms: int, end_ms: int, site: str = "") -> bool:
        same_site = not self.site or not site or self.site == site
        return same_site and start_ms < self.end_ms and end_ms > self.start_ms

    @property
    def guarded_from_ms(self) -> int:
        """Where refusals begin: the hour before the period is closed with it, because its
        samples decide whether the period's first sessions began earlier
        (``sessions.sample_range``), and the package holds them."""
        return self.start_ms - SESSION_LOOK_BACK_MS

    def refuses(self, start_ms: int, end_ms: int, site: str = "") -> bool:
        """A message about ``[start, end)`` touches the period or the hour before it. A point
        takes its first millisecond however short its span: a zero-length span stamped at
        the period's first instant lies in it."""
        same_site = not self.site or not site or self.site == site
        end_ms = max(end_ms, start_ms + 1)
        return same_site and start_ms < self.end_ms and end_ms > self.guarded_from_ms

    def to_line(self) -> str:
        fields: dict[str, FieldValue] = {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "state": self.state,
            "manifest_sha256": self.manifest_sha256,
            "archive": self.archive,
            "owner": self.owner,
        }
        return line(CLOSED, {"site": self.site}, fields, self.id)

    def __str__(self) -> str:
        where = f" for site {self.site}" if self.site else ""
        return f"{iso(self.start_ms)} - {iso(self.end_ms)}{where} ({self.state})"


def closures_query() -> Select:
    return select(STAR, source=CLOSED_PERIOD).since(1)


def parse_closures(results: list[QueryResult], *, withdrawn: bool = False) -> list[Closure]:
    """The closures read; ``withdrawn`` ones (which refuse nothing) only when asked for."""
    out = []
    for series in results:
        for rec in series.records():
            state = rec.get("state")
            if state == "withdrawn" and not withdrawn:
                continue
            out.append(
                Closure(
                    id=int(rec["time"]),
                    start_ms=int(rec["start_ms"]),
                    end_ms=int(rec["end_ms"]),
                    site=str(rec.get("site") or ""),
                    state=state if state in ("closed", "withdrawn") else "closing",
                    manifest_sha256=str(rec.get("manifest_sha256") or ""),
                    archive=str(rec.get("archive") or ""),
                    owner=str(rec.get("owner") or ""),
                )
            )
    return sorted(out, key=lambda c: c.id)


def heartbeat_line(collector: str, run_ms: int, seen_ms: int, applied: int, owed: int) -> str:
    """A collector's word: alive at ``seen_ms``, writing under closures up to ``applied``,
    owing rollups from hour ``owed`` (-1: none)."""
    fields: dict[str, FieldValue] = {"seen_ms": seen_ms, "applied": applied, "owed_from_ms": owed}
    return line(HEARTBEAT, {"collector": collector}, fields, run_ms)


def heartbeats_query() -> Select:
    fields = ("seen_ms", "applied", "owed_from_ms")
    q = select(*(agg("last", f) for f in fields), source=COLLECTOR_HEARTBEAT).since(1)
    return q.group_by("collector")


def closure_of(influx: InfluxV1, start_ms: int, end_ms: int, site: str | None) -> Closure | None:
    """The closed period holding the whole window (for every site, or the window's site)."""
    for closure in parse_closures(influx.query(closures_query())):
        if (
            closure.start_ms <= start_ms
            and end_ms <= closure.end_ms
            and (not closure.site or closure.site == site)
        ):
            return closure
    return None


def refusals(influx: InfluxV1, start_ms: int, end_ms: int, site: str | None) -> dict[str, int]:
    """Messages the collectors refused while the window ran, by reason."""
    query = (
        select(agg("sum", "count"), source=REFUSALS)
        .between(start_ms, end_ms)
        .where(site=site)
        .group_by("reason")
    )
    out: dict[str, int] = {}
    for series in influx.query(str(query)):
        reason = series.tags.get("reason", "")
        out[reason] = out.get(reason, 0) + int(series.values[0][1] or 0)
    return dict(sorted(out.items()))
