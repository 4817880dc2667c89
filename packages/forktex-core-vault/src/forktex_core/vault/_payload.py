# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Payloads <-> canonical JSON bytes, with errors that name types and paths, never values.

Canonical JSON: sorted keys, no whitespace, UTF-8, no NaN/Infinity. Nesting is bounded by
:data:`MAX_DEPTH` both ways, checked without recursion, so a deep payload is refused with the
vault's own error instead of a ``RecursionError`` (whose depth would depend on the caller's
stack).
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from ._errors import PayloadDecodeError, PayloadEncodeError

#: The deepest nesting of lists/dicts a payload may have (``{"a": [1]}`` has depth 2).
MAX_DEPTH: Final = 100

# Built once: calling json.dumps with keyword arguments would build a new encoder per call.
_ENCODE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
_DECODE = json.loads
_SCALARS = frozenset((str, int, float, bool, type(None)))
_CONTAINERS = frozenset((dict, list, tuple))
_CONTAINER_TYPES = (dict, list, tuple)
_SEQUENCES = (list, tuple)
_ALLOWED = "use only dict (str keys), list, str, int, float, bool and None"


class _TooDeep(ValueError):
    pass


def encode(payload: Any) -> bytes:
    """``payload`` as canonical JSON (UTF-8), or :class:`PayloadEncodeError`.

    Example::

        encode({"b": 1, "a": [True]})   # b'{"a":[true],"b":1}'
    """
    try:
        _check_shape(payload)
        return _ENCODE(payload).encode("utf-8")
    except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        pass
    # Raised outside the except block: json's error (which may quote values, and a
    # UnicodeEncodeError carries the whole plaintext in ``.object``) is not chained onto ours.
    raise PayloadEncodeError(_describe(payload))


def decode(plaintext: bytes) -> Any:
    """The payload held by canonical-or-not UTF-8 JSON ``plaintext``, or
    :class:`PayloadDecodeError` (whose message never quotes the plaintext).

    Example::

        decode(b'{"a":1}')   # {'a': 1}
    """
    reason = (
        "its plaintext is not UTF-8 JSON, so it was not written by Vault.encrypt; decrypt it "
        "with cryptography.fernet.Fernet if it holds raw bytes"
    )
    try:
        value = _DECODE(plaintext.decode("utf-8"))
    except RecursionError:
        reason = f"its JSON nests deeper than {MAX_DEPTH} levels, which Vault.encrypt never writes"
    except ValueError:  # JSONDecodeError and UnicodeDecodeError carry the plaintext: dropped
        pass
    else:
        # Cheap gate: fewer brackets than MAX_DEPTH cannot nest deeper than it.
        if plaintext.count(b"[") + plaintext.count(b"{") <= MAX_DEPTH or _depth_ok(value):
            return value
        reason = f"its JSON nests deeper than {MAX_DEPTH} levels, which Vault.encrypt never writes"
    raise PayloadDecodeError(f"a configured key opened the token, but {reason}")


def _is_container(value: Any) -> bool:
    kind = type(value)
    return kind in _CONTAINERS or (kind not in _SCALARS and isinstance(value, dict | list | tuple))


def _check_shape(payload: Any) -> None:
    """Fast pre-check, without recursion: depth <= MAX_DEPTH and str dict keys (JSON would
    silently turn other keys into strings, breaking exact round trips). Types, floats and the
    rest are left to the C encoder."""
    if type(payload) in _SCALARS:
        return
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _TooDeep
        if isinstance(value, dict):
            for key, item in value.items():
                if type(key) is not str and not isinstance(key, str):
                    raise TypeError
                if type(item) not in _SCALARS and isinstance(item, _CONTAINER_TYPES):
                    stack.append((item, depth + 1))
        elif isinstance(value, _SEQUENCES):
            for item in value:
                if type(item) not in _SCALARS and isinstance(item, _CONTAINER_TYPES):
                    stack.append((item, depth + 1))


def _depth_ok(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _key_label(key: str) -> str:
    text = repr(key)
    return text if len(text) <= 42 else text[:39] + "...'"


def _describe(payload: Any) -> str:
    """The first thing in ``payload`` JSON cannot represent exactly: its type and path
    (dict keys and list indexes, never values). Depth-first, without recursion."""
    # Entries: (value, path, depth, leaving). ``leaving`` pops a container off the cycle path.
    stack: list[tuple[Any, str, int, bool]] = [(payload, "payload", 1, False)]
    on_path: set[int] = set()
    while stack:
        value, path, depth, leaving = stack.pop()
        if leaving:
            on_path.discard(id(value))
            continue
        if not _is_container(value):
            problem = _scalar_problem(value, path)
            if problem:
                return problem
            continue
        if id(value) in on_path:
            return f"{path} contains itself (a reference cycle); JSON needs a tree"
        if depth > MAX_DEPTH:
            return (
                f"payload nests deeper than {MAX_DEPTH} levels of lists/dicts; flatten it or "
                "store the deep part in a separate value"
            )
        on_path.add(id(value))
        stack.append((value, path, depth, True))
        children: list[tuple[Any, str, int, bool]] = []
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    return (
                        f"{path} has a key of type {type(key).__name__}; JSON object keys "
                        "must be str (convert them explicitly so the round trip is exact)"
                    )
                if not _is_text(key):
                    return (
                        f"{path} has a key that is not valid Unicode text (it holds a lone "
                        "surrogate); JSON text must be encodable as UTF-8"
                    )
            children = [
                (item, f"{path}[{_key_label(key)}]", depth + 1, False)
                for key, item in value.items()
            ]
        else:
            children = [(item, f"{path}[{i}]", depth + 1, False) for i, item in enumerate(value)]
        stack.extend(reversed(children))  # visit in order: the first problem is reported
    return (  # pragma: no cover - defensive: json refused something no check explains
        "the payload could not be serialised as JSON; " + _ALLOWED
    )


def _scalar_problem(value: Any, path: str) -> str | None:
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{path} is a non-finite float, which JSON cannot represent; {_ALLOWED}"
        return None
    if isinstance(value, int):  # bool included
        try:
            int.__repr__(value)
        except ValueError:
            return (
                f"{path} is an int with more digits than Python converts to text "
                "(sys.get_int_max_str_digits()); store it as a str"
            )
        return None
    if isinstance(value, str):
        if not _is_text(value):
            return (
                f"{path} is a str holding a lone surrogate, which is not valid Unicode text "
                "and cannot be encoded as UTF-8"
            )
        return None
    if value is None:
        return None
    kind = type(value)
    return (
        f"{path} is a {kind.__module__}.{kind.__qualname__}, which JSON cannot represent; "
        f"convert it first (e.g. str(), .isoformat(), float()) - {_ALLOWED}"
    )


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
