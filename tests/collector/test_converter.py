"""The converter child process: same answers as in-process, and replaced when it dies."""

from __future__ import annotations

import os
import signal
import time

from collector.converter import Converter, convert
from labmeter.contract import Sample, Topic, encode
from tests.collector.harness import HOUR_MS


def _chunk(n: int) -> list[tuple[int, int, int, bytes, bytes, int]]:
    now = int(time.time() * 1000)
    hour = now // HOUR_MS * HOUR_MS - 2 * HOUR_MS
    out = []
    for i in range(n):
        sample = Sample(hour + (i + 1) * 60_000, i, 60.0, {"in_use": 30.0}, "school")
        topic = str(Topic("site", "lab", f"pc-{i % 3}", "sample")).encode()
        out.append((i + 1, 1, 0, topic, encode(sample), now))
    out.append((n + 1, 1, 0, b"labmeter/v1/site/lab/pc-0/sample", b"{not json", now))
    return out


def test_child_converts_like_the_parent_and_is_replaced_when_killed() -> None:
    chunk = _chunk(120)
    converter = Converter()
    converter.start()
    try:
        first = converter(chunk)
        assert first == convert(chunk)
        assert len(first.lines) == 120 and first.rejected[0][:2] == (120, "not_json")
        assert len(first.hours) == 2  # 120 one-minute samples span two hours
        pid = converter.pid
        assert pid is not None and pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        assert converter(chunk) == first  # a new child, the same answer
        assert converter.pid not in (None, pid)
    finally:
        converter.close()
    assert converter.pid is None
