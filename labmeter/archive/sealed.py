"""Reading one file of a sealed package: only when the package is the one a closure names.

The closure in InfluxDB keeps the SHA-256 of the manifest it sealed (``labmeter/periods.py``);
the manifest keeps the SHA-256 of every file. A file read through ``sealed_file`` is therefore
the file the period was closed with, byte for byte, without hashing the package's raw data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from labmeter.archive.manifest import MANIFEST
from labmeter.errors import EvidenceError

REPORT_JSON = "report/report.json"  # the report's figures, as the close built them


def sealed_file(folder: Path, path: str, manifest_sha256: str) -> bytes:
    """The bytes of ``path`` in the package at ``folder`` whose manifest hashes to
    ``manifest_sha256``; ``EvidenceError`` naming what differs otherwise."""
    try:
        body = (folder / MANIFEST).read_bytes()
    except OSError as exc:
        raise EvidenceError(f"{folder / MANIFEST}: cannot be read ({exc.strerror})") from exc
    digest = hashlib.sha256(body).hexdigest()
    if digest != manifest_sha256:
        raise EvidenceError(
            f"{folder / MANIFEST}: its SHA-256 is {digest}, the closure says {manifest_sha256}"
        )
    try:
        listed = {e["path"]: e["sha256"] for e in orjson.loads(body).get("files", [])}
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise EvidenceError(f"{folder / MANIFEST}: not a manifest ({exc})") from exc
    if path not in listed:
        raise EvidenceError(f"{path}: not in the manifest of {folder}")
    try:
        data = (folder / path).read_bytes()
    except OSError as exc:
        raise EvidenceError(f"{folder / path}: cannot be read ({exc.strerror})") from exc
    if hashlib.sha256(data).hexdigest() != listed[path]:
        raise EvidenceError(f"{folder / path}: its SHA-256 differs from the manifest's")
    return data
