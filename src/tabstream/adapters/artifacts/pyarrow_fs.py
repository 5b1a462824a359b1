"""ArtifactStore on any ``pyarrow.fs`` filesystem (S3 and others): the shared implementation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tabstream.adapters.artifacts.port import ArtifactNotFound, validate_key


class PyArrowFsArtifactStore:
    """Blobs under ``base`` on a pyarrow filesystem. Writes go to a temporary name first."""

    def __init__(self, filesystem: pafs.FileSystem, base: str, root_uri: str) -> None:
        self._fs = filesystem
        self._base = base.rstrip("/")
        self._root_uri = root_uri.rstrip("/")

    @property
    def root_uri(self) -> str:
        return self._root_uri

    def _path(self, key: str) -> str:
        return f"{self._base}/{validate_key(key)}"

    def uri(self, key: str) -> str:
        return f"{self._root_uri}/{validate_key(key)}"

    def _info(self, key: str) -> pafs.FileInfo:
        return self._fs.get_file_info(self._path(key))

    def exists(self, key: str) -> bool:
        return bool(self._info(key).type == pafs.FileType.File)

    def _ensure_parent(self, path: str) -> None:
        parent = path.rsplit("/", 1)[0]
        self._fs.create_dir(parent, recursive=True)

    def put_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        self._ensure_parent(path)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        with self._fs.open_output_stream(tmp) as out:
            out.write(data)
        self._fs.move(tmp, path)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        if not self.exists(key):
            raise ArtifactNotFound(key)
        with self._fs.open_input_stream(self._path(key)) as src:
            return bytes(src.readall())

    def append_bytes(self, key: str, data: bytes) -> None:
        existing = self.get_bytes(key) if self.exists(key) else b""
        self.put_bytes(key, existing + data)

    def keys(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self._base
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        infos = self._fs.get_file_info(selector)
        start = len(self._base) + 1
        return sorted(
            i.path[start:] for i in infos if i.type == pafs.FileType.File and ".tmp-" not in i.path
        )

    def delete(self, key: str) -> None:
        info = self._info(key)
        if info.type == pafs.FileType.File:
            self._fs.delete_file(info.path)
        elif info.type == pafs.FileType.Directory:
            self._fs.delete_dir(info.path)

    def write_parquet(self, key: str, table: pa.Table) -> str:
        path = self._path(key)
        self._ensure_parent(path)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        pq.write_table(table, tmp, filesystem=self._fs, compression="zstd")
        self._fs.move(tmp, path)
        return self.uri(key)

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pa.Table:
        if not self.exists(key):
            raise ArtifactNotFound(key)
        return pq.read_table(self._path(key), columns=columns, filesystem=self._fs)

    def open_input(self, key: str) -> pa.NativeFile:
        if not self.exists(key):
            raise ArtifactNotFound(key)
        return self._fs.open_input_file(self._path(key))

    @contextmanager
    def open_output(self, key: str) -> Iterator[pa.NativeFile]:
        path = self._path(key)
        self._ensure_parent(path)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            with self._fs.open_output_stream(tmp) as out:
                yield out
            self._fs.move(tmp, path)
        except BaseException:
            if self._fs.get_file_info(tmp).type == pafs.FileType.File:
                self._fs.delete_file(tmp)
            raise

    def local_path(self, key: str) -> Path | None:
        return None
