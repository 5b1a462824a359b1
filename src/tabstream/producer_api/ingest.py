"""Dataset ingestion: parse CSV/Parquet with pyarrow, validate, describe, store as Parquet.

Everything here is synchronous and CPU/IO heavy: routers call it through ``anyio.to_thread``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import ValidationError

from tabstream.adapters.artifacts.port import ArtifactStore
from tabstream.adapters.dataset_sources import SourceUnreadable, open_source
from tabstream.adapters.dataset_sources import read_table as read_source_table
from tabstream.adapters.s3_imports import S3ImportConfig
from tabstream.common.logs import get_logger
from tabstream.schemas import ColumnInfo
from tabstream.schemas.connections import ResolvedSource
from tabstream.schemas.datasets import FileLocation, ImportLocation, S3Location

PARQUET_MAGIC = b"PAR1"
COPY_CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 8 * 1024 * 1024
_log = get_logger(__name__)


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
        table = pq.read_table(source) if head == PARQUET_MAGIC else _read_csv(source)
        table.column_names  # noqa: B018 (raises on names that are not UTF-8)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as exc:
        kind = "Parquet" if head == PARQUET_MAGIC else "CSV"
        raise DatasetRejected(f"cannot parse the file as {kind}: {str(exc)[:500]}") from None
    return table


def check_parquet_shape(source: IO[bytes], max_columns: int, max_rows: int) -> None:
    """For Parquet, the column and row caps from the file's footer, before any data is
    decompressed (a small file can expand to far more than its size)."""
    head = source.read(4)
    source.seek(0)
    if head != PARQUET_MAGIC:
        return
    try:
        meta = pq.ParquetFile(source).metadata
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetRejected(f"cannot parse the file as Parquet: {str(exc)[:500]}") from None
    finally:
        source.seek(0)
    if meta.num_columns > max_columns:
        raise DatasetRejected(
            f"the dataset has {meta.num_columns} columns; the limit is {max_columns}"
        )
    if meta.num_rows > max_rows:
        raise DatasetRejected(f"the dataset has {meta.num_rows} rows; the limit is {max_rows}")


def _read_csv(source: IO[bytes]) -> pa.Table:
    """CSV with a header row; an empty (or NA/NULL...) cell is missing in text columns too,
    not an empty string (a label cell left empty is a missing label, not a class "")."""
    return pacsv.read_csv(source, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))


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
    """[{name, type, nulls}] of every column (DatasetRejected for a column it cannot show:
    a name or an Arrow type text longer than 256 characters)."""
    return [_column(i, f, table.column(i).null_count) for i, f in enumerate(table.schema)]


def _column(position: int, f: pa.Field, nulls: int) -> ColumnInfo:
    try:
        return ColumnInfo(name=f.name, type=str(f.type), nulls=nulls)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise DatasetRejected(
            f"column at position {position}: its {error['loc'][0]} {error['msg'].lower()}"
        ) from None


def ingest(
    source: IO[bytes], artifacts: ArtifactStore, dataset_id: str, max_columns: int, max_rows: int
) -> StoredDataset:
    """Parse, check and store ``source`` at ``datasets/<dataset_id>/data.parquet``."""
    check_parquet_shape(source, max_columns, max_rows)
    return store_table(read_table(source), artifacts, dataset_id, max_columns, max_rows)


def ingest_source(
    source: ResolvedSource,
    artifacts: ArtifactStore,
    s3: S3ImportConfig,
    dataset_id: str,
    limits: IngestLimits,
) -> StoredDataset:
    """Read a reference-API source (an upload's bytes or an S3 object), keep its ``columns``
    and filter its rows, then check and store it like ``ingest``. Raises ``DatasetRejected``
    located at the body field at fault; nothing is stored then."""
    try:
        with open_source(source, artifacts, s3) as handle:
            if handle.size() > limits.max_bytes:
                message = f"the source is larger than the upload limit of {limits.max_bytes} bytes"
                raise DatasetRejected(message, 413, "connection_config")
            check_parquet_shape(handle, limits.max_columns, limits.max_rows)
            table = read_source_table(source, handle)
    except SourceUnreadable as exc:
        raise DatasetRejected(str(exc), exc.status, exc.field) from None
    return store_table(table, artifacts, dataset_id, limits.max_columns, limits.max_rows)


@dataclass(frozen=True)
class IngestLimits:
    """Caps on a dataset: bytes read, columns, rows."""

    max_bytes: int
    max_columns: int
    max_rows: int


def store_table(
    table: pa.Table, artifacts: ArtifactStore, dataset_id: str, max_columns: int, max_rows: int
) -> StoredDataset:
    """Check ``table`` and store it at ``datasets/<dataset_id>/data.parquet``."""
    check_table(table, max_columns, max_rows)
    columns = describe(table)
    key = f"datasets/{dataset_id}/data.parquet"
    uri = artifacts.write_parquet(key, table)
    digest = hashlib.sha256(artifacts.get_bytes(key)).hexdigest()
    return StoredDataset(table.num_rows, columns, digest, uri)


def open_import(
    location: ImportLocation,
    import_root: str | None,
    s3: S3ImportConfig,
    max_bytes: int,
    artifacts_root: str = "",
) -> IO[bytes]:
    """Open a parsed import URI as a seekable file of at most ``max_bytes``.

    ``file://`` only under ``import_root``; ``s3://`` through ``s3`` (the operator's endpoint,
    region and credentials), copied to a local spool so that storage errors are told apart
    from parse errors. Neither may read the artifact store (``artifacts_root``), which holds
    every tenant's data. Raises ``DatasetRejected`` (field ``uri``).
    """
    if isinstance(location, FileLocation):
        path = _under_root(location.path, import_root)
        _refuse_artifacts_dir(path, artifacts_root)
        return _open_local(path, max_bytes)
    refuse_artifacts_bucket(location, artifacts_root)
    return _fetch_s3(location, s3, max_bytes)


def _under_root(raw_path: str, import_root: str | None) -> Path:
    if not import_root:
        raise DatasetRejected(
            "file:// imports are disabled (TABSTREAM_IMPORT_ROOT unset)", 403, "uri"
        )
    try:
        root = Path(import_root).resolve()
        path = Path(raw_path).resolve()
    except (OSError, ValueError, RuntimeError):
        raise DatasetRejected("uri is not a usable file path", 422, "uri") from None
    if not path.is_relative_to(root):
        raise DatasetRejected(
            "file:// imports must resolve under TABSTREAM_IMPORT_ROOT", 403, "uri"
        )
    return path


def _open_local(path: Path, max_bytes: int) -> IO[bytes]:
    """Open a resolved path: no symlink swapped in, no FIFO or device, at most ``max_bytes``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DatasetRejected("no such file under TABSTREAM_IMPORT_ROOT", 422, "uri") from None
    except OSError:
        raise DatasetRejected("the file cannot be read", 422, "uri") from None
    try:
        _check_regular(os.fstat(fd), max_bytes)
    except DatasetRejected:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _check_regular(info: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise DatasetRejected("uri must name a regular file", 422, "uri")
    if info.st_size > max_bytes:
        raise _too_large(max_bytes)


def _fetch_s3(location: S3Location, s3: S3ImportConfig, max_bytes: int) -> IO[bytes]:
    """Copy the object into a local spool (at most ``max_bytes``). Storage errors are not
    echoed (they may describe the operator's endpoint): they are logged."""
    try:
        with s3.filesystem().open_input_file(location.path) as remote:
            if remote.size() > max_bytes:
                raise _too_large(max_bytes)
            return _spool(remote, max_bytes)
    except (OSError, pa.ArrowException) as exc:
        _log.warning("s3 import failed", bucket=location.bucket, error=str(exc)[:500])
        if _missing_or_denied(exc):
            message = "uri: no such S3 object, or the service may not read it"
            raise DatasetRejected(message, 422, "uri") from None
        message = "uri: the S3 object could not be read (storage unavailable); try again later"
        raise DatasetRejected(message, 502, "uri") from None


def _missing_or_denied(exc: Exception) -> bool:
    """pyarrow raises FileNotFoundError for a missing key, a plain OSError for a 403."""
    text = str(exc)
    return isinstance(exc, FileNotFoundError | PermissionError) or "ACCESS_DENIED" in text


def _spool(remote: pa.NativeFile, max_bytes: int) -> IO[bytes]:
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    copied = 0
    while chunk := remote.read(COPY_CHUNK):
        copied += len(chunk)
        if copied > max_bytes:
            spool.close()
            raise _too_large(max_bytes)
        spool.write(chunk)
    spool.seek(0)
    return spool


def _too_large(max_bytes: int) -> DatasetRejected:
    return DatasetRejected(
        f"uri: the file is larger than the upload limit of {max_bytes} bytes", 413, "uri"
    )


def _artifacts_location(artifacts_root: str) -> tuple[str, str]:
    """(scheme, where) of the artifact store: ``file`` + directory or ``s3`` + bucket/prefix."""
    parsed = urlsplit(artifacts_root)
    if parsed.scheme in ("", "file"):
        return "file", unquote(parsed.path) if parsed.scheme else artifacts_root
    bucket = (parsed.hostname or "").lower()
    return parsed.scheme, f"{bucket}/{unquote(parsed.path).strip('/')}".rstrip("/")


def _refuse_artifacts_dir(path: Path, artifacts_root: str) -> None:
    scheme, where = _artifacts_location(artifacts_root)
    if artifacts_root and scheme == "file" and path.is_relative_to(Path(where).resolve()):
        raise DatasetRejected("file:// imports must not read the artifact store", 403, "uri")


def refuse_artifacts_bucket(location: S3Location, artifacts_root: str, field: str = "uri") -> None:
    """403 (``DatasetRejected``) when an S3 location lies in the artifact store, which holds
    every tenant's data."""
    scheme, where = _artifacts_location(artifacts_root)
    inside = location.path == where or location.path.startswith(f"{where}/")
    if artifacts_root and scheme == "s3" and inside:
        raise DatasetRejected("s3:// imports must not read the artifact store", 403, field)
