# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``Q``: filter expressions combined with ``|`` (or), ``&`` (and) and ``~`` (not), for
``RowQuery.where``. A ``Q`` only records names and values; the query validates them
against the register's fields when it runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import InvalidQuery, show


@dataclass(frozen=True)
class Term:
    """One unvalidated condition: ``name`` is ``field`` or ``field__op`` when ``op`` is
    None, else the field name."""

    name: str
    op: str | None
    value: Any


def terms_of(
    filters: Mapping[str, Any] | None, kwargs: Mapping[str, Any], what: str
) -> tuple[Term, ...]:
    """The terms of a mapping plus keywords (names checked to be strings)."""
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidQuery(f"{what} takes a mapping and/or keywords, got {show(filters, 80)}")
    items = [*(filters or {}).items(), *kwargs.items()]
    for name, _ in items:
        if not isinstance(name, str):
            raise InvalidQuery(f"{what} keys must be field names, got {show(name, 80)}")
    return tuple(Term(name, None, value) for name, value in items)


class Q:
    """A filter expression: ``Q(status="paid")`` holds when every condition in it holds;
    ``a | b`` when either does, ``a & b`` when both do, ``~a`` when ``a`` does not (a row
    without a value does not match ``total__gte=100``, so ``~Q(total__gte=100)`` selects
    it). Nest them freely and pass them to :meth:`RowQuery.where`.

    Example::

        late_or_big = Q(status="overdue") | Q(total__gte=1000)
        await RowQuery(invoices).where(late_or_big, ~Q(tags__contains="test")).count()
    """

    __slots__ = ("_items", "_kind")

    def __init__(self, filters: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        self._kind: Literal["and", "or", "not"] = "and"
        self._items: tuple[Term | Q, ...] = terms_of(filters, kwargs, "Q()")

    @classmethod
    def _group(cls, kind: Literal["and", "or", "not"], items: tuple[Term | Q, ...]) -> Q:
        new = object.__new__(cls)
        new._kind = kind
        new._items = items
        return new

    @property
    def kind(self) -> Literal["and", "or", "not"]:
        """How the parts combine: ``and``, ``or``, or ``not`` (of its single part)."""
        return self._kind

    @property
    def parts(self) -> tuple[Term | Q, ...]:
        """The conditions and nested expressions this one combines."""
        return self._items

    def _combine(self, other: object, kind: Literal["and", "or"]) -> Q:
        if not isinstance(other, Q):
            symbol = "&" if kind == "and" else "|"
            raise InvalidQuery(f"Q {symbol} takes another Q(...), got {show(other, 80)}")
        items: list[Term | Q] = []
        for side in (self, other):
            # (a | b) | c is one group of three: flat groups keep the SQL shallow.
            items.extend(side._items if side._kind == kind else (side,))
        return Q._group(kind, tuple(items))

    def __and__(self, other: object) -> Q:
        return self._combine(other, "and")

    def __or__(self, other: object) -> Q:
        return self._combine(other, "or")

    def __invert__(self) -> Q:
        if self._kind == "not":
            inner = self._items[0]
            return inner if isinstance(inner, Q) else Q._group("and", (inner,))
        return Q._group("not", (self,))

    def __repr__(self) -> str:
        def part(item: Term | Q) -> str:
            if isinstance(item, Q):
                return repr(item)
            name = item.name if item.op is None else f"{item.name}__{item.op}"
            return f"{name}={item.value!r}"

        if self._kind == "not":
            return f"~{part(self._items[0])}"
        if self._kind == "or":
            return "(" + " | ".join(part(i) for i in self._items) + ")"
        return "Q(" + ", ".join(part(i) for i in self._items) + ")"


def nesting(items: tuple[Term | Q, ...]) -> int:
    """How deeply groups nest in an expression (0: plain conditions)."""
    deepest = 0
    stack: list[tuple[Term | Q, int]] = [(item, 1) for item in items]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Q):
            deepest = max(deepest, level)
            stack.extend((part, level + 1) for part in item.parts)
    return deepest


def count_terms(items: tuple[Term | Q, ...]) -> int:
    """How many conditions an expression holds (for the per-query limit)."""
    total = 0
    stack: list[Term | Q] = list(items)
    while stack:
        item = stack.pop()
        if isinstance(item, Q):
            stack.extend(item.parts)
        else:
            total += 1
    return total
