"""A bare echo route for the control-plane benchmark (mounted only with TABSTREAM_BENCH_ECHO=1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tabstream.producer_api.deps import Tenant

router = APIRouter(prefix="/v1/_bench", include_in_schema=False)


@router.post("/echo", status_code=202)
async def echo(request: Request, tenant: Tenant) -> dict[str, Any]:
    """Authenticate, parse the JSON body and return it: the framework floor of a submission."""
    body = await request.json()
    return {"tenant": tenant, "echo": body}
