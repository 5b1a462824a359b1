"""The projection store: folded state and consumed offsets in one SQLite file (WAL).

``apply_batch`` folds a batch of records and writes the touched aggregates together with the
next offsets of their partitions in ONE transaction, so a crash leaves both where they were.
Job state is cached in memory between batches; a failed batch drops the cache.
"""

from __future__ import annotations

import gc
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_core import to_json

from tabstream.adapters.bus.port import TopicPartition
from tabstream.logs import get_logger
from tabstream.projection import store_sql as sql
from tabstream.projection.fold import ProjectionState, apply_in_place
from tabstream.projection.fold_job import Json
from tabstream.schemas.events import Envelope

Item = tuple[str, int, int, Envelope | None]
"""(topic, partition, offset, envelope or None for an undecodable record)."""
Page = tuple[list[Json], str | None]
MAX_LIMIT = 500
_CACHE_MAX = 50_000
_log = get_logger(__name__)


@dataclass
class BatchResult:
    """What one ``apply_batch`` did."""

    applied: int = 0
    duplicates: int = 0
    undecodable: int = 0
    already_applied: int = 0
    failed: int = 0


class ProjectionStore:
    """SQLite store of the projection (see the module docstring)."""

    def __init__(
        self, path: Path | str, *, synchronous: str = "NORMAL", cache_mb: int = 128
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
        self._db.executescript(sql.SCHEMA)
        self._jobs: dict[str, Json] = {}
        self._offsets = self._load_offsets()

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    # -- writing -----------------------------------------------------------------------------

    def apply_batch(self, items: Iterable[Item]) -> BatchResult:
        """Fold records and store the touched state and next offsets in one transaction.

        ``items`` may be a lazy iterable (e.g. decoding as it goes). Records at or below a
        partition's stored offset are skipped (never applied twice). The cyclic garbage
        collector is paused meanwhile: a batch allocates many objects and frees them by
        reference counting, and collections triggered mid-batch were the largest cost.
        """
        with gc_paused():
            batch, offsets, skipped = self._select(items)
            result = BatchResult(already_applied=skipped)
            self._load_jobs({job_id for _, job_id in batch if job_id is not None})
            state = ProjectionState(jobs=self._jobs)
            try:
                dirty = self._fold(state, batch, result)
                with self._transaction():
                    self._write(state, dirty, offsets)
            except BaseException:
                self._jobs.clear()
                raise
            self._offsets.update(offsets)
            return result

    def _select(
        self, items: Iterable[Item]
    ) -> tuple[list[tuple[Item, str | None]], dict[TopicPartition, int], int]:
        """The items past their partition's stored offset (with their job ids), the next
        offsets they reach, and how many were skipped as already applied."""
        batch: list[tuple[Item, str | None]] = []
        offsets: dict[TopicPartition, int] = {}
        stored = self._offsets
        tp: TopicPartition | None = None
        floor = last = 0
        skipped = 0
        for item in items:
            topic, partition, offset, env = item
            if tp is None or topic != tp.topic or partition != tp.partition:
                if tp is not None and last:
                    offsets[tp] = max(offsets.get(tp, 0), last)
                tp = TopicPartition(topic, partition)
                floor, last = stored.get(tp, 0), 0
            if offset < floor:
                skipped += 1
                continue
            last = offset + 1
            job_id = None
            if env is not None:
                raw: Any = getattr(env.payload, "job_id", None)
                job_id = None if raw is None else str(raw)
            batch.append((item, job_id))
        if tp is not None and last:
            offsets[tp] = max(offsets.get(tp, 0), last)
        return batch, offsets, skipped

    def _fold(
        self, state: ProjectionState, batch: Sequence[tuple[Item, str | None]], result: BatchResult
    ) -> set[str]:
        dirty: set[str] = set()
        applied = duplicates = undecodable = failed = 0
        for (topic, partition, offset, env), job_id in batch:
            if env is None:
                undecodable += 1
                continue
            try:
                if apply_in_place(state, env, job_id):
                    applied += 1
                else:
                    duplicates += 1
            except Exception:
                _log.exception("fold failed", topic=topic, partition=partition, offset=offset)
                failed += 1
                continue
            if job_id is not None:
                dirty.add(job_id)
        result.applied, result.duplicates = applied, duplicates
        result.undecodable, result.failed = undecodable, failed
        return dirty

    def _write(
        self, state: ProjectionState, dirty: set[str], offsets: dict[TopicPartition, int]
    ) -> None:
        db = self._db
        db.executemany(sql.UPSERT_JOB, [_job_row(state.jobs[j]) for j in sorted(dirty)])
        db.executemany(sql.UPSERT_TRIAL, [_trial_row(t) for t in state.trials.values()])
        db.executemany(sql.UPSERT_DATASET, [_dataset_row(d) for d in state.datasets.values()])
        db.executemany(sql.UPSERT_MODEL, [_model_row(m) for m in state.models.values()])
        db.executemany(
            sql.UPSERT_OFFSET, [(tp.topic, tp.partition, o) for tp, o in offsets.items()]
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _load_jobs(self, job_ids: set[str]) -> None:
        if len(self._jobs) > _CACHE_MAX:
            self._jobs.clear()
        missing = sorted(job_ids - self._jobs.keys())
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT job_id, state FROM jobs WHERE job_id IN ({marks})"
            for job_id, state in self._db.execute(query, chunk):
                self._jobs[job_id] = json.loads(state)

    # -- positions ---------------------------------------------------------------------------

    def offsets(self) -> dict[TopicPartition, int]:
        """The next offset to apply per partition (what resuming starts from)."""
        return dict(self._offsets)

    def next_offset(self, topic: str, partition: int) -> int:
        """The next offset to apply in one partition (0 when none was applied)."""
        return self._offsets.get(TopicPartition(topic, partition), 0)

    def _load_offsets(self) -> dict[TopicPartition, int]:
        rows = self._db.execute("SELECT topic, partition, next_offset FROM offsets")
        return {TopicPartition(t, int(p)): int(o) for t, p, o in rows}

    # -- reading (the control plane) ---------------------------------------------------------

    def get_job(self, tenant: str, job_id: str) -> Json | None:
        """The job as the API shows it, or None when absent or owned by another tenant."""
        row = self._db.execute(
            "SELECT state FROM jobs WHERE job_id = ? AND tenant = ?", (job_id, tenant)
        ).fetchone()
        return None if row is None else _public_job(json.loads(row[0]))

    def job_owner(self, job_id: str) -> str | None:
        """The tenant owning ``job_id`` (None when unknown)."""
        row = self._db.execute("SELECT tenant FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else str(row[0])

    def list_jobs(
        self,
        tenant: str,
        status: str | None = None,
        dataset_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        """A page of the tenant's jobs, newest first (created_at desc, job_id desc).

        ``next_cursor`` is None on the last page; a malformed cursor raises ValueError.
        """
        filters: dict[str, Any] = {"tenant": tenant}
        if status is not None:
            filters["status"] = status
        if dataset_id is not None:
            filters["dataset_id"] = dataset_id
        page, nxt = self._page("jobs", "job_id", "state", filters, cursor, limit)
        return [_public_job(job) for job in page], nxt

    def find_idempotent(self, tenant: str, key: str) -> tuple[str, str] | None:
        """(job_id, request_digest) of the tenant's earliest run submitted with ``key``."""
        row = self._db.execute(
            "SELECT job_id, state FROM jobs WHERE tenant = ? AND idempotency_key = ?"
            " ORDER BY created_at, job_id LIMIT 1",
            (tenant, key),
        ).fetchone()
        return None if row is None else (str(row[0]), str(json.loads(row[1])["request_digest"]))

    def job_trials(self, tenant: str, job_id: str) -> list[Json] | None:
        """The job's trials ordered by (row, trial); None when the job is not the tenant's."""
        if self.job_owner(job_id) != tenant:
            return None
        rows = self._db.execute(
            "SELECT data FROM trials WHERE job_id = ? ORDER BY row, trial", (job_id,)
        )
        return [json.loads(data) for (data,) in rows]

    def get_dataset(self, tenant: str, dataset_id: str) -> Json | None:
        """A registered dataset of the tenant, or None."""
        return self._get("datasets", "dataset_id", tenant, dataset_id)

    def list_datasets(self, tenant: str, cursor: str | None = None, limit: int = 50) -> Page:
        """A page of the tenant's datasets, newest first."""
        return self._page("datasets", "dataset_id", "data", {"tenant": tenant}, cursor, limit)

    def get_model(self, tenant: str, model_id: str) -> Json | None:
        """A registered model of the tenant, or None."""
        return self._get("models", "model_id", tenant, model_id)

    def list_models(
        self, tenant: str, job_id: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page:
        """A page of the tenant's models (optionally of one job), newest first."""
        filters: dict[str, Any] = {"tenant": tenant}
        if job_id is not None:
            filters["job_id"] = job_id
        return self._page("models", "model_id", "data", filters, cursor, limit)

    def status_counts(self) -> dict[str, int]:
        """Number of jobs per status, all tenants (for metrics)."""
        rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return {str(s): int(n) for s, n in rows}

    def _get(self, table: str, key: str, tenant: str, value: str) -> Json | None:
        row = self._db.execute(
            f"SELECT data FROM {table} WHERE {key} = ? AND tenant = ?", (value, tenant)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def _page(
        self,
        table: str,
        key: str,
        column: str,
        filters: dict[str, Any],
        cursor: str | None,
        limit: int,
    ) -> Page:
        limit = max(1, min(int(limit), MAX_LIMIT))
        query, args = sql.page_query(table, key, column, filters, cursor, limit)
        rows = self._db.execute(query, args).fetchall()
        nxt = (
            sql.encode_cursor(rows[limit - 1][0], rows[limit - 1][1]) if len(rows) > limit else None
        )
        return [json.loads(r[2]) for r in rows[:limit]], nxt

    # -- proof -------------------------------------------------------------------------------

    def snapshot(self) -> tuple[dict[TopicPartition, int], str]:
        """The stored offsets and the digest, read in one transaction (consistent even while
        another process keeps applying)."""
        self._db.execute("BEGIN")
        try:
            rows = self._db.execute("SELECT topic, partition, next_offset FROM offsets")
            offsets = {TopicPartition(t, int(p)): int(o) for t, p, o in rows}
            return offsets, self.digest()
        finally:
            self._db.execute("COMMIT")

    def digest(self) -> str:
        """sha256 over a canonical dump of every table (rows sorted by primary key)."""
        h = hashlib.sha256()
        for table, order in sql.DIGEST_TABLES:
            h.update(f"#{table}\n".encode())
            for row in self._db.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                h.update(to_json(list(row)))
                h.update(b"\n")
        return h.hexdigest()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees memory)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _public_job(job: Json) -> Json:
    return {k: v for k, v in job.items() if k != "meta"}


def _job_row(job: Json) -> tuple[Any, ...]:
    return (
        job["job_id"],
        job["tenant"],
        job["status"],
        job["dataset_id"],
        job["created_at"],
        job["idempotency_key"],
        sql.dumps(job),
    )


def _trial_row(t: Json) -> tuple[Any, ...]:
    return (
        t["job_id"],
        t["row"],
        t["trial"],
        t["tenant"],
        t["family"],
        t["state"],
        t["score"],
        t["seconds"],
        sql.dumps_built(t),
    )


def _dataset_row(d: Json) -> tuple[Any, ...]:
    return (d["dataset_id"], d["tenant"], d["created_at"], sql.dumps_built(d))


def _model_row(m: Json) -> tuple[Any, ...]:
    return (m["model_id"], m["tenant"], m["job_id"], m["created_at"], sql.dumps_built(m))
