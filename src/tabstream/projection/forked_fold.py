"""``fold_in_child``: a rebuild's decoding and folding in a forked child process.

This is the one performance trick of the rebuild, kept because a stated target needs it: a
rebuild must fold at least 50,000 events/s on both backends (issue #4), and in one process it
does not (decoding and folding, pure Python, are about two thirds of its work). See
``fold_in_child`` for how it works.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import pickle
import signal
import sqlite3
import tempfile
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from tabstream.projection.batch import BatchFolder, Run, items_of
from tabstream.projection.digest import DigestTail, dump_rows
from tabstream.projection.fold_job import Json
from tabstream.projection.sqlite_store import (
    ProjectionStore,
    gc_paused,
    load_job,
    open_for_rebuild,
)

AHEAD = 2
"""Batches handed to the child and not yet written, at most."""
SPLIT = "trials"
"""The table (the biggest) whose digest dump is shared between the two processes."""
Folded = tuple[str, bool]
"""What the child returns for a batch: (its changes' file, whether its job cache is full)."""


class RebuildError(RuntimeError):
    """The folding child failed (the cause is its exception) or died."""


async def fold_in_child(batches: AsyncIterator[list[Run]], path: Path) -> str:
    """Fold ``batches`` into a fresh store at ``path``, one transaction per batch, with the
    decoding and folding done by a forked child; the store's digest.

    The two halves of ``ProjectionStore.apply_batch`` run on two cores: the child runs
    ``BatchFolder.fold`` (decode and fold a batch into its ``Changes``) while this process
    reads the log and writes the changes (``ProjectionStore.write_changes``), up to ``AHEAD``
    batches behind. The result is the same as folding here, byte for byte.

    - The child is a one-process ``ProcessPoolExecutor``, forked (not spawned: a fresh
      interpreter spends ~0.25 s importing what a fork inherits) before this process opens
      the store or reads the log. The caller forks only where that is safe: on Linux, from a
      process with one thread (a fork copies only the calling thread).
    - Batches and changes travel as pickled files in a private temporary directory (page
      cache, never synced); the pool carries only their names. (A big message through a pipe
      is read in 64 KiB pieces, each waiting for the busy reader's GIL.)
    - The child keeps every job it folded in its cache. When the cache is full, this process
      writes every change still pending before the next batch tells the child to drop it:
      the jobs the child then reads back from the store are up to date.
    - For the digest, the child dumps the second half of the biggest table to a file while
      this process dumps the rest (``DigestTail``).
    """
    loop = asyncio.get_running_loop()
    fork = multiprocessing.get_context("fork")
    folding: deque[asyncio.Future[Folded]] = deque()
    with (
        tempfile.TemporaryDirectory(prefix="tabstream-rebuild-") as tmp,
        ProcessPoolExecutor(1, mp_context=fork) as child,
    ):
        child.submit(_start_child, str(path)).result()
        store = open_for_rebuild(path)
        try:
            sent = 0
            drop = False  # the child's cache is full: drop it once every change is written
            async for runs in batches:
                while folding and (drop or len(folding) >= AHEAD or folding[0].done()):
                    drop |= _write(store, await _folded(folding.popleft()))
                batch = Path(tmp, f"batch-{sent}")
                batch.write_bytes(pickle.dumps(runs, pickle.HIGHEST_PROTOCOL))
                folding.append(loop.run_in_executor(child, _fold, str(batch), drop))
                sent, drop = sent + 1, False
            while folding:
                _write(store, await _folded(folding.popleft()))
            return _digest(store, child, Path(tmp, "tail"))
        finally:
            for future in folding:
                if not future.cancel() and not future.cancelled():
                    future.exception()  # retrieved: the child's failure is reported once
            child.shutdown(cancel_futures=True)
            store.close()


async def _folded(future: asyncio.Future[Folded]) -> Folded:
    try:
        return await future
    except Exception as exc:
        raise _failed(exc) from exc


def _failed(exc: Exception) -> RebuildError:
    if isinstance(exc, BrokenProcessPool):
        return RebuildError("the rebuild child died")
    return RebuildError(f"the rebuild child failed: {exc!r}")


def _write(store: ProjectionStore, folded: Folded) -> bool:
    """Write a batch's changes; whether the child's cache is full."""
    name, cache_full = folded
    changes = Path(name)
    store.write_changes(pickle.loads(changes.read_bytes()))
    changes.unlink()
    return cache_full


def _digest(store: ProjectionStore, child: ProcessPoolExecutor, tail: Path) -> str:
    """The store's digest, the second half of ``SPLIT`` dumped by the child meanwhile."""
    key = store.middle_key(SPLIT)
    if key is None:
        return store.digest()
    dumped = child.submit(_dump, key, str(tail))
    return store.digest(DigestTail(SPLIT, key, lambda: _take(dumped, tail)))


def _take(dumped: Future[None], tail: Path) -> bytes:
    try:
        dumped.result()
    except Exception as exc:
        raise _failed(exc) from exc
    return tail.read_bytes()


class _Child:
    """The child's state: its folder, and a read-only connection to the store."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.folder = BatchFolder(self.load_job, {}, all_cached=True)
        self._db: sqlite3.Connection | None = None

    def load_job(self, job_id: str) -> Json | None:
        """A stored job (read only once the cache was dropped)."""
        return load_job(self.db(), job_id)

    def db(self) -> sqlite3.Connection:
        """The read-only connection, opened on first use."""
        if self._db is None:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            self._db.execute("PRAGMA busy_timeout=5000")
        return self._db


_child: _Child | None = None


def _start_child(path: str) -> None:
    """In the child, first: undo the parent's asyncio signal set-up it inherited (a signal
    here must not wake the parent's loop) and make its state."""
    global _child
    with contextlib.suppress(ValueError):  # not the main thread (a fork forced from another)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _child = _Child(path)


def _fold(batch: str, drop_cache: bool) -> Folded:
    """In the child: fold one batch file into a changes file."""
    assert _child is not None
    folder, file = _child.folder, Path(batch)
    runs: list[Run] = pickle.loads(file.read_bytes())
    file.unlink()
    if drop_cache:
        folder.drop_cache()
    with gc_paused():
        changes, _ = folder.fold(items_of(runs))
    del runs
    folder.committed(changes)  # the parent writes it, or the rebuild fails
    out = file.with_name(file.name + ".changes")
    out.write_bytes(pickle.dumps(changes, pickle.HIGHEST_PROTOCOL))
    return str(out), folder.cache_full()


def _dump(key: tuple[Any, ...], tail: str) -> None:
    """In the child: dump the rows of ``SPLIT`` from ``key`` on to the file ``tail``."""
    assert _child is not None
    with open(tail, "wb") as out:
        dump_rows(_child.db(), out.write, SPLIT, start=key)
