"""A window of InfluxDB as gzipped line protocol, and back: exact, field types included.

Read with InfluxQL (the one read path, DESIGN.md) in chunked responses so a year does not
sit in memory; field types come from ``SHOW FIELD KEYS`` because JSON cannot tell the float
3600.0 from the integer 3600. Times in nanoseconds, so nothing is rounded either way.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from labmeter import influxql
from labmeter.config import InfluxConfig
from labmeter.errors import WriteError
from labmeter.influx import FieldValue, InfluxV1, line
from labmeter.influxql import STAR, Select, select
from labmeter.schema import BOOKKEEPING, STATUS, Calendar, Measurement

CHUNK_ROWS = 50_000
WRITE_LINES = 50_000
# Read as of the window's end, not "ever": the last status of each device before it begins.
STATE_BEFORE = (STATUS.name,)


@dataclass(frozen=True)
class Exported:
    measurement: str
    path: Path
    points: int


def _types(influx: InfluxV1, measurement: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for series in influx.query(influxql.show_field_keys(Measurement(measurement, (), ()))):
        for key, kind in series.values:
            out.setdefault(str(key), set()).add(str(kind))
    return out


def _value(value: object, kinds: set[str]) -> FieldValue:
    """A JSON value as the type InfluxDB stores: JSON writes the float 3600.0 as 3600."""
    if isinstance(value, bool | str):
        return value
    assert isinstance(value, int | float)
    if not kinds & {"integer", "unsigned"}:
        return float(value)
    if "float" not in kinds:
        return int(value)
    return value  # a field typed differently in two shards: the value's own type


def measurements(influx: InfluxV1) -> list[str]:
    found = [str(r[0]) for s in influx.query(influxql.show_measurements()) for r in s.values]
    return sorted(m for m in found if m not in {b.name for b in BOOKKEEPING})


def window_of(measurement: str, start_ms: int, end_ms: int, calendar: Calendar) -> tuple[int, int]:
    """The points of a measurement that belong to the window: a monthly rollup only when its
    whole month lies inside (the rest of the window is read from daily ones)."""
    if measurement.endswith("_monthly"):
        month = calendar.month_of(end_ms)
        return start_ms, end_ms if month == end_ms else month
    return start_ms, end_ms


class Dumper:
    """Streams InfluxQL results as line protocol."""

    def __init__(self, config: InfluxConfig, calendar: Calendar) -> None:
        self.config = config
        self.calendar = calendar  # the rollups' days and months
        self.influx = InfluxV1(config)
        auth = (config.username, config.password or "") if config.username else None
        self._http = httpx.Client(
            base_url=config.url, timeout=max(60.0, config.timeout_s), auth=auth
        )

    def close(self) -> None:
        self.influx.close()
        self._http.close()

    def _rows(self, query: Select) -> Iterator[tuple[dict[str, str], list[str], list[object]]]:
        params = {
            "q": str(query),
            "db": self.config.database,
            "epoch": "ns",
            "chunked": "true",
            "chunk_size": str(CHUNK_ROWS),
        }
        try:
            with self._http.stream("POST", "/query", data=params) as response:
                if response.status_code >= 300:
                    response.read()
                    raise WriteError(response.status_code, response.text[:500], retryable=False)
                for text in response.iter_lines():
                    if not text.strip():
                        continue
                    for result in orjson.loads(text).get("results", []):
                        if "error" in result:
                            raise WriteError(400, str(result["error"]), retryable=False)
                        for series in result.get("series", []):
                            tags = series.get("tags") or {}
                            columns = series["columns"]
                            for row in series["values"]:
                                yield tags, columns, row
        except httpx.HTTPError as exc:
            raise WriteError(0, f"{type(exc).__name__}: {exc}", retryable=True) from exc

    def lines(self, measurement: str, start_ms: int, end_ms: int, site: str = "") -> Iterator[str]:
        kinds = _types(self.influx, measurement)
        a, b = window_of(measurement, start_ms, end_ms, self.calendar)
        every = select(STAR, source=Measurement(measurement, (), ())).where(site=site or None)
        queries = [every.between(a, b).group_by(STAR)]
        if measurement in STATE_BEFORE:
            queries.insert(0, every.before(a).group_by(STAR).last())
        for q in queries:
            for tags, columns, row in self._rows(q):
                fields = {
                    c: _value(v, kinds.get(c, set()))
                    for c, v in zip(columns[1:], row[1:], strict=True)
                    if v is not None
                }
                if fields:
                    yield line(measurement, tags, fields, int(str(row[0])))

    def dump(
        self,
        folder: Path,
        start_ms: int,
        end_ms: int,
        site: str = "",
        progress: Callable[[str, int], None] = lambda _m, _n: None,
    ) -> list[Exported]:
        """Every measurement's points of the window, one ``<measurement>.lp.gz`` each."""
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for measurement in measurements(self.influx):
            path = folder / f"{measurement}.lp.gz"
            points = 0
            # mtime=0: the same data gives the same bytes (and the same hash) on every close.
            with (
                path.open("wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as fh,
            ):
                batch: list[str] = []
                for text in self.lines(measurement, start_ms, end_ms, site):
                    batch.append(text)
                    if len(batch) >= 10_000:
                        fh.write(("\n".join(batch) + "\n").encode())
                        points += len(batch)
                        batch = []
                        progress(measurement, points)
                if batch:
                    fh.write(("\n".join(batch) + "\n").encode())
                    points += len(batch)
            progress(measurement, points)
            if points:
                out.append(Exported(measurement, path, points))
            else:
                path.unlink()
        return out


def restore(
    config: InfluxConfig, files: list[Path], progress: Callable[[int], None] = lambda _n: None
) -> int:
    """Write the files' points (nanosecond times) into ``config``'s database; the count."""
    auth = (config.username, config.password or "") if config.username else None
    written = 0
    with httpx.Client(base_url=config.url, timeout=120.0, auth=auth) as client:

        def send(lines: list[bytes]) -> None:
            response = client.post(
                "/write",
                params={"db": config.database, "precision": "ns"},
                content=gzip.compress(b"\n".join(lines), compresslevel=1),
                headers={"Content-Encoding": "gzip"},
            )
            if response.status_code >= 300:
                raise WriteError(response.status_code, response.text[:500], retryable=False)

        for path in files:
            batch: list[bytes] = []
            with gzip.open(path, "rb") as fh:
                for raw in fh:
                    text = raw.rstrip(b"\n")
                    if not text:
                        continue
                    batch.append(text)
                    if len(batch) >= WRITE_LINES:
                        send(batch)
                        written += len(batch)
                        progress(written)
                        batch = []
            if batch:
                send(batch)
                written += len(batch)
                progress(written)
    return written
