"""Pick an ArtifactStore backend from a URI (used by the composition root only)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.adapters.artifacts.port import ArtifactStore
from tabstream.adapters.artifacts.pyarrow_fs import PyArrowFsArtifactStore


def open_artifact_store(uri: str) -> ArtifactStore:
    """``file:///dir`` or a plain path -> local; ``s3://bucket/prefix`` -> S3 via pyarrow."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return LocalArtifactStore(Path(parsed.path if parsed.scheme else uri))
    if parsed.scheme == "s3":
        filesystem, base = pafs.FileSystem.from_uri(uri)
        return PyArrowFsArtifactStore(filesystem, base, uri)
    raise ValueError(
        f"unsupported artifact store URI scheme {parsed.scheme!r} (use file:// or s3://)"
    )
