"""Batch folding: records in, the rows they change out (``Changes``), nothing written.

``BatchFolder`` is the in-memory half of the store: it folds a batch of records with the pure
reducer (``fold.apply_in_place``) into ``Changes``, skipping records at or below their
partition's stored offset, and caches job state between batches. ``ProjectionStore`` writes
the changes in one transaction; a rebuild may fold in one process and write in another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

from tabstream.adapters.bus.port import TopicPartition
from tabstream.common.logs import get_logger
from tabstream.projection import tables
from tabstream.projection.fold import ProjectionState, apply_in_place
from tabstream.projection.fold_job import Json
from tabstream.schemas.events import Envelope, decode

Item = tuple[str, int, int, Envelope | None]
"""(topic, partition, offset, envelope or None for an undecodable record)."""
Run = tuple[str, int, list[int], list[bytes]]
"""Consecutive raw records of one partition: (topic, partition, offsets, values)."""
CACHE_MAX = 50_000
"""Jobs cached between batches, at most (then the cache is dropped)."""
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
    uploads: list[tuple[Any, ...]]
    completions: list[tuple[Any, ...]]


def items_of(runs: Sequence[Run]) -> Iterator[Item]:
    """The items of ``runs``, each envelope decoded (validated, upcast) as it is reached, so a
    fold holds one decoded envelope at a time; None for an undecodable record."""
    for topic, partition, offsets, values in runs:
        for offset, value in zip(offsets, values, strict=True):
            try:
                env: Envelope | None = decode(value)
            except Exception:  # undecodable: counted by the fold, not fatal
                env = None
            yield (topic, partition, offset, env)


class BatchFolder:
    """Folds batches of records into ``Changes``.

    It caches job state between batches (a job the cache lacks is loaded with ``load_job``,
    unless every stored job is known to be cached) and holds each partition's next offset, so
    records already applied are skipped. After ``fold`` the cache is as if the batch were
    stored: call ``committed`` once it is, ``drop_cache`` when storing it failed or when
    ``cache_full``.
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
        if len(self._ids) > CACHE_MAX:
            self._ids.clear()
        state = ProjectionState(jobs=self._jobs)
        result = BatchResult()
        dirty, offsets, trials = self._fold(state, items, result)
        jobs = state.jobs
        changes = Changes(
            [jobs[j] for j in sorted(dirty)],
            list(trials.values()),
            [tables.dataset_row(d) for d in state.datasets.values()],
            [tables.model_row(m) for m in state.models.values()],
            offsets,
            [tables.upload_row(u) for u in state.uploads.values()],
            [tables.upload_row(c) for c in state.completions.values()],
        )
        return changes, result

    def committed(self, changes: Changes) -> None:
        """The batch is stored: its offsets become the next ones."""
        for tp, offset in changes.offsets.items():
            self.offsets[tp] = max(self.offsets.get(tp, 0), offset)

    def cache_full(self) -> bool:
        """More than ``CACHE_MAX`` jobs are cached (drop the cache before the next batch)."""
        return len(self._jobs) > CACHE_MAX

    def drop_cache(self) -> None:
        """Forget cached jobs (their state may be ahead of the stored one)."""
        self._jobs.clear()
        self.all_cached = False

    def _fold(
        self, state: ProjectionState, items: Iterable[Item], result: BatchResult
    ) -> tuple[set[str], dict[TopicPartition, int], dict[Any, tuple[Any, ...]]]:
        """Fold into ``state``; the touched jobs, next offsets and trial rows.

        One loop for the whole batch, every record's work inline: this is the projection's
        hot path (live and rebuild). A trial is turned into its row as soon as it is folded
        (while it is still in the CPU's caches; a later one with the same key replaces it, as
        in ``state.trials``)."""
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
                        trial_rows[key] = tables.trial_row(trial)
                    trials.clear()
            if job_id is not None:
                dirty.add(job_id)
        if tp is not None and last:
            offsets[tp] = max(offsets.get(tp, 0), last)
        result.applied, result.duplicates, result.already_applied = applied, duplicates, skipped
        result.undecodable, result.failed = undecodable, failed
        return dirty, offsets, trial_rows
