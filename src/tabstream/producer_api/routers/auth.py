"""Token exchange: a static API token for an access JWT plus a rotating refresh token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, Field

from tabstream.producer_api.auth import AuthError, bearer
from tabstream.producer_api.deps import Ctx

router = APIRouter(prefix="/v1/auth", tags=["auth"])
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, invalid or revoked credentials"}
}


class TokenResponse(BaseModel):
    """An access JWT, its refresh token and the access token's lifetime in seconds."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


class RefreshBody(BaseModel):
    """POST /v1/auth/refresh body."""

    refresh_token: str = Field(min_length=1, max_length=512)


@router.post("/token", responses=_UNAUTHORIZED)
async def issue_token(
    ctx: Ctx, response: Response, authorization: Annotated[str | None, Header()] = None
) -> TokenResponse:
    """Exchange a static API token (``Authorization: Bearer``) for a JWT pair."""
    tenant = ctx.auth.static_tenant(bearer(authorization))
    if tenant is None:
        raise AuthError("POST /v1/auth/token needs a static API token")
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(**ctx.auth.issue(tenant).__dict__)


@router.post("/refresh", responses=_UNAUTHORIZED)
async def refresh_token(ctx: Ctx, body: RefreshBody, response: Response) -> TokenResponse:
    """Rotate a refresh token; reusing a spent one revokes its whole family."""
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(**ctx.auth.refresh(body.refresh_token).__dict__)
