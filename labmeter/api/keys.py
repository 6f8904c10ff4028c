"""API keys with roles, stored as SHA-256 hashes in a small SQLite file; browser sessions.

A key is 32 random bytes, so a plain SHA-256 is enough (no slow hash needed: there is nothing
to brute-force); the token itself is shown once, at creation, and never stored.

A page opened with ``?key=`` trades the key for a session (``api/auth.py``): another random
token, kept as a hash here beside its key, that ends after ``idle_s`` unused or when its key
is revoked. The browser holds the session, never the long-lived key.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Role(StrEnum):
    viewer = "viewer"  # live occupancy, equipment, utilisation
    evaluator = "evaluator"  # + sessions, software, openness, reports (read-only)
    admin = "admin"  # + key management

    @property
    def rank(self) -> int:
        return list(Role).index(self)


PREFIX = "lm_"
SESSION_PREFIX = "ls_"
SEEN_EVERY_S = 60.0  # a session's last use is written at most this often


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    role: Role
    created: float
    revoked: float | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyStore:
    def __init__(
        self, path: str | Path, idle_s: float = 24 * 3600.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.idle_s = idle_s
        self.clock = clock
        # Each API thread keeps its own connection for ``verify``: every request asks, and
        # opening the file and checking its table took more than the rest of a live read.
        self._local = threading.local()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One short transaction per call: the CLI and the API may share the file."""
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS api_key (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created REAL NOT NULL,"
                " revoked REAL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS api_session (hash TEXT PRIMARY KEY,"
                " key_id INTEGER NOT NULL, created REAL NOT NULL, seen REAL NOT NULL)"
            )
            yield db

    def create(self, name: str, role: Role) -> tuple[ApiKey, str]:
        """A new key; the token is returned here and nowhere else."""
        token = PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO api_key (name, role, hash, created) VALUES (?, ?, ?, ?)",
                (name, role.value, _hash(token), now),
            )
            key_id = int(cur.lastrowid or 0)
        return ApiKey(key_id, name, role, now, None), token

    def list(self) -> list[ApiKey]:
        with self._db() as db:
            rows = db.execute(
                "SELECT id, name, role, created, revoked FROM api_key ORDER BY id"
            ).fetchall()
        return [ApiKey(r[0], r[1], Role(r[2]), r[3], r[4]) for r in rows]

    def revoke(self, key_id: int) -> bool:
        """Revoke a key, and end every session opened with it."""
        with self._db() as db:
            cur = db.execute(
                "UPDATE api_key SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (self.clock(), key_id),
            )
            db.execute("DELETE FROM api_session WHERE key_id = ?", (key_id,))
            return cur.rowcount == 1

    def open_session(self, key: ApiKey) -> str:
        """A new session for ``key``: the token for the cookie (only its hash is kept)."""
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self._db() as db:
            db.execute("DELETE FROM api_session WHERE seen < ?", (now - self.idle_s,))
            db.execute(
                "INSERT INTO api_session (hash, key_id, created, seen) VALUES (?, ?, ?, ?)",
                (_hash(token), key.id, now, now),
            )
        return token

    def session(self, token: str) -> ApiKey | None:
        """The key of a live session; None when unknown, expired or its key revoked."""
        if not token.startswith(SESSION_PREFIX):
            return None
        now = self.clock()
        with self._db() as db:
            row = db.execute(
                "SELECT k.id, k.name, k.role, k.created, k.revoked, s.seen FROM api_session s"
                " JOIN api_key k ON k.id = s.key_id WHERE s.hash = ?",
                (_hash(token),),
            ).fetchone()
            if row is None:
                return None
            if row[4] is not None or row[5] < now - self.idle_s:
                db.execute("DELETE FROM api_session WHERE hash = ?", (_hash(token),))
                return None
            if now - row[5] > SEEN_EVERY_S:
                db.execute("UPDATE api_session SET seen = ? WHERE hash = ?", (now, _hash(token)))
        return ApiKey(row[0], row[1], Role(row[2]), row[3], row[4])

    def verify(self, token: str) -> ApiKey | None:
        """The key of ``token``, read from the file now (a revocation counts at once)."""
        if not token.startswith(PREFIX):
            return None
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            with self._db():  # the table exists
                pass
            db = self._local.db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        row = db.execute(
            "SELECT id, name, role, created, revoked FROM api_key WHERE hash = ?",
            (_hash(token),),
        ).fetchone()
        if row is None or row[4] is not None:
            return None
        return ApiKey(row[0], row[1], Role(row[2]), row[3], row[4])
