"""The command-line filter expression parser (tabstream.client.filter_parser)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabstream.client.filter_parser import FilterSyntaxError, format_filter, parse_filter, tokenize
from tabstream.schemas.filters import BoolExpr, Comparison, Not


def cmp(col: str, op: str, value: object = None) -> Comparison:
    return Comparison(col=col, op=op, value=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('col("ts") >= "2011-06-01"', cmp("ts", "ge", "2011-06-01")),
        ("col('a') == 1", cmp("a", "eq", 1)),
        ("a != 2.5", cmp("a", "ne", 2.5)),
        ("a < -3", cmp("a", "lt", -3)),
        ("a <= 1e3", cmp("a", "le", 1000.0)),
        ("a > .5", cmp("a", "gt", 0.5)),
        ("flag == true", cmp("flag", "eq", True)),
        ("flag == False", cmp("flag", "eq", False)),
        ('city in ["Oslo", "Rome",]', cmp("city", "in", ["Oslo", "Rome"])),
        ("n not in [1, 2]", cmp("n", "not_in", [1, 2])),
        ("x is null", cmp("x", "is_null")),
        ("x IS NOT NULL", cmp("x", "is_not_null")),
        ('col("with space") == "a \\"q\\""', cmp("with space", "eq", 'a "q"')),
    ],
)
def test_comparisons(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


def test_precedence_and_flattening() -> None:
    got = parse_filter("a == 1 or b == 2 and not c == 3 or d is null")
    assert got == BoolExpr(
        op="or",
        args=[
            cmp("a", "eq", 1),
            BoolExpr(op="and", args=[cmp("b", "eq", 2), Not(arg=cmp("c", "eq", 3))]),
            cmp("d", "is_null"),
        ],
    )


def test_parentheses_override_precedence() -> None:
    got = parse_filter("(a == 1 or b == 2) and (c == 3 and d == 4)")
    assert isinstance(got, BoolExpr) and got.op == "and"
    assert got.args[0] == BoolExpr(op="or", args=[cmp("a", "eq", 1), cmp("b", "eq", 2)])
    assert got.args[1:] == [cmp("c", "eq", 3), cmp("d", "eq", 4)]


def test_not_of_group() -> None:
    assert parse_filter("not (a == 1 or a == 2)") == Not(
        arg=BoolExpr(op="or", args=[cmp("a", "eq", 1), cmp("a", "eq", 2)])
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("a ==", "expected a value"),
        ("a = 1", "unexpected character '='"),
        ("a == 1 b == 2", "unexpected 'b'"),
        ("(a == 1", "expected ')'"),
        ("a in []", "the list is empty"),
        ("a in [1 2]", "',' or ']'"),
        ("a in 1", "'[' to start a list"),
        ("a is 3", "expected 'null'"),
        ("a not 3", "'in' after 'not'"),
        ("a == null", "is null"),
        ("a != none", "is not null"),
        ("a in [1, null]", "null is not allowed"),
        ("col(a) == 1", "quoted column name"),
        ("a", "expected a comparison"),
        ("== 1", "expected a column"),
        ('a == "open', "unexpected character"),
        ("not " * 40 + "a == 1", "nested too deeply"),
    ],
)
def test_errors_are_clear(text: str, fragment: str) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    assert fragment in str(info.value)
    assert "position" in str(info.value)


def test_error_points_at_the_token() -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter("a == 1 and b >< 2")
    assert info.value.pos == 14


def test_tokenize_keywords_case_insensitive() -> None:
    kinds = [(t.kind, t.value) for t in tokenize("A AND b")]
    assert kinds == [("name", "A"), ("kw", "and"), ("name", "b"), ("end", "")]


_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
_scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=8),
)
_cmps = st.one_of(
    st.builds(cmp, _names, st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]), _scalars),
    st.builds(cmp, _names, st.sampled_from(["in", "not_in"]), st.lists(_scalars, min_size=1)),
    st.builds(cmp, _names, st.sampled_from(["is_null", "is_not_null"])),
)
_filters = st.recursive(
    _cmps,
    lambda inner: st.one_of(
        st.builds(Not, arg=inner),
        st.builds(BoolExpr, op=st.sampled_from(["and", "or"]), args=st.lists(inner, min_size=2)),
    ),
    max_leaves=8,
)


def _normal(node: object) -> object:
    """Flatten nested same-op BoolExprs (what the parser does) for comparison."""
    if isinstance(node, BoolExpr):
        args: list[object] = []
        for a in node.args:
            n = _normal(a)
            same = isinstance(n, BoolExpr) and n.op == node.op
            args.extend(n.args if same else [n])  # type: ignore[union-attr]
        return BoolExpr(op=node.op, args=args)  # type: ignore[arg-type]
    if isinstance(node, Not):
        return Not(arg=_normal(node.arg))  # type: ignore[arg-type]
    return node


@given(_filters)
def test_format_then_parse_round_trips(node: object) -> None:
    assert parse_filter(format_filter(node)) == _normal(node)  # type: ignore[arg-type]
