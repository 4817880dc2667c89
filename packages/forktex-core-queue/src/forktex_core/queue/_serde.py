# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""JSON (never pickle) encoding of job arguments, results and records.

What can be stored is checked before anything is encoded, so every value that is not plain
JSON — including values that would make the encoder itself fail (nesting deeper than
:data:`MAX_DEPTH`, cycles, ints past Python's int-to-str digit limit) — is reported as a
:class:`SerializationError` naming where it sits, and every stored job can be decoded by any
worker.
"""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

from ._errors import SerializationError, show

_SCALARS = (str, bool, type(None))

MAX_DEPTH = 64
"""How deeply lists and dicts may nest inside one argument or result."""

MAX_INT_DIGITS = 4300
"""Decimal digits an int may have: Python's default int-to-str limit, so every worker can
read the job back whatever its own limit."""

_INT_BOUND = 10**MAX_INT_DIGITS

MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
"""Largest encoded job (arguments) or result, 16 MiB: keep big data in storage and pass keys."""


def problem(value: Any) -> str | None:
    """Why ``value`` is not plain JSON (``None`` when it is).

    Plain JSON: ``None``, ``bool``, ``int`` (at most 4300 digits), finite ``float``, ``str``,
    lists/tuples of those and dicts with ``str`` keys, nested at most 64 deep, without cycles.
    Tuples come back as lists.

    Example::

        >>> problem({"a": [1, {2, 3}]})
        "at ['a'][1]: a set is not JSON (allowed: None, bool, int, float, str, list, dict)"
    """
    return _problem(value, [], set())


def _problem(value: Any, path: list[str], active: set[int]) -> str | None:
    at = f"at {''.join(path)}: " if path else ""
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, int):
        if -_INT_BOUND < value < _INT_BOUND:
            return None
        return f"{at}an int of more than {MAX_INT_DIGITS} digits cannot be stored"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{at}{value!r} is not finite"
    if not isinstance(value, list | tuple | dict):
        return (
            f"{at}a {type(value).__name__} is not JSON "
            "(allowed: None, bool, int, float, str, list, dict)"
        )
    if id(value) in active:
        return f"{at}the value contains itself (a cycle)"
    if len(path) >= MAX_DEPTH:
        return f"{at}lists and dicts nest deeper than {MAX_DEPTH} levels"
    active.add(id(value))
    try:
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    return f"{at}key {show(key)} is a {type(key).__name__}, keys must be str"
                why = _problem(item, [*path, f"[{show(key, 40)}]"], active)
                if why is not None:
                    return why
        else:
            for i, item in enumerate(value):
                why = _problem(item, [*path, f"[{i}]"], active)
                if why is not None:
                    return why
    finally:
        active.discard(id(value))
    return None


def check_arguments(
    task: str, signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Raise :class:`SerializationError` naming the first argument that is not plain JSON."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise SerializationError(f"arguments do not match {task}{signature}: {exc}") from None
    for name, value in bound.arguments.items():
        why = problem(value)
        if why is not None:
            raise SerializationError(
                f"argument {name!r} of task {task!r} cannot be enqueued: {why}"
            )


def dumps(value: Any, *, what: str = "value") -> bytes:
    """Compact JSON bytes of a value :func:`problem` accepts; :class:`SerializationError` if
    it is larger than :data:`MAX_PAYLOAD_BYTES`."""
    try:
        data = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    except (ValueError, TypeError, RecursionError) as exc:  # unchecked input: still our error
        raise SerializationError(
            f"{what} cannot be stored as JSON ({type(exc).__name__})"
        ) from None
    if len(data) > MAX_PAYLOAD_BYTES:
        raise SerializationError(
            f"{what} is {len(data)} bytes as JSON; at most {MAX_PAYLOAD_BYTES} (16 MiB) can be "
            "stored — keep large data in storage and pass its key"
        )
    return data


def with_field(data: bytes, name: str, value: dict[str, str]) -> bytes:
    """``data`` (the JSON object :func:`dumps` made) with one more field, without encoding
    the rest again. ``name`` must not be in it yet; ``value`` is small (trace context).

    Example::

        with_field(b'{"f":"add"}', "tc", {"traceparent": "00-..."})
        # b'{"f":"add","tc":{"traceparent":"00-..."}}'
    """
    extra = json.dumps({name: value}, separators=(",", ":")).encode()
    return data[:-1] + b"," + extra[1:]


def loads(data: bytes | str) -> Any:
    """Inverse of :func:`dumps`."""
    return json.loads(data)
