"""ArtifactStore port and its backends (``pyarrow.fs``: local directories and S3)."""

from tabstream.adapters.artifacts.port import (
    ArtifactNotFound,
    ArtifactStore,
    ArtifactStoreUnavailable,
    InvalidArtifactKey,
    validate_key,
)

__all__ = [
    "ArtifactNotFound",
    "ArtifactStore",
    "ArtifactStoreUnavailable",
    "InvalidArtifactKey",
    "validate_key",
]
