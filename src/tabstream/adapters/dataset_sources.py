"""Read a dataset source of the reference API (``schemas.connections.ResolvedSource``) as a
table, with its ``columns`` kept and its ``filter`` applied, to register it as a dataset. A
``file_upload`` source is an upload's bytes in the artifact store; an ``s3`` source is read with
the operator's S3 settings (``S3ImportConfig``), never anything from the URI but the object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tabstream.adapters.artifacts.port import ArtifactNotFound, ArtifactStore
from tabstream.adapters.s3_imports import S3ImportConfig
from tabstream.pipeline.tasks.filter_compile import FilterError, compile_filter
from tabstream.schemas.connections import ResolvedSource, S3ConnectionConfig

PARQUET_MAGIC = b"PAR1"


class SourceUnreadable(ValueError):
    """The source cannot be read as a table (``status``: the HTTP status that fits, 422 for
    the caller's data, 502 for storage that failed), ``field``: the body field at fault."""

    def __init__(self, message: str, status: int = 422, field: str = "connection_config") -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@contextmanager
def open_source(
    source: ResolvedSource, artifacts: ArtifactStore, s3: S3ImportConfig
) -> Iterator[pa.NativeFile]:
    """The source's bytes as a seekable file, closed on exit."""
    config = source.connection_config
    try:
        if isinstance(config, S3ConnectionConfig):
            handle = s3.filesystem().open_input_file(config.location.path)
        else:
            if source.upload_key is None:
                raise SourceUnreadable("the upload has no bytes yet")
            handle = artifacts.open_input(source.upload_key)
    except (OSError, pa.ArrowException, ArtifactNotFound) as exc:
        missing = isinstance(exc, FileNotFoundError | PermissionError | ArtifactNotFound)
        message = "no such object, or the service may not read it" if missing else "unavailable"
        status = 422 if missing else 502
        raise SourceUnreadable(f"the source cannot be read: {message}", status) from None
    with handle:
        yield handle


def read_table(source: ResolvedSource, handle: pa.NativeFile) -> pa.Table:
    """The whole (selected, filtered) table of an open source. CSV types are inferred from
    the whole file here (a streamed read infers them from its first block)."""
    file_format = _format(source, handle)
    try:
        if file_format == "parquet":
            table = pq.read_table(handle)
        else:
            convert = pacsv.ConvertOptions(strings_can_be_null=True)
            table = pacsv.read_csv(handle, convert_options=convert)
        table.column_names  # noqa: B018 (raises on names that are not UTF-8)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as exc:
        kind = "Parquet" if file_format == "parquet" else "CSV"
        raise SourceUnreadable(f"cannot parse the source as {kind}: {str(exc)[:500]}") from None
    return _selection(source, table.schema)(table)


def _format(source: ResolvedSource, handle: pa.NativeFile) -> str:
    head = handle.read(4)
    handle.seek(0)
    sniffed = "parquet" if head == PARQUET_MAGIC else "csv"
    if source.file_format is not None and source.file_format != sniffed:
        raise SourceUnreadable(f"file_format is {source.file_format!r} but the bytes are {sniffed}")
    return sniffed


Rows = TypeVar("Rows", pa.Table, pa.RecordBatch)


def _selection(source: ResolvedSource, schema: pa.Schema) -> Callable[[Rows], Rows]:
    """Filter (on any column of the source), then keep ``columns``; checked against the first
    batch's schema so a bad name is one clear error, not one per batch."""
    names = source.columns
    missing = [n for n in names or [] if n not in schema.names]
    if missing:
        raise SourceUnreadable(f"columns not in the source: {missing[:20]}", field="columns")
    try:
        expression = None if source.filter is None else compile_filter(source.filter, schema)
    except FilterError as exc:
        raise SourceUnreadable(str(exc), field="filter") from None

    def select(rows: Rows) -> Rows:
        if expression is not None:
            rows = rows.filter(expression)
        return rows if names is None else rows.select(names)

    return select
