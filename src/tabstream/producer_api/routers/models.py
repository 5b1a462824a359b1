"""Registered models (read-only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from tabstream.producer_api.deps import Ctx, Tenant
from tabstream.producer_api.responses import ModelPage

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("")
async def list_models(
    ctx: Ctx,
    tenant: Tenant,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ModelPage:
    """The caller's models."""
    page = ctx.read_model.list_models(tenant, cursor=cursor, limit=limit)
    return ModelPage(items=[dict(m) for m in page.items], next_cursor=page.next_cursor)


@router.get("/{model_id}", responses={404: {"description": "model not found"}})
async def get_model(model_id: uuid.UUID, ctx: Ctx, tenant: Tenant) -> dict[str, Any]:
    """One model: families, metrics, features, sha256, uri."""
    found = ctx.read_model.get_model(tenant, str(model_id))
    if found is None:
        raise HTTPException(404, "model not found")
    return {k: v for k, v in found.items() if k != "tenant"}
