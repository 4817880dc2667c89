# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Formulas: a small expression language over a row's fields, parsed by this module (no
``eval``), type-checked against the register's fields when the query is planned, and
evaluated in Python with exact decimal arithmetic.

Grammar (lowest precedence first)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum (("=" | "!=" | "<" | "<=" | ">" | ">=") sum)?
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := "-" unary | atom
    atom    := number | "text" | 'text' | true | false | null | {field name}
             | name "(" [expr ("," expr)*] ")" | "(" expr ")"
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from ._errors import InvalidQuery, show
from ._fields import Field, FieldType
from ._plan import RegisterInfo

MAX_FORMULA_CHARS = 2_000
MAX_FORMULA_DEPTH = 32
#: Bounds the parse and evaluation recursion (a chain of 100 ``+`` nests 100 levels).
MAX_FORMULA_TOKENS = 200

_NUMBER = frozenset({FieldType.INTEGER, FieldType.DECIMAL})
_TEXT = frozenset({FieldType.TEXT, FieldType.EMAIL, FieldType.URL, FieldType.SINGLE_SELECT})
_TYPES = {
    **{k: "number" for k in _NUMBER},
    **{k: "text" for k in _TEXT},
    FieldType.BOOLEAN: "boolean",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime",
}

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<string>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    r"|(?P<field>\{[^{}]+\})|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op><=|>=|!=|[-+*/=<>(),]))"
)


@dataclass(frozen=True)
class _Node:
    """A typed node: ``type`` is number, text, boolean, date, datetime or null; ``run``
    computes its value from a row's values."""

    type: str
    run: Callable[[Mapping[str, Any]], Any]


def _tokens(source: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        match = _TOKEN.match(source, pos)
        if match is None or match.end() == pos:
            rest = source[pos:].lstrip()
            raise InvalidQuery(
                f"formula {show(source, 80)}: unexpected {show(rest[:10])} at character "
                f"{len(source) - len(rest) + 1}"
            )
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return out


def _num(a: Any) -> Decimal | int:
    return a if isinstance(a, (int, Decimal)) else Decimal(a)


def _arith(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 34
        try:
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return _num(a) * _num(b)
            if b == 0:
                return None  # no value rather than an error in the middle of a page
            return (Decimal(a) / Decimal(b)).normalize()
        except InvalidOperation:  # pragma: no cover - 34 digits hold the field limits
            return None


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


class _Parser:
    def __init__(self, source: str, info: RegisterInfo) -> None:
        self.source = source
        self.info = info
        self.tokens = _tokens(source)
        if len(self.tokens) > MAX_FORMULA_TOKENS:
            raise self.fail(
                f"has {len(self.tokens)} parts (numbers, names, operators); the limit is "
                f"{MAX_FORMULA_TOKENS}"
            )
        self.i = 0
        self.depth = 0

    def fail(self, message: str) -> InvalidQuery:
        return InvalidQuery(f"formula {show(self.source, 80)}: {message}")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, text: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise self.fail("ends too early" + (f"; expected {text!r}" if text else ""))
        if text is not None and token[1] != text:
            raise self.fail(f"expected {text!r} at character {token[2] + 1}, got {token[1]!r}")
        self.i += 1
        return token

    def at(self, *texts: str) -> bool:
        token = self.peek()
        return token is not None and token[0] in ("op", "name") and token[1] in texts

    def parse(self) -> _Node:
        node = self.expr()
        token = self.peek()
        if token is not None:
            raise self.fail(f"unexpected {token[1]!r} at character {token[2] + 1}")
        return node

    def expr(self) -> _Node:
        self.depth += 1
        if self.depth > MAX_FORMULA_DEPTH:
            raise self.fail(f"nests deeper than {MAX_FORMULA_DEPTH} levels")
        try:
            return self.logic("or")
        finally:
            self.depth -= 1

    def logic(self, word: str) -> _Node:
        node = self.logic("and") if word == "or" else self.negation()
        while self.at(word):
            self.take()
            right = self.logic("and") if word == "or" else self.negation()
            node = self.boolean_pair(word, node, right)
        return node

    def boolean_pair(self, word: str, a: _Node, b: _Node) -> _Node:
        for side in (a, b):
            if side.type not in ("boolean", "null"):
                raise self.fail(f"{word!r} takes true/false values, got {side.type}")
        if word == "or":
            return _Node("boolean", lambda v: bool(a.run(v)) or bool(b.run(v)))
        return _Node("boolean", lambda v: bool(a.run(v)) and bool(b.run(v)))

    def negation(self) -> _Node:
        if self.at("not"):
            self.take()
            inner = self.negation()
            if inner.type not in ("boolean", "null"):
                raise self.fail(f"'not' takes a true/false value, got {inner.type}")
            return _Node("boolean", lambda v: None if (x := inner.run(v)) is None else not x)
        return self.compare()

    def compare(self) -> _Node:
        node = self.sum()
        if self.at(*_COMPARE):
            op = self.take()[1]
            right = self.sum()
            types = {node.type, right.type} - {"null"}
            if len(types) > 1:
                raise self.fail(f"cannot compare {node.type} with {right.type} using {op!r}")
            test = _COMPARE[op]
            a = node

            def run(v: Mapping[str, Any]) -> Any:
                x, y = a.run(v), right.run(v)
                return None if x is None or y is None else test(x, y)

            return _Node("boolean", run)
        return node

    def sum(self) -> _Node:
        node = self.product()
        while self.at("+", "-"):
            node = self.arith(self.take()[1], node, self.product())
        return node

    def product(self) -> _Node:
        node = self.unary()
        while self.at("*", "/"):
            node = self.arith(self.take()[1], node, self.unary())
        return node

    def arith(self, op: str, a: _Node, b: _Node) -> _Node:
        for side in (a, b):
            if side.type not in ("number", "null"):
                raise self.fail(
                    f"{op!r} takes numbers, got {side.type}"
                    + ("; join texts with concat(...)" if side.type == "text" else "")
                )
        return _Node("number", lambda v: _arith(op, a.run(v), b.run(v)))

    def unary(self) -> _Node:
        if self.at("-"):
            self.take()
            inner = self.unary()
            if inner.type not in ("number", "null"):
                raise self.fail(f"'-' takes a number, got {inner.type}")
            return _Node("number", lambda v: None if (x := inner.run(v)) is None else -x)
        return self.atom()

    def atom(self) -> _Node:
        kind, text, pos = self.take()
        if kind == "number":
            value: Any = Decimal(text) if "." in text else int(text)
            return _Node("number", lambda v: value)
        if kind == "string":
            literal = re.sub(r"\\(.)", r"\1", text[1:-1])
            return _Node("text", lambda v: literal)
        if kind == "field":
            name = text[1:-1]
            f = next((x for x in self.info.fields if x.name == name), None)
            if f is None or f.kind not in _TYPES:
                usable = [x.name for x in self.info.fields if x.kind in _TYPES]
                raise self.fail(
                    f"{{{name}}} is no field usable in a formula; fields: "
                    f"{', '.join(map(repr, usable)) or '(none)'}"
                )
            return _Node(_TYPES[f.kind], lambda v: v.get(name))
        if kind == "name":
            word = text.lower()
            if word in ("true", "false"):
                flag = word == "true"
                return _Node("boolean", lambda v: flag)
            if word == "null":
                return _Node("null", lambda v: None)
            if self.at("("):
                return self.call(word, pos)
            raise self.fail(
                f"unknown name {text!r} at character {pos + 1}; write fields as {{name}}"
            )
        if text == "(":
            node = self.expr()
            self.take(")")
            return node
        raise self.fail(f"unexpected {text!r} at character {pos + 1}")

    def call(self, name: str, pos: int) -> _Node:
        self.take("(")
        args: list[_Node] = []
        if not self.at(")"):
            args.append(self.expr())
            while self.at(","):
                self.take()
                args.append(self.expr())
        self.take(")")
        return self.function(name, args, pos)

    def function(self, name: str, args: list[_Node], pos: int) -> _Node:
        def arity(n: int) -> None:
            if len(args) != n:
                raise self.fail(f"{name}() takes {n} argument(s), got {len(args)}")

        if name == "concat":
            parts = list(args)
            return _Node("text", lambda v: "".join(_text(p.run(v)) for p in parts))
        if name == "if":
            arity(3)
            cond, yes, no = args
            if cond.type not in ("boolean", "null"):
                raise self.fail(f"if() takes a true/false condition first, got {cond.type}")
            types = {yes.type, no.type} - {"null"}
            if len(types) > 1:
                raise self.fail(f"if() branches must have one type, got {yes.type} and {no.type}")
            return _Node(
                types.pop() if types else "null",
                lambda v: yes.run(v) if cond.run(v) else no.run(v),
            )
        if name == "coalesce":
            if not args:
                raise self.fail("coalesce() takes at least one argument")
            types = {a.type for a in args} - {"null"}
            if len(types) > 1:
                raise self.fail(f"coalesce() arguments must have one type, got {sorted(types)}")
            options = list(args)
            return _Node(
                types.pop() if types else "null",
                lambda v: next((x for a in options if (x := a.run(v)) is not None), None),
            )
        if name in ("lower", "upper", "len"):
            arity(1)
            (arg,) = args
            if arg.type not in ("text", "null"):
                raise self.fail(f"{name}() takes text, got {arg.type}")
            if name == "len":
                return _Node("number", lambda v: None if (x := arg.run(v)) is None else len(x))
            change = str.lower if name == "lower" else str.upper
            return _Node("text", lambda v: None if (x := arg.run(v)) is None else change(x))
        if name == "round":
            arity(2)
            value, places = args
            if value.type not in ("number", "null") or places.type != "number":
                raise self.fail("round() takes a number and a whole number of places")

            def run(v: Mapping[str, Any]) -> Any:
                x, n = value.run(v), places.run(v)
                if x is None or n is None:
                    return None
                return Decimal(x).quantize(Decimal(1).scaleb(-int(n))).normalize()

            return _Node("number", run)
        raise self.fail(
            f"unknown function {name!r} at character {pos + 1}; functions: concat, if, "
            "coalesce, lower, upper, len, round"
        )


@dataclass(frozen=True)
class Formula:
    """A parsed, type-checked formula: ``type`` is its result type (number, text, boolean,
    date, datetime or null); ``evaluate(values)`` computes it for a row's values.

    Example::

        compile_formula("{total} * 1.2", info).evaluate({"total": Decimal("10")})  # 12.0
    """

    source: str
    type: str
    _node: _Node

    @classmethod
    def parse(cls, source: str, fields: Sequence[Field]) -> Formula:
        """Parse and type-check a formula against a register's fields (what a UI does
        when a user defines one); :class:`InvalidQuery` names the problem.

        Example::

            Formula.parse("if({total} > 100, 'big', 'small')", invoices.fields).type  # 'text'
        """
        return compile_formula(source, RegisterInfo("formula", tuple(fields)))

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """The formula's value for a row (``None`` when an operand has none)."""
        return self._node.run(values)


def formula_fields(source: str) -> tuple[str, ...]:
    """The names of the fields ``source`` reads (``{name}``), in order, once each.

    Example::

        formula_fields("{net} * (1 + {rate}) - {net}")  # ('net', 'rate')
    """
    names = [text[1:-1] for kind, text, _pos in _tokens(source) if kind == "field"]
    return tuple(dict.fromkeys(names))


def rename_in_formula(source: str, old: str, new: str) -> str:
    """``source`` with every ``{old}`` read as ``{new}`` (text inside quotes is kept).

    Example::

        rename_in_formula("{net} * 2", "net", "amount")  # '{amount} * 2'
    """
    out: list[str] = []
    last = 0
    for kind, text, pos in _tokens(source):
        if kind == "field" and text[1:-1] == old:
            out += [source[last:pos], "{" + new + "}"]
            last = pos + len(text)
    return "".join(out) + source[last:]


def compile_formula(source: Any, info: RegisterInfo) -> Formula:
    """Parse and type-check ``source`` against ``info``'s fields; InvalidQuery otherwise."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidQuery(f"a formula is non-empty text, got {show(source, 80)}")
    if len(source) > MAX_FORMULA_CHARS:
        raise InvalidQuery(
            f"a formula takes at most {MAX_FORMULA_CHARS:,} characters, got {len(source):,}"
        )
    node = _Parser(source, info).parse()
    return Formula(source, node.type, node)
