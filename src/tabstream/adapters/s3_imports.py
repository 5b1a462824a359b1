"""Where ``s3://`` dataset sources are read from: the operator's S3 settings, never the URI's.

Used by the API (imports, ``connection_config`` of type ``s3``) and by workers (prediction jobs
that read an S3 object), so that both read with the same endpoint, region and credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs


@dataclass(frozen=True)
class S3ImportConfig:
    """Where ``s3://`` imports are read from: the operator's settings, never the URI's.

    ``endpoint_override`` is ``host:port`` (None: AWS itself), ``scheme`` is http or https;
    credentials come from the standard AWS chain (environment, config files, instance role).
    """

    endpoint_override: str | None = None
    scheme: str = "https"
    region: str | None = None

    @classmethod
    def from_settings(cls, endpoint: str | None, region: str | None) -> S3ImportConfig:
        """From ``TABSTREAM_S3_ENDPOINT`` (``http(s)://host:port`` or ``host:port``) and
        ``TABSTREAM_S3_REGION``; ValueError naming the setting when the endpoint is malformed."""
        if not endpoint:
            return cls(region=region or None)
        parsed = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        plain = not (parsed.username or parsed.password or parsed.query or parsed.fragment)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or not plain:
            # the value is not repeated: it may hold credentials
            raise ValueError("TABSTREAM_S3_ENDPOINT must be http(s)://host[:port]")
        if parsed.path not in ("", "/"):
            raise ValueError("TABSTREAM_S3_ENDPOINT must not have a path")
        return cls(parsed.netloc, parsed.scheme, region or None)

    def filesystem(self) -> pafs.S3FileSystem:
        """A read-only-in-practice S3 filesystem on the configured endpoint and region."""
        options: dict[str, Any] = {"scheme": self.scheme}
        if self.endpoint_override:
            options["endpoint_override"] = self.endpoint_override
        if self.region:
            options["region"] = self.region
        return pafs.S3FileSystem(**options)
