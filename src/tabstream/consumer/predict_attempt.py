"""One attempt of a prediction job (``PredictRequested``) in the worker's child process.

The model bundle is loaded and verified against the command's ``model_sha256`` (the worker
checked that digest and the model's tenant against the log). The source (an upload's bytes in
the artifact store, or an S3 object read with the operator's S3 settings) is streamed in record
batches: Parquet by ``BATCH_ROWS`` rows, CSV by ``CSV_BLOCK_BYTES`` blocks, reading only the
model's features and the filter's columns, so memory stays bounded whatever the dataset's size.
Each batch is filtered (``filter``, which may name any source column) and scored
(``pipeline.batch_predict``); the predictions are written with a ``ParquetWriter`` into
``predictions/<job_id>/predictions.parquet`` (atomically: nothing is left on failure). ``columns``
lists the source columns the job may use: a model feature outside it is missing.

Then ``jobs/<job_id>/result.json`` is stored and the child reports ``PredictionsWritten`` and
``JobCompleted`` (``best_model_id`` = the model, ``result_uri`` = the result.json).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tabstream.adapters.artifacts.port import ArtifactNotFound, ArtifactStore
from tabstream.consumer.job_result import store_result
from tabstream.consumer.protocol import cancelled_line, error_line, event_line, result_line
from tabstream.pipeline.batch_predict import BatchInputError, BatchScorer
from tabstream.pipeline.finish.bundle import BundleIntegrityError, LoadedModel, load_bundle
from tabstream.pipeline.options import PipelineOptions
from tabstream.pipeline.tasks.filter_compile import FilterError, apply_filter
from tabstream.pipeline.train import Cancelled
from tabstream.schemas.connections import FileUploadConnectionConfig, ResolvedSource
from tabstream.schemas.events import JobCompleted, PredictionsWritten, PredictRequested
from tabstream.schemas.filters import Filter, filter_columns

BATCH_ROWS = 65_536
CSV_BLOCK_BYTES = 4 << 20
HASH_CHUNK = 1 << 20
PARQUET_MAGIC = b"PAR1"
S3Filesystem = Callable[[], pafs.FileSystem]
"""Builds the operator's S3 filesystem (``adapters.s3_imports``), wired by the child's root."""


class PredictInputError(ValueError):
    """The job cannot be scored as requested (fails it with ``invalid_input``)."""


def predictions_key(job_id: Any) -> str:
    """The artifact key of a prediction job's output."""
    return f"predictions/{job_id}/predictions.parquet"


@dataclass(frozen=True)
class Scored:
    """What a prediction job wrote."""

    key: str
    rows: int
    filtered_out: int
    sha256: str


def run_predict(
    spec: Any,
    out: IO[bytes],
    should_stop: Callable[[], bool],
    artifacts: ArtifactStore,
    options: PipelineOptions | None = None,
    s3_filesystem: S3Filesystem | None = None,
) -> None:
    """Run the prediction job of ``spec`` (``kind="predict"``) and write its events and
    outcome to ``out`` as protocol lines."""
    started = time.monotonic()
    cmd = PredictRequested.model_validate(spec.request)
    try:
        scored = predict_to_store(cmd, artifacts, should_stop, options, s3_filesystem)
        written, completed = _outcome(cmd, artifacts, scored, time.monotonic() - started)
    except Cancelled:
        out.write(cancelled_line())
    except (PredictInputError, BatchInputError) as exc:
        out.write(error_line("invalid_input", str(exc)))
    except Exception as exc:
        out.write(error_line("training_error", f"{type(exc).__name__}: {exc}"))
    else:
        out.write(event_line(written))
        out.write(result_line(completed))


def predict_to_store(
    cmd: PredictRequested,
    artifacts: ArtifactStore,
    should_stop: Callable[[], bool],
    options: PipelineOptions | None = None,
    s3_filesystem: S3Filesystem | None = None,
) -> Scored:
    """Score the command's source with its model into ``predictions_key(job_id)``."""
    scorer = BatchScorer(_load_model(cmd, artifacts, options))
    key = predictions_key(cmd.job_id)

    def open_source() -> pa.NativeFile:
        return _open_source(cmd.source, artifacts, s3_filesystem)

    fmt, needed = _plan(open_source, cmd.source, scorer)
    with open_source() as source, artifacts.open_output(key) as sink:
        batches = _read_errors(lambda: _read(source, fmt, needed, scorer), fmt)
        rows, seen = _write(sink, scorer, batches, cmd.source.filter, should_stop)
    return Scored(key, rows, seen - rows, stored_sha256(artifacts, key))


def stored_sha256(artifacts: ArtifactStore, key: str) -> str:
    """The sha256 of a stored blob, streamed back in chunks."""
    digest = hashlib.sha256()
    with artifacts.open_input(key) as blob:
        while chunk := blob.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _outcome(
    cmd: PredictRequested, artifacts: ArtifactStore, scored: Scored, duration_s: float
) -> tuple[PredictionsWritten, JobCompleted]:
    uri = artifacts.uri(scored.key)
    data = {"model_id": str(cmd.model_id), "result_uri": uri, "rows": scored.rows}
    result_uri = store_result(artifacts, cmd.job_id, data)
    written = PredictionsWritten(
        job_id=cmd.job_id, model_id=cmd.model_id, uri=uri, rows=scored.rows, sha256=scored.sha256
    )
    note = f"scored {scored.rows} rows ({scored.filtered_out} filtered out)"
    completed = JobCompleted(
        job_id=cmd.job_id,
        leaderboard=[],
        best_model_id=cmd.model_id,
        duration_s=duration_s,
        result_uri=result_uri,
        notes=[note],
    )
    return written, completed


def _load_model(
    cmd: PredictRequested, artifacts: ArtifactStore, options: PipelineOptions | None
) -> LoadedModel:
    families = options.families if options is not None else None
    try:
        return load_bundle(artifacts, str(cmd.model_id), cmd.model_sha256, families)
    except (ArtifactNotFound, FileNotFoundError):
        raise PredictInputError(f"model {cmd.model_id} is not in the artifact store") from None
    except BundleIntegrityError as exc:
        raise PredictInputError(str(exc)) from None


def _open_source(
    source: ResolvedSource, artifacts: ArtifactStore, s3_filesystem: S3Filesystem | None
) -> pa.NativeFile:
    config = source.connection_config
    if isinstance(config, FileUploadConnectionConfig):
        if source.upload_key is None:
            raise PredictInputError(f"upload {config.id} has no stored bytes")
        try:
            return artifacts.open_input(source.upload_key)
        except ArtifactNotFound:
            raise PredictInputError(f"upload {config.id} has no stored bytes") from None
    if s3_filesystem is None:
        raise PredictInputError("this worker has no S3 settings to read s3 sources with")
    try:
        return s3_filesystem().open_input_file(config.location.path)
    except OSError as exc:
        raise PredictInputError(f"cannot read {config.uri}: {exc}") from None


def _format(source: pa.NativeFile, resolved: ResolvedSource) -> str:
    config = resolved.connection_config
    declared = resolved.file_format or getattr(config, "file_format", None)
    if declared is not None:
        return str(declared)
    head = source.read(len(PARQUET_MAGIC))
    source.seek(0)
    return "parquet" if head == PARQUET_MAGIC else "csv"


def _plan(
    open_source: Callable[[], pa.NativeFile], resolved: ResolvedSource, scorer: BatchScorer
) -> tuple[str, list[str]]:
    """The source's format and the columns to read: the model's features and the filter's.

    Read on a handle of its own: a CSV reader reads ahead in the background, so a second
    reader must not share its file position."""
    with open_source() as head:
        fmt = _format(head, resolved)
        try:
            names = _source_columns(head, fmt)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise PredictInputError(f"cannot read the source as {fmt}: {str(exc)[:500]}") from None
    return fmt, _needed_columns(names, resolved, scorer)


def _source_columns(source: pa.NativeFile, fmt: str) -> list[str]:
    if fmt == "parquet":
        return list(pq.ParquetFile(source).schema_arrow.names)
    read = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False)
    return list(pacsv.open_csv(source, read_options=read).schema.names)


def _needed_columns(names: list[str], resolved: ResolvedSource, scorer: BatchScorer) -> list[str]:
    """Features plus filter columns; PredictInputError naming what the source lacks."""
    unknown = [c for c in resolved.columns or [] if c not in names]
    if unknown:
        raise PredictInputError(f"columns {unknown} are not in the source")
    missing = scorer.missing(resolved.columns if resolved.columns is not None else names)
    if missing:
        raise PredictInputError(f"the source lacks the model's features {missing}")
    used = filter_columns(resolved.filter) if resolved.filter is not None else set()
    absent = sorted(c for c in used if c not in names)
    if absent:
        raise PredictInputError(f"filter columns {absent} are not in the source")
    return [n for n in names if n in set(scorer.feature_names) | used]


def _read(
    source: pa.NativeFile, fmt: str, needed: list[str], scorer: BatchScorer
) -> Iterator[pa.RecordBatch]:
    if fmt == "parquet":
        parquet = pq.ParquetFile(source)
        batches: Iterator[pa.RecordBatch] = parquet.iter_batches(BATCH_ROWS, columns=needed)
        return batches
    convert = pacsv.ConvertOptions(
        strings_can_be_null=True, column_types=scorer.input_types, include_columns=needed
    )
    read = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES)
    return iter(pacsv.open_csv(source, read_options=read, convert_options=convert))


def _read_errors(
    batches: Callable[[], Iterator[pa.RecordBatch]], fmt: str
) -> Iterator[pa.RecordBatch]:
    """The batches of ``batches()``, a read failure (a bad cell, a truncated file) as
    PredictInputError."""
    try:
        yield from batches()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise PredictInputError(f"cannot read the source as {fmt}: {str(exc)[:500]}") from None


def _write(
    sink: pa.NativeFile,
    scorer: BatchScorer,
    batches: Iterator[pa.RecordBatch],
    row_filter: Filter | None,
    should_stop: Callable[[], bool],
) -> tuple[int, int]:
    """Filter, score and write every batch; returns (rows written, rows read)."""
    written = seen = 0
    with pq.ParquetWriter(sink, scorer.schema) as writer:
        for batch in batches:
            if should_stop():
                raise Cancelled()
            seen += batch.num_rows
            try:
                kept = apply_filter(pa.Table.from_batches([batch]), row_filter)
            except FilterError as exc:
                raise PredictInputError(str(exc)) from None
            if kept.num_rows:
                writer.write_table(scorer.score(kept))
                written += kept.num_rows
    return written, seen
