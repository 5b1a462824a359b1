"""Topics, datasets, and the schemas package's isolation (no I/O, nothing else of ours)."""

from __future__ import annotations

import ast
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from tabstream.schemas import ColumnInfo, DatasetImport, DatasetInfo, topics

SCHEMAS = Path(__file__).resolve().parents[2] / "src" / "tabstream" / "schemas"


def test_topic_names() -> None:
    assert topics.EVENTS == "tabstream.events" and topics.CONTROL == "tabstream.control"
    assert topics.commands_topic("gpu") == "tabstream.commands.gpu"
    assert topics.dlq_topic("cpu") == "tabstream.commands.cpu.dlq"
    assert topics.worker_group("gpu-a100") == "tabstream-workers.gpu-a100"
    assert topics.DEFAULT_POOLS == ("cpu",)
    assert topics.DEFAULT_PARTITIONS["control"] == 1


@pytest.mark.parametrize("pool", ["", "GPU", "-gpu", "a" * 33, "gpu.x", "gpu/x", "gpu "])
def test_bad_pool_names(pool: str) -> None:
    with pytest.raises(ValueError, match="invalid pool name"):
        topics.commands_topic(pool)


def test_dataset_models() -> None:
    col = ColumnInfo(name="a", type="int64", nulls=0)
    info = DatasetInfo(
        dataset_id=uuid.uuid4(),
        name="d",
        rows=1,
        columns=[col],
        sha256="0" * 64,
        created_at=datetime.now(UTC),
    )
    assert info.columns[0].type == "int64"
    with pytest.raises(ValidationError):
        ColumnInfo(name="a", type="int64", nulls=-1)
    with pytest.raises(ValidationError):
        DatasetInfo.model_validate(info.model_dump() | {"sha256": "xyz"})


@pytest.mark.parametrize("uri", ["s3://bucket/key.parquet", "file:///data/x.parquet"])
def test_dataset_import_ok(uri: str) -> None:
    assert DatasetImport(uri=uri).name is None


@pytest.mark.parametrize("uri", ["http://x/y", "/etc/passwd", "s3://", "gs://b/k", "file://"])
def test_dataset_import_rejects(uri: str) -> None:
    with pytest.raises(ValidationError, match="uri"):
        DatasetImport(uri=uri)


def test_dataset_import_forbids_extra() -> None:
    with pytest.raises(ValidationError):
        DatasetImport.model_validate({"uri": "s3://b/k", "path": "x"})


def test_schemas_imports_nothing_else_of_ours() -> None:
    for path in SCHEMAS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module
            elif isinstance(node, ast.Import):
                mod = node.names[0].name
            else:
                continue
            if mod.startswith("tabstream"):
                assert mod.startswith("tabstream.schemas"), f"{path.name} imports {mod}"


def test_schemas_import_pulls_no_heavy_modules() -> None:
    code = (
        "import sys, tabstream.schemas; "
        "heavy = ('fastapi', 'aiokafka', 'torch', 'pyarrow', 'httpx'); "
        "bad = [m for m in heavy if m in sys.modules]; "
        "ours = [m for m in sys.modules if m.startswith('tabstream.') "
        "and not m.startswith('tabstream.schemas')]; "
        "print(bad + ours)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
