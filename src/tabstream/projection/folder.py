"""Where a rebuild folds: in this process, or split over two processes.

``rebuild`` reads the log and hands batches of raw records over as ``Run``s; a folder decodes
them, folds them and writes each batch as one transaction of state and offsets, then gives the
store's digest. Both folders run the code the live projection runs: ``BatchFolder.fold``
(decode and fold into ``Changes``) and ``ProjectionStore``'s write of the changes.

``ForkedFolder`` splits that over two cores. A forked child decodes and folds (the pure Python
part, about two thirds of the work) and hands each batch's ``Changes`` back; this process reads
the log, writes the changes and computes the digest. Batches and changes travel pickled (the
records as columns: well under a microsecond per record on each side). The child is forked
rather than spawned, since a fresh interpreter spends ~0.25 s importing what a fork inherits,
and only where that is safe: on Linux, from a process with a single thread (a fork copies
only the calling thread; a lock another thread held would stay locked in the child).
Elsewhere ``LocalFolder`` does it all in this process, with the same result.

At the end the two processes share the digest's work too (``DigestTail``).

The child caches job state like the live store. Should the cache be dropped (more than
``store._CACHE_MAX`` jobs), it loads jobs from the file through a read-only connection, after
asking this process to confirm ("sync") that every batch sent so far is committed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import multiprocessing
import os
import pickle
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from tabstream.adapters.bus.port import Record, TopicPartition
from tabstream.projection.fold_job import Json
from tabstream.projection.store import (
    BatchFolder,
    DigestTail,
    Item,
    ProjectionStore,
    dump_rows,
    load_job,
)
from tabstream.schemas.events import Envelope, decode

Run = tuple[str, int, list[int], list[bytes]]
"""Consecutive records of one partition: (topic, partition, offsets, values)."""
Message = tuple[str, Any]
"""A frame's content: (kind, data)."""

PAGE_SIZE = 16_384  # a fresh store's pages: fewer page splits while it is filled
_HEADER = 8
_AHEAD = 2  # batches handed to the child and not yet folded
_SPLIT = "trials"  # the table whose digest dump is split between the two processes
_JOIN_S = 30.0


class RebuildError(RuntimeError):
    """The folding child failed (its traceback is the message) or died."""


class Folder(Protocol):
    """Folds batches of runs into a fresh store (one transaction per batch)."""

    async def fold(self, runs: list[Run]) -> None:
        """Fold one batch (possibly still folding when this returns)."""
        ...

    async def finish(self) -> str:
        """Wait until every batch is stored; close the store and return its digest."""
        ...

    def abort(self) -> None:
        """Stop and release everything (the store is left half-built)."""
        ...


def open_folder(path: Path, *, fork: bool | None = None) -> Folder:
    """A ``ForkedFolder`` where forking is safe (or when ``fork`` is True), else a
    ``LocalFolder``; either builds a fresh store at ``path``."""
    if fork is None:
        fork = sys.platform == "linux" and threading.active_count() == 1
    return ForkedFolder(path) if fork else LocalFolder(path)


def open_store(path: Path) -> ProjectionStore:
    """A fresh store written for speed: no fsync, rollback journal in memory (each batch is
    still one transaction of state and offsets), larger pages."""
    return ProjectionStore(path, synchronous="OFF", journal_mode="MEMORY", page_size=PAGE_SIZE)


def runs_of(records: Sequence[Record], until: Mapping[TopicPartition, int]) -> list[Run]:
    """``records`` as runs of one partition each, without those at or past ``until``'s offset
    of their partition (all of a partition absent from it)."""
    runs: list[Run] = []
    topic, partition, end = "", -1, 0
    offsets: list[int] = []
    values: list[bytes] = []
    for r in records:
        if r.partition != partition or r.topic != topic:
            topic, partition = r.topic, r.partition
            end = until.get(TopicPartition(topic, partition), 0)
            offsets, values = [], []
            runs.append((topic, partition, offsets, values))
        if r.offset < end:
            offsets.append(r.offset)
            values.append(r.value)
    return runs


def items_of(runs: Sequence[Run]) -> Iterator[Item]:
    """The store's items of ``runs``, each envelope decoded (validated, upcast) once, as it is
    folded; None for an undecodable record."""
    for topic, partition, offsets, values in runs:
        for offset, value in zip(offsets, values, strict=True):
            try:
                env: Envelope | None = decode(value)
            except Exception:  # undecodable: counted by the store, not fatal
                env = None
            yield (topic, partition, offset, env)


class LocalFolder:
    """Folds and writes in this process."""

    def __init__(self, path: Path) -> None:
        self._store = open_store(path)

    async def fold(self, runs: list[Run]) -> None:
        """Fold and store one batch now."""
        self._store.apply_batch(items_of(runs))

    async def finish(self) -> str:
        """The digest; closes the store."""
        try:
            return self._store.digest()
        finally:
            self._store.close()

    def abort(self) -> None:
        """Close the store."""
        self._store.close()


class ForkedFolder:
    """Folds in a forked child; writes the child's changes here (see the module docstring).

    Batches and changes travel through files in a private temporary directory (written to
    the page cache, never synced, deleted once read), so neither process waits for the other
    to pump bytes through a socket: the child never idles while this process is busy reading
    or writing.
    The socket pair carries short notes, each an 8-byte length and a pickled ``Message``. To
    the child: ("batch", n), ("synced", None), ("end", None), then ("dump", key). From it:
    ("changes", n), ("sync", None), ("done", None) or ("error", traceback). ``fold`` keeps
    at most ``_AHEAD`` batches handed over and not yet folded; a task writes the changes as
    they come. For the digest, the child dumps the second half of the trials (from ``key``)
    to a file while this process dumps the rest, and says when on a pipe.
    """

    def __init__(self, path: Path) -> None:
        self._files = Path(tempfile.mkdtemp(prefix="tabstream-rebuild-"))  # mode 0700
        ours, theirs = socket.socketpair()
        self._ready, ready = os.pipe()  # the child's "my part of the digest is dumped"
        context = multiprocessing.get_context("fork")
        # Forked before this process opens the store, so the child inherits no connection.
        self._child = context.Process(
            target=_child_main,
            args=(theirs, ours, ready, str(path), str(self._files)),
            name="tabstream-rebuild",
        )
        self._child.daemon = True
        try:
            self._child.start()
        finally:
            theirs.close()
            os.close(ready)
        self._socket = ours
        self._store = open_store(path)
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._writing: asyncio.Task[None] | None = None
        self._sent = self._done = 0
        self._progress = asyncio.Event()

    async def fold(self, runs: list[Run]) -> None:
        """Hand one batch to the child (waits while ``_AHEAD`` batches are not yet folded)."""
        await self._open()
        while self._sent - self._done >= _AHEAD:
            await self._wait_progress()
        (self._files / f"batch-{self._sent}").write_bytes(_dumps(runs))
        await self._note(("batch", self._sent))
        self._sent += 1

    async def finish(self) -> str:
        """Send the end, wait until every change is written; the digest (closes the store)."""
        await self._open()
        await self._note(("end", None))
        assert self._writing is not None
        await self._writing
        # The child dumps the second half of the biggest table meanwhile (same digest).
        tail = None
        key = self._store.middle_key(_SPLIT)
        if key is not None:
            await self._note(("dump", key))
            tail = DigestTail(_SPLIT, key, self._take_dump)
        try:
            return self._store.digest(tail)
        finally:
            assert self._streams is not None
            self._streams[1].close()  # the child exits once it sees the end of the stream
            with contextlib.suppress(ConnectionError):
                await self._streams[1].wait_closed()
            self._child.join(_JOIN_S)
            self.abort()

    def abort(self) -> None:
        """End the child (killed if still running), stop writing, close the store, delete
        the files left."""
        if self._child.is_alive():
            self._child.kill()
        self._child.join(_JOIN_S)
        if self._writing is not None:
            self._writing.cancel()
        self._close_socket()
        with contextlib.suppress(OSError):
            os.close(self._ready)
        self._store.close()
        shutil.rmtree(self._files, ignore_errors=True)

    def _take_dump(self) -> bytes:
        """The child's dump (waits until it is made)."""
        status = os.read(self._ready, 1)
        part = self._files / "dump"
        if status != b"D":
            why = part.read_text() if status == b"E" else f"code {self._child.exitcode}"
            raise RebuildError(f"the rebuild child failed to dump its part: {why}")
        data = part.read_bytes()
        part.unlink()
        return data

    def _close_socket(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
        else:
            self._socket.close()

    async def _open(self) -> None:
        if self._streams is None:
            self._streams = await asyncio.open_connection(sock=self._socket)
            self._writing = asyncio.create_task(self._write_changes(self._streams[0]))

    async def _note(self, message: Message) -> None:
        assert self._streams is not None
        writer = self._streams[1]
        writer.write(_frame(message))
        try:
            await writer.drain()
        except (ConnectionError, OSError):  # the child is gone: the writing task says why
            if self._writing is not None and self._writing is not asyncio.current_task():
                await self._writing
            raise RebuildError("the rebuild child is gone") from None

    async def _wait_progress(self) -> None:
        """Until the child folded one more batch; raises why the writing task ended early."""
        assert self._writing is not None
        progress = asyncio.ensure_future(self._progress.wait())
        try:
            await asyncio.wait({progress, self._writing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            progress.cancel()
        self._progress.clear()
        if self._writing.done():
            self._writing.result()  # raises when it failed
            if self._sent > self._done:
                raise RebuildError("the rebuild child ended before folding every batch")

    async def _write_changes(self, reader: asyncio.StreamReader) -> None:
        """Write each batch's changes, answer syncs, until the child is done or failed."""
        try:
            while True:
                kind, data = await self._recv(reader)
                if kind == "changes":
                    payload = self._files / f"changes-{data}"
                    changes = pickle.loads(payload.read_bytes())
                    payload.unlink()
                    self._store.write_changes(changes)
                    self._done += 1
                    self._progress.set()
                elif kind == "sync":  # every batch before it is committed now
                    await self._note(("synced", None))
                elif kind == "done":
                    return
                else:
                    raise RebuildError(f"rebuild child failed:\n{data}")
        except BaseException:
            if self._child.is_alive():
                self._child.kill()
            raise

    async def _recv(self, reader: asyncio.StreamReader) -> Message:
        try:
            size = int.from_bytes(await reader.readexactly(_HEADER), "little")
            message: Message = pickle.loads(await reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError):
            self._child.join(_JOIN_S)
            code = self._child.exitcode
            raise RebuildError(f"the rebuild child exited (code {code}) without a reply") from None
        return message


def _child_main(
    sock: socket.socket, parent_end: socket.socket, ready: int, path: str, files: str
) -> None:
    """The forked child: fold every batch it is sent, hand back the changes; then dump its
    part of the digest when asked."""
    parent_end.close()
    # The parent's asyncio signal set-up was inherited: a signal here must not wake its loop.
    with contextlib.suppress(ValueError):  # not the main thread (a forced fork)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    gc.disable()  # short-lived, and everything it allocates is freed by reference counting
    channel = _Channel(sock, Path(path), Path(files))
    reply: Message = ("done", None)
    try:
        folder = BatchFolder(channel.load_job, {}, all_cached=True)
        while (message := channel.recv())[0] == "batch":
            n = message[1]
            batch = channel.files / f"batch-{n}"
            runs = pickle.loads(batch.read_bytes())
            batch.unlink()
            changes, _ = folder.fold(items_of(runs))
            del runs
            folder.committed(changes)  # the parent writes it, or the rebuild fails
            (channel.files / f"changes-{n}").write_bytes(_dumps(changes))
            channel.send(("changes", n))
            channel.unsynced = True
    except BaseException as exc:  # reported to the parent, which raises RebuildError
        reply = ("error", "".join(traceback.format_exception(exc)))
    with contextlib.suppress(OSError, EOFError):
        channel.send(reply)
        # Read on until the parent closes (or kills) this: closing first would fail its next
        # write, and a failed write makes its reader drop the unread reply. Its last note is
        # the request for a dump, if any.
        while True:
            message = channel.recv()
            if message[0] == "dump" and reply[0] == "done":
                _dump(channel, ready, message[1])
                break
    sock.close()


def _dump(channel: _Channel, ready: int, key: tuple[Any, ...]) -> None:
    """Dump the rows of ``_SPLIT`` from ``key`` on to a file; say "D" (or "E" and write the
    traceback there instead) on the ``ready`` pipe."""
    target = channel.files / "dump"
    try:
        with target.open("wb") as out:
            dump_rows(channel.db(), out.write, _SPLIT, start=key)
        os.write(ready, b"D")
    except Exception as exc:
        target.write_text("".join(traceback.format_exception(exc)))
        os.write(ready, b"E")


class _Channel:
    """The child's end of the socket pair, and its way to stored jobs."""

    def __init__(self, sock: socket.socket, path: Path, files: Path) -> None:
        self.path, self.files = path, files
        self.unsynced = False  # changes were handed back that may not be committed yet
        self._sock = sock
        self._inbox: collections.deque[Message] = collections.deque()
        self._db: sqlite3.Connection | None = None

    def send(self, message: Message) -> None:
        self._sock.sendall(_frame(message))

    def recv(self) -> Message:
        return self._inbox.popleft() if self._inbox else self._read()

    def load_job(self, job_id: str) -> Json | None:
        """A stored job (only needed once the cache was dropped), read once every change
        handed back is committed."""
        if self.unsynced:
            self.send(("sync", None))
            while (message := self._read())[0] != "synced":
                self._inbox.append(message)  # batches sent meanwhile wait their turn
            self.unsynced = False
        return load_job(self.db(), job_id)

    def db(self) -> sqlite3.Connection:
        """A read-only connection to the store."""
        if self._db is None:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            self._db.execute("PRAGMA busy_timeout=5000")
        return self._db

    def _read(self) -> Message:
        size = int.from_bytes(self._exactly(_HEADER), "little")
        message: Message = pickle.loads(self._exactly(size))
        return message

    def _exactly(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view, got = memoryview(buffer), 0
        while got < size:
            n = self._sock.recv_into(view[got:])
            if n == 0:
                raise EOFError("the parent closed the stream")
            got += n
        return buffer


def _dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _frame(message: Message) -> bytes:
    data = _dumps(message)
    return len(data).to_bytes(_HEADER, "little") + data
