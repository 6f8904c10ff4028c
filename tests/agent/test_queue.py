"""The durable queue: order, persistence across reopen, bounds with counted eviction."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.queue import DurableQueue, QueueBusy

T0 = 1_764_147_600_000


def at_t0() -> int:
    return T0


def test_rows_come_back_in_order_after_reopen_with_counters(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    queue = DurableQueue(db, clock_ms=at_t0)
    ids = [queue.put("sample", T0 + i, f"m{i}".encode(), {"sample_seq": i + 1}) for i in range(5)]
    queue.delete(ids[:2])
    queue.close()

    again = DurableQueue(db, clock_ms=at_t0)
    rows = again.after(0, 100)
    assert [r.payload for r in rows] == [b"m2", b"m3", b"m4"]
    assert [r.ts for r in rows] == [T0 + 2, T0 + 3, T0 + 4]
    assert again.counter("sample_seq") == 5 and len(again) == 3
    assert again.size_bytes == 6
    assert [r.payload for r in again.after(rows[0].id, 1)] == [b"m3"]
    # Deleting again (a duplicate PUBACK, an evicted row) changes nothing.
    assert again.delete(ids[:2]) == 0 and len(again) == 3
    new_id = again.put("event", T0 + 9, b"e")
    assert new_id > ids[-1]  # ids are never reused: order survives deletes at the tail
    again.close()


def test_row_bound_evicts_oldest_first_and_counts(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db", max_rows=10, clock_ms=at_t0)
    for i in range(25):
        queue.put("sample", T0 + i * 1000, b"x" * 10)
    assert len(queue) == 10
    assert [r.ts for r in queue.after(0, 100)] == [T0 + i * 1000 for i in range(15, 25)]
    found = queue.claim_evictions()
    assert found is not None
    assert (found.count, found.by_size, found.by_age) == (15, 15, 0)
    assert (found.oldest_ts, found.newest_ts, found.total) == (T0, T0 + 14_000, 15)
    assert queue.claim_evictions() is None  # reported once
    queue.put("sample", T0 + 99_000, b"x")
    again = queue.claim_evictions()
    assert again is not None and again.count == 1 and again.total == 16


def test_byte_bound_evicts_just_enough(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db", max_bytes=1000, clock_ms=at_t0)
    for i in range(10):
        queue.put("sample", T0 + i, b"y" * 100)
    assert queue.claim_evictions() is None and queue.size_bytes == 1000
    queue.put("sample", T0 + 10, b"z" * 250)
    # 250 bytes over: the three oldest 100-byte rows go, no more.
    assert queue.size_bytes == 950 and len(queue) == 8
    found = queue.claim_evictions()
    assert found is not None and (found.by_size, found.oldest_ts, found.newest_ts) == (
        3,
        T0,
        T0 + 2,
    )


def test_age_bound_uses_the_payload_time(tmp_path: Path) -> None:
    now = [T0]
    queue = DurableQueue(tmp_path / "q.db", max_age_s=3600, clock_ms=lambda: now[0])
    queue.put("sample", T0 - 7200_000, b"old")
    queue.put("sample", T0 - 60_000, b"recent")
    assert [r.payload for r in queue.after(0, 10)] == [b"recent"]
    now[0] += 3600_000
    queue.evict_expired()
    assert len(queue) == 0
    found = queue.claim_evictions()
    assert found is not None and (found.by_age, found.by_size, found.total) == (2, 0, 2)


def test_one_agent_per_queue_file(tmp_path: Path) -> None:
    first = DurableQueue(tmp_path / "q.db", clock_ms=at_t0)
    with pytest.raises(QueueBusy, match="in use by another agent"):
        DurableQueue(tmp_path / "q.db", clock_ms=at_t0)
    first.close()
    DurableQueue(tmp_path / "q.db", clock_ms=at_t0).close()
