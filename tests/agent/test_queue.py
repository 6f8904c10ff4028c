"""The durable queue: order, persistence across reopen, bounds with counted eviction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from labmeter.agent.queue import DurableQueue, QueueBusy, QueueNeedsIdentity
from labmeter.contract import Topic

T0 = 1_764_147_600_000
SAMPLE = Topic("s", "lab-a", "pc-1", "sample")
EVENT = SAMPLE.with_channel("event")


def at_t0() -> int:
    return T0


def test_rows_come_back_in_order_after_reopen_with_counters(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    queue = DurableQueue(db, clock_ms=at_t0)
    ids = [queue.put(SAMPLE, T0 + i, f"m{i}".encode(), {"sample_seq": i + 1}) for i in range(5)]
    queue.acknowledge(ids[:2])
    queue.close()

    again = DurableQueue(db, clock_ms=at_t0)
    rows = again.after(0, 100)
    assert [r.payload for r in rows] == [b"m2", b"m3", b"m4"]
    assert [r.ts for r in rows] == [T0 + 2, T0 + 3, T0 + 4]
    assert again.counter("sample_seq") == 5 and len(again) == 3
    assert again.size_bytes == 6
    assert [r.payload for r in again.after(rows[0].id, 1)] == [b"m3"]
    # Deleting again (a duplicate PUBACK, an evicted row) changes nothing.
    assert again.acknowledge(ids[:2]) == 0 and len(again) == 3
    new_id = again.put(EVENT, T0 + 9, b"e")
    assert new_id > ids[-1]  # ids are never reused: order survives deletes at the tail
    again.close()


def test_row_bound_evicts_oldest_first_and_counts(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db", max_rows=10, clock_ms=at_t0)
    for i in range(25):
        queue.put(SAMPLE, T0 + i * 1000, b"x" * 10)
    assert len(queue) == 10
    assert [r.ts for r in queue.after(0, 100)] == [T0 + i * 1000 for i in range(15, 25)]
    found = queue.claim_evictions()
    assert found is not None
    assert (found.count, found.by_size, found.by_age) == (15, 15, 0)
    assert (found.oldest_ts, found.newest_ts, found.total) == (T0, T0 + 14_000, 15)
    assert queue.claim_evictions() is None  # reported once
    queue.put(SAMPLE, T0 + 99_000, b"x")
    again = queue.claim_evictions()
    assert again is not None and again.count == 1 and again.total == 16


def test_byte_bound_evicts_just_enough(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db", max_bytes=1000, clock_ms=at_t0)
    for i in range(10):
        queue.put(SAMPLE, T0 + i, b"y" * 100)
    assert queue.claim_evictions() is None and queue.size_bytes == 1000
    queue.put(SAMPLE, T0 + 10, b"z" * 250)
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
    queue.put(SAMPLE, T0 - 7200_000, b"old")
    queue.put(SAMPLE, T0 - 60_000, b"recent")
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


def test_rows_keep_the_topic_they_were_queued_under(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db", clock_ms=at_t0)
    queue.put(SAMPLE, T0, b"before the move")
    moved = Topic("s", "lab-b", "pc-1", "sample")
    queue.put(moved, T0 + 1, b"after")
    queue.close()
    again = DurableQueue(tmp_path / "q.db", clock_ms=at_t0, identity=moved)
    assert [(r.topic, r.channel) for r in again.after(0, 10)] == [
        ("labmeter/v1/s/lab-a/pc-1/sample", "sample"),
        ("labmeter/v1/s/lab-b/pc-1/sample", "sample"),
    ]
    again.close()


# The outbox as agents before per-row topics wrote it.
OLD_SCHEMA = """
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    ts INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def old_queue(db: Path) -> None:
    con = sqlite3.connect(db)
    con.executescript(OLD_SCHEMA)
    for i in range(6):
        channel = "event" if i == 2 else "sample"
        con.execute(
            "INSERT INTO outbox (channel, ts, payload) VALUES (?, ?, ?)",
            (channel, T0 + i, f"m{i}".encode()),
        )
    con.execute("DELETE FROM outbox WHERE id IN (1, 6)")  # acked head, and the newest row
    con.execute("INSERT INTO counters VALUES ('sample_seq', 5), ('evicted_total', 3)")
    con.commit()
    con.close()


def test_an_old_queue_file_is_migrated_without_losing_a_row(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    old_queue(db)
    with pytest.raises(QueueNeedsIdentity, match="older agent"):
        DurableQueue(db, clock_ms=at_t0)
    queue = DurableQueue(db, clock_ms=at_t0, identity=SAMPLE)
    rows = queue.after(0, 100)
    assert [(r.id, r.topic, r.ts, r.payload) for r in rows] == [
        (2, "labmeter/v1/s/lab-a/pc-1/sample", T0 + 1, b"m1"),
        (3, "labmeter/v1/s/lab-a/pc-1/event", T0 + 2, b"m2"),
        (4, "labmeter/v1/s/lab-a/pc-1/sample", T0 + 3, b"m3"),
        (5, "labmeter/v1/s/lab-a/pc-1/sample", T0 + 4, b"m4"),
    ]
    assert (len(queue), queue.size_bytes) == (4, 8)
    assert queue.counter("sample_seq") == 5 and queue.counter("evicted_total") == 3
    # Ids go on after the old sequence (6, deleted), never reusing one.
    assert queue.put(SAMPLE, T0 + 9, b"new") == 7
    queue.close()
    # Migrated once: the file opens as a current one, identity or not.
    again = DurableQueue(db, clock_ms=at_t0)
    assert len(again) == 5
    again.close()


def test_a_confirmation_deletes_exactly_the_rows_it_names(tmp_path: Path) -> None:
    queue = DurableQueue(tmp_path / "q.db", clock_ms=at_t0)
    ids = [queue.put(SAMPLE, T0 + i, f"m{i}".encode()) for i in range(8)]
    assert not queue.confirmed_by_collector  # no collector has confirmed a row yet
    # Rows 2-3 and 6 written, 4-5 not (dropped by a broker, or held by another collector).
    assert queue.confirm([(ids[2], ids[3]), (ids[6], ids[6])]) == 3
    assert [r.payload for r in queue.after(0, 10)] == [b"m0", b"m1", b"m4", b"m5", b"m7"]
    assert (len(queue), queue.size_bytes) == (5, 10)
    assert queue.confirmed_by_collector
    assert queue.confirm([(ids[2], ids[6])]) == 2  # confirmed again: only what is left goes
    assert [r.id for r in queue.get([ids[6], ids[1], ids[7], 999])] == [ids[1], ids[7]]
    queue.close()
    # Both the flag and the file's own id survive a restart; another file has another id.
    again = DurableQueue(tmp_path / "q.db", clock_ms=at_t0)
    other = DurableQueue(tmp_path / "other.db", clock_ms=at_t0)
    assert again.confirmed_by_collector and not other.confirmed_by_collector
    assert again.queue_id == queue.queue_id != other.queue_id
    assert len(again.queue_id) == 16 and int(again.queue_id, 16) > 0
    again.close()
    other.close()


def test_the_replay_tail_of_an_older_agent_is_sent_again(tmp_path: Path) -> None:
    """An older agent kept rows a broker acknowledged in a replay tail: upgraded, it puts them
    back in the queue under their ids, to be sent again until a collector confirms them."""
    db = tmp_path / "q.db"
    queue = DurableQueue(db, clock_ms=at_t0)
    ids = [queue.put(SAMPLE, T0 + i, f"m{i}".encode()) for i in range(4)]
    queue.close()
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE replay_tail (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
        "ts INTEGER NOT NULL, payload BLOB NOT NULL, acked_ms INTEGER NOT NULL)"
    )
    con.execute(
        "INSERT INTO replay_tail SELECT id, topic, ts, payload, ? FROM outbox WHERE id <= ?",
        (T0, ids[1]),
    )
    con.execute("DELETE FROM outbox WHERE id <= ?", (ids[1],))
    con.commit()
    con.close()
    upgraded = DurableQueue(db, clock_ms=at_t0)
    assert [(r.id, r.payload) for r in upgraded.after(0, 10)] == [
        (ids[0], b"m0"),
        (ids[1], b"m1"),
        (ids[2], b"m2"),
        (ids[3], b"m3"),
    ]
    assert len(upgraded) == 4 and upgraded.put(SAMPLE, T0 + 9, b"new") == ids[3] + 1
    upgraded.close()
    con = sqlite3.connect(db)
    tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master")}
    con.close()
    assert "replay_tail" not in tables
