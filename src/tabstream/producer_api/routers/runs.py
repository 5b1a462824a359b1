"""POST /v1/trainer/run: validate, route, encrypt secrets, publish RunRequested, answer 202."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError

from tabstream.producer_api.bodies import body_openapi, json_body, json_response
from tabstream.producer_api.context import ApiContext, utcnow
from tabstream.producer_api.deps import Tenant
from tabstream.producer_api.job_ids import keyed_job_id
from tabstream.producer_api.submission import (
    admission_errors,
    check_against_dataset,
    choose_pool,
    request_digest,
    request_notices,
)
from tabstream.producer_api.teachers import teacher_errors
from tabstream.schemas import RunRequested, TrainerRunRequest, TrainerRunResponse

router = APIRouter(prefix="/v1/trainer", tags=["runs"])
BODY_MODELS = [TrainerRunRequest]
"""Models of bodies validated by ``json_body`` (their schemas go to the OpenAPI components)."""
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "dataset not found"},
    409: {"description": "Idempotency-Key reused with another body"},
    422: {
        "description": "invalid body (including random_state outside [0, 2**32) and Pareto "
        "sweeps of more than 64 matrix rows), or columns missing/incompatible with the dataset"
    },
    503: {"description": "event log unavailable; nothing was submitted"},
}
MAX_IDEMPOTENCY_KEY = 256
_IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {
        "anyOf": [{"maxLength": MAX_IDEMPOTENCY_KEY, "type": "string"}, {"type": "null"}],
        "title": "Idempotency-Key",
    },
}


@router.post(
    "/run",
    status_code=202,
    response_model=TrainerRunResponse,
    responses=_RESPONSES,
    openapi_extra={**body_openapi(TrainerRunRequest), "parameters": [_IDEMPOTENCY_HEADER]},
)
async def trainer_run(request: Request, tenant: Tenant) -> Response:
    """Configure a Trainer and run HPO across a model matrix (asynchronously: 202 + job_id)."""
    # The hot route: body and Idempotency-Key are read here, not declared as parameters,
    # as FastAPI's generic handling of them cost more than this route's own checks. The
    # OpenAPI document declares both all the same (openapi_extra above).
    key = _idempotency_key(request)
    body = await json_body(request, TrainerRunRequest)
    return json_response(await _accept(request.app.state.ctx, tenant, body, key), 202)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        error = {
            "type": "string_too_long",
            "loc": ("header", "Idempotency-Key"),
            "msg": f"String should have at most {MAX_IDEMPOTENCY_KEY} characters",
            "input": None,
            "ctx": {"max_length": MAX_IDEMPOTENCY_KEY},
        }
        raise RequestValidationError([error])
    return key


async def _accept(
    ctx: ApiContext, tenant: str, body: TrainerRunRequest, idempotency_key: str | None
) -> TrainerRunResponse:
    refused = admission_errors(body)
    if refused:
        raise HTTPException(422, refused)
    dataset = ctx.dataset(tenant, str(body.dataset_id))
    if dataset is None:
        raise HTTPException(404, f"dataset {body.dataset_id} not found")
    errors = check_against_dataset(body, dataset)
    errors += teacher_errors(ctx.read_model, tenant, body, dataset)
    if errors:
        raise HTTPException(422, errors)
    digest = request_digest(body, ctx.digest_key)
    if not idempotency_key:
        return await _submit(ctx, tenant, body, digest, None)
    async with ctx.idempotency_locks.hold((tenant, idempotency_key)):
        replay = _replay(ctx, tenant, idempotency_key, digest, body)
        return replay or await _submit(ctx, tenant, body, digest, idempotency_key)


def _replay(
    ctx: ApiContext, tenant: str, key: str, digest: str, body: TrainerRunRequest
) -> TrainerRunResponse | None:
    seen = ctx.recent_submissions.get((tenant, key)) or ctx.read_model.find_idempotent(tenant, key)
    if seen is None:
        return None
    job_id, seen_digest = seen
    if seen_digest != digest:
        raise HTTPException(409, "Idempotency-Key was already used with a different request body")
    job = ctx.read_model.get_job(tenant, job_id)
    return TrainerRunResponse(
        job_id=uuid.UUID(job_id),
        status=(job or {}).get("status", "pending"),
        message="duplicate submission: returning the job of this Idempotency-Key",
        dataset_id=body.dataset_id,
    )


async def _submit(
    ctx: ApiContext, tenant: str, body: TrainerRunRequest, digest: str, key: str | None
) -> TrainerRunResponse:
    pool = choose_pool(body, ctx.topics.pools)
    topic = ctx.topics.commands(pool)
    job_id = ctx.new_job_id(topic) if key is None else keyed_job_id(ctx.digest_key, tenant, key)
    secret = body.teacher_predict_headers
    command = RunRequested(
        job_id=job_id,
        dataset_id=body.dataset_id,
        request=body.redacted(),
        encrypted_headers=ctx.cipher.encrypt(secret) if secret else None,
        pool=pool,
        submitted_at=utcnow(),
        idempotency_key=key,
        request_digest=digest,
    )
    published = await ctx.publish_envelope(topic, command, tenant)
    if key is not None:
        ctx.remember(tenant, key, str(job_id), digest)
    applied = await ctx.wait_applied(published)
    message = f"job accepted on pool {pool!r}" + ("" if applied else " (projection catching up)")
    message = "; ".join([message, *request_notices(body)])
    return TrainerRunResponse(
        job_id=job_id, status="pending", message=message, dataset_id=body.dataset_id
    )
