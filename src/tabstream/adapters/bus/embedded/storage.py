"""The embedded log's SQLite file: schema, appends, reads, group offsets and the topic cache.

Every SQL statement of the embedded backend lives here. Calls are synchronous: SQLite in WAL
mode answers in microseconds, and one process owns the file's writes (see ``embedded_log.py``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tabstream.adapters.bus.partitioner import partition_for
from tabstream.adapters.bus.port import Headers, OutgoingRecord, Position, Record, TopicPartition

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
_SYNC_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_Row = tuple[int, str | None, bytes, str | None, int]

REPLAY_BATCH = 5000
"""Records read per partition and query by replays and followers."""

_HEADERS_CACHE: dict[str, Headers] = {}
_HEADERS_CACHE_MAX = 4096
# Replay builds one Record per row: ``tuple.__new__`` fills the named tuple without
# ``Record.__new__``'s argument handling, a third of the cost of a read (see ``port.Record``).
_new_tuple = tuple.__new__


def _encode_headers(headers: Headers) -> str | None:
    return json.dumps([[k, v.decode("latin-1")] for k, v in headers]) if headers else None


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


class LogFile:
    """One SQLite file in WAL mode holding topics, records and group offsets.

    It also caches the topics table (``topics``); ``reload_topics`` re-reads it, e.g. to see
    topics another process created.
    """

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in _SYNC_MODES:
            raise ValueError(f"synchronous must be one of {sorted(_SYNC_MODES)}")
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._db: sqlite3.Connection | None = None
        self._topics: dict[str, int] = {}

    def open(self) -> None:
        """Open (and if needed create) the file; nothing when it is open already."""
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        self._db = db
        self.reload_topics()

    def close(self) -> None:
        """Close the file (it may be opened again)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection; raises when the file is not open."""
        if self._db is None:
            raise RuntimeError("EmbeddedEventLog is not started")
        return self._db

    @property
    def topics(self) -> Mapping[str, int]:
        """Partition count per topic, as last read from the file (see ``reload_topics``)."""
        return self._topics

    def reload_topics(self) -> bool:
        """Re-read the topics table; whether it differs from the cached one."""
        topics = {str(n): int(p) for n, p in self.db.execute("SELECT name, partitions FROM topics")}
        changed = topics != self._topics
        self._topics = topics
        return changed

    def partitions(self, topic: str) -> int:
        """Partition count of ``topic`` (re-reading the topics once when unknown); KeyError when
        it does not exist."""
        if topic not in self._topics:
            self.reload_topics()
        return self._topics[topic]

    def create_topics(self, topics: Mapping[str, int]) -> None:
        """Insert missing topics; existing ones keep their partition count (the cache is not
        re-read: call ``reload_topics``)."""
        with self._transaction():
            rows = [(t, int(n)) for t, n in topics.items()]
            self.db.executemany("INSERT OR IGNORE INTO topics VALUES (?, ?)", rows)

    def append(self, records: Sequence[OutgoingRecord]) -> list[Position]:
        """Append ``records`` in one transaction; a topic not seen yet is created with one
        partition. On a SQLite error the topic cache is re-read (the rolled-back transaction
        may have added to it) and the error raised."""
        try:
            with self._transaction():
                return self._insert(records)
        except sqlite3.Error:
            self.reload_topics()
            raise

    def commit_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Durably store the group's next offsets."""
        with self._transaction():
            self._write_offsets(group, offsets)

    def commit_transaction(
        self, records: Sequence[OutgoingRecord], group: str, offsets: Mapping[TopicPartition, int]
    ) -> None:
        """Append ``records`` and store the group's ``offsets`` in one SQLite transaction."""
        with self._transaction():
            self._insert(records)
            self._write_offsets(group, offsets)

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

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Next offset per partition of ``topic``; KeyError when the topic does not exist."""
        n = self.partitions(topic)
        rows = self.db.execute(
            "SELECT partition, MAX(pos) + 1 FROM records WHERE topic = ? GROUP BY partition",
            (topic,),
        ).fetchall()
        ends = dict.fromkeys(range(n), 0)
        ends.update({int(p): int(e) for p, e in rows})
        return ends

    def fetch(self, tp: TopicPartition, start: int, limit: int, end: int = 2**62) -> list[Record]:
        """Up to ``limit`` committed records of ``tp`` with ``start <= offset < end``."""
        rows: list[_Row] = self.db.execute(
            _SELECT, (tp.topic, tp.partition, start, end, limit)
        ).fetchall()
        t, p, new, headers = tp.topic, tp.partition, _new_tuple, _decode_headers
        return [new(Record, (t, p, o, k, v, headers(h), ts)) for o, k, v, h, ts in rows]

    def fetch_next(
        self,
        positions: dict[TopicPartition, int],
        tps: Iterable[TopicPartition],
        *,
        limit: int = REPLAY_BATCH,
        total: int | None = None,
    ) -> list[list[Record]]:
        """The next records of each of ``tps`` from ``positions``, which move past them.

        One list per partition that has records, in the order of ``tps``: up to ``limit``
        records per partition and ``total`` in all.
        """
        batches, left = [], total
        for tp in tps:
            if left is not None and left <= 0:
                break
            batch = self.fetch(tp, positions[tp], limit if left is None else min(limit, left))
            if batch:
                positions[tp] = batch[-1].offset + 1
                batches.append(batch)
                left = None if left is None else left - len(batch)
        return batches

    def _insert(self, records: Sequence[OutgoingRecord]) -> list[Position]:
        """INSERT ``records`` (inside a transaction) at the next offsets of their partitions."""
        now = time.time_ns() // 1_000_000
        next_pos: dict[tuple[str, int], int] = {}
        rows: list[tuple[Any, ...]] = []
        positions = []
        for r in records:
            p = partition_for(r.key, self._partitions_or_create(r.topic))
            pos = next_pos.get((r.topic, p))
            if pos is None:
                pos = self._max_pos(r.topic, p) + 1
            next_pos[(r.topic, p)] = pos + 1
            rows.append((r.topic, p, pos, r.key, r.value, _encode_headers(r.headers), now))
            positions.append(Position(p, pos))
        self.db.executemany(_INSERT, rows)
        return positions

    def _partitions_or_create(self, topic: str) -> int:
        """Partition count of ``topic``, creating it with one partition (inside a transaction)."""
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

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
