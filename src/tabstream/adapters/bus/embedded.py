"""The embedded EventLog: one SQLite file (WAL) holding topics, records and group offsets.

It gives one process the semantics of the Kafka adapter (ordering per partition, murmur2
keys, durable acks, consumer groups, commit after processing, atomic publish+commit,
replay from any offset). It is not a distributed broker: the group coordinator lives in
this process, and other processes on the same file only see each other's writes by polling.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tabstream.adapters.bus.embedded_group import EmbeddedGroupConsumer, round_robin
from tabstream.adapters.bus.partitioner import partition_for
from tabstream.adapters.bus.port import (
    BusUnavailable,
    Headers,
    OutgoingRecord,
    Position,
    Record,
    TopicPartition,
    flatten,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, pos INTEGER NOT NULL,
    key TEXT, value BLOB NOT NULL, headers TEXT, ts INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS records_tp_pos ON records (topic, partition, pos);
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL, PRIMARY KEY (grp, topic, partition)
) WITHOUT ROWID;
"""
_SELECT = (
    "SELECT pos, key, value, headers, ts FROM records"
    " WHERE topic = ? AND partition = ? AND pos >= ? AND pos < ? ORDER BY pos LIMIT ?"
)
_INSERT = "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)"
_UPSERT_OFFSET = (
    "INSERT INTO group_offsets VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition)"
    " DO UPDATE SET next_offset = excluded.next_offset"
)
_REPLAY_BATCH = 5000
_RECHECK_S = 0.2
_SYNC_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_Row = tuple[int, str | None, bytes, str | None, int]


def _encode_headers(headers: Headers) -> str | None:
    return json.dumps([[k, v.decode("latin-1")] for k, v in headers]) if headers else None


_HEADERS_CACHE: dict[str, Headers] = {}
_HEADERS_CACHE_MAX = 4096
_new_tuple = tuple.__new__


def _decode_headers(text: str | None) -> Headers:
    """Headers from their stored JSON; memoised, since records repeat a few header sets (type,
    schema_version, tenant) and decoding JSON per record cost as much as the rest of a read."""
    if not text:
        return ()
    headers = _HEADERS_CACHE.get(text)
    if headers is None:
        headers = tuple((k, v.encode("latin-1")) for k, v in json.loads(text))
        if len(_HEADERS_CACHE) >= _HEADERS_CACHE_MAX:
            _HEADERS_CACHE.clear()
        _HEADERS_CACHE[text] = headers
    return headers


class EmbeddedEventLog:
    """EventLog on one SQLite file in WAL mode, for a single process (see module docstring)."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in _SYNC_MODES:
            raise ValueError(f"synchronous must be one of {sorted(_SYNC_MODES)}")
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._db: sqlite3.Connection | None = None
        self._topics: dict[str, int] = {}
        self._pending: list[tuple[OutgoingRecord, asyncio.Future[Position]]] = []
        self._flush_handle: asyncio.Handle | None = None
        self._changed = asyncio.Event()
        self._members: dict[str, list[EmbeddedGroupConsumer]] = {}

    async def start(self) -> None:
        """Open (and if needed create) the file."""
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        self._db = db
        self._reload_topics()

    async def close(self) -> None:
        """Flush pending publishes, drop group members and close the file."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()
        for members in list(self._members.values()):
            for member in list(members):
                await member.stop()
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection; raises when the log is not started."""
        if self._db is None:
            raise RuntimeError("EmbeddedEventLog is not started")
        return self._db

    async def create_topics(self, topics: Mapping[str, int]) -> None:
        """Create missing topics; existing ones keep their partition count."""
        with self._tx():
            rows = [(t, int(n)) for t, n in topics.items()]
            self.db.executemany("INSERT OR IGNORE INTO topics VALUES (?, ?)", rows)
        self._topics_changed()

    async def partitions(self, topic: str) -> int:
        """Partition count of ``topic``; KeyError when it does not exist."""
        if topic not in self._topics:
            self._reload_topics()
        return self._topics[topic]

    async def publish(self, record: OutgoingRecord) -> Position:
        """Append ``record``; resolves once the group-committed SQLite transaction is durable."""
        self.db  # noqa: B018 - fail fast when closed
        future: asyncio.Future[Position] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        instance_id: str | None = None,
        max_poll_interval_ms: int = 300_000,
        session_timeout_ms: int = 10_000,
    ) -> EmbeddedGroupConsumer:
        """A member of ``group``; membership is coordinated inside this process."""
        return EmbeddedGroupConsumer(self, group, tuple(topics), instance_id=instance_id)

    def read(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        from_offset: int = 0,
        to_end: bool = True,
    ) -> AsyncIterator[Record]:
        """Replay ``topic`` from ``from_offset`` (see the port; here partition by partition)."""
        return flatten(
            self.read_batches(topic, partitions=partitions, from_offset=from_offset, to_end=to_end)
        )

    async def read_batches(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        from_offset: int = 0,
        to_end: bool = True,
    ) -> AsyncGenerator[list[Record], None]:
        """``read`` in batches of up to 5000 records of one partition (see the port)."""
        parts = list(partitions) if partitions is not None else range(await self.partitions(topic))
        if not to_end:
            async for batch in self._follow(topic, parts, from_offset):
                yield batch
            return
        ends = await self.end_offsets(topic)
        for p in parts:
            pos, end = from_offset, ends.get(p, 0)
            while pos < end:
                batch = self.fetch(TopicPartition(topic, p), pos, _REPLAY_BATCH, end)
                if not batch:
                    break
                yield batch
                pos = batch[-1].offset + 1
                await asyncio.sleep(0)

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Next offset per partition of ``topic`` (committed rows only)."""
        n = await self.partitions(topic)
        rows = self.db.execute(
            "SELECT partition, MAX(pos) + 1 FROM records WHERE topic = ? GROUP BY partition",
            (topic,),
        ).fetchall()
        ends = dict.fromkeys(range(n), 0)
        ends.update({int(p): int(e) for p, e in rows})
        return ends

    def follower(
        self,
        topics: Sequence[str],
        *,
        from_offsets: Mapping[TopicPartition, int] | None = None,
    ) -> EmbeddedFollower:
        """A follower of every partition of ``topics`` (see the port)."""
        return EmbeddedFollower(self, tuple(topics), dict(from_offsets or {}))

    def fetch(self, tp: TopicPartition, start: int, limit: int, end: int = 2**62) -> list[Record]:
        """Up to ``limit`` committed records of ``tp`` with ``start <= offset < end``."""
        rows: list[_Row] = self.db.execute(
            _SELECT, (tp.topic, tp.partition, start, end, limit)
        ).fetchall()
        t, p, new, headers = tp.topic, tp.partition, _new_tuple, _decode_headers
        return [new(Record, (t, p, o, k, v, headers(h), ts)) for o, k, v, h, ts in rows]

    def committed(self, group: str, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed next offsets for ``tps`` (0 where none)."""
        out = {}
        for tp in tps:
            row = self.db.execute(
                "SELECT next_offset FROM group_offsets"
                " WHERE grp = ? AND topic = ? AND partition = ?",
                (group, tp.topic, tp.partition),
            ).fetchone()
            out[tp] = int(row[0]) if row else 0
        return out

    def commit_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Durably store the group's next offsets."""
        with self._tx():
            self._write_offsets(group, offsets)

    def commit_transaction(
        self, records: Sequence[OutgoingRecord], group: str, offsets: Mapping[TopicPartition, int]
    ) -> None:
        """Append ``records`` and store ``offsets`` in one SQLite transaction."""
        with self._tx():
            self._append(records)
            self._write_offsets(group, offsets)
        self._notify()

    @property
    def changed(self) -> asyncio.Event:
        """Set (then replaced) whenever this process commits new records or topics."""
        return self._changed

    def join(self, member: EmbeddedGroupConsumer) -> None:
        """Add ``member`` to its group and rebalance."""
        self._members.setdefault(member.group, []).append(member)
        self._rebalance(member.group)

    def leave(self, member: EmbeddedGroupConsumer) -> None:
        """Remove ``member`` from its group and rebalance the rest."""
        members = self._members.get(member.group, [])
        if member in members:
            members.remove(member)
            self._rebalance(member.group)

    def refresh_topics(self, wanted: Iterable[str]) -> None:
        """Reload topics when some ``wanted`` topic is unknown (created by another process)."""
        if any(t not in self._topics for t in wanted) and self._reload_topics():
            self._topics_changed()

    def _rebalance(self, group: str) -> None:
        members = self._members.get(group, [])
        tps = [
            TopicPartition(t, p)
            for t in sorted({t for m in members for t in m.topics})
            for p in range(self._topics.get(t, 0))
        ]
        plan = round_robin(tps, [set(m.topics) for m in members])
        for member, assigned in zip(members, plan, strict=True):
            member.assign(frozenset(assigned), self.committed(group, assigned))

    def _topics_changed(self) -> None:
        self._reload_topics()
        for group in list(self._members):
            self._rebalance(group)
        self._notify()

    def _reload_topics(self) -> bool:
        topics = {str(n): int(p) for n, p in self.db.execute("SELECT name, partitions FROM topics")}
        changed = topics != self._topics
        self._topics = topics
        return changed

    def _flush(self) -> None:
        self._flush_handle = None
        batch, self._pending = self._pending, []
        known = set(self._topics)
        try:
            with self._tx():
                positions = self._append([record for record, _ in batch])
        except sqlite3.Error as exc:
            self._reload_topics()
            for _, future in batch:
                if not future.done():
                    future.set_exception(BusUnavailable(f"embedded log write failed: {exc}"))
            return
        for (_, future), position in zip(batch, positions, strict=True):
            if not future.done():
                future.set_result(position)
        if set(self._topics) != known:
            self._topics_changed()
        self._notify()

    def _append(self, records: Sequence[OutgoingRecord]) -> list[Position]:
        now = time.time_ns() // 1_000_000
        next_pos: dict[tuple[str, int], int] = {}
        rows: list[tuple[Any, ...]] = []
        positions = []
        for r in records:
            p = partition_for(r.key, self._partitions_in_tx(r.topic))
            pos = next_pos.get((r.topic, p))
            if pos is None:
                pos = self._max_pos(r.topic, p) + 1
            next_pos[(r.topic, p)] = pos + 1
            rows.append((r.topic, p, pos, r.key, r.value, _encode_headers(r.headers), now))
            positions.append(Position(p, pos))
        self.db.executemany(_INSERT, rows)
        return positions

    def _partitions_in_tx(self, topic: str) -> int:
        n = self._topics.get(topic)
        if n is None:
            self.db.execute("INSERT OR IGNORE INTO topics VALUES (?, 1)", (topic,))
            sql = "SELECT partitions FROM topics WHERE name = ?"
            row = self.db.execute(sql, (topic,)).fetchone()
            n = self._topics[topic] = int(row[0])
        return n

    def _max_pos(self, topic: str, partition: int) -> int:
        row = self.db.execute(
            "SELECT MAX(pos) FROM records WHERE topic = ? AND partition = ?", (topic, partition)
        ).fetchone()
        return -1 if row[0] is None else int(row[0])

    def _write_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        self.db.executemany(
            _UPSERT_OFFSET, [(group, tp.topic, tp.partition, int(o)) for tp, o in offsets.items()]
        )

    def _tx(self) -> _Transaction:
        return _Transaction(self.db)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _follow(
        self, topic: str, parts: Sequence[int], from_offset: int
    ) -> AsyncIterator[list[Record]]:
        positions = dict.fromkeys(parts, from_offset)
        while True:
            changed = self._changed
            got = False
            for p in parts:
                batch = self.fetch(TopicPartition(topic, p), positions[p], _REPLAY_BATCH)
                if batch:
                    yield batch
                    positions[p], got = batch[-1].offset + 1, True
            if not got:
                try:
                    async with asyncio.timeout(_RECHECK_S):
                        await changed.wait()
                except TimeoutError:
                    pass


class EmbeddedFollower:
    """Follows topics in this file: woken by this process's writes, rechecks for others'."""

    def __init__(
        self, log: EmbeddedEventLog, topics: tuple[str, ...], start: dict[TopicPartition, int]
    ) -> None:
        self._log, self._topics, self._start = log, topics, start
        self._positions: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        """Every partition of the topics, at its start offset."""
        positions = {}
        for topic in self._topics:
            for p in range(await self._log.partitions(topic)):
                tp = TopicPartition(topic, p)
                positions[tp] = self._start.get(tp, 0)
        self._positions = positions

    async def stop(self) -> None:
        """Nothing to release."""

    async def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """New records of any partition (up to 5000 per partition); [] after ``timeout_ms``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while True:
            changed = self._log.changed
            out: list[Record] = []
            for tp, pos in self._positions.items():
                batch = self._log.fetch(tp, pos, _REPLAY_BATCH)
                if batch:
                    out += batch
                    self._positions[tp] = batch[-1].offset + 1
            left = deadline - loop.time()
            if out or left <= 0:
                return out
            try:
                async with asyncio.timeout(min(left, _RECHECK_S)):
                    await changed.wait()
            except TimeoutError:
                pass

    async def position(self, tp: TopicPartition) -> int:
        """The next offset to read in ``tp``."""
        return self._positions[tp]

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """The next offset to be written in every followed partition."""
        ends: dict[TopicPartition, int] = {}
        for topic in self._topics:
            for p, end in (await self._log.end_offsets(topic)).items():
                ends[TopicPartition(topic, p)] = end
        return {tp: ends.get(tp, 0) for tp in self._positions}


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
