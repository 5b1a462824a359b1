"""Liveness and readiness (no authentication)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tabstream.producer_api.deps import Ctx

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "log unreachable or projection not ready"}})
async def readyz(ctx: Ctx) -> JSONResponse:
    """Ready when the event log answers and the projection's lag is known."""
    checks: dict[str, Any] = {}
    try:
        async with asyncio.timeout(3):
            await ctx.log.end_offsets(ctx.topics.events)
        checks["log"] = "ok"
    except Exception as exc:
        checks["log"] = f"unreachable: {type(exc).__name__}"
    try:
        lag = await ctx.read_model.lag()
    except Exception:
        lag = None
    checks["projection_lag"] = lag
    ready = checks["log"] == "ok" and lag is not None
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )
