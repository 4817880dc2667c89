# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""JSON serialisation of inputs, step results, signals and errors (never pickle)."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ._errors import NotSerialisable, StepFailed

MAX_TRACEBACK = 4000


@runtime_checkable
class Serializer(Protocol):
    """How checkpointed values become JSON text and back.

    Pass your own to ``Flow(serializer=...)`` to store custom types; ``dumps`` must return
    JSON text (it is stored in ``jsonb``) and ``loads(dumps(x))`` must give back an equal value.

    Example::

        class MySerializer:
            def dumps(self, value): return json.dumps(value, default=my_default)
            def loads(self, text): return json.loads(text, object_hook=my_hook)
    """

    def dumps(self, value: Any) -> str:
        """Encode ``value`` as JSON text; raise ``TypeError``/``ValueError`` if impossible."""
        ...

    def loads(self, text: str) -> Any:
        """Decode JSON text produced by :meth:`dumps`."""
        ...


class JsonSerializer:
    """The default serialiser: the standard library ``json`` with optional hooks.

    ``default`` turns a custom object into JSON types (as ``json.dumps(default=)``);
    ``object_hook`` turns decoded dicts back (as ``json.loads(object_hook=)``).

    Example::

        def enc(o):
            if isinstance(o, Decimal):
                return {"__decimal__": str(o)}
            raise TypeError(type(o).__name__)

        def dec(d):
            return Decimal(d["__decimal__"]) if "__decimal__" in d else d

        flow = Flow(url, serializer=JsonSerializer(default=enc, object_hook=dec))
    """

    __slots__ = ("_dumps", "_loads")

    def __init__(
        self,
        default: Callable[[Any], Any] | None = None,
        object_hook: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        encoder = json.JSONEncoder(
            default=default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
        )
        self._dumps: Callable[[Any], str] = encoder.encode
        decoder = json.JSONDecoder(object_hook=object_hook)
        self._loads: Callable[[str], Any] = decoder.decode

    def dumps(self, value: Any) -> str:
        """Encode ``value`` (no NaN/Infinity: Postgres ``jsonb`` rejects them)."""
        return self._dumps(value)

    def loads(self, text: str) -> Any:
        """Decode JSON text."""
        return self._loads(text)


def encode(serializer: Serializer, value: Any, what: str) -> str:
    """``serializer.dumps(value)``, turning failures into :class:`NotSerialisable`."""
    try:
        text = serializer.dumps(value)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise NotSerialisable(
            f"{what} is a value of type {type(value).__name__!r} that cannot be stored as JSON "
            f"({exc}); use JSON types (dict, list, str, int, float, bool, None) or pass "
            "Flow(serializer=JsonSerializer(default=..., object_hook=...)) that handles it"
        ) from exc
    if "\\u0000" in text:
        raise NotSerialisable(
            f"{what} contains a NUL character (\\u0000), which Postgres jsonb cannot store"
        )
    return text


def error_doc(exc: BaseException, attempts: int = 1) -> dict[str, Any]:
    """A JSON document describing an exception (type, message, traceback excerpt)."""
    if isinstance(exc, StepFailed):
        return {
            "type": exc.error_type,
            "message": exc.error_message,
            "step": exc.step,
            "attempts": exc.attempts,
        }
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": str(exc),
        "attempts": attempts,
        "traceback": tb[-MAX_TRACEBACK:],
    }


def error_text(exc: BaseException, attempts: int = 1) -> str:
    """:func:`error_doc` as JSON text (always encodable)."""
    return json.dumps(error_doc(exc, attempts), default=repr)
