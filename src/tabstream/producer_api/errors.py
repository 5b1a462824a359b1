"""422 responses: FastAPI's error list, with secrets never echoed back and inputs bounded;
a listing's malformed cursor."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tabstream.schemas.checks import REDACTED

SECRET_FIELDS = frozenset({"teacher_predict_headers"})
MAX_ECHO_CHARS = 256


@contextmanager
def cursor_errors_as_422() -> Iterator[None]:
    """Around a read-model listing: its ValueError (a malformed cursor) is a 422, not a 500."""
    try:
        yield
    except ValueError:
        detail = [{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}]
        raise HTTPException(422, detail) from None


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


def bounded(value: Any) -> Any:
    """``value`` as JSON can carry it: non-finite floats as text, and anything whose JSON is
    longer than ``MAX_ECHO_CHARS`` as a truncated text preview (a 300 MB body is not echoed)."""
    plain = jsonable_encoder(_finite(value))
    text = json.dumps(plain, default=str)
    if len(text) > MAX_ECHO_CHARS:
        return text[:MAX_ECHO_CHARS] + "… (truncated)"
    return plain


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value[: MAX_ECHO_CHARS + 1]).decode("utf-8", "replace")
    return value


def _encodable(error: dict[str, Any]) -> dict[str, Any]:
    if "input" in error:
        error["input"] = bounded(error["input"])
    if "ctx" in error:
        error["ctx"] = {k: bounded(v) for k, v in dict(error["ctx"]).items()}
    return error


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 naming each invalid field (``loc``), secrets redacted, inputs bounded."""
    assert isinstance(exc, RequestValidationError)
    errors = [_encodable(redact_error(dict(e))) for e in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
