"""Dead letters: every message or line we refuse, kept with its reason, counted, never silent."""

from __future__ import annotations

import base64
import os
import threading
from collections import Counter
from pathlib import Path
from typing import IO

import orjson

KEEP_BYTES = 4096  # enough to diagnose; an oversized payload is not kept whole


class DeadLetters:
    """Append-only JSON-lines file, fsynced before the messages it holds are acked."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._file: IO[bytes] = self.path.open("ab")
        self._unsynced = False

    def add(
        self, reason: str, detail: str, *, topic: str, payload: bytes, received_ms: int
    ) -> None:
        head = payload[:KEEP_BYTES]
        try:
            body: dict[str, object] = {"payload": head.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"payload_b64": base64.b64encode(head).decode()}
        record = {
            "received_ms": received_ms,
            "reason": reason,
            "detail": detail,
            "topic": topic,
            "size": len(payload),
            **body,
        }
        with self._lock:
            self._file.write(orjson.dumps(record) + b"\n")
            self.counts[reason] += 1
            self._unsynced = True

    def sync(self) -> None:
        """Flush and fsync what was added since the last sync (nothing to do most batches)."""
        with self._lock:
            if self._unsynced:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._unsynced = False

    def close(self) -> None:
        with self._lock:
            self._file.close()
