"""Filter grammar: `Comparison | BoolExpr | Not`, a discriminated union on `kind`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from tabstream.schemas._base import Frozen, field_error

MAX_FILTER_DEPTH = 32
Scalar = bool | int | float | str
CmpOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null", "is_not_null"]
LIST_OPS = frozenset({"in", "not_in"})
NULL_OPS = frozenset({"is_null", "is_not_null"})


class Comparison(Frozen):
    """A single column comparison, e.g. col("ts") >= "2024-01-01"."""

    kind: Literal["cmp"] = "cmp"
    col: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    op: CmpOp = "eq"
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_ops_ignore_value(cls, data: Any) -> Any:
        """``value`` is unused by ``is_null`` / ``is_not_null``: dropped, whatever it is (the
        reference ignores it rather than refusing the request)."""
        op = data.get("op") if isinstance(data, dict) else None
        if isinstance(op, str) and op in NULL_OPS and "value" in data:
            return {k: v for k, v in data.items() if k != "value"}
        return data

    @model_validator(mode="after")
    def _value_fits_op(self) -> Comparison:
        problem = None
        if self.op in NULL_OPS:
            return self
        if self.op in LIST_OPS:
            if not isinstance(self.value, list) or not self.value:
                problem = "needs value to be a non-empty list"
        elif self.value is None or isinstance(self.value, list):
            problem = "needs a single scalar value"
        if problem:
            raise field_error("Comparison", "value", f"op {self.op!r} {problem}")
        return self


class BoolExpr(Frozen):
    """`and` / `or` over two or more filters."""

    kind: Literal["bool"] = "bool"
    op: Literal["and", "or"]
    args: list[Filter] = Field(min_length=2, max_length=1000)


class Not(Frozen):
    """Negation of a filter."""

    kind: Literal["not"] = "not"
    arg: Filter


Filter = Annotated[Comparison | BoolExpr | Not, Field(discriminator="kind")]
BoolExpr.model_rebuild()
Not.model_rebuild()


def raw_filter_depth(raw: Any) -> int:
    """Nesting depth of a raw (dict) or validated filter, computed without recursion."""
    depth, stack = 0, [(raw, 1)]
    while stack:
        node, level = stack.pop()
        depth = max(depth, level)
        children = _children(node)
        stack.extend((c, level + 1) for c in children)
        if level > MAX_FILTER_DEPTH + 1:
            break
    return depth


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        args, arg = node.get("args"), node.get("arg")
    else:
        args, arg = getattr(node, "args", None), getattr(node, "arg", None)
    kids = list(args) if isinstance(args, list) else []
    if arg is not None:
        kids.append(arg)
    return kids


def check_filter_depth(raw: Any) -> Any:
    """Reject filters nested deeper than MAX_FILTER_DEPTH before validating them."""
    if raw is not None and raw_filter_depth(raw) > MAX_FILTER_DEPTH:
        raise ValueError(f"filter is nested deeper than the maximum depth {MAX_FILTER_DEPTH}")
    return raw


def filter_columns(f: Filter) -> set[str]:
    """Every column a filter reads."""
    cols: set[str] = set()
    stack: list[Filter] = [f]
    while stack:
        node = stack.pop()
        if isinstance(node, Comparison):
            cols.add(node.col)
        elif isinstance(node, BoolExpr):
            stack.extend(node.args)
        else:
            stack.append(node.arg)
    return cols
