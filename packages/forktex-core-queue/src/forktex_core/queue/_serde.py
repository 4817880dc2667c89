# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""JSON (never pickle) encoding of job arguments, results and records."""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

from ._errors import SerializationError

_SCALARS = (str, int, bool, type(None))


def problem(value: Any) -> str | None:
    """Why ``value`` is not plain JSON (``None`` when it is).

    Plain JSON: ``None``, ``bool``, ``int``, finite ``float``, ``str``, lists/tuples of those
    and dicts with ``str`` keys. Tuples come back as lists.
    """
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not finite"
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            why = problem(item)
            if why is not None:
                return f"item [{i}]: {why}"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {key!r} is a {type(key).__name__}, keys must be str"
            why = problem(item)
            if why is not None:
                return f"key {key!r}: {why}"
        return None
    return (
        f"a {type(value).__name__} is not JSON (allowed: None, bool, int, float, str, list, dict)"
    )


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


def dumps(value: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def loads(data: bytes | str) -> Any:
    """Inverse of :func:`dumps`."""
    return json.loads(data)
