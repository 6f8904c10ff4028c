"""A window of InfluxDB as gzipped line protocol, and back: exact, field types included.

Read with InfluxQL (the one read path, DESIGN.md) in chunked responses so a year does not
sit in memory; field types come from ``SHOW FIELD KEYS`` because JSON cannot tell the float
3600.0 from the integer 3600. Times in nanoseconds, so nothing is rounded either way.
"""

from __future__ import annotations

import dataclasses
import gzip
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from labmeter import influxql, sessions
from labmeter.config import InfluxConfig
from labmeter.errors import EvidenceError, WriteError
from labmeter.influx import InfluxV1, line
from labmeter.influxql import STAR, select
from labmeter.schema import BOOKKEEPING, DERIVED, EVENT, SAMPLE, STATUS, Calendar, Measurement

CHUNK_ROWS = 50_000
THREADS = 3
WRITE_LINES = 20_000
RETRIES = 6
# The report reads these up to the window's end from any time before (which devices were
# seen, their agent versions): kept from the last point of each series before the window on,
# so that the report rebuilt from the package reads what the report issued read.
STATE = (STATUS.name,)
# A restored file is hostile input until it verifies: a line labmeter writes is a few hundred
# bytes (a message is at most 64 KiB), and level-1 gzip shrinks line protocol about tenfold,
# where a gzip bomb shrinks a thousandfold.
MAX_LINE_BYTES = 1 << 20
MAX_RATIO = 100


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


_INTEGERS = frozenset({"integer", "unsigned"})


def _formatter(kinds: set[str]) -> Callable[[object], str]:
    """How a field's JSON values are written back: JSON gives the float 3600.0 as 3600, so
    numbers take the field's stored type (a field typed differently in two shards keeps
    each value's own)."""
    integer = bool(kinds & _INTEGERS)

    def fmt(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return f"{value}i" if integer else repr(float(value))
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        raise ValueError(f"unexpected JSON value {value!r}")

    return fmt


def _prefix(measurement: str, tags: dict[str, str]) -> str:
    """Measurement and tags as ``line()`` writes them (the one line-protocol writer)."""
    return line(measurement, tags, {"f": 0}, 0).removesuffix(" f=0i 0")


def _key(field: str) -> str:
    return line("m", {}, {field: 0}, 0).removeprefix("m ").removesuffix("=0i 0")


def measurements(influx: InfluxV1) -> list[str]:
    """What a package holds: not the bookkeeping, and not the rollups that only sum others
    (``schema.DERIVED``): they doubled a year's package and its close time, and verify sums
    them again from the archived device and app rollups with the collector's own code."""
    found = [str(r[0]) for s in influx.query(influxql.show_measurements()) for r in s.values]
    left_out = {m.name for m in (*BOOKKEEPING, *DERIVED)}
    return sorted(m for m in found if m not in left_out)


def window_of(measurement: str, start_ms: int, end_ms: int, calendar: Calendar) -> tuple[int, int]:
    """The points of a measurement that belong to the window: a monthly rollup only when its
    whole month lies inside (the rest of the window is read from daily ones)."""
    # Sessions of the window's edges are found with the hour of samples before it and the
    # events of its whole local days (labmeter/sessions.py): the report is rebuilt from them.
    if measurement == SAMPLE.name:
        return sessions.sample_range(start_ms, end_ms)
    if measurement == EVENT.name:
        return sessions.event_range(start_ms, end_ms, calendar)
    if measurement.endswith("_monthly"):
        month = calendar.month_of(end_ms)
        return start_ms, end_ms if month == end_ms else month
    return start_ms, end_ms


class Dumper:
    """Reads a window of InfluxDB as line protocol."""

    def __init__(self, config: InfluxConfig, calendar: Calendar) -> None:
        self.config = config
        self.calendar = calendar  # the rollups' days and months
        # One client for every thread (httpx's pool is thread-safe), patient with a year.
        self.influx = InfluxV1(dataclasses.replace(config, timeout_s=max(120.0, config.timeout_s)))

    def close(self) -> None:
        self.influx.close()

    def queries(self, measurement: str, start_ms: int, end_ms: int, site: str = "") -> list[str]:
        """The InfluxQL reading a measurement's points of the window, in time order.

        One query for the whole window: InfluxDB 1.6 pays per series and field for every
        query, and 30-day slices of a year cost it 2-3 times the CPU of one query."""
        a, b = window_of(measurement, start_ms, end_ms, self.calendar)
        every = select(STAR, source=Measurement(measurement, (), ())).where(site=site or None)
        out = [str(every.between(a, b).group_by(STAR))]
        if measurement in STATE:
            out.insert(0, str(every.before(a).group_by(STAR).last()))
        return out

    def lines(self, measurement: str, kinds: dict[str, set[str]], influxql: str) -> Iterator[str]:
        for series in self.influx.stream(influxql, CHUNK_ROWS):
            # Per series, not per point: the tags, keys and formatters are the same.
            prefix = _prefix(measurement, series.tags)
            fields = [(_key(c), _formatter(kinds.get(c, set()))) for c in series.columns[1:]]
            for row in series.values:
                parts = [
                    f"{key}={fmt(v)}"
                    for (key, fmt), v in zip(fields, row[1:], strict=True)
                    if v is not None
                ]
                if parts:
                    yield f"{prefix} {','.join(parts)} {row[0]}"

    def _file(
        self,
        path: Path,
        measurement: str,
        queries: list[str],
        progress: Callable[[str, int], None],
    ) -> int:
        """One measurement into its file; the points written (the file is removed if none).

        gzip level 1: a third of level 6's CPU for about a quarter more bytes. mtime=0: the
        same data give the same bytes, and the same hash, on every close.
        """
        kinds = _types(self.influx, measurement)
        points = 0
        with (
            path.open("wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as fh,
        ):
            batch: list[str] = []
            for q in queries:
                for text in self.lines(measurement, kinds, q):
                    batch.append(text)
                    if len(batch) >= 20_000:
                        fh.write(("\n".join(batch) + "\n").encode())
                        points += len(batch)
                        batch = []
                        progress(measurement, points)
            if batch:
                fh.write(("\n".join(batch) + "\n").encode())
                points += len(batch)
        progress(measurement, points)
        if not points:
            path.unlink()
        return points

    def dump(
        self,
        folder: Path,
        start_ms: int,
        end_ms: int,
        site: str = "",
        progress: Callable[[str, int], None] = lambda _m, _n: None,
    ) -> list[Exported]:
        """Every measurement's points of the window, one ``<measurement>.lp.gz`` each.

        ``THREADS`` measurements are read at a time, the hourly ones (the most points)
        first: InfluxDB 1.x encodes one query's answer on one core, and the answers are
        formatted here meanwhile.
        """
        folder.mkdir(parents=True, exist_ok=True)
        names = sorted(measurements(self.influx), key=lambda m: (not m.endswith("_hourly"), m))
        with ThreadPoolExecutor(THREADS) as pool:
            futures = {
                m: pool.submit(
                    self._file,
                    folder / f"{m}.lp.gz",
                    m,
                    self.queries(m, start_ms, end_ms, site),
                    progress,
                )
                for m in names
            }
            counts = {m: f.result() for m, f in futures.items()}
        return [Exported(m, folder / f"{m}.lp.gz", n) for m, n in sorted(counts.items()) if n]


def read_lines(path: Path) -> Iterator[str]:
    """The lines of a gzipped line-protocol file, bounded: none longer than
    ``MAX_LINE_BYTES``, and ``MAX_RATIO`` times the file's size in all; ``EvidenceError``
    names the file otherwise. Read a block at a time: a line can only outgrow the bound in
    the part carried from one block to the next, so only that part is measured."""
    limit = MAX_RATIO * path.stat().st_size + (1 << 20)
    total = 0
    carried = b""
    try:
        with gzip.open(path, "rb") as fh:
            while block := fh.read(MAX_LINE_BYTES):
                total += len(block)
                if total > limit:
                    raise EvidenceError(
                        f"{path.name}: decompresses to more than {MAX_RATIO} times its size: "
                        "refused (a gzip bomb?)"
                    )
                head, newline, carried_next = (carried + block).rpartition(b"\n")
                first = head.split(b"\n", 1)[0] if newline else b""
                if len(carried_next) > MAX_LINE_BYTES or len(first) > MAX_LINE_BYTES:
                    raise EvidenceError(
                        f"{path.name}: a line longer than {MAX_LINE_BYTES >> 20} MiB: refused"
                    )
                carried = carried_next
                if newline:
                    yield from filter(None, head.decode("utf-8").split("\n"))
            if carried:
                yield carried.decode("utf-8")
    except (OSError, EOFError, zlib.error) as exc:
        raise EvidenceError(f"{path.name}: not a gzip file that reads to its end ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise EvidenceError(f"{path.name}: not UTF-8 line protocol") from exc


def restore(
    config: InfluxConfig, files: list[Path], progress: Callable[[int], None] = lambda _n: None
) -> int:
    """Write the files' points (nanosecond times) into ``config``'s database; the count."""
    influx = InfluxV1(dataclasses.replace(config, timeout_s=max(120.0, config.timeout_s)))
    written = 0

    def send(lines: list[str]) -> None:
        for attempt in range(RETRIES):
            try:
                influx.write_lines(lines, precision="ns")
                return
            except WriteError as exc:
                if not exc.retryable or attempt + 1 == RETRIES:
                    raise
            # A loaded server times out a big write; the same points again are harmless.
            time.sleep(min(10.0, 0.5 * 2**attempt))

    try:
        for path in files:
            batch: list[str] = []
            for text in read_lines(path):
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
    finally:
        influx.close()
    return written
