# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Namespace names and key validation.

A namespace is one or more *segments* of ``[A-Za-z0-9_-]`` (1-64 characters each) joined by
``.`` or ``:``; the two separators are equivalent and are written as ``:`` in Redis, so
``"user.profile"`` and ``"user:profile"`` name the same namespace. At most 200 characters.
Glob characters (``* ? [ ]``), braces (hash tags), whitespace and empty segments are refused,
so a namespace can never match or collide with another one's keys.
"""

from __future__ import annotations

import re
from typing import Final

from ._errors import InvalidKey, InvalidNamespace

_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SPLIT: Final = re.compile(r"[.:]")
MAX_NAMESPACE: Final = 200
ALLOWED: Final = (
    "one or more segments of letters, digits, '_' or '-' (1-64 characters each) joined by "
    "'.' or ':', at most 200 characters, e.g. 'user.profile' or 'user:profile'"
)


_KNOWN: dict[str, str] = {}  # valid names already seen (bounded): the hot path skips the regex


def canonical_namespace(name: object, *, what: str = "namespace") -> str:
    """Validate ``name`` and return it with ``:`` as the separator."""
    if type(name) is str:
        known = _KNOWN.get(name)
        if known is not None:
            return known
    if isinstance(name, Namespace):
        return name.name
    if not isinstance(name, str):
        raise InvalidNamespace(
            f"{what} must be a str, got {type(name).__name__} {name!r}; allowed: {ALLOWED}"
        )
    if not name or len(name) > MAX_NAMESPACE:
        raise InvalidNamespace(f"invalid {what} {name!r}; allowed: {ALLOWED}")
    parts = _SPLIT.split(name)
    for part in parts:
        if not _SEGMENT.fullmatch(part):
            raise InvalidNamespace(
                f"invalid {what} {name!r} (segment {part!r}); allowed: {ALLOWED}"
            )
    canonical = ":".join(parts)
    if len(_KNOWN) < 4096:
        _KNOWN[name] = canonical
    return canonical


def check_key(key: object, *, what: str = "key") -> str:
    """A Redis key (without the init prefix) must be a non-empty str."""
    if not isinstance(key, str):
        raise InvalidKey(f"{what} must be a non-empty str, got {type(key).__name__} {key!r}")
    if not key:
        raise InvalidKey(f"{what} must be a non-empty str, got ''")
    return key


def key_part(part: object) -> str:
    """One component of :meth:`Namespace.key`: a non-empty str or an int (not a bool)."""
    if isinstance(part, bool) or not isinstance(part, str | int):
        raise InvalidKey(
            f"key parts must be non-empty str or int, got {type(part).__name__} {part!r}"
        )
    text = str(part)
    if not text:
        raise InvalidKey("key parts must be non-empty str or int, got ''")
    return text


_GLOB = re.compile(r"([*?\[\]\\])")


def glob_escape(text: str) -> str:
    """Escape Redis glob characters so ``text`` matches itself literally in SCAN MATCH."""
    return _GLOB.sub(r"\\\1", text)


class Namespace:
    """A validated key namespace, so keys of different features or services never collide.

    The keys it builds are *logical* keys: every op (``get_json``, ``set_json``, ...) prepends
    the prefix given to :func:`init`, which isolates one service from another on a shared
    Redis. Separators ``.`` and ``:`` are equivalent (``Namespace("user.profile")`` equals
    ``Namespace("user:profile")``); each segment is ``[A-Za-z0-9_-]{1,64}``.

    Example::

        profiles = Namespace("user.profile")
        profiles.key(42)                 # 'user:profile:42'
        profiles.child("avatar").key(42) # 'user:profile:avatar:42'
        await set_json(profiles.key(42), {"name": "Ada"}, ttl=300)
        await delete_pattern(profiles.pattern())   # every key of the namespace
    """

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = canonical_namespace(name)

    @property
    def name(self) -> str:
        """The canonical name (``:``-separated), e.g. ``'user:profile'``.

        Example::

            Namespace("user.profile").name   # 'user:profile'
        """
        return self._name

    def key(self, *parts: str | int) -> str:
        """The logical key ``<namespace>:<part>:<part>...``; parts are non-empty str or int.

        Example::

            Namespace("user.profile").key("42", "v2")   # 'user:profile:42:v2'
        """
        if not parts:
            raise InvalidKey(f"Namespace({self._name!r}).key() needs at least one part")
        return self._name + ":" + ":".join(key_part(p) for p in parts)

    def child(self, name: str) -> Namespace:
        """A sub-namespace: ``Namespace("user").child("profile")`` is ``user:profile``.

        Example::

            avatars = Namespace("user.profile").child("avatar")   # user:profile:avatar
        """
        return Namespace(self._name + ":" + canonical_namespace(name, what="child namespace"))

    def pattern(self, glob: str = "*") -> str:
        """A ``delete_pattern`` pattern covering this namespace's keys (``user:profile:*``).

        Example::

            await delete_pattern(Namespace("user.profile").pattern())
        """
        if not isinstance(glob, str) or not glob:
            raise InvalidKey(f"glob must be a non-empty str, got {glob!r}")
        return self._name + ":" + glob

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Namespace) and other._name == self._name

    def __hash__(self) -> int:
        return hash(("Namespace", self._name))

    def __repr__(self) -> str:
        return f"Namespace({self._name!r})"

    def __str__(self) -> str:
        return self._name
