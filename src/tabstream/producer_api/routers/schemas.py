"""Event JSON Schemas for subscribers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tabstream.producer_api.deps import Tenant
from tabstream.schemas import json_schemas

router = APIRouter(prefix="/v1/schemas", tags=["schemas"])
_SCHEMAS = json_schemas()


@router.get("/events")
async def event_schemas(_: Tenant) -> dict[str, dict[str, Any]]:
    """JSON Schemas of the envelope ("Envelope") and of every event type."""
    return _SCHEMAS
