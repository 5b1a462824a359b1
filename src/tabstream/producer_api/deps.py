"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from tabstream.producer_api.auth import AuthError, Principal
from tabstream.producer_api.context import ApiContext


def get_context(request: Request) -> ApiContext:
    """The ApiContext the app was created with."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]


def get_principal(
    request: Request,
    ctx: Ctx,
    authorization: Annotated[str | None, Header()] = None,
    refresh_token: Annotated[str | None, Header(alias="refresh-token")] = None,
) -> Principal:
    """Authenticate the caller; a rotated token pair is returned in response headers."""
    principal = ctx.auth.authenticate(authorization, refresh_token)
    if principal.rotated is not None:
        request.state.rotated_tokens = principal.rotated
    return principal


def get_tenant(principal: Annotated[Principal, Depends(get_principal)]) -> str:
    """The caller's tenant."""
    return principal.tenant


Tenant = Annotated[str, Depends(get_tenant)]

__all__ = ["AuthError", "Ctx", "Tenant", "get_context", "get_principal", "get_tenant"]
