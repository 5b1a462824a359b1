"""Dataset ingestion: parse CSV/Parquet with pyarrow, validate, describe, store as Parquet.

Everything here is synchronous and CPU/IO heavy: routers call it through ``anyio.to_thread``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tabstream.adapters.artifacts.port import ArtifactStore
from tabstream.schemas import ColumnInfo

PARQUET_MAGIC = b"PAR1"


class DatasetRejected(ValueError):
    """The data cannot become a dataset; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422, field: str = "file") -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True)
class StoredDataset:
    """A parsed, validated and stored table."""

    rows: int
    columns: list[ColumnInfo]
    sha256: str
    uri: str


def read_table(source: IO[bytes]) -> pa.Table:
    """Parquet when the data starts with ``PAR1``, CSV with a header row otherwise."""
    head = source.read(4)
    source.seek(0)
    try:
        table = pq.read_table(source) if head == PARQUET_MAGIC else pacsv.read_csv(source)
        table.column_names  # noqa: B018 (raises on names that are not UTF-8)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as exc:
        kind = "Parquet" if head == PARQUET_MAGIC else "CSV"
        raise DatasetRejected(f"cannot parse the file as {kind}: {str(exc)[:500]}") from None
    return table


def check_table(table: pa.Table, max_columns: int, max_rows: int) -> None:
    """Column count, row count and unique non-empty column names."""
    names = table.column_names
    if not names:
        raise DatasetRejected("the dataset has no columns")
    if len(names) > max_columns:
        raise DatasetRejected(f"the dataset has {len(names)} columns; the limit is {max_columns}")
    if table.num_rows > max_rows:
        raise DatasetRejected(f"the dataset has {table.num_rows} rows; the limit is {max_rows}")
    empty = [i for i, n in enumerate(names) if not n.strip()]
    if empty:
        raise DatasetRejected(f"column names must not be empty (columns at positions {empty})")
    dupes = sorted(n for n, c in Counter(names).items() if c > 1)
    if dupes:
        raise DatasetRejected(f"column names must be unique; duplicated: {dupes}")


def describe(table: pa.Table) -> list[ColumnInfo]:
    """[{name, type, nulls}] of every column."""
    return [
        ColumnInfo(name=f.name, type=str(f.type), nulls=table.column(i).null_count)
        for i, f in enumerate(table.schema)
    ]


def ingest(
    source: IO[bytes], artifacts: ArtifactStore, dataset_id: str, max_columns: int, max_rows: int
) -> StoredDataset:
    """Parse, check and store ``source`` at ``datasets/<dataset_id>/data.parquet``."""
    table = read_table(source)
    check_table(table, max_columns, max_rows)
    key = f"datasets/{dataset_id}/data.parquet"
    uri = artifacts.write_parquet(key, table)
    digest = hashlib.sha256(artifacts.get_bytes(key)).hexdigest()
    return StoredDataset(table.num_rows, describe(table), digest, uri)


def open_import(uri: str, import_root: str | None) -> IO[bytes]:
    """Open an import URI: ``s3://`` via pyarrow, ``file://`` only under ``import_root``."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return open(_under_root(unquote(parsed.path), import_root), "rb")
    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
        handle: IO[bytes] = filesystem.open_input_file(path)
        return handle
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetRejected(f"cannot open {uri}: {str(exc)[:300]}", 422, "uri") from None


def _under_root(raw_path: str, import_root: str | None) -> Path:
    if not import_root:
        raise DatasetRejected(
            "file:// imports are disabled (TABSTREAM_IMPORT_ROOT unset)", 403, "uri"
        )
    root = Path(import_root).resolve()
    path = Path(raw_path).resolve()
    if not path.is_relative_to(root):
        raise DatasetRejected(
            "file:// imports must resolve under TABSTREAM_IMPORT_ROOT", 403, "uri"
        )
    if not path.is_file():
        raise DatasetRejected("no such file under TABSTREAM_IMPORT_ROOT", 422, "uri")
    return path
