"""API keys with roles, stored as SHA-256 hashes in a small SQLite file.

A key is 32 random bytes, so a plain SHA-256 is enough (no slow hash needed: there is nothing
to brute-force); the token itself is shown once, at creation, and never stored.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from collections.abc import Iterator
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
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One short transaction per call: the CLI and the API may share the file."""
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS api_key (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created REAL NOT NULL,"
                " revoked REAL)"
            )
            yield db

    def create(self, name: str, role: Role) -> tuple[ApiKey, str]:
        """A new key; the token is returned here and nowhere else."""
        token = PREFIX + secrets.token_urlsafe(32)
        now = time.time()
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
        with self._db() as db:
            cur = db.execute(
                "UPDATE api_key SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (time.time(), key_id),
            )
            return cur.rowcount == 1

    def verify(self, token: str) -> ApiKey | None:
        if not token.startswith(PREFIX):
            return None
        with self._db() as db:
            row = db.execute(
                "SELECT id, name, role, created, revoked FROM api_key WHERE hash = ?",
                (_hash(token),),
            ).fetchone()
        if row is None or row[4] is not None:
            return None
        return ApiKey(row[0], row[1], Role(row[2]), row[3], row[4])
