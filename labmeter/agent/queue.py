"""The agent's durable outbox: every sample and event is on disk before it is published.

A row is deleted only when the collector confirms it: its message is written to InfluxDB (or
kept in the collector's dead letters with its reason). Each row goes out labelled with the
queue's own id and the row's id (``contract.ROW_PROPERTY``), and the collector's
confirmations name the row ids it settled, so a crash, a reboot, days offline or a broker that
loses what it acknowledged lose nothing that fits the bounds; the backlog is sent again in
insertion order with its original payload (same ``ts``), which the collector turns into the
same InfluxDB point. The queue id is random and made with the file: a queue file made again
(a reinstall) never takes a confirmation meant for another.

Until a collector has confirmed a row of this file (a collector that does not publish
confirmations), a row is deleted when the broker acknowledges it (PUBACK), as before
confirmations existed; the first confirmation switches the file for good
(``confirmed_by_collector``).

Each row keeps the full topic it was measured under, so a backlog queued before a device moved
to another lab (or was renamed) is published under its old identity, not the new one.
The queue is bounded by rows, bytes and age; when a bound is hit the oldest rows go first and
the eviction is counted (per reason and in total, persisted) so the runner can publish it as
a ``queue_eviction`` event instead of losing data silently.

SQLite in WAL mode with ``synchronous=FULL``: a commit survives a process kill and a power
cut; at one sample a minute the fsync per commit costs nothing measurable.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from labmeter.contract import Topic
from labmeter.errors import LabmeterError

_OUTBOX = """
CREATE TABLE {name} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never reused, order is total
    topic TEXT NOT NULL,  -- the full topic the row was measured under (identity at that time)
    ts INTEGER NOT NULL,
    payload BLOB NOT NULL
)
"""
_COUNTERS = "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"

_EVICTION_COUNTERS = ("evicted_size", "evicted_age", "evicted_oldest_ts", "evicted_newest_ts")


class QueueBusy(LabmeterError):
    """Another agent holds this queue file: one agent per device, or samples would double."""


class QueueNeedsIdentity(LabmeterError):
    """A queue file from before rows kept their topic, opened without the device's identity."""


@dataclass(frozen=True)
class Queued:
    """One stored message, in the order it was written."""

    id: int
    topic: str
    ts: int
    payload: bytes

    @property
    def channel(self) -> str:
        return self.topic.rsplit("/", 1)[1]


@dataclass(frozen=True)
class Evictions:
    """Rows dropped since the last report, to be published as a ``queue_eviction`` event."""

    by_size: int
    by_age: int
    oldest_ts: int
    newest_ts: int
    total: int  # since the queue file was created: a lost report is recoverable from the next

    @property
    def count(self) -> int:
        return self.by_size + self.by_age


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class DurableQueue:
    """A bounded, ordered, crash-safe FIFO of MQTT payloads in one SQLite file."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_rows: int = 200_000,
        max_bytes: int = 128 * 1024 * 1024,
        max_age_s: float = 90 * 24 * 3600,
        clock_ms: Callable[[], int] = _now_ms,
        identity: Topic | None = None,
    ) -> None:
        """``identity``: the device's topic now, needed only to migrate a queue file written
        before rows kept their topic (its rows were measured under the identity the agent has
        when it is upgraded: an upgrade is not a move)."""
        if max_rows < 1 or max_bytes < 1 or max_age_s <= 0:
            raise ValueError("queue bounds must be positive")
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_age_ms = int(max_age_s * 1000)
        self._clock_ms = clock_ms
        # One connection shared by the scheduler's threads, serialised by our own lock.
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=1.0
        )
        self._lock = threading.Lock()
        with self._lock:
            # Exclusive: the first write takes the file for good, so a second agent for the
            # same device (another user's logon task, a stray copy) fails fast, not silently.
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._db.close()
                raise QueueBusy(f"{path} is in use by another agent ({exc})") from exc
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_COUNTERS)
            self._migrate(path, identity)
            self._requeue_tail()
            self.queue_id = f"{self._own_id():016x}"
            self._confirmed = bool(self._get("confirmed_by_collector"))
            rows, size = self._db.execute(
                "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox"
            ).fetchone()
        self._rows = int(rows)
        self._bytes = int(size)

    def __len__(self) -> int:
        with self._lock:
            return self._rows

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def _migrate(self, path: Path | str, identity: Topic | None) -> None:
        """Create the outbox, or rebuild one of the first layout (a ``channel`` column only)
        with each row's full topic, keeping every row, its id and the id sequence."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "topic" in columns:
            return
        if not columns:
            self._db.execute(_OUTBOX.format(name="outbox"))
            return
        if identity is None:
            self._db.close()
            raise QueueNeedsIdentity(
                f"{path} was written by an older agent: open it with the device's identity "
                "(as the agent does) to give its queued rows their topic"
            )
        prefix = str(identity).rsplit("/", 1)[0] + "/"
        self._db.execute("BEGIN IMMEDIATE")
        found = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        self._db.execute(_OUTBOX.format(name="outbox_v2"))
        self._db.execute(
            "INSERT INTO outbox_v2 (id, topic, ts, payload) "
            "SELECT id, ? || channel, ts, payload FROM outbox ORDER BY id",
            (prefix,),
        )
        self._db.execute("DROP TABLE outbox")
        self._db.execute("ALTER TABLE outbox_v2 RENAME TO outbox")
        # Ids are never reused: the new table goes on from the old sequence, not from max(id).
        last = max(
            int(found[0]) if found else 0,
            int(self._db.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()[0]),
        )
        self._db.execute("DELETE FROM sqlite_sequence WHERE name = 'outbox'")
        self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)", (last,))
        self._db.execute("COMMIT")

    def _own_id(self) -> int:
        """The file's random id (63 bits), made once: what confirmations are addressed to."""
        found = self._get("queue_id")
        if not found:
            found = secrets.randbits(63) or 1
            self._db.execute("BEGIN IMMEDIATE")
            self._set("queue_id", found)
            self._db.execute("COMMIT")
        return found

    def _requeue_tail(self) -> None:
        """Rows of the replay tail an older agent kept (acknowledged by a broker, perhaps lost
        by it) go back into the outbox under their ids, to be sent again until confirmed."""
        if not self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'replay_tail'"
        ).fetchone():
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(
            "INSERT OR IGNORE INTO outbox (id, topic, ts, payload) "
            "SELECT id, topic, ts, payload FROM replay_tail ORDER BY id"
        )
        self._db.execute("DROP TABLE replay_tail")
        self._db.execute("COMMIT")

    def put(
        self, topic: Topic, ts: int, payload: bytes, counters: dict[str, int] | None = None
    ) -> int:
        """Store one message under its full topic (and set ``counters`` in the same
        transaction); return its id."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO outbox (topic, ts, payload) VALUES (?, ?, ?)",
                    (str(topic), ts, payload),
                )
                self._rows += 1
                self._bytes += len(payload)
                for name, value in (counters or {}).items():
                    self._set(name, value)
                self._evict()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._reload_totals()
                raise
            assert cur.lastrowid is not None
            return cur.lastrowid

    def after(self, last_id: int, limit: int) -> list[Queued]:
        """Up to ``limit`` messages with an id above ``last_id``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, ts, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, limit),
            ).fetchall()
        return [Queued(int(i), str(c), int(t), bytes(p)) for i, c, t, p in rows]

    def contains(self, row_id: int) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM outbox WHERE id = ?", (row_id,)).fetchone()
                is not None
            )

    def get(self, ids: Iterable[int]) -> list[Queued]:
        """The rows still queued among ``ids``, oldest first (to send them again)."""
        wanted = list(ids)
        out: list[Queued] = []
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                out += [
                    Queued(int(i), str(c), int(t), bytes(p))
                    for i, c, t, p in self._db.execute(
                        "SELECT id, topic, ts, payload FROM outbox "
                        f"WHERE id IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                ]
        return sorted(out, key=lambda row: row.id)

    def topics(self) -> set[str]:
        """Every topic rows are queued under (more than one after a move)."""
        with self._lock:
            return {str(t) for (t,) in self._db.execute("SELECT DISTINCT topic FROM outbox")}

    def acknowledge(self, ids: Iterable[int]) -> int:
        """Delete rows a broker acknowledged (while no collector has confirmed any row of
        this file); return how many left the queue. Ids already gone are ignored."""
        wanted = list(ids)
        chunks = [tuple(wanted[i : i + 500]) for i in range(0, len(wanted), 500)]
        return self._delete([f"id IN ({','.join('?' * len(c))})" for c in chunks], chunks)

    def confirm(self, ranges: Iterable[tuple[int, int]]) -> int:
        """Delete the rows a collector confirmed (inclusive id ranges); return how many left
        the queue. From the first one on, PUBACKs delete nothing (``confirmed_by_collector``)."""
        spans = list(ranges)
        return self._delete(["id BETWEEN ? AND ?"] * len(spans), spans, confirmed=True)

    @property
    def confirmed_by_collector(self) -> bool:
        """A collector has confirmed a row of this file: rows wait for confirmations."""
        with self._lock:
            return self._confirmed

    def _delete(
        self, wheres: list[str], params: Sequence[tuple[int, ...]], *, confirmed: bool = False
    ) -> int:
        deleted = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            if confirmed and not self._confirmed:
                self._set("confirmed_by_collector", 1)
                self._confirmed = True
            for where, values in zip(wheres, params, strict=True):
                freed = self._db.execute(
                    f"SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox WHERE {where}",
                    values,
                ).fetchone()
                if int(freed[0]):
                    self._db.execute(f"DELETE FROM outbox WHERE {where}", values)
                    deleted += int(freed[0])
                    self._rows -= int(freed[0])
                    self._bytes -= int(freed[1])
            self._db.execute("COMMIT")
        return deleted

    def counter(self, name: str, default: int = 0) -> int:
        """A persisted integer (the meter's ``seq``, the event ``seq``, eviction totals)."""
        with self._lock:
            return self._get(name, default)

    def evict_expired(self) -> None:
        """Apply the age bound now (also applied on every ``put``)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._evict()
            self._db.execute("COMMIT")

    def claim_evictions(self) -> Evictions | None:
        """Evictions not yet reported, or None; claiming resets them (the total stays)."""
        with self._lock:
            by_size, by_age = self._get("evicted_size"), self._get("evicted_age")
            if by_size + by_age == 0:
                return None
            found = Evictions(
                by_size=by_size,
                by_age=by_age,
                oldest_ts=self._get("evicted_oldest_ts"),
                newest_ts=self._get("evicted_newest_ts"),
                total=self._get("evicted_total"),
            )
            self._db.execute("BEGIN IMMEDIATE")
            for name in _EVICTION_COUNTERS:
                self._set(name, 0)
            self._db.execute("COMMIT")
            return found

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- inside the lock ---------------------------------------------------------------------
    def _get(self, name: str, default: int = 0) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return default if row is None else int(row[0])

    def _set(self, name: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _reload_totals(self) -> None:
        rows, size = self._db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox"
        ).fetchone()
        self._rows, self._bytes = int(rows), int(size)

    def _drop(self, where: str, params: tuple[int, ...], reason: str) -> None:
        found = self._db.execute(
            f"SELECT count(*), coalesce(sum(length(payload)), 0), min(ts), max(ts) "
            f"FROM outbox WHERE {where}",
            params,
        ).fetchone()
        count = int(found[0])
        if count == 0:
            return
        self._db.execute(f"DELETE FROM outbox WHERE {where}", params)
        self._rows -= count
        self._bytes -= int(found[1])
        self._set(reason, self._get(reason) + count)
        self._set("evicted_total", self._get("evicted_total") + count)
        oldest = self._get("evicted_oldest_ts")
        self._set("evicted_oldest_ts", min(oldest, int(found[2])) if oldest else int(found[2]))
        self._set("evicted_newest_ts", max(self._get("evicted_newest_ts"), int(found[3])))

    def _evict(self) -> None:
        self._drop("ts < ?", (self._clock_ms() - self.max_age_ms,), "evicted_age")
        if self._rows > self.max_rows:
            excess = self._rows - self.max_rows
            self._drop(
                "id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (excess,), "evicted_size"
            )
        while self._bytes > self.max_bytes and self._rows > 0:
            over = self._bytes - self.max_bytes
            freed, last = 0, 0
            for row_id, size in self._db.execute(
                "SELECT id, length(payload) FROM outbox ORDER BY id LIMIT 1000"
            ):
                freed, last = freed + int(size), int(row_id)
                if freed >= over:
                    break
            self._drop("id <= ?", (last,), "evicted_size")
