"""A closed period's figures from its evidence package: sealed once, never rebuilt.

``labmeter period close`` seals the report of a period in its package (``report/report.json``)
and no sample inside it is accepted from then on, so building that report again for every
request is work thrown away. A request whose window is exactly a closed period (and whose
filters are the period's site, or none for a period of every site) is answered from the
package: its ``report.json`` is read through ``labmeter.archive.sealed`` (the manifest must hash
to what the closure in InfluxDB says, the file to what the manifest says), once per package,
and every format is rendered from it once and kept. The answer carries the closure as a live
build would (``fingerprint.closed``: state and manifest hash) and the header
``X-Labmeter-Sealed`` with the manifest's SHA-256.

A package the API cannot read (another host's archive, a hash that differs, another version's
report) is logged and the request is answered as any other, from the rollups, which a closure
freezes as well. A window that is a union of closed periods is built from the rollups too: the
distinct users, peak seats and devices per lab of two periods do not add up, and sums of the
packages' rounded seconds would differ from a read in the last digit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from labmeter.api.figures import GroupBy
from labmeter.api.plan import Filters
from labmeter.api.records import UtilisationRow
from labmeter.api.report.formats import Format, produce
from labmeter.api.report.model import ClosedPeriod, Report
from labmeter.api.report.texts import Lang
from labmeter.api.scope import Every
from labmeter.archive.sealed import REPORT_JSON, sealed_file
from labmeter.errors import EvidenceError
from labmeter.influx import InfluxV1
from labmeter.periods import Closure, closures_query, parse_closures

log = logging.getLogger(__name__)

SEALED_HEADER = "X-Labmeter-Sealed"  # the manifest's SHA-256 of a sealed answer
CLOSURES_TTL_S = 5.0  # the closures are read again at most this often
RETRY_S = 60.0  # a package that could not be read is tried again after this
RENDERED_MAX = 32  # rendered reports kept (formats x languages x periods)

_REPORT: TypeAdapter[Report] = TypeAdapter(Report)  # JSON's ISO dates back to dates


@dataclass(frozen=True)
class Sealed:
    """A closed period and its report as sealed, with the closure's state now."""

    closure: Closure
    report: Report


class ClosedReports:
    """The closed periods (read again every few seconds) and their sealed reports."""

    def __init__(
        self,
        influx: InfluxV1,
        archive_dir: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.influx = influx
        self.archive_dir = archive_dir  # where to look when a closure's own path is not here
        self.clock = clock
        self._lock = threading.Lock()
        self._closures: tuple[float, list[Closure]] = (float("-inf"), [])
        self._reports: dict[tuple[int, str], Report] = {}
        self._failed: dict[tuple[int, str], float] = {}
        self._rendered: OrderedDict[tuple[int, str, Format, Lang], bytes] = OrderedDict()

    def closures(self) -> list[Closure]:
        read_at, found = self._closures
        now = self.clock()
        if now - read_at >= CLOSURES_TTL_S:
            found = parse_closures(self.influx.query(closures_query()))
            self._closures = (now, found)
        return found

    def find(self, start_ms: int, end_ms: int, filters: Filters) -> Sealed | None:
        """The sealed report whose period is exactly this window, for these filters."""
        if filters.lab or filters.device:
            return None
        for closure in self.closures():
            if (
                closure.state == "closed"
                and closure.manifest_sha256
                and (closure.start_ms, closure.end_ms) == (start_ms, end_ms)
                and closure.site == (filters.site or "")
            ):
                report = self._report(closure)
                return Sealed(closure, report) if report is not None else None
        return None

    def render(self, sealed: Sealed, fmt: Format, lang: Lang) -> bytes:
        """The sealed report in ``fmt``, rendered once."""
        c = sealed.closure
        key = (c.id, c.manifest_sha256, fmt, lang)
        with self._lock:
            body = self._rendered.get(key)
            if body is not None:
                self._rendered.move_to_end(key)
                return body
        body = produce(sealed.report, fmt, lang)
        with self._lock:
            self._rendered[key] = body
            while len(self._rendered) > RENDERED_MAX:
                self._rendered.popitem(last=False)
        return body

    def _report(self, closure: Closure) -> Report | None:
        key = (closure.id, closure.manifest_sha256)
        with self._lock:
            found = self._reports.get(key)
            failed = self._failed.get(key)
        if found is not None:
            return found
        if failed is not None and self.clock() - failed < RETRY_S:
            return None
        try:
            data = sealed_file(self._folder(closure), REPORT_JSON, closure.manifest_sha256)
            report = _REPORT.validate_json(data)
        except (EvidenceError, ValidationError) as exc:
            log.warning("closed period %s answered from the rollups: %s", closure, exc)
            with self._lock:
                self._failed[key] = self.clock()
            return None
        # As a build of the window now would say it: the package's own copy says "closing"
        # (it was built before the manifest that seals it).
        report["evidence"]["fingerprint"]["closed"] = ClosedPeriod(
            start_ms=closure.start_ms,
            end_ms=closure.end_ms,
            site=closure.site,
            state=closure.state,
            manifest_sha256=closure.manifest_sha256,
        )
        with self._lock:
            self._reports[key] = report
            self._failed.pop(key, None)
        return report

    def _folder(self, closure: Closure) -> Path:
        own = Path(closure.archive)
        if own.is_dir() or not self.archive_dir:
            return own
        return Path(self.archive_dir) / own.name


def utilisation_rows(
    sealed: Sealed, group_by: GroupBy, every: Every | None
) -> list[UtilisationRow] | None:
    """The rows the sealed report holds as a read would make them: per device and per lab
    over the whole period (None for any other grouping: read from the rollups)."""
    if every is not None:
        return None
    if group_by is GroupBy.lab:
        return list(sealed.report["labs"])
    if group_by is GroupBy.device:
        return list(sealed.report["equipment"])
    return None
