"""Parse command-line filter expressions into the schema's ``Filter`` union.

Grammar (keywords are case-insensitive)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := column (OP value | ["not"] "in" list | "is" ["not"] "null")
    column     := col("name") | name
    value      := "string" | 'string' | number | true | false
    list       := "[" value ("," value)* [","] "]"
    OP         := == | != | < | <= | > | >=

Example: ``col("ts") >= "2011-06-01" and col("city") in ["Oslo", "Rome"]``.
Pure: no I/O; errors are ``FilterSyntaxError`` with the position and a caret.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from tabstream.schemas.filters import BoolExpr, Comparison, Filter, Not

_OPS = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "none", "true", "false", "col"})
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<op><=|>=|==|!=|<|>)
  | (?P<punct>[()\[\],])
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)
MAX_LENGTH = 10_000


class FilterSyntaxError(ValueError):
    """A filter expression that does not parse; the message points at the problem."""

    def __init__(self, text: str, pos: int, message: str) -> None:
        self.text, self.pos = text, pos
        caret = " " * pos + "^"
        super().__init__(f"{message} at position {pos}\n  {text}\n  {caret}")


@dataclass(frozen=True)
class Token:
    """One lexeme: kind (string, number, op, punct, name, end), its value and position."""

    kind: str
    value: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens (ending with an ``end`` token)."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FilterSyntaxError(text, pos, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            value = match.group()
            if kind == "name" and value.lower() in _KEYWORDS:
                kind, value = "kw", value.lower()
            tokens.append(Token(kind, value, pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def parse_filter(text: str) -> Filter:
    """Parse ``text`` into a ``Comparison | BoolExpr | Not`` (``FilterSyntaxError`` if invalid)."""
    if not text.strip():
        raise FilterSyntaxError(text, 0, "empty filter expression")
    if len(text) > MAX_LENGTH:
        raise FilterSyntaxError(text[:80], 0, f"filter longer than {MAX_LENGTH} characters")
    return _Parser(text).parse()


class _Parser:
    """Recursive descent over the token list."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, message: str, token: Token | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(self.text, (token or self.tok).pos, message)

    def take(self) -> Token:
        token = self.tok
        self.i += 1
        return token

    def accept(self, kind: str, value: str | None = None) -> Token | None:
        token = self.tok
        if token.kind == kind and (value is None or token.value == value):
            self.i += 1
            return token
        return None

    def expect(self, kind: str, value: str, what: str) -> Token:
        token = self.accept(kind, value)
        if token is None:
            raise self.fail(f"expected {what}, found {self._show(self.tok)}")
        return token

    def parse(self) -> Filter:
        node = self.expr()
        if self.tok.kind != "end":
            raise self.fail(f"unexpected {self._show(self.tok)}; expected 'and', 'or' or the end")
        return node

    def expr(self) -> Filter:
        return self._chain("or", self.and_expr)

    def and_expr(self) -> Filter:
        return self._chain("and", self.not_expr)

    def _chain(self, op: str, operand: Any) -> Filter:
        args = [operand()]
        while self.accept("kw", op):
            args.append(operand())
        if len(args) == 1:
            return args[0]  # type: ignore[no-any-return]
        flat: list[Filter] = []
        for arg in args:
            same = isinstance(arg, BoolExpr) and arg.op == op
            flat.extend(arg.args if isinstance(arg, BoolExpr) and same else [arg])
        return BoolExpr(op=op, args=flat)

    def not_expr(self) -> Filter:
        if self.accept("kw", "not"):
            return Not(arg=self._nested(self.not_expr))
        if self.accept("punct", "("):
            node = self._nested(self.expr)
            self.expect("punct", ")", "')'")
            return node
        return self.comparison()

    def _nested(self, rule: Any) -> Filter:
        self.depth += 1
        if self.depth > 32:
            raise self.fail("filter is nested too deeply (max 32)")
        try:
            return rule()  # type: ignore[no-any-return]
        finally:
            self.depth -= 1

    def comparison(self) -> Comparison:
        col = self.column()
        token = self.tok
        if token.kind == "op":
            self.take()
            value = self.value()
            if value is None:
                hint = "is null" if token.value == "==" else "is not null"
                raise self.fail(f"compare with null using '{hint}'", token)
            return Comparison(col=col, op=_OPS[token.value], value=value)
        if self.accept("kw", "is"):
            negated = self.accept("kw", "not") is not None
            if not (self.accept("kw", "null")):
                raise self.fail(f"expected 'null' after 'is', found {self._show(self.tok)}")
            return Comparison(col=col, op="is_not_null" if negated else "is_null")
        if self.accept("kw", "not"):
            self.expect("kw", "in", "'in' after 'not'")
            return Comparison(col=col, op="not_in", value=self.list_value())
        if self.accept("kw", "in"):
            return Comparison(col=col, op="in", value=self.list_value())
        raise self.fail(
            f"expected a comparison (==, !=, <, <=, >, >=, in, not in, is null) after column "
            f"{col!r}, found {self._show(token)}"
        )

    def column(self) -> str:
        token = self.tok
        if self.accept("kw", "col"):
            self.expect("punct", "(", "'(' after col")
            name = self.accept("string")
            if name is None:
                raise self.fail('expected a quoted column name, e.g. col("ts")')
            self.expect("punct", ")", "')'")
            column = _unquote(name.value)
        elif token.kind == "name":
            column = self.take().value
        else:
            raise self.fail(f'expected a column (col("name") or name), found {self._show(token)}')
        if not column:
            raise self.fail("empty column name", token)
        return column

    def value(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return _unquote(token.value)
        if token.kind == "number":
            return _number(token.value)
        if token.kind == "kw" and token.value in ("true", "false"):
            return token.value == "true"
        if token.kind == "kw" and token.value in ("null", "none"):
            return None
        raise self.fail(
            f"expected a value (string, number, true, false), found {self._show(token)}", token
        )

    def list_value(self) -> list[Any]:
        self.expect("punct", "[", "'[' to start a list")
        values: list[Any] = []
        while not self.accept("punct", "]"):
            if values:
                self.expect("punct", ",", "',' or ']'")
                if self.accept("punct", "]"):
                    break
            start = self.tok
            value = self.value()
            if value is None:
                raise self.fail("null is not allowed in a list; add 'or col is null'", start)
            values.append(value)
        if not values:
            raise self.fail("the list is empty", self.tokens[self.i - 1])
        return values

    @staticmethod
    def _show(token: Token) -> str:
        return "the end" if token.kind == "end" else repr(token.value)


def _unquote(literal: str) -> str:
    """The text of a quoted string literal (Python escapes)."""
    try:
        return str(ast.literal_eval(literal))
    except (SyntaxError, ValueError) as exc:
        raise FilterSyntaxError(literal, 0, f"bad string literal ({exc.args[0]})") from None


def _number(text: str) -> int | float:
    """An int when the literal is integral in form, else a float."""
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return float(text)


def format_filter(node: Filter) -> str:
    """The expression text of a filter (parses back to an equal filter)."""
    if isinstance(node, Comparison):
        return _format_cmp(node)
    if isinstance(node, Not):
        return f"not ({format_filter(node.arg)})"
    return f" {node.op} ".join(f"({format_filter(a)})" for a in node.args)


def _format_cmp(cmp: Comparison) -> str:
    col = f"col({_literal(cmp.col)})"
    if cmp.op == "is_null":
        return f"{col} is null"
    if cmp.op == "is_not_null":
        return f"{col} is not null"
    if cmp.op in ("in", "not_in"):
        items = ", ".join(_literal(v) for v in cmp.value)  # type: ignore[union-attr]
        return f"{col} {'in' if cmp.op == 'in' else 'not in'} [{items}]"
    symbol = {v: k for k, v in _OPS.items()}[cmp.op]
    return f"{col} {symbol} {_literal(cmp.value)}"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)
