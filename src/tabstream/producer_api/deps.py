"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, Header, Request

from tabstream.producer_api.auth import AuthError, Principal
from tabstream.producer_api.context import ApiContext


async def get_context(request: Request) -> ApiContext:
    """The ApiContext the app was created with (async: no threadpool hop per request)."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]


async def get_principal(
    request: Request,
    ctx: Ctx,
    authorization: Annotated[str | None, Header()] = None,
    refresh_token: Annotated[str | None, Header(alias="refresh-token")] = None,
) -> Principal:
    """Authenticate the caller; a rotated token pair is returned in response headers.

    Static tokens and access JWTs are checked on the event loop (microseconds); a refresh,
    which writes the token store, runs in a worker thread.
    """
    if refresh_token:
        principal = await anyio.to_thread.run_sync(
            ctx.auth.authenticate, authorization, refresh_token
        )
    else:
        principal = ctx.auth.authenticate(authorization, None)
    if principal.rotated is not None:
        request.state.rotated_tokens = principal.rotated
    return principal


async def get_tenant(principal: Annotated[Principal, Depends(get_principal)]) -> str:
    """The caller's tenant."""
    return principal.tenant


Tenant = Annotated[str, Depends(get_tenant)]

__all__ = ["AuthError", "Ctx", "Tenant", "get_context", "get_principal", "get_tenant"]
