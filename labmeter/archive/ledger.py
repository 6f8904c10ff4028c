"""The archive folder's own record of its closed periods, beside the packages.

A closure lives in InfluxDB, where every collector reads it, so whoever holds InfluxDB's
credentials could rewrite its end or its manifest hash. The archive folder keeps its own
record (``closed-periods.jsonl``: one line appended per close, never rewritten), and
``labmeter period list`` and ``period verify`` name every closure that differs from it. To
rewrite a closure unseen one must hold both the database and the archive folder, and even
then not the signing key nor the manifest hash cited with the report.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from labmeter.errors import EvidenceError
from labmeter.periods import Closure
from labmeter.timeparse import iso

RECORD = "closed-periods.jsonl"
_MAX_BYTES = 16 << 20


def append(archive: Path, closure: Closure) -> None:
    """Record a completed close (its package's folder name in ``archive``), on disk before
    the closure is marked closed in InfluxDB."""
    entry = {
        "id": closure.id,
        "start_ms": closure.start_ms,
        "end_ms": closure.end_ms,
        "start": iso(closure.start_ms),
        "end": iso(closure.end_ms),
        "site": closure.site,
        "manifest_sha256": closure.manifest_sha256,
        "package": Path(closure.archive).name,
    }
    fd = os.open(archive / RECORD, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, orjson.dumps(entry, option=orjson.OPT_SORT_KEYS) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def read(archive: Path) -> list[Closure]:
    """The closes recorded in ``archive`` (none when it has no record yet)."""
    path = archive / RECORD
    try:
        data = path.read_bytes()[:_MAX_BYTES]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot be read ({exc.strerror})") from exc
    out = []
    for n, raw in enumerate(data.splitlines(), start=1):
        try:
            e = orjson.loads(raw)
            out.append(
                Closure(
                    int(e["id"]),
                    int(e["start_ms"]),
                    int(e["end_ms"]),
                    str(e["site"]),
                    "closed",
                    str(e["manifest_sha256"]),
                    str(e["package"]),
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise EvidenceError(f"{path}:{n}: not a record of a closed period") from exc
    return out


def _shown(c: Closure) -> str:
    return f"{c} manifest {c.manifest_sha256 or '-'}"


def compare(closures: list[Closure], records: list[Closure]) -> dict[int, str]:
    """Each closure (by id) that differs from the archive's record, and why; records the
    database lacks are keyed by their id too."""
    found = {c.id: c for c in closures}
    out: dict[int, str] = {}
    for r in records:
        c = found.get(r.id)
        if c is None:
            out[r.id] = f"the archive records {_shown(r)}, the database has no such closure"
        elif (c.start_ms, c.end_ms, c.site, c.state, c.manifest_sha256) != (
            r.start_ms, r.end_ms, r.site, "closed", r.manifest_sha256,
        ):  # fmt: skip
            out[r.id] = f"the database says {_shown(c)}; the archive records {_shown(r)}"
    recorded = {r.id for r in records}
    for c in closures:
        if c.state == "closed" and c.id not in recorded:
            out[c.id] = f"closed in the database, but the archive folder has no record of {c}"
    return out
