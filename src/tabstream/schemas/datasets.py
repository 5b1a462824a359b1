"""Dataset registration and description."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints, field_validator

from tabstream.schemas._base import Frozen

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
IMPORT_SCHEMES = ("s3", "file")


class ColumnInfo(Frozen):
    """One dataset column: name, Arrow type string (e.g. "int64") and null count."""

    name: Name
    type: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    nulls: int = Field(ge=0)


class DatasetInfo(Frozen):
    """A registered dataset as the API describes it."""

    dataset_id: UUID
    name: Name
    rows: int = Field(ge=0)
    columns: list[ColumnInfo]
    sha256: Sha256
    created_at: datetime


class DatasetImport(Frozen):
    """POST /v1/datasets/import body: register a Parquet file from s3:// or file://."""

    uri: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    name: Name | None = None

    @field_validator("uri")
    @classmethod
    def _scheme(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in IMPORT_SCHEMES or not rest.strip("/"):
            raise ValueError("uri must be s3://bucket/key or file:///path")
        return value
