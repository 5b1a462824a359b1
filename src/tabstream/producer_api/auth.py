"""Bearer authentication: static API tokens and short-lived JWT access tokens (HS256).

``TABSTREAM_API_TOKENS="tokenA=tenant1,tokenB=tenant2"`` maps static tokens to tenants. A static
token can be exchanged at ``POST /v1/auth/token`` for an access JWT and a refresh token. A request
whose access token has expired still succeeds when a valid ``refresh-token`` header comes with it:
the response then carries the rotated pair in ``x-access-token`` / ``x-refresh-token``.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from dataclasses import dataclass

import jwt

from tabstream.producer_api.tokens import RefreshRejected, RefreshTokenStore

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MIN_STATIC_TOKEN = 32
_ISSUER = "tabstream"


class AuthError(Exception):
    """Missing or invalid credentials (-> 401 with WWW-Authenticate: Bearer)."""


@dataclass(frozen=True)
class TokenPair:
    """An access JWT and its refresh token."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


@dataclass(frozen=True)
class Principal:
    """Who is calling, and a rotated token pair when the request refreshed its session."""

    tenant: str
    rotated: TokenPair | None = None


def parse_static_tokens(text: str | None) -> dict[str, str]:
    """``"tok=tenant,tok2=tenant2"`` -> {token: tenant}; ValueError naming the bad entry."""
    out: dict[str, str] = {}
    for index, raw in enumerate((text or "").split(",")):
        entry = raw.strip()
        if not entry:
            continue
        token, sep, tenant = (part.strip() for part in entry.partition("="))
        if not sep or not token or not tenant:
            raise ValueError(f"TABSTREAM_API_TOKENS entry {index}: expected token=tenant")
        if len(token) < MIN_STATIC_TOKEN or any(c.isspace() for c in token):
            raise ValueError(
                f"TABSTREAM_API_TOKENS entry {index}: token must be ≥ {MIN_STATIC_TOKEN} "
                "characters without spaces"
            )
        if not _TENANT.match(tenant):
            raise ValueError(f"TABSTREAM_API_TOKENS entry {index}: invalid tenant {tenant!r}")
        if token in out:
            raise ValueError(f"TABSTREAM_API_TOKENS entry {index}: duplicate token")
        out[token] = tenant
    return out


class Authenticator:
    """Checks bearer credentials and issues/rotates tokens."""

    def __init__(
        self,
        static_tokens: dict[str, str],
        jwt_key: bytes,
        refresh_store: RefreshTokenStore,
        access_ttl_s: int = 900,
    ) -> None:
        self._static = [(t.encode(), tenant) for t, tenant in static_tokens.items()]
        self._key = jwt_key
        self._refresh = refresh_store
        self.access_ttl_s = access_ttl_s

    def static_tenant(self, token: str) -> str | None:
        """The tenant of a static token (constant-time comparison against every token)."""
        given = token.encode("utf-8", "surrogatepass")
        found: str | None = None
        for known, tenant in self._static:
            if hmac.compare_digest(known, given):
                found = tenant
        return found

    def issue(self, tenant: str) -> TokenPair:
        """A fresh access token and a refresh token of a new family."""
        return TokenPair(self._access(tenant), self._refresh.issue(tenant), self.access_ttl_s)

    def refresh(self, refresh_token: str, owner: str | None = None) -> TokenPair:
        """Rotate ``refresh_token`` into a new pair (AuthError when rejected; with ``owner``,
        a token of another tenant is rejected and left unspent)."""
        try:
            rotated = self._refresh.rotate(refresh_token, owner)
        except RefreshRejected as exc:
            raise AuthError(str(exc)) from None
        return TokenPair(self._access(rotated.tenant), rotated.refresh_token, self.access_ttl_s)

    def authenticate(self, authorization: str | None, refresh_token: str | None) -> Principal:
        """The caller behind an ``Authorization`` header (and optional ``refresh-token``)."""
        token = bearer(authorization)
        tenant = self.static_tenant(token) if token.count(".") != 2 else None
        if tenant is not None:
            return Principal(tenant)
        try:
            return Principal(self._verify(token, verify_exp=True))
        except jwt.ExpiredSignatureError:
            if not refresh_token:
                raise AuthError("access token expired; send a refresh-token header") from None
        except jwt.PyJWTError:
            raise AuthError("invalid bearer token") from None
        return self._refresh_expired(token, refresh_token)

    def _refresh_expired(self, token: str, refresh_token: str) -> Principal:
        try:
            tenant = self._verify(token, verify_exp=False)
        except jwt.PyJWTError:
            raise AuthError("invalid bearer token") from None
        return Principal(tenant, self.refresh(refresh_token, owner=tenant))

    def _access(self, tenant: str) -> str:
        now = int(time.time())
        claims = {
            "iss": _ISSUER,
            "sub": tenant,
            "iat": now,
            "exp": now + self.access_ttl_s,
            "jti": uuid.uuid4().hex,
            "typ": "access",
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def _verify(self, token: str, *, verify_exp: bool) -> str:
        claims = jwt.decode(
            token,
            self._key,
            algorithms=["HS256"],
            issuer=_ISSUER,
            options={"require": ["exp", "iat", "sub"], "verify_exp": verify_exp},
        )
        sub = claims.get("sub")
        if claims.get("typ") != "access" or not isinstance(sub, str):
            raise jwt.InvalidTokenError("not an access token")
        return sub


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (AuthError otherwise)."""
    if not authorization:
        raise AuthError("missing Authorization: Bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 8192:
        raise AuthError("Authorization must be 'Bearer <token>'")
    return token
