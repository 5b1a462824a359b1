"""Upcasters: one function per event schema change, (type, from_version) -> payload at +1.

Published shapes are never edited: bump SCHEMA_VERSION and register an upcaster instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tabstream.schemas.payloads import CURRENT_VERSIONS

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UpcastError(ValueError):
    """No upcaster chain leads from a stored version to the current one."""


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register `fn(payload) -> payload` that upcasts `event_type` from `from_version` by one."""

    def register(fn: Upcaster) -> Upcaster:
        key = (event_type, from_version)
        if key in UPCASTERS:
            raise ValueError(f"upcaster for {event_type} v{from_version} already registered")
        UPCASTERS[key] = fn
        return fn

    return register


def upcast(raw: dict[str, Any], target: int | None = None) -> dict[str, Any]:
    """Upcast a raw envelope dict's payload step by step to `target` (default: current)."""
    event_type, version = raw.get("type"), raw.get("schema_version")
    if not isinstance(event_type, str) or type(version) is not int:
        raise UpcastError("envelope needs a string type and an integer schema_version")
    goal = CURRENT_VERSIONS.get(event_type) if target is None else target
    if goal is None:
        raise UpcastError(f"unknown event type {event_type!r}")
    payload = dict(raw.get("payload") or {})
    while version < goal:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise UpcastError(f"no upcaster for {event_type} v{version} -> v{version + 1}")
        payload, version = step(payload), version + 1
    return {**raw, "schema_version": version, "payload": payload}


@upcaster("DatasetRegistered", 1)
def _dataset_source(payload: dict[str, Any]) -> dict[str, Any]:
    """v2 added ``source`` (how the reference API's connection_config was read); v1 datasets
    came from a multipart upload or a ``{uri}`` import and have none."""
    return {**payload, "source": None}


@upcaster("RunRequested", 1)
def _run_time_budget(payload: dict[str, Any]) -> dict[str, Any]:
    """v2 added the request's optional ``time_budget_s``; a v1 request has none, so it stays
    without the field (None: no time limit)."""
    request = payload.get("request")
    if not isinstance(request, dict):
        return payload  # not a request: validation refuses it with a clear error
    return {**payload, "request": {k: v for k, v in request.items() if k != "time_budget_s"}}
