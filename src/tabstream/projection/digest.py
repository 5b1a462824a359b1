"""The store's digest: sha256 over a canonical dump of every table, the proof that a rebuild
from offset 0 yields byte-identical state (DESIGN.md §4 "Projection").

The dump is each table's name line, then its rows by primary key, each row a JSON array and
a newline. Part of one table may be dumped elsewhere (``DigestTail``), by another connection
at the same time; the digest is the same.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from pydantic_core import to_json

from tabstream.projection.tables import DIGEST_TABLES

_ORDER = dict(DIGEST_TABLES)


class DigestTail(NamedTuple):
    """Rows of ``table`` from primary key ``key`` on, dumped elsewhere: ``dump()`` gives them."""

    table: str
    key: tuple[Any, ...]
    dump: Callable[[], bytes]


def digest_of(db: sqlite3.Connection, tail: DigestTail | None = None) -> str:
    """The digest of the store open at ``db``; with ``tail``, that part of the dump is taken
    from ``tail.dump()`` instead of being made here."""
    h = hashlib.sha256()
    for table, _ in DIGEST_TABLES:
        h.update(f"#{table}\n".encode())
        if tail is not None and tail.table == table:
            dump_rows(db, h.update, table, stop=tail.key)
            h.update(tail.dump())
        else:
            dump_rows(db, h.update, table)
    return h.hexdigest()


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
    order = _ORDER[table]
    where, args = [], []
    for bound, op in ((start, ">="), (stop, "<")):
        if bound is not None:
            where.append(f"({order}) {op} ({', '.join('?' * len(bound))})")
            args += list(bound)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    for row in db.execute(f"SELECT * FROM {table}{clause} ORDER BY {order}", args):
        write(to_json(list(row)))
        write(b"\n")


def middle_key(db: sqlite3.Connection, table: str) -> tuple[Any, ...] | None:
    """The primary key of the middle row of ``table`` (None when it has under 2 rows)."""
    order = _ORDER[table]
    (n,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    if n < 2:
        return None
    query = f"SELECT {order} FROM {table} ORDER BY {order} LIMIT 1 OFFSET ?"
    return tuple(db.execute(query, (n // 2,)).fetchone())
