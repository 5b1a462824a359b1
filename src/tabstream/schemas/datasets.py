"""Dataset registration and description."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, NamedTuple
from urllib.parse import unquote
from uuid import UUID

from pydantic import Field, StringConstraints, field_validator

from tabstream.schemas._base import Frozen

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
IMPORT_SCHEMES = ("s3", "file")
IMPORT_URI_HELP = "uri must be s3://bucket/key or file:///path"
MAX_S3_KEY_BYTES = 1024
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


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


class S3Location(NamedTuple):
    """An object named by an ``s3://bucket/key`` import URI (the key percent-decoded)."""

    bucket: str
    key: str

    @property
    def path(self) -> str:
        """``bucket/key``, the path form ``pyarrow.fs.S3FileSystem`` takes."""
        return f"{self.bucket}/{self.key}"


class FileLocation(NamedTuple):
    """A local file named by a ``file:///path`` import URI (absolute, percent-decoded)."""

    path: str


ImportLocation = S3Location | FileLocation


def parse_import_uri(uri: str) -> ImportLocation:
    """Parse an import URI without trusting any part of it to configure I/O.

    ``s3://bucket/key``: no userinfo, port, query or fragment; a valid S3 bucket name; a key of
    non-empty segments other than ``.``/``..``, without backslashes or control characters.
    ``file:///path`` (or ``file://localhost/path``): no query or fragment, an absolute path
    without backslashes or control characters (whether it lies under the import root is the
    caller's check). Raises ValueError with a message that never repeats the URI.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in IMPORT_SCHEMES:
        raise ValueError(IMPORT_URI_HELP)
    if "?" in rest or "#" in rest:
        raise ValueError("uri must not have a query (?...) or a fragment (#...)")
    authority, slash, raw_path = rest.partition("/")
    _check_authority(authority)
    if scheme == "s3":
        return S3Location(_bucket(authority), _s3_key(raw_path))
    if authority not in ("", "localhost") or not slash:
        raise ValueError("uri must be file:///absolute/path (no host)")
    return FileLocation("/" + _file_path(raw_path))


def _check_authority(authority: str) -> None:
    if "@" in authority:
        raise ValueError("uri must not carry credentials (user:password@)")
    if ":" in authority:
        raise ValueError("uri must not name a port")


def _bucket(name: str) -> str:
    """``name`` if it is a valid S3 (general purpose) bucket name."""
    valid = (
        _BUCKET.fullmatch(name)
        and ".." not in name
        and not _IPV4.fullmatch(name)
        and not name.startswith(_RESERVED_BUCKET_PREFIXES)
        and not name.endswith(_RESERVED_BUCKET_SUFFIXES)
    )
    if not valid:
        raise ValueError(
            "uri must name a valid S3 bucket: 3-63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit, not an IP address"
        )
    return name


def _decoded(raw: str) -> str:
    """Percent-decode a path strictly (well-formed escapes, UTF-8, no control characters)."""
    if _BAD_PERCENT.search(raw):
        raise ValueError("uri has a malformed percent-escape")
    try:
        text = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise ValueError("uri path is not valid UTF-8 once percent-decoded") from None
    if any(c < " " or "\x7f" <= c <= "\x9f" for c in text):
        raise ValueError("uri must not contain control characters (including %00)")
    if "\\" in text:
        raise ValueError("uri must not contain backslashes")
    return text


def _s3_key(raw: str) -> str:
    key = _decoded(raw)
    if not key:
        raise ValueError("uri must name an object: s3://bucket/key")
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise ValueError("uri key must not have empty, '.' or '..' segments")
    if len(key.encode()) > MAX_S3_KEY_BYTES:
        raise ValueError(f"uri key is longer than {MAX_S3_KEY_BYTES} bytes")
    return key


def _file_path(raw: str) -> str:
    path = _decoded(raw)
    if not path.strip("/"):
        raise ValueError("uri must name a file: file:///path")
    return path


class DatasetImport(Frozen):
    """POST /v1/datasets body (JSON): register a CSV/Parquet file from s3:// or file://.

    The URI names an object only: the S3 endpoint, region and credentials are the operator's
    (``TABSTREAM_S3_ENDPOINT``, ``TABSTREAM_S3_REGION``, the AWS credential chain).
    """

    uri: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    name: Name | None = None

    @field_validator("uri")
    @classmethod
    def _valid_uri(cls, value: str) -> str:
        parse_import_uri(value)
        return value

    @property
    def location(self) -> ImportLocation:
        """The parsed URI (see ``parse_import_uri``)."""
        return parse_import_uri(self.uri)
