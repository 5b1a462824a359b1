"""Canonical JSON is json.dumps' sorted, compact text byte for byte, however it is written."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tabstream.common.canonical_json import canonical_json, may_differ
from tabstream.projection.tables import dumps

SMALL_FLOATS = st.floats(min_value=1e-10, max_value=1e-3) | st.floats(
    min_value=-1e-3, max_value=-1e-10
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | SMALL_FLOATS
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(), VALUES, max_size=6))
def test_canonical_text_equals_json_dumps(state: dict[str, Any]) -> None:
    assert canonical_json(state) == reference(state)
    assert dumps(state) == reference(state)  # the projection's state rows


def test_the_cases_orjson_writes_differently_fall_back_to_json() -> None:
    for value in (1e-05, -3.9e-08, 1e-9, 0.00012, 2**64, "\ud800", {1: "int key"}):
        state = {"x": value, "when": "2026-11-27T12:00:00+00:00"}
        assert canonical_json(state) == reference(state)
    assert canonical_json({"v": 1e-5}) == '{"v":1e-05}'


def test_only_numbers_in_the_range_orjson_writes_differently_are_flagged() -> None:
    def flagged(value: Any) -> bool:
        return may_differ(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))

    assert flagged({"lr": 1e-05}) and flagged([-3.9e-08]) and flagged({"a": [1, 0.00002]})
    assert flagged(7e-9) and flagged([-0.00003]) and flagged({"x": {"y": 5.5e-6}})
    typical = {
        "job_id": "0190f4e-a2c4-7e-1b",
        "digest": "3e-4a",
        "created_at": "2026-11-27T12:00:00.000000+00:00",
        "score": 0.25,
        "huge": 1e300,
    }
    assert not flagged(typical)
