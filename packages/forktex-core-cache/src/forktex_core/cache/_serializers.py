# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Value serializers: JSON by default, anything implementing :class:`Serializer`; never pickle."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ._errors import InvalidArgument, SerializationError


@runtime_checkable
class Serializer(Protocol):
    """How ``@cached`` turns values into bytes and back. Implement both methods.

    ``loads`` receives exactly what ``dumps`` returned. Implementations must not execute code
    on load (no pickle): the cache is shared, so a poisoned entry must not become a remote
    code execution.

    Example::

        class MsgpackSerializer:
            def dumps(self, value: Any) -> bytes:
                return msgpack.packb(value)

            def loads(self, data: bytes) -> Any:
                return msgpack.unpackb(data)

        @cached(ttl=60, namespace="demo", serializer=MsgpackSerializer())
        async def load(x: int) -> dict: ...
    """

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``; raise ``TypeError``/``ValueError`` when it cannot be encoded."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode what :meth:`dumps` produced."""
        ...


class JsonSerializer:
    """The default serializer: compact UTF-8 JSON (NaN and infinities are refused).

    JSON has no tuples, sets or non-str dict keys: a tuple comes back as a list, ``{1: "a"}``
    as ``{"1": "a"}``. Pass ``default=`` to encode extra types (e.g. ``str`` for datetimes).

    Example::

        s = JsonSerializer(default=str)
        s.loads(s.dumps({"at": datetime(2026, 1, 1)}))   # {'at': '2026-01-01 00:00:00'}
    """

    __slots__ = ("_decode", "_encode")

    def __init__(self, *, default: Callable[[Any], Any] | None = None) -> None:
        if default is not None and not callable(default):
            raise InvalidArgument(f"default must be callable or None, got {default!r}")
        encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=default
        )
        self._encode = encoder.encode
        self._decode = json.loads

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON.

        Example::

            JsonSerializer().dumps({"a": 1})   # b'{"a":1}'
        """
        return self._encode(value).encode()

    def loads(self, data: bytes) -> Any:
        """Decode JSON bytes.

        Example::

            JsonSerializer().loads(b'{"a":1}')   # {'a': 1}
        """
        return self._decode(data)


JSON = JsonSerializer()


def dumps(serializer: Serializer, value: Any, what: str) -> bytes:
    """Serialize with a clear :class:`SerializationError` instead of a bare TypeError."""
    try:
        data: object = serializer.dumps(value)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise SerializationError(
            f"cannot serialize {what} ({type(value).__name__}) with "
            f"{type(serializer).__name__}: {exc}. Use JSON-compatible values "
            "(dict with str keys, list, str, int, float, bool, None) or pass serializer=..."
        ) from exc
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return data.encode()
    raise SerializationError(
        f"{type(serializer).__name__}.dumps must return bytes, got {type(data).__name__}"
    )


def loads(serializer: Serializer, data: bytes, what: str) -> Any:
    """Deserialize with a clear :class:`SerializationError`."""
    try:
        return serializer.loads(data)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"cannot decode {what} with {type(serializer).__name__}: {exc}"
        ) from exc
