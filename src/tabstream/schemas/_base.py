"""Shared base models for the schemas package."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError


class Frozen(BaseModel):
    """An immutable model that refuses unknown fields and non-finite floats."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def field_error(model: str, field: str, message: str) -> ValidationError:
    """An error located at ``field``, to raise from a model validator (the input is not echoed)."""
    error = PydanticCustomError("value_error", message.replace("{", "{{").replace("}", "}}"))
    details = InitErrorDetails(type=error, loc=(field,), input=None)
    return ValidationError.from_exception_data(model, [details])
