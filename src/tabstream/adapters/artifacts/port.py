"""The ArtifactStore port: immutable blobs (datasets, models, studies) under validated keys.

Keys are relative, '/'-separated paths of safe segments (``[A-Za-z0-9][A-Za-z0-9._-]*``); no
user string is ever used as a path without passing ``validate_key``. Backends live on
``pyarrow.fs`` (``file://`` and ``s3://``) and pass one contract suite.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # fullmatch: "$" would allow "\n"


class InvalidArtifactKey(ValueError):
    """A key that is not a safe relative path."""


class ArtifactNotFound(KeyError):
    """No artifact under that key."""


class ArtifactStoreUnavailable(OSError):
    """The store's server stayed unreachable (connection refused, 5xx) past its retry window."""


def validate_key(key: str) -> str:
    """Return ``key`` if every segment is safe (no '..', no absolute paths), else raise."""
    parts = key.split("/")
    safe = all(_SEGMENT.fullmatch(p) and p not in {".", ".."} for p in parts)
    if not key or len(parts) > 16 or not safe:
        raise InvalidArtifactKey(f"invalid artifact key {key!r}")
    return key


@runtime_checkable
class ArtifactStore(Protocol):
    """Blob storage for datasets, model bundles and HPO journals. Synchronous (used from worker
    child processes and, through threads, from the API)."""

    @property
    def root_uri(self) -> str:
        """The URI this store is rooted at, e.g. ``file:///var/lib/tabstream/artifacts``."""
        ...

    def uri(self, key: str) -> str:
        """The absolute URI of ``key``."""
        ...

    def put_bytes(self, key: str, data: bytes) -> str:
        """Write ``data`` atomically under ``key`` (replacing it); returns its URI."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """Read the whole blob; raises ``ArtifactNotFound``."""
        ...

    def append_bytes(self, key: str, data: bytes) -> None:
        """Append to a blob (created when missing). Used for append-only journals."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a blob exists under ``key``."""
        ...

    def keys(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix`` (recursive), sorted."""
        ...

    def delete(self, key: str) -> None:
        """Delete a blob or a whole prefix; missing is fine."""
        ...

    def write_parquet(self, key: str, table: pa.Table) -> str:
        """Write ``table`` as Parquet under ``key``; returns its URI."""
        ...

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pa.Table:
        """Read a Parquet blob (optionally some columns); raises ``ArtifactNotFound``."""
        ...

    def open_input(self, key: str) -> pa.NativeFile:
        """A seekable reader of the blob (stream big blobs instead of ``get_bytes``); raises
        ``ArtifactNotFound``. The caller closes it."""
        ...

    def open_output(self, key: str) -> AbstractContextManager[pa.NativeFile]:
        """A writer whose bytes appear under ``key`` only when the block exits without an
        exception (written to a temporary name, then moved); on an exception nothing is left."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A local filesystem path for ``key`` when the store is local, else None."""
        ...
