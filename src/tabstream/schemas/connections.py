"""The reference API's data sources: ``connection_config`` (a union on ``connector_type``), the
inline Dataset spec (``columns``, ``connection_config``, ``filter``) and the upload request.

tabstream reads two connectors: ``s3`` (an object, with the operator's endpoint and credentials
only) and ``file_upload`` (bytes PUT to a signed upload URL). ``snowflake`` and ``databricks``
are recognised, so that a client gets a clear "connector not supported" rather than a shape
error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints, field_validator

from tabstream.schemas._base import Frozen
from tabstream.schemas.datasets import Name, S3Location, parse_import_uri
from tabstream.schemas.filters import Filter, check_filter_depth

FileFormat = Literal["csv", "parquet", "pkl"]
UploadState = Literal["pending", "completed", "expired"]
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
UNSUPPORTED_CONNECTORS = ("snowflake", "databricks")
PKL_REFUSED = (
    "file_format 'pkl' is not accepted: tabstream never unpickles user data (unpickling runs "
    "arbitrary code); upload the DataFrame as parquet (df.to_parquet) or csv"
)


class S3ConnectionConfig(Frozen):
    """One S3 object, read with the operator's endpoint, region and credentials."""

    connector_type: Literal["s3"] = "s3"
    uri: Annotated[str, StringConstraints(min_length=1, max_length=2048)] = Field(
        description="s3://bucket/key naming one CSV or Parquet object"
    )
    connector_credential_id: UUID | None = Field(
        default=None, description="accepted for compatibility; the operator's credentials read"
    )
    connector_credential_name: Annotated[str, StringConstraints(max_length=256)] | None = None
    region: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="accepted for compatibility; the operator's region is used"
    )
    file_format: Literal["csv", "parquet"] | None = Field(
        default=None, description="csv or parquet; sniffed from the bytes when omitted"
    )

    @field_validator("uri")
    @classmethod
    def _s3_uri(cls, value: str) -> str:
        if not isinstance(parse_import_uri(value), S3Location):
            raise ValueError("uri must be s3://bucket/key")
        return value

    @property
    def location(self) -> S3Location:
        """The parsed object location."""
        found = parse_import_uri(self.uri)
        assert isinstance(found, S3Location)
        return found


class FileUploadConnectionConfig(Frozen):
    """Bytes uploaded through ``POST /v1/uploads``: ``id`` names the upload."""

    connector_type: Literal["file_upload"] = "file_upload"
    id: UUID = Field(description="the upload's id, from POST /v1/uploads")
    uri: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None, description="the upload's uri, as POST /v1/uploads returned it"
    )
    state: UploadState | None = Field(default=None, description="ignored on input")


class UnsupportedConnectionConfig(Frozen):
    """A connector of the reference that tabstream does not read (any fields)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    connector_type: Literal["snowflake", "databricks"]


ConnectionConfig = Annotated[
    S3ConnectionConfig | FileUploadConnectionConfig | UnsupportedConnectionConfig,
    Field(discriminator="connector_type"),
]


class DatasetColumn(Frozen):
    """A column to keep, by name."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    name: ColumnName


class DatasetSpec(Frozen):
    """The reference's inline Dataset: a source, the columns to keep and a row filter."""

    columns: list[DatasetColumn] | None = Field(
        default=None, max_length=2000, description="keep only these columns (all when omitted)"
    )
    connection_config: ConnectionConfig
    filter: Filter | None = Field(default=None, description="keep only the rows it selects")

    _check_filter_depth = field_validator("filter", mode="before")(check_filter_depth)

    @property
    def column_names(self) -> list[str] | None:
        """The names of ``columns`` (None: every column)."""
        return None if self.columns is None else [c.name for c in self.columns]


class DatasetCreate(DatasetSpec):
    """The reference API's POST /v1/datasets body, plus tabstream's optional ``name``."""

    name: Name | None = Field(default=None, description="tabstream extension: a display name")


class PredictJobRequest(Frozen):
    """``POST /v1/models/{id}/predict`` body of a batch-scoring job (the reference API)."""

    dataset: DatasetSpec = Field(description="the rows to score: source, columns, filter")


class UploadRequest(Frozen):
    """``POST /v1/uploads`` body."""

    file_format: FileFormat = Field(description="csv (RFC 4180, header row) or parquet")


def content_type_of(file_format: str) -> str:
    """The Content-Type a client PUTs an upload of ``file_format`` with."""
    return "text/csv" if file_format == "csv" else "application/vnd.apache.parquet"


def unsupported_connector(config: Any) -> str | None:
    """The 'not supported' message for a connector tabstream cannot read, else None."""
    if isinstance(config, UnsupportedConnectionConfig):
        return (
            f"connector {config.connector_type!r} is not supported: use 's3' or "
            "'file_upload' (POST /v1/uploads)"
        )
    return None


ReadableConnectionConfig = Annotated[
    S3ConnectionConfig | FileUploadConnectionConfig, Field(discriminator="connector_type")
]


class ResolvedSource(Frozen):
    """A readable dataset source as the log records it: the client's connection_config, the
    artifact key of an upload's bytes (``file_upload``), the columns kept and the row filter."""

    connection_config: ReadableConnectionConfig
    upload_key: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None
    file_format: Literal["csv", "parquet"] | None = None
    columns: list[ColumnName] | None = Field(default=None, max_length=2000)
    filter: Filter | None = None

    _check_filter_depth = field_validator("filter", mode="before")(check_filter_depth)
