"""Signed, expiring URLs that tabstream serves itself (upload PUTs, result downloads).

A URL carries its tenant, its expiry (unix seconds) and an HMAC-SHA256 over
``purpose, resource, tenant, expiry`` under the server's URL key (derived from
``TABSTREAM_SERVER_SECRET``, so every API replica accepts every replica's URLs). Whoever holds
the URL may use it until it expires, like a presigned S3 URL; nothing else is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

from fastapi import HTTPException


class SignedUrls:
    """Sign and verify ``(purpose, resource, tenant, expires)`` under one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def query(self, purpose: str, resource: str, tenant: str, ttl_s: int) -> str:
        """The query string (``tenant``, ``expires``, ``signature``) of a URL valid ``ttl_s``."""
        expires = int(time.time()) + ttl_s
        signature = self._sign(purpose, resource, tenant, expires)
        return urlencode({"tenant": tenant, "expires": expires, "signature": signature})

    def verify(
        self, purpose: str, resource: str, tenant: str, expires: int, signature: str
    ) -> None:
        """403 when the signature is not ours for these values or the URL has expired."""
        expected = self._sign(purpose, resource, tenant, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise HTTPException(403, "invalid URL signature")
        if expires < time.time():
            raise HTTPException(403, "this URL has expired; ask for a new one")

    def _sign(self, purpose: str, resource: str, tenant: str, expires: int) -> str:
        message = "\n".join((purpose, resource, tenant, str(expires))).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
