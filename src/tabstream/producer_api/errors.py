"""422 responses: FastAPI's error list, with secrets never echoed back."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tabstream.schemas.checks import REDACTED

SECRET_FIELDS = frozenset({"teacher_predict_headers"})


def redact_error(error: dict[str, Any]) -> dict[str, Any]:
    """The error with its ``input`` redacted where it is (or contains) a secret field."""
    if SECRET_FIELDS & {str(p) for p in error.get("loc", ())}:
        error["input"] = REDACTED
    elif "input" in error:
        error["input"] = _redact_nested(error["input"])
    return error


def _redact_mapping(value: dict[str, Any]) -> dict[str, Any]:
    return {
        k: REDACTED if k in SECRET_FIELDS and v else _redact_nested(v) for k, v in value.items()
    }


def _redact_nested(value: Any) -> Any:
    if isinstance(value, dict):
        return _redact_mapping(value)
    if isinstance(value, list):
        return [_redact_nested(v) for v in value]
    return value


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 naming each invalid field (``loc``), secrets redacted."""
    assert isinstance(exc, RequestValidationError)
    errors = [redact_error(dict(e)) for e in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
