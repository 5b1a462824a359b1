"""Pick an ArtifactStore backend from a URI (used by the composition root only)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.adapters.artifacts.port import ArtifactStore
from tabstream.adapters.artifacts.s3_store import DEFAULT_RETRY_S, OnUnavailable, S3ArtifactStore
from tabstream.adapters.s3_imports import S3ImportConfig


def open_artifact_store(
    uri: str,
    s3: S3ImportConfig | None = None,
    *,
    retry_s: float = DEFAULT_RETRY_S,
    on_unavailable: OnUnavailable | None = None,
) -> ArtifactStore:
    """``file:///dir`` or a plain path -> local; ``s3://bucket/prefix`` -> S3 via pyarrow.

    An S3 store talks to the endpoint and region of ``s3`` (the operator's
    ``TABSTREAM_S3_ENDPOINT`` / ``TABSTREAM_S3_REGION``) when either is set; otherwise pyarrow
    resolves the URI (AWS itself, the bucket's region looked up, ``AWS_ENDPOINT_URL`` honoured).
    Credentials come from the standard AWS chain (``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY``, config files, instance role). Unreachable servers are retried for
    ``retry_s`` seconds per call (``S3ArtifactStore``)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return LocalArtifactStore(Path(parsed.path if parsed.scheme else uri))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"artifact store URI {uri!r} names no bucket (s3://bucket/prefix)")
        configured = s3 is not None and (s3.endpoint_override or s3.region)
        if s3 is not None and configured:
            if parsed.query:
                raise ValueError(
                    "an s3:// artifact store URI takes no options when TABSTREAM_S3_ENDPOINT or "
                    "TABSTREAM_S3_REGION is set"
                )
            filesystem: pafs.FileSystem = s3.filesystem()
            base = f"{parsed.netloc}{parsed.path}"
        else:
            filesystem, base = pafs.FileSystem.from_uri(uri)
        root = parsed._replace(query="", fragment="").geturl()
        return S3ArtifactStore(
            filesystem, base, root, retry_s=retry_s, on_unavailable=on_unavailable
        )
    raise ValueError(
        f"unsupported artifact store URI scheme {parsed.scheme!r} (use file:// or s3://)"
    )
