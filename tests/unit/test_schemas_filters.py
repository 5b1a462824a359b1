"""Filter grammar: ops, values, nesting depth."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from tabstream.schemas import BoolExpr, Comparison, Filter, Not, filter_columns
from tabstream.schemas.filters import MAX_FILTER_DEPTH
from tabstream.schemas.run import TrainerRunRequest

FILTER: TypeAdapter[Any] = TypeAdapter(Filter)


def cmp(**kw: Any) -> dict[str, Any]:
    return {"kind": "cmp", "col": "c", **kw}


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = cmp(value=1)
    for _ in range(depth - 1):
        node = {"kind": "not", "arg": node}
    return node


def request_with(flt: dict[str, Any]) -> TrainerRunRequest:
    body = {"dataset_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "filter": flt}
    body["task"] = {"label_column": "y", "task_kind": "regression"}
    return TrainerRunRequest.model_validate(body)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (cmp(op="like", value="x"), "op"),
        (cmp(op="in", value="x"), "non-empty list"),
        (cmp(op="in", value=[]), "non-empty list"),
        (cmp(op="not_in"), "non-empty list"),
        (cmp(op="eq"), "single scalar"),
        (cmp(op="lt", value=[1, 2]), "single scalar"),
        (cmp(value={"a": 1}), "value"),
        ({"kind": "cmp", "value": 1}, "col"),
        ({"kind": "bool", "op": "and", "args": [cmp(value=1)]}, "at least 2"),
        ({"kind": "bool", "op": "xor", "args": [cmp(value=1), cmp(value=2)]}, "op"),
        ({"kind": "regex", "col": "c"}, "kind"),
    ],
)
def test_rejections(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        FILTER.validate_python(raw)
    assert needle in str(info.value)


def test_valid_forms() -> None:
    assert FILTER.validate_python(cmp(value="x")) == Comparison(col="c", value="x")
    assert FILTER.validate_python(cmp(op="in", value=[1, "a", True])).value == [1, "a", True]
    assert FILTER.validate_python(cmp(op="is_null")).value is None
    assert FILTER.validate_python(cmp(op="ge", value="2024-01-01")).op == "ge"
    assert FILTER.validate_python(cmp(value=True)).value is True


@pytest.mark.parametrize("value", [1, [1], "x", None, {"any": "thing"}])
@pytest.mark.parametrize("op", ["is_null", "is_not_null"])
def test_null_ops_ignore_value(op: Any, value: Any) -> None:
    """The reference leaves ``value`` unused for the null ops: accepted and dropped."""
    assert FILTER.validate_python(cmp(op=op, value=value)) == Comparison(col="c", op=op)
    assert Comparison(col="c", op=op, value=value).value is None


def test_depth_limit_in_request() -> None:
    assert request_with(nested(MAX_FILTER_DEPTH)).filter is not None
    with pytest.raises(ValidationError, match="deeper than the maximum depth 32"):
        request_with(nested(MAX_FILTER_DEPTH + 1))


def test_very_deep_filter_is_a_clean_error() -> None:
    with pytest.raises(ValidationError, match="maximum depth"):
        request_with(nested(5000))


def test_filter_columns() -> None:
    f = BoolExpr(
        op="or", args=[Comparison(col="a", value=1), Not(arg=Comparison(col="b", value=2))]
    )
    assert filter_columns(f) == {"a", "b"}
