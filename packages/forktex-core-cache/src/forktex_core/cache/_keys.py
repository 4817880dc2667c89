# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Canonical, stable encoding of a call's arguments for ``@cached`` keys.

The arguments are bound to the function's signature (so positional vs keyword spelling and
omitted defaults do not matter), each value is encoded with a type tag and a length prefix
(so ``"1"`` and ``1``, ``("a", "b")`` and ``("a,b",)`` differ), dicts and sets are sorted, and
the result is hashed. The encoding is the same in every process and every Python version.

Encodable: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``list``, ``tuple``,
``dict`` (encodable keys), ``set``/``frozenset``, ``datetime``/``date``/``time``/``timedelta``,
``Decimal``, ``UUID``, ``Enum`` members, dataclass instances, objects with a
``model_dump()`` method (pydantic) and objects defining ``__cache_key__()`` (whose return
value is encoded instead).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import inspect
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from ._errors import UnencodableArgument

ALLOWED_ARGS = (
    "None, bool, int, float, str, bytes, list, tuple, dict, set, frozenset, datetime, date, "
    "time, timedelta, Decimal, UUID, Enum, dataclasses, pydantic models, or objects with a "
    "__cache_key__() method"
)


class _Unencodable(Exception):
    def __init__(self, value: object) -> None:
        self.value = value


def _encode(value: Any, out: list[str], depth: int = 0) -> None:
    # Exact type checks first: the hot path for common scalar arguments.
    t = type(value)
    if t is str:
        out.append(f"s{len(value)}:{value}")
    elif t is int:
        out.append(f"i{value};")
    elif value is None:
        out.append("n")
    elif t is bool:
        out.append("T" if value else "F")
    elif t is float:
        out.append(f"f{value!r};")
    elif depth > 32:
        raise _Unencodable(value)
    elif hasattr(value, "__cache_key__"):
        out.append(f"k{t.__module__}.{t.__qualname__}(")
        _encode(value.__cache_key__(), out, depth + 1)
        out.append(")")
    elif isinstance(value, enum.Enum):
        out.append(f"e{t.__module__}.{t.__qualname__}.{value.name};")
    elif isinstance(value, bool):
        out.append("T" if value else "F")
    elif isinstance(value, int):
        out.append(f"i{int(value)};")
    elif isinstance(value, float):
        out.append(f"f{float(value)!r};")
    elif isinstance(value, str):
        text = str(value)
        out.append(f"s{len(text)}:{text}")
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        out.append(f"b{len(data)}:{data.hex()}")
    elif isinstance(value, list | tuple):
        out.append(("l" if isinstance(value, list) else "t") + f"{len(value)}[")
        for item in value:
            _encode(item, out, depth + 1)
        out.append("]")
    elif isinstance(value, dict):
        items = []
        for k, v in value.items():
            kout: list[str] = []
            _encode(k, kout, depth + 1)
            items.append(("".join(kout), v))
        items.sort(key=lambda kv: kv[0])
        out.append(f"d{len(items)}{{")
        for k, v in items:
            out.append(k)
            _encode(v, out, depth + 1)
        out.append("}")
    elif isinstance(value, set | frozenset):
        parts = sorted(_encode_one(item, depth + 1) for item in value)
        out.append(f"S{len(parts)}{{" + "".join(parts) + "}")
    elif isinstance(value, dt.datetime | dt.date | dt.time):
        out.append(f"D{t.__name__}:{value.isoformat()};")
    elif isinstance(value, dt.timedelta):
        out.append(f"Dtimedelta:{value.days},{value.seconds},{value.microseconds};")
    elif isinstance(value, Decimal):
        out.append(f"m{value};")
    elif isinstance(value, uuid.UUID):
        out.append(f"u{value.hex};")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        out.append(f"c{t.__module__}.{t.__qualname__}(")
        for f in dataclasses.fields(value):
            out.append(f"s{len(f.name)}:{f.name}")
            _encode(getattr(value, f.name), out, depth + 1)
        out.append(")")
    elif callable(getattr(value, "model_dump", None)) and not isinstance(value, type):
        out.append(f"p{t.__module__}.{t.__qualname__}(")
        _encode(value.model_dump(mode="json"), out, depth + 1)
        out.append(")")
    else:
        raise _Unencodable(value)


def _encode_one(value: Any, depth: int) -> str:
    out: list[str] = []
    _encode(value, out, depth)
    return "".join(out)


class KeyBuilder:
    """Builds the argument digest of one decorated function (signature analysed once)."""

    __slots__ = ("_defaults", "_ignore", "_names", "_qualname", "_signature", "_simple")

    def __init__(self, func: Callable[..., Any], ignore: Iterable[str]) -> None:
        self._qualname = f"{func.__module__}.{func.__qualname__}"
        self._signature = inspect.signature(func)
        params = self._signature.parameters
        self._ignore = frozenset(ignore)
        unknown = self._ignore - set(params)
        if unknown:
            from ._errors import InvalidArgument

            raise InvalidArgument(
                f"ignore={sorted(unknown)!r} names no parameter of {self._qualname}; "
                f"its parameters are {list(params)!r}"
            )
        self._names = [n for n in params if n not in self._ignore]
        # Fast path (no Signature.bind): only plain positional-or-keyword parameters, called
        # positionally; omitted trailing ones take their defaults, as bind() would give them.
        self._simple = not self._ignore and all(
            p.kind is p.POSITIONAL_OR_KEYWORD for p in params.values()
        )
        self._defaults = tuple(p.default for p in params.values())

    def digest(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """Hex digest of the canonical encoding of one call's arguments."""
        given = len(args)
        if (
            self._simple
            and not kwargs
            and given <= len(self._names)
            and inspect.Parameter.empty not in self._defaults[given:]
        ):
            values: Iterable[tuple[str, Any]] = zip(
                self._names, args + self._defaults[given:], strict=True
            )
        else:
            try:
                bound = self._signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{self._qualname}(): {exc}") from None
            bound.apply_defaults()
            arguments = bound.arguments
            values = [(n, arguments[n]) for n in self._names]
        out: list[str] = []
        for name, value in values:
            try:
                _encode(value, out)
            except _Unencodable as exc:
                bad = exc.value
                raise UnencodableArgument(
                    f"argument {name!r} of {self._qualname} has no stable cache-key encoding: "
                    f"{type(bad).__name__} {_short_repr(bad)}. Allowed: {ALLOWED_ARGS}; or "
                    f"leave it out of the key with @cached(..., ignore=({name!r},))"
                ) from None
            except RecursionError:
                raise UnencodableArgument(
                    f"argument {name!r} of {self._qualname} is self-referential"
                ) from None
        text = "".join(out)
        try:
            encoded = text.encode()
        except UnicodeEncodeError:
            # A str argument holding a lone surrogate still gets its own digest: surrogatepass
            # maps it to bytes valid UTF-8 never produces, so the encoding stays injective (and
            # equals plain UTF-8 for every other string, so no existing key changes).
            encoded = text.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def _short_repr(value: object) -> str:
    text = object.__repr__(value) if type(value).__repr__ is object.__repr__ else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
