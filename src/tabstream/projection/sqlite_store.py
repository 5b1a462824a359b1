"""The projection store: folded state and consumed offsets in one SQLite file (WAL).

``apply_batch`` folds a batch of records (``batch.BatchFolder``) and writes the touched rows
together with the next offsets of their partitions in ONE transaction, so a crash leaves both
where they were. Reads go through ``queries`` (``TenantQueries``); the proof that two stores
hold the same state is their ``digest``.
"""

from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from tabstream.adapters.bus.port import TopicPartition
from tabstream.projection import tables
from tabstream.projection.batch import BatchFolder, BatchResult, Changes, Item
from tabstream.projection.digest import DigestTail, digest_of, middle_key
from tabstream.projection.fold_job import Json
from tabstream.projection.queries import TenantQueries

_JOURNAL_MODES = frozenset({"WAL", "MEMORY", "DELETE", "TRUNCATE", "PERSIST", "OFF"})
_SYNC_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
REBUILD_PAGE_SIZE = 16_384
"""A rebuilt store's pages (fewer page splits while it is filled)."""


class ProjectionStore:
    """SQLite store of the projection (see the module docstring)."""

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: str = "NORMAL",
        cache_mb: int = 128,
        journal_mode: str = "WAL",
        page_size: int | None = None,
    ) -> None:
        if journal_mode.upper() not in _JOURNAL_MODES or synchronous.upper() not in _SYNC_MODES:
            raise ValueError(f"bad journal_mode {journal_mode!r} or synchronous {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if page_size is not None:  # only takes effect in a new file
            self._db.execute(f"PRAGMA page_size={int(page_size)}")
        self._db.execute(f"PRAGMA journal_mode={journal_mode}")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
        self._db.executescript(tables.SCHEMA)
        self.queries = TenantQueries(self._db)
        # A store opened empty (e.g. a rebuild) has every stored job in its cache.
        empty = self._db.execute("SELECT 1 FROM jobs LIMIT 1").fetchone() is None
        self._folder = BatchFolder(self._load_job, self._load_offsets(), all_cached=empty)
        self._offsets = self._folder.offsets

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def apply_batch(self, items: Iterable[Item]) -> BatchResult:
        """Fold records and store the touched state and next offsets in one transaction.

        ``items`` may be a lazy iterable (e.g. decoding as it goes): each record is folded as
        it comes, so a lazily decoded envelope is freed right after its fold (a rebuild never
        holds a batch of envelopes). Records at or below a partition's stored offset are
        skipped (never applied twice).
        """
        with gc_paused():
            if self._folder.cache_full():
                self._folder.drop_cache()
            try:
                changes, result = self._folder.fold(items)
                self._write(changes)
            except BaseException:
                self._folder.drop_cache()
                raise
            self._folder.committed(changes)
            return result

    def write_changes(self, changes: Changes) -> None:
        """Write a batch folded elsewhere (a rebuild's ``BatchFolder`` in another process) in
        one transaction. This store's own cache no longer knows every stored job then."""
        self._folder.drop_cache()
        with gc_paused():
            self._write(changes)
        self._folder.committed(changes)

    def offsets(self) -> dict[TopicPartition, int]:
        """The next offset to apply per partition (what resuming starts from)."""
        return dict(self._offsets)

    def next_offset(self, topic: str, partition: int) -> int:
        """The next offset to apply in one partition (0 when none was applied)."""
        return self._offsets.get(TopicPartition(topic, partition), 0)

    def digest(self, tail: DigestTail | None = None) -> str:
        """sha256 over a canonical dump of every table (``digest.digest_of``)."""
        return digest_of(self._db, tail)

    def snapshot(self) -> tuple[dict[TopicPartition, int], str]:
        """The stored offsets and the digest, read in one transaction (consistent even while
        another process keeps applying)."""
        self._db.execute("BEGIN")
        try:
            return self._load_offsets(), self.digest()
        finally:
            self._db.execute("COMMIT")

    def middle_key(self, table: str) -> tuple[Any, ...] | None:
        """The primary key of the middle row of ``table`` (None when it has under 2 rows)."""
        return middle_key(self._db, table)

    def _write(self, changes: Changes) -> None:
        """State and next offsets of one batch in one transaction."""
        db = self._db
        jobs = [tables.job_row(job) for job in changes.jobs]
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(tables.UPSERT_JOB, jobs)
            db.executemany(tables.UPSERT_TRIAL, changes.trials)
            db.executemany(tables.UPSERT_DATASET, changes.datasets)
            db.executemany(tables.UPSERT_MODEL, changes.models)
            db.executemany(tables.UPSERT_UPLOAD, changes.uploads)
            db.executemany(tables.INSERT_FIRST_COMPLETION, changes.completions)
            db.executemany(
                tables.UPSERT_OFFSET,
                [(tp.topic, tp.partition, o) for tp, o in changes.offsets.items()],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _load_job(self, job_id: str) -> Json | None:
        return load_job(self._db, job_id)

    def _load_offsets(self) -> dict[TopicPartition, int]:
        rows = self._db.execute("SELECT topic, partition, next_offset FROM offsets")
        return {TopicPartition(t, int(p)): int(o) for t, p, o in rows}


def open_for_rebuild(path: Path) -> ProjectionStore:
    """A fresh store written for speed: no fsync, rollback journal in memory (each batch is
    still one transaction of state and offsets), larger pages. ``rebuild`` syncs the file
    once it is complete."""
    return ProjectionStore(
        path, synchronous="OFF", journal_mode="MEMORY", page_size=REBUILD_PAGE_SIZE
    )


def load_job(db: sqlite3.Connection, job_id: str) -> Json | None:
    """The stored state of ``job_id`` (None when it has none)."""
    row = db.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else cast(Json, json.loads(row[0]))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees memory).

    A batch allocates many objects and frees them by reference counting; the collections
    that these allocations triggered mid-batch were the fold's largest cost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
