# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Transition conditions: a small JSON expression form over payload fields (never eval).

Grammar (every condition is plain JSON, so tenants can store and edit it)::

    condition := {"field": PATH, "op": OP, "value": JSON}    # comparison
               | {"field": PATH, "op": "exists"}             # the field is present
               | {"and": [condition, ...]}                   # all hold (non-empty list)
               | {"or":  [condition, ...]}                   # any holds (non-empty list)
               | {"not": condition}
    OP      := "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in" | "exists"
    PATH    := "amount" | "customer.tier"    # dots walk into nested objects

A comparison whose field is missing is false (``"!="`` and ``"not in"`` included);
``exists`` tests presence. ``in`` / ``not in`` need a list ``value``. Ordering operators
compare numbers with numbers and strings with strings; anything else raises
:class:`ConditionError` when evaluated.

Example::

    {"and": [{"field": "amount", "op": ">", "value": 100},
             {"not": {"field": "customer.tier", "op": "in", "value": ["gold", "staff"]}}]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ._errors import ConditionError

OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in", "exists")
_MISSING = object()
_MAX_DEPTH = 32


def _json_safe(value: Any, where: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConditionError(f"{where}: value {value!r} is not JSON ({exc})") from None


def validate(cond: Any, where: str = "condition", _depth: int = 0) -> dict[str, Any]:
    """Check ``cond`` against the grammar; return it (a plain dict) or raise ConditionError.

    Example::

        validate({"field": "amount", "op": ">", "value": 100})
    """
    if _depth > _MAX_DEPTH:
        raise ConditionError(f"{where}: nested deeper than {_MAX_DEPTH} levels")
    if not isinstance(cond, Mapping):
        raise ConditionError(
            f"{where}: a condition must be an object like "
            f'{{"field": "amount", "op": ">", "value": 100}}, got {cond!r}'
        )
    keys = set(cond)
    if keys in ({"and"}, {"or"}):
        (key,) = keys
        items = cond[key]
        if not isinstance(items, list) or not items:
            raise ConditionError(f"{where}: {key!r} needs a non-empty list of conditions")
        return {key: [validate(c, f"{where}.{key}[{i}]", _depth + 1) for i, c in enumerate(items)]}
    if keys == {"not"}:
        return {"not": validate(cond["not"], f"{where}.not", _depth + 1)}
    if "field" not in keys or "op" not in keys:
        raise ConditionError(
            f"{where}: expected 'and', 'or', 'not', or 'field' + 'op' (+ 'value'), "
            f"got keys {sorted(map(str, keys))}"
        )
    field, op = cond["field"], cond["op"]
    if not isinstance(field, str) or not field or any(not p for p in field.split(".")):
        raise ConditionError(f"{where}: field must be a dotted name like 'a.b', got {field!r}")
    if op not in OPS:
        raise ConditionError(f"{where}: op must be one of {list(OPS)}, got {op!r}")
    if op == "exists":
        if keys - {"field", "op"}:
            raise ConditionError(f"{where}: 'exists' takes no value")
        return {"field": field, "op": op}
    if keys != {"field", "op", "value"}:
        raise ConditionError(
            f"{where}: a comparison needs exactly 'field', 'op' and 'value', got {sorted(keys)}"
        )
    value = cond["value"]
    _json_safe(value, where)
    if op in ("in", "not in") and not isinstance(value, list):
        raise ConditionError(f"{where}: {op!r} needs a list value, got {value!r}")
    if op in ("<", "<=", ">", ">=") and not (
        isinstance(value, str) or (_is_number(value) and math.isfinite(value))
    ):
        raise ConditionError(f"{where}: {op!r} needs a number or string value, got {value!r}")
    return {"field": field, "op": op, "value": value}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def lookup(payload: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``payload`` (``_MISSING`` if absent)."""
    current = payload
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def evaluate(cond: Mapping[str, Any], payload: Any) -> bool:
    """Evaluate a validated condition against ``payload``.

    Example::

        evaluate({"field": "amount", "op": ">", "value": 100}, {"amount": 250})  # True
    """
    if "and" in cond:
        return all(evaluate(c, payload) for c in cond["and"])
    if "or" in cond:
        return any(evaluate(c, payload) for c in cond["or"])
    if "not" in cond:
        return not evaluate(cond["not"], payload)
    op = cond["op"]
    actual = lookup(payload, cond["field"])
    if op == "exists":
        return actual is not _MISSING
    if actual is _MISSING:
        return False
    value = cond["value"]
    if op == "==":
        return bool(actual == value)
    if op == "!=":
        return bool(actual != value)
    if op == "in":
        return actual in value
    if op == "not in":
        return actual not in value
    comparable = (_is_number(actual) and _is_number(value)) or (
        isinstance(actual, str) and isinstance(value, str)
    )
    if not comparable:
        raise ConditionError(
            f"cannot compare field {cond['field']!r} ({type(actual).__name__} {actual!r}) "
            f"{op} {value!r}: ordering needs two numbers or two strings"
        )
    if op == "<":
        return bool(actual < value)
    if op == "<=":
        return bool(actual <= value)
    if op == ">":
        return bool(actual > value)
    return bool(actual >= value)


def describe(cond: Mapping[str, Any]) -> str:
    """A one-line human form of a condition (for pictures and errors).

    Example::

        describe({"field": "amount", "op": ">", "value": 100})  # 'amount > 100'
    """
    if "and" in cond:
        return " and ".join(_group(c) for c in cond["and"])
    if "or" in cond:
        return " or ".join(_group(c) for c in cond["or"])
    if "not" in cond:
        return f"not {_group(cond['not'])}"
    if cond["op"] == "exists":
        return f"{cond['field']} exists"
    return f"{cond['field']} {cond['op']} {json.dumps(cond['value'])}"


def _group(cond: Mapping[str, Any]) -> str:
    text = describe(cond)
    return f"({text})" if ("and" in cond or "or" in cond) else text
