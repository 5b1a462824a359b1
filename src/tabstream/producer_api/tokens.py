"""Refresh-token storage: opaque random tokens, stored hashed in SQLite, rotated on use.

Each token belongs to a family (one login). Using a token marks it spent and issues its child;
presenting a spent token again is treated as theft and revokes the whole family.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY, family TEXT NOT NULL, parent TEXT, tenant TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0, expires_at REAL NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family);
CREATE TABLE IF NOT EXISTS revoked_families (family TEXT PRIMARY KEY, revoked_at REAL NOT NULL);
"""
_INSERT = (
    "INSERT INTO refresh_tokens (token_hash, family, parent, tenant, expires_at, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


class RefreshRejected(Exception):
    """A refresh token that is unknown, expired, spent (family now revoked) or revoked."""


@dataclass(frozen=True)
class Rotated:
    """The tenant of a valid refresh token and its replacement."""

    tenant: str
    refresh_token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class RefreshTokenStore:
    """SQLite table of hashed refresh tokens (family id, parent, used flag, expiry)."""

    def __init__(self, path: Path, ttl_s: float = 14 * 24 * 3600) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.ttl_s = ttl_s

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def issue(self, tenant: str, *, family: str | None = None, parent: str | None = None) -> str:
        """A new refresh token for ``tenant`` (a new family unless given)."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        row = (_hash(token), family or uuid.uuid4().hex, parent, tenant, now + self.ttl_s, now)
        with self._lock:
            self._db.execute(_INSERT, row)
        return token

    def rotate(self, token: str, owner: str | None = None) -> Rotated:
        """Spend ``token`` and return its child; reuse of a spent token revokes the family.

        With ``owner``, a token of another tenant is refused and left as it was: only its
        owner can spend it or, by reusing it, revoke its family.
        """
        digest = _hash(token)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rotated = self._rotate_locked(digest, owner)
            except BaseException:
                self._db.execute("COMMIT")  # keeps a revocation written before the rejection
                raise
            self._db.execute("COMMIT")
        return rotated

    def _rotate_locked(self, digest: str, owner: str | None) -> Rotated:
        row = self._db.execute(
            "SELECT family, tenant, used, expires_at FROM refresh_tokens WHERE token_hash = ?",
            (digest,),
        ).fetchone()
        if row is None or (owner is not None and row[1] != owner):
            raise RefreshRejected("unknown refresh token")
        family, tenant, used, expires_at = row
        if self._revoked(family):
            raise RefreshRejected("refresh token family revoked")
        if used:
            self._db.execute(
                "INSERT OR IGNORE INTO revoked_families VALUES (?, ?)", (family, time.time())
            )
            raise RefreshRejected("refresh token reused: every token of its family is revoked")
        if expires_at < time.time():
            raise RefreshRejected("refresh token expired")
        self._db.execute("UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?", (digest,))
        child = secrets.token_urlsafe(32)
        now = time.time()
        self._db.execute(
            _INSERT,
            (_hash(child), family, digest, tenant, now + self.ttl_s, now),
        )
        return Rotated(tenant, child)

    def _revoked(self, family: str) -> bool:
        found = self._db.execute(
            "SELECT 1 FROM revoked_families WHERE family = ?", (family,)
        ).fetchone()
        return found is not None
