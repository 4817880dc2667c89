# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Keyset cursors of ``RowQuery.scroll()``: the sort keys of the last row seen plus the
query's fingerprint, as URL-safe base64 JSON.

Every sort key is bounded (text-like keys hold at most ``SORT_CHARS`` characters), so a
cursor has a maximum length that depends only on the query's sort: :func:`max_length`.
Every cursor :func:`encode` mints for a query is within it, and :func:`decode` refuses
anything longer before parsing it."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ._errors import InvalidCursor, InvalidValue, show
from ._fields import STRINGS, FieldType, coerce, dumps, from_json, text_problem, to_json
from ._limits import MAX_DECIMAL_EXPONENT, SORT_CHARS
from ._plan import ID, QueryPlan, SortKey, key_value, ranked
from ._results import RowResult

# Longest JSON (UTF-8 bytes) of one sort key's value, by type. A character of text takes
# at most 6 bytes in JSON (a \u00XX escape); decimals are normalised to at most 250
# significant digits within MAX_DECIMAL_EXPONENT of the point.
_TEXT_BYTES = 6 * SORT_CHARS + 2
_VALUE_BYTES = {
    FieldType.INTEGER: 20,
    FieldType.DECIMAL: 250 + 2 * MAX_DECIMAL_EXPONENT + 8,
    FieldType.BOOLEAN: 5,
    FieldType.DATE: 12,
    FieldType.DATETIME: 34,
    FieldType.REFERENCE: 38,
}
_OVERHEAD = len('{"f":"0123456789abcdef","k":[]}')


def _key_bytes(key: SortKey) -> int:
    kind = key.field.kind
    return _TEXT_BYTES if kind in STRINGS else _VALUE_BYTES[kind]


def max_length(plan: QueryPlan) -> int:
    """The longest cursor :func:`encode` can produce for ``plan`` (and the longest
    :func:`decode` accepts).

    Example::

        max_length(plan)  # 2,148 for order_by("-name"): a text field and the row id
    """
    total = _OVERHEAD + sum(_key_bytes(k) + 1 for k in plan.sort)
    return 4 * -(-total // 3)


def encode(plan: QueryPlan, row: RowResult) -> str:
    """The cursor that continues ``plan`` after ``row``."""
    values = [to_json(k.field, key_value(row, k)) for k in plan.sort]
    doc = {"f": plan.fingerprint(), "k": values}
    return base64.urlsafe_b64encode(dumps(doc).encode()).decode().rstrip("=")


def decode(cursor: Any, plan: QueryPlan) -> tuple[Any, ...]:
    """The sort keys a cursor holds, checked against ``plan``; :class:`InvalidCursor` for
    anything :func:`encode` did not produce for this query."""
    limit = max_length(plan)
    if not isinstance(cursor, str) or not cursor or len(cursor) > limit:
        raise InvalidCursor(
            f"cursor must be a next_cursor string from scroll() (at most {limit:,} "
            f"characters for this query), got {show(cursor, 80)}"
        )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        doc = json.loads(raw)
        if not isinstance(doc, dict) or set(doc) != {"f", "k"}:
            raise ValueError("shape")
        if doc["f"] != plan.fingerprint():
            raise InvalidCursor(
                "this cursor belongs to another query (different filters, search, sort or "
                "archive mode); keep the query unchanged while scrolling, or start over "
                "without a cursor"
            )
        values = doc["k"]
        if not isinstance(values, list) or len(values) != len(plan.sort):
            raise ValueError("length")
        decoded = tuple(from_json(k.field, v) for k, v in zip(plan.sort, values, strict=True))
        for k, v in zip(plan.sort, decoded, strict=True):
            if v is None:
                if k.field is ID:
                    raise ValueError("id")
            elif ranked(k.field):  # a single_select's rank among its choices
                if type(v) is not int or not 1 <= v <= len(k.field.choices):
                    raise ValueError("rank")
            elif k.field.kind in STRINGS:
                # A sort key, not a field value (a choice or URL may be cut short).
                if not isinstance(v, str) or len(v) > SORT_CHARS or text_problem(v):
                    raise ValueError("text key")
            else:
                coerce(k.field, v)
        return decoded
    except InvalidCursor:
        raise
    except (
        ValueError,  # also UnicodeDecodeError, binascii.Error, json's errors, InvalidValue
        TypeError,
        KeyError,
        AttributeError,
        ArithmeticError,  # decimal.InvalidOperation, OverflowError
        RecursionError,  # deeply nested JSON
        binascii.Error,
        InvalidValue,
    ):
        raise InvalidCursor(
            f"malformed or edited cursor {show(cursor, 60)}; pass next_cursor from the "
            "previous page unchanged"
        ) from None
