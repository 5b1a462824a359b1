"""ArtifactStore on S3 (and S3-compatible servers) through ``pyarrow.fs.S3FileSystem``.

S3 has no directories, no append and no atomic rename, but one PUT is atomic (readers see the
old object or the new one, never a part). So whole blobs are written straight to their key (no
temporary name, no copy + delete), no directory markers are made, and an append is a read
followed by a rewrite of the whole blob: safe for the append-only journals, which have one
writer at a time (one attempt of a job runs at a time). Streams (``open_output``) still go to a
temporary key first, since a failed stream must leave nothing behind.

A server that does not answer (connection refused or reset, 5xx, throttling) is retried with
backoff for ``retry_s`` seconds per call: every retried call is idempotent (each put rewrites a
whole blob), so a server restart is invisible apart from the wait. Past that the call raises
``ArtifactStoreUnavailable`` (after calling ``on_unavailable`` when one is given). Opening a
stream is retried; reading or writing an open stream is not.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tabstream.adapters.artifacts.port import ArtifactNotFound, ArtifactStoreUnavailable
from tabstream.adapters.artifacts.pyarrow_fs import PyArrowFsArtifactStore
from tabstream.common.logs import get_logger

_log = get_logger(__name__)
T = TypeVar("T")
OnUnavailable = Callable[[ArtifactStoreUnavailable], None]
DEFAULT_RETRY_S = 30.0
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.1, 2.0
# What pyarrow's S3 errors say when the server, not the request, is at fault.
_TRANSIENT = re.compile(
    r"NETWORK_CONNECTION|curlCode|HTTP status 5\d\d|SLOW_DOWN|SERVICE_UNAVAILABLE"
    r"|INTERNAL_FAILURE|REQUEST_TIME_?OUT|THROTTL|Connection reset|timed out",
    re.IGNORECASE,
)


def is_transient(exc: BaseException) -> bool:
    """Whether a failed S3 call may succeed when repeated (the server was unreachable or
    overloaded); missing objects, refused credentials and bad requests are not."""
    final = FileNotFoundError | PermissionError | ArtifactStoreUnavailable
    if not isinstance(exc, OSError) or isinstance(exc, final):
        return False
    return isinstance(exc, ConnectionError | TimeoutError) or bool(_TRANSIENT.search(str(exc)))


class S3ArtifactStore(PyArrowFsArtifactStore):
    """Blobs under ``bucket/prefix`` (``base``) on an S3 filesystem."""

    def __init__(
        self,
        filesystem: pafs.FileSystem,
        base: str,
        root_uri: str,
        *,
        retry_s: float = DEFAULT_RETRY_S,
        on_unavailable: OnUnavailable | None = None,
    ) -> None:
        super().__init__(filesystem, base, root_uri)
        self._retry_s = retry_s
        self._on_unavailable = on_unavailable

    def _retry(self, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._retry_s
        backoff = FIRST_BACKOFF_S
        while True:
            try:
                return call()
            except OSError as exc:
                left = deadline - time.monotonic()
                if not is_transient(exc):
                    raise
                if left <= 0:
                    self._give_up(exc)
                if backoff == FIRST_BACKOFF_S:
                    _log.warning("artifact store unreachable; retrying", error=str(exc)[:300])
                time.sleep(min(backoff, left))
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _give_up(self, exc: OSError) -> NoReturn:
        error = ArtifactStoreUnavailable(
            f"artifact store {self.root_uri} unreachable for {self._retry_s:g} s: {exc}"
        )
        if self._on_unavailable is not None:
            self._on_unavailable(error)
        raise error from exc

    def _ensure_parent(self, path: str) -> None:
        """S3 needs no parent "directories" (pyarrow would PUT an empty marker per level)."""

    def _put(self, path: str, data: bytes | pa.Buffer) -> None:
        with self._fs.open_output_stream(path) as out:
            out.write(data)

    def put_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        self._retry(lambda: self._put(path, data))
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)

        def read() -> bytes:
            with self._fs.open_input_stream(path) as src:
                return bytes(src.readall())

        return self._retry(lambda: _found(key, read))

    def append_bytes(self, key: str, data: bytes) -> None:
        try:
            existing = self.get_bytes(key)
        except ArtifactNotFound:
            existing = b""
        self.put_bytes(key, existing + data)

    def exists(self, key: str) -> bool:
        return self._retry(lambda: super(S3ArtifactStore, self).exists(key))

    def keys(self, prefix: str = "") -> list[str]:
        return self._retry(lambda: super(S3ArtifactStore, self).keys(prefix))

    def delete(self, key: str) -> None:
        self._retry(lambda: super(S3ArtifactStore, self).delete(key))

    def write_parquet(self, key: str, table: pa.Table) -> str:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        buffer = sink.getvalue()
        path = self._path(key)
        self._retry(lambda: self._put(path, buffer))
        return self.uri(key)

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pa.Table:
        path = self._path(key)

        def read() -> pa.Table:
            return pq.read_table(path, columns=columns, filesystem=self._fs)

        return self._retry(lambda: _found(key, read))

    def open_input(self, key: str) -> pa.NativeFile:
        path = self._path(key)
        return self._retry(lambda: _found(key, lambda: self._fs.open_input_file(path)))


def _found(key: str, read: Callable[[], T]) -> T:
    """``read()``, with a missing object (or a "directory") as ``ArtifactNotFound``: one GET,
    no HEAD before it."""
    try:
        return read()
    except FileNotFoundError:
        raise ArtifactNotFound(key) from None
