"""The slice of the ArtifactStore port the pipeline uses (structural typing, no adapters)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pyarrow as pa


class Artifacts(Protocol):
    """Blob storage as the pipeline sees it; ``tabstream.adapters.artifacts`` stores fit."""

    def uri(self, key: str) -> str:
        """The absolute URI of ``key``."""
        ...

    def put_bytes(self, key: str, data: bytes) -> str:
        """Write ``data`` atomically under ``key``; returns its URI."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """Read a whole blob."""
        ...

    def append_bytes(self, key: str, data: bytes) -> None:
        """Append to a blob (created when missing)."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a blob exists under ``key``."""
        ...

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pa.Table:
        """Read a Parquet blob."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A local filesystem path for ``key`` when the store is local, else None."""
        ...
