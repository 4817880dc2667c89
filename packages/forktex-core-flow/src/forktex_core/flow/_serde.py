# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""JSON serialisation of inputs, step results, signals and errors (never pickle)."""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ._errors import NotSerialisable, RunFinished, RunNotFound, SignalTimeout, StepFailed

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


# A JSON escape: an escaped backslash, or \uXXXX (group 1); scanning left to right keeps
# escapes aligned, so "\\u0000" (an escaped backslash, then text) is not a NUL.
_ESCAPE = re.compile(r"\\(?:\\|u([0-9a-fA-F]{4}))")


def _escaped_problem(text: str) -> str | None:
    """What Postgres would reject among the ``\\u`` escapes of JSON ``text``, if anything."""
    high_end = -1  # end of a high surrogate escape still waiting for its low half
    for match in _ESCAPE.finditer(text):
        code = match.group(1)
        if code is None:
            continue
        value = int(code, 16)
        if high_end >= 0:
            if 0xDC00 <= value <= 0xDFFF and match.start() == high_end:
                high_end = -1
                continue
            return "a lone surrogate (an unpaired \\ud800-\\udfff escape)"
        if value == 0:
            return "a NUL character (\\u0000)"
        if 0xD800 <= value <= 0xDBFF:
            high_end = match.end()
        elif 0xDC00 <= value <= 0xDFFF:
            return "a lone surrogate (an unpaired \\ud800-\\udfff escape)"
    if high_end >= 0:
        return "a lone surrogate (an unpaired \\ud800-\\udfff escape)"
    return None


def storable_problem(text: str) -> str | None:
    """Why Postgres ``json``/``jsonb`` cannot store JSON ``text`` (None when it can)."""
    if "\x00" in text:
        return "a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "a lone surrogate (a str character in U+D800..U+DFFF), which is not UTF-8"
    if "\\u" in text:
        return _escaped_problem(text)
    return None


def encode(serializer: Serializer, value: Any, what: str) -> str:
    """``serializer.dumps(value)``, turning failures into :class:`NotSerialisable`.

    Everything Postgres would refuse is refused here, before any write: values JSON cannot
    represent, NaN/Infinity, NUL characters and lone surrogates (raw or escaped).

    Example::

        encode(JsonSerializer(), {"a": 1}, "the input")  # '{"a":1}'
        encode(JsonSerializer(), "\\ud800", "the input")  # NotSerialisable
    """
    try:
        text = serializer.dumps(value)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise NotSerialisable(
            f"{what} is a value of type {type(value).__name__!r} that cannot be stored as JSON "
            f"({_clean(str(exc))}); use JSON types (dict, list, str, int, float, bool, None) or "
            "pass Flow(serializer=JsonSerializer(default=..., object_hook=...)) that handles it"
        ) from exc
    if not isinstance(text, str):
        raise NotSerialisable(
            f"{what}: the serializer's dumps() returned {type(text).__name__!r}, not JSON text"
        )
    problem = storable_problem(text)
    if problem is not None:
        raise NotSerialisable(f"{what} contains {problem}, which Postgres cannot store")
    return text


def _clean(text: str) -> str:
    """``text`` made storable: lone surrogates become '?', NUL becomes '\\0'."""
    if text.isascii():
        return text.replace("\x00", "\\0")
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\\0")


def error_doc(exc: BaseException, attempts: int = 1) -> dict[str, Any]:
    """A JSON document describing an exception (type, message, traceback excerpt)."""
    if isinstance(exc, StepFailed):
        return {
            "type": _clean(exc.error_type),
            "message": _clean(exc.error_message),
            "step": _clean(exc.step),
            "attempts": exc.attempts,
        }
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": _clean(str(exc)),
        "attempts": attempts,
        "traceback": _clean(tb[-MAX_TRACEBACK:]),
    }


def error_text(exc: BaseException, attempts: int = 1, **extra: Any) -> str:
    """:func:`error_doc` (plus ``extra`` keys) as JSON text; always storable."""
    return json.dumps({**error_doc(exc, attempts), **extra}, default=lambda o: _clean(repr(o)))


def ending_positions(exc: BaseException) -> list[int]:
    """Log positions of the step failures / signal timeouts that ended a run.

    Only the exception that ended the run counts (and what it was raised ``from``, and the
    members of an exception group): a failure the workflow caught and handled is not in it,
    so ``flow.retry`` leaves handled failures recorded.

    Example::

        ending_positions(StepFailed("charge", "ValueError", "declined", 1, seq=2))  # [2]
    """
    found: set[int] = set()
    todo: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        seq = getattr(err, "seq", None)
        if isinstance(err, StepFailed | SignalTimeout) and isinstance(seq, int):
            found.add(seq)
        elif isinstance(err, BaseExceptionGroup):
            todo.extend(err.exceptions)
        else:
            todo.append(err.__cause__)
    return sorted(found)


def signal_failure_doc(exc: RunNotFound | RunFinished, **extra: str) -> str:
    """The error document recorded when ``ctx.send_signal`` finds no live target.

    Example::

        signal_failure_doc(RunNotFound(run_id))  # '{"type": "RunNotFound", ...}'
    """
    return json.dumps(
        {"type": type(exc).__name__, "message": str(exc), "run_id": str(exc.run_id), **extra}
    )


def sent_error(doc: dict[str, object], name: str) -> RunNotFound | RunFinished:
    """The exception a recorded failed ``ctx.send_signal`` raises again on replay.

    Example::

        raise sent_error({"type": "RunNotFound", "run_id": "..."}, "advance")
    """
    target = doc.get("run_id")
    if doc.get("type") == "RunFinished":
        status = str(doc.get("status", "finished"))
        return RunFinished(target, status, f"receive signal {name!r}")
    return RunNotFound(target)
