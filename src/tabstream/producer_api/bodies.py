"""JSON bodies validated straight from the request's bytes, for the hot submission route.

FastAPI parses a body with ``json.loads`` and then validates the resulting objects; pydantic
can validate the bytes in one pass (``model_validate_json``), and the answer can be written
once as bytes instead of validated and encoded again. The route then documents its body with
``body_openapi`` and the app adds the models' schemas to the OpenAPI components
(``openapi_components``), so the published schema stays the one FastAPI would generate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
_REF = "#/components/schemas/{model}"
_JSON_TYPES = ("application/json",)


def body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring a required JSON body of ``model``."""
    schema = {"$ref": _REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def openapi_components(models: Sequence[type[BaseModel]]) -> dict[str, Any]:
    """The component schemas FastAPI generates for ``models`` as bodies (and for every model
    they contain), taken from a throwaway document with one route per model."""
    routes = [APIRoute(f"/{i}", _taking(m), methods=["POST"]) for i, m in enumerate(models)]
    document = get_openapi(title="bodies", version="0", routes=routes)
    return dict(document.get("components", {}).get("schemas", {}))


def _taking(model: type[BaseModel]) -> Any:
    async def endpoint(body: Any) -> None:
        """Never called: its signature carries ``model`` into the schema."""

    endpoint.__annotations__ = {"body": model, "return": None}
    return endpoint


async def json_body(request: Request, model: type[M]) -> M:
    """The request's body validated as ``model``; a 422 like FastAPI's (``loc`` under
    ``body``) when it is missing, not JSON, or invalid."""
    raw = await request.body()
    content_type = request.headers.get("content-type")
    if content_type is not None and not _is_json(content_type):
        raise _invalid("model_attributes_type", "Content-Type must be application/json")
    if not raw:
        raise _invalid("missing", "Field required")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError([in_body(e) for e in exc.errors(include_url=False)]) from None


def json_response(model: BaseModel, status_code: int) -> Response:
    """``model`` as a JSON response, encoded once by pydantic-core."""
    body = model.__pydantic_serializer__.to_json(model)
    return Response(content=body, status_code=status_code, media_type="application/json")


def in_body(error: Any) -> dict[str, Any]:
    """A pydantic error located under ``body``; raw bytes (unparseable JSON) are not echoed."""
    raw = isinstance(error.get("input"), bytes | bytearray)
    return {**error, "loc": ("body", *error["loc"]), **({"input": None} if raw else {})}


def _is_json(content_type: str) -> bool:
    subtype = content_type.split(";", 1)[0].strip().lower()
    return subtype in _JSON_TYPES or subtype.endswith("+json")


def _invalid(kind: str, message: str) -> RequestValidationError:
    """A 422 naming the body itself; its text is not echoed (it may hold secrets)."""
    return RequestValidationError([{"type": kind, "loc": ("body",), "msg": message, "input": None}])
