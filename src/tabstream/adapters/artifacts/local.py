"""ArtifactStore on a local directory (``file://``), the embedded default."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs

from tabstream.adapters.artifacts.pyarrow_fs import PyArrowFsArtifactStore


class LocalArtifactStore(PyArrowFsArtifactStore):
    """Blobs as files under ``root``; appends are real appends, renames are atomic."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root).resolve()
        self._root.mkdir(parents=True, exist_ok=True)
        super().__init__(pafs.LocalFileSystem(), self._root.as_posix(), self._root.as_uri())

    def append_bytes(self, key: str, data: bytes) -> None:
        path = self._root / self._checked(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as out:
            out.write(data)

    def local_path(self, key: str) -> Path | None:
        return self._root / self._checked(key)

    def _checked(self, key: str) -> str:
        return self._path(key)[len(self._root.as_posix()) + 1 :]
