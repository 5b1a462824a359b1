"""The projection store: folded state and consumed offsets in one SQLite file (WAL).

``apply_batch`` folds a batch of records and writes the touched aggregates together with the
next offsets of their partitions in ONE transaction, so a crash leaves both where they were.
Its two halves are separate so that a rebuild can run them in two processes: ``BatchFolder``
folds records into what they change (``Changes``), caching job state in memory between
batches (a failed batch drops the cache), and ``ProjectionStore`` writes them.
"""

from __future__ import annotations

import gc
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast
from uuid import UUID

from pydantic_core import to_json

from tabstream.adapters.bus.port import TopicPartition
from tabstream.common.logs import get_logger
from tabstream.projection import store_sql as sql
from tabstream.projection.fold import ProjectionState, apply_in_place
from tabstream.projection.fold_job import Json
from tabstream.schemas.events import Envelope

Item = tuple[str, int, int, Envelope | None]
"""(topic, partition, offset, envelope or None for an undecodable record)."""
Page = tuple[list[Json], str | None]
MAX_LIMIT = 500
_CACHE_MAX = 50_000
_JOURNAL_MODES = frozenset({"WAL", "MEMORY", "DELETE", "TRUNCATE", "PERSIST", "OFF"})
_SYNC_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_log = get_logger(__name__)


@dataclass
class BatchResult:
    """What one ``apply_batch`` did."""

    applied: int = 0
    duplicates: int = 0
    undecodable: int = 0
    already_applied: int = 0
    failed: int = 0


class Changes(NamedTuple):
    """What one batch writes: the touched jobs' state, and the other rows as plain tuples
    ready for SQL. (A job's row is made by the writer: the canonical JSON of its state costs
    twice as much as pickling it, so a rebuild's writing process rather than its folding one
    pays for it.)"""

    jobs: list[Json]
    trials: list[tuple[Any, ...]]
    datasets: list[tuple[Any, ...]]
    models: list[tuple[Any, ...]]
    offsets: dict[TopicPartition, int]


class BatchFolder:
    """The in-memory half of the store: folds batches of records into ``Changes``.

    It caches job state between batches (a job the cache lacks is loaded with ``load_job``,
    unless every stored job is known to be cached) and holds each partition's next offset, so
    records already applied are skipped. After ``fold`` the cache is as if the batch were
    stored: call ``committed`` once it is, ``drop_cache`` when storing it failed.
    """

    def __init__(
        self,
        load_job: Callable[[str], Json | None],
        offsets: dict[TopicPartition, int],
        *,
        all_cached: bool,
    ) -> None:
        self.offsets = offsets
        self.all_cached = all_cached
        self._load_job = load_job
        self._jobs: dict[str, Json] = {}
        self._ids: dict[Any, str] = {}

    def fold(self, items: Iterable[Item]) -> tuple[Changes, BatchResult]:
        """Fold the items past their partition's stored offset; what that changes."""
        if len(self._jobs) > _CACHE_MAX:
            self.drop_cache()
        if len(self._ids) > _CACHE_MAX:
            self._ids.clear()
        state = ProjectionState(jobs=self._jobs)
        result = BatchResult()
        dirty, offsets, trials = self._fold(state, items, result)
        jobs = state.jobs
        changes = Changes(
            [jobs[j] for j in sorted(dirty)],
            list(trials.values()),
            [_dataset_row(d) for d in state.datasets.values()],
            [_model_row(m) for m in state.models.values()],
            offsets,
        )
        return changes, result

    def committed(self, changes: Changes) -> None:
        """The batch is stored: its offsets become the next ones."""
        for tp, offset in changes.offsets.items():
            self.offsets[tp] = max(self.offsets.get(tp, 0), offset)

    def drop_cache(self) -> None:
        """Forget cached jobs (their state may be ahead of the stored one)."""
        self._jobs.clear()
        self.all_cached = False

    def _fold(
        self, state: ProjectionState, items: Iterable[Item], result: BatchResult
    ) -> tuple[set[str], dict[TopicPartition, int], dict[Any, tuple[Any, ...]]]:
        """Fold into ``state``; the touched jobs, next offsets and trial rows. A trial is
        turned into its row as soon as it is folded (while it is still in the CPU's caches;
        a later one with the same key replaces it, as in ``state.trials``)."""
        dirty: set[str] = set()
        offsets: dict[TopicPartition, int] = {}
        trials, trial_rows = state.trials, {}
        stored, jobs, ids, all_cached = self.offsets, state.jobs, self._ids, self.all_cached
        tp: TopicPartition | None = None
        floor = last = 0
        applied = duplicates = undecodable = failed = skipped = 0
        for topic, partition, offset, env in items:
            if tp is None or partition != tp.partition or topic != tp.topic:
                if tp is not None and last:
                    offsets[tp] = max(offsets.get(tp, 0), last)
                tp = TopicPartition(topic, partition)
                floor, last = stored.get(tp, 0), 0
            if offset < floor:
                skipped += 1
                continue
            last = offset + 1
            if env is None:
                undecodable += 1
                continue
            raw: Any = getattr(env.payload, "job_id", None)
            job_id: str | None = None
            if raw is not None:
                # str(UUID) is a Python-level method; the int is a slot (a job's events
                # repeat its id, so the text is computed once per job)
                key = raw.int if type(raw) is UUID else raw
                job_id = ids.get(key)
                if job_id is None:
                    job_id = ids[key] = str(raw)
                if job_id not in jobs and not all_cached:
                    stored_job = self._load_job(job_id)
                    if stored_job is not None:
                        jobs[job_id] = stored_job
            try:
                if apply_in_place(state, env, job_id):
                    applied += 1
                else:
                    duplicates += 1
            except Exception:
                _log.exception("fold failed", topic=topic, partition=partition, offset=offset)
                failed += 1
                continue
            finally:
                if trials:
                    for key, trial in trials.items():
                        trial_rows[key] = _trial_row(trial)
                    trials.clear()
            if job_id is not None:
                dirty.add(job_id)
        if tp is not None and last:
            offsets[tp] = max(offsets.get(tp, 0), last)
        result.applied, result.duplicates, result.already_applied = applied, duplicates, skipped
        result.undecodable, result.failed = undecodable, failed
        return dirty, offsets, trial_rows


def load_job(db: sqlite3.Connection, job_id: str) -> Json | None:
    """The stored state of ``job_id`` (None when it has none)."""
    row = db.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else cast(Json, json.loads(row[0]))


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
        self._db.executescript(sql.SCHEMA)
        # A store opened empty (e.g. a rebuild) has every stored job in its cache.
        empty = self._db.execute("SELECT 1 FROM jobs LIMIT 1").fetchone() is None
        self._folder = BatchFolder(self._load_job, self._load_offsets(), all_cached=empty)
        self._offsets = self._folder.offsets

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    # -- writing -----------------------------------------------------------------------------

    def apply_batch(self, items: Iterable[Item]) -> BatchResult:
        """Fold records and store the touched state and next offsets in one transaction.

        ``items`` may be a lazy iterable (e.g. decoding as it goes): each record is folded as
        it comes, so a lazily decoded envelope is freed right after its fold (a rebuild never
        holds a batch of envelopes). Records at or below a partition's stored offset are
        skipped (never applied twice). The cyclic garbage collector is paused meanwhile: a
        batch allocates many objects and frees them by reference counting, and collections
        triggered mid-batch were the largest cost.
        """
        with gc_paused():
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

    def _write(self, changes: Changes) -> None:
        """State and next offsets of one batch in one transaction."""
        db = self._db
        jobs = [_job_row(job) for job in changes.jobs]
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(sql.UPSERT_JOB, jobs)
            db.executemany(sql.UPSERT_TRIAL, changes.trials)
            db.executemany(sql.UPSERT_DATASET, changes.datasets)
            db.executemany(sql.UPSERT_MODEL, changes.models)
            db.executemany(
                sql.UPSERT_OFFSET,
                [(tp.topic, tp.partition, o) for tp, o in changes.offsets.items()],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _load_job(self, job_id: str) -> Json | None:
        return load_job(self._db, job_id)

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

    def digest(self, tail: DigestTail | None = None) -> str:
        """sha256 over a canonical dump of every table (rows sorted by primary key).

        With ``tail``, the dump of its table's rows from its key on is not made here but taken
        from ``tail.dump()`` (made by ``dump_rows`` elsewhere, e.g. by another process at the
        same time): the digest is the same."""
        h = hashlib.sha256()
        for table, _ in sql.DIGEST_TABLES:
            h.update(f"#{table}\n".encode())
            if tail is not None and tail.table == table:
                dump_rows(self._db, h.update, table, stop=tail.key)
                h.update(tail.dump())
            else:
                dump_rows(self._db, h.update, table)
        return h.hexdigest()

    def middle_key(self, table: str) -> tuple[Any, ...] | None:
        """The primary key of the middle row of ``table`` (None when it has under 2 rows)."""
        order = _DIGEST_ORDER[table]
        (n,) = self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        if n < 2:
            return None
        query = f"SELECT {order} FROM {table} ORDER BY {order} LIMIT 1 OFFSET ?"
        return tuple(self._db.execute(query, (n // 2,)).fetchone())


class DigestTail(NamedTuple):
    """Rows of ``table`` from primary key ``key`` on, dumped elsewhere: ``dump()`` gives them."""

    table: str
    key: tuple[Any, ...]
    dump: Callable[[], bytes]


_DIGEST_ORDER = dict(sql.DIGEST_TABLES)


def dump_rows(
    db: sqlite3.Connection,
    write: Callable[[bytes], object],
    table: str,
    *,
    start: Sequence[Any] | None = None,
    stop: Sequence[Any] | None = None,
) -> None:
    """Write the digest's dump of ``table``: each row as a JSON array and a newline, by
    primary key, from ``start`` (included) to ``stop`` (excluded) when given."""
    order = _DIGEST_ORDER[table]
    where, args = [], []
    for bound, op in ((start, ">="), (stop, "<")):
        if bound is not None:
            where.append(f"({order}) {op} ({', '.join('?' * len(bound))})")
            args += list(bound)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    for row in db.execute(f"SELECT * FROM {table}{clause} ORDER BY {order}", args):
        write(to_json(list(row)))
        write(b"\n")


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
