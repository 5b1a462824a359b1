"""ArtifactStore contract: one suite, run against every backend."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from tabstream.adapters.artifacts import ArtifactNotFound, ArtifactStore, InvalidArtifactKey
from tabstream.adapters.artifacts.factory import open_artifact_store
from tabstream.adapters.artifacts.local import LocalArtifactStore
from tabstream.adapters.artifacts.pyarrow_fs import PyArrowFsArtifactStore
from tabstream.adapters.artifacts.s3_store import S3ArtifactStore
from tests.helpers.s3 import S3Server


@pytest.fixture(params=["local", "pyarrow-mock-fs", pytest.param("real-s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    """``local``: a directory; ``pyarrow-mock-fs``: the shared pyarrow implementation on an
    in-memory filesystem; ``real-s3``: the S3 store on the real test server (``make test``
    starts it), under a fresh prefix that is removed afterwards."""
    if request.param == "local":
        yield LocalArtifactStore(tmp_path / "artifacts")
    elif request.param == "pyarrow-mock-fs":
        mock = pafs._MockFileSystem()
        yield PyArrowFsArtifactStore(mock, "bucket/prefix", "mock://bucket/prefix")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        filesystem, prefix = server.filesystem(), server.fresh_prefix()
        yield S3ArtifactStore(filesystem, prefix, f"s3://{prefix}", retry_s=5.0)
        with contextlib.suppress(FileNotFoundError):  # nothing was written
            filesystem.delete_dir(prefix)


def test_put_get_roundtrip_and_uri(store: ArtifactStore) -> None:
    uri = store.put_bytes("models/m1/weights.bin", b"\x00\x01payload")
    assert store.get_bytes("models/m1/weights.bin") == b"\x00\x01payload"
    assert uri == store.uri("models/m1/weights.bin")
    assert uri.startswith(store.root_uri)


def test_put_replaces(store: ArtifactStore) -> None:
    store.put_bytes("a/x", b"old")
    store.put_bytes("a/x", b"new")
    assert store.get_bytes("a/x") == b"new"


def test_missing_raises_not_found(store: ArtifactStore) -> None:
    assert not store.exists("nope/x")
    with pytest.raises(ArtifactNotFound):
        store.get_bytes("nope/x")
    with pytest.raises(ArtifactNotFound):
        store.read_parquet("nope/x.parquet")


def test_open_output_then_open_input_streams(store: ArtifactStore) -> None:
    with store.open_output("uploads/u1/data.csv") as out:
        out.write(b"a,b\n")
        out.write(b"1,2\n")
    with store.open_input("uploads/u1/data.csv") as src:
        assert src.read(4) == b"a,b\n"
        src.seek(0)
        assert src.readall() == b"a,b\n1,2\n"
    assert store.keys("uploads") == ["uploads/u1/data.csv"]
    with pytest.raises(ArtifactNotFound):
        store.open_input("uploads/u2/data.csv")


def test_open_output_leaves_nothing_when_the_block_fails(store: ArtifactStore) -> None:
    with pytest.raises(RuntimeError), store.open_output("uploads/u1/data.csv") as out:
        out.write(b"partial")
        raise RuntimeError("client went away")
    assert not store.exists("uploads/u1/data.csv")
    assert store.keys() == []


def test_append_creates_then_appends(store: ArtifactStore) -> None:
    store.append_bytes("jobs/j/study.journal", b"line1\n")
    store.append_bytes("jobs/j/study.journal", b"line2\n")
    assert store.get_bytes("jobs/j/study.journal") == b"line1\nline2\n"


def test_keys_lists_recursively_sorted(store: ArtifactStore) -> None:
    for key in ["d/2/b", "d/1/a", "e/c"]:
        store.put_bytes(key, b"x")
    assert store.keys("d") == ["d/1/a", "d/2/b"]
    assert store.keys() == ["d/1/a", "d/2/b", "e/c"]
    assert store.keys("missing") == []


def test_delete_blob_and_prefix(store: ArtifactStore) -> None:
    store.put_bytes("p/1", b"x")
    store.put_bytes("p/q/2", b"x")
    store.put_bytes("keep", b"x")
    store.delete("p/1")
    assert not store.exists("p/1")
    store.delete("p")
    store.delete("never-existed")
    assert store.keys() == ["keep"]


def test_parquet_roundtrip_with_column_selection(store: ArtifactStore) -> None:
    table = pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]})
    store.write_parquet("datasets/d1/data.parquet", table)
    assert store.read_parquet("datasets/d1/data.parquet").equals(table)
    assert store.read_parquet("datasets/d1/data.parquet", columns=["b"]).column_names == ["b"]


@pytest.mark.parametrize(
    "key", ["", "../etc/passwd", "/abs", "a/../b", "a//b", "a/./b", ".hidden", "a\\b", "x" * 200]
)
def test_unsafe_keys_are_refused(store: ArtifactStore, key: str) -> None:
    with pytest.raises(InvalidArtifactKey):
        store.put_bytes(key, b"x")
    with pytest.raises(InvalidArtifactKey):
        store.exists(key)


def test_local_store_paths_stay_under_root(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    path = store.local_path("jobs/j1/study.journal")
    assert path is not None
    assert path.resolve().is_relative_to((tmp_path / "root").resolve())


def test_factory_picks_backend(tmp_path: Path) -> None:
    assert isinstance(open_artifact_store((tmp_path / "a").as_uri()), LocalArtifactStore)
    assert isinstance(open_artifact_store(str(tmp_path / "b")), LocalArtifactStore)
    with pytest.raises(ValueError, match="unsupported artifact store URI scheme"):
        open_artifact_store("ftp://host/x")
