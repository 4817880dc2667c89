# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
r"""Namespace names, key encoding and key validation.

A namespace is one or more *segments* of ``[A-Za-z0-9_-]`` (1-64 characters each) joined by
``.`` or ``:``; the two separators are equivalent and are written as ``:`` in Redis, so
``"user.profile"`` and ``"user:profile"`` name the same namespace. At most 200 characters.
Glob characters (``* ? [ ]``), braces (hash tags), whitespace and empty segments are refused.

:meth:`Namespace.key` writes ``<namespace>::<part>:<part>...``. The empty segment ``::`` marks
where the namespace ends (a namespace never has one), and each part is percent-encoded: the
RFC 3986 unreserved characters ``A-Z a-z 0-9 - . _ ~`` stay as they are, every other byte of its
UTF-8 form becomes ``%XX`` (``:`` is ``%3A``, ``%`` is ``%25``, ``{`` is ``%7B``). Hence:

* distinct ``(namespace, parts)`` give distinct keys: the first ``::`` splits the namespace from
  the parts, each ``:`` after it splits two parts, and percent-encoding is reversible;
* no key holds ``{`` or ``}`` (no part can choose a cluster hash tag), nor ``* ? [ ] \``
  (no part can act as a glob in ``delete_pattern``);
* no ``Namespace`` key can equal an ``@cached`` or ``rate_limit`` key: theirs always hold ``{``.
"""

from __future__ import annotations

import re
import uuid
from typing import Final
from urllib.parse import quote_from_bytes

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


def is_namespace(name: str) -> bool:
    """Whether ``name`` is a valid namespace name (without raising)."""
    if name in _KNOWN:
        return True
    return 0 < len(name) <= MAX_NAMESPACE and all(
        _SEGMENT.fullmatch(part) for part in _SPLIT.split(name)
    )


def check_key(key: object, *, what: str = "key") -> str:
    """A Redis key (without the init prefix) must be a non-empty str of valid Unicode text."""
    if not isinstance(key, str):
        raise InvalidKey(f"{what} must be a non-empty str, got {type(key).__name__} {_short(key)}")
    if not key:
        raise InvalidKey(f"{what} must be a non-empty str, got ''")
    if not key.isascii() and not _is_text(key):
        raise InvalidKey(
            f"{what} {_short(key)} is not valid Unicode text (it holds a lone surrogate); "
            "build keys from untrusted text with Namespace(...).key(...), which encodes it"
        )
    return key


#: Key parts kept as they are: RFC 3986's unreserved characters, exactly what
#: ``quote_from_bytes(..., safe="")`` leaves unescaped.
_UNRESERVED: Final = re.compile(r"[A-Za-z0-9._~-]+")
KEY_PARTS: Final = "non-empty str, int (not bool) or uuid.UUID"


def key_part(part: object) -> str:
    """One component of :meth:`Namespace.key`, percent-encoded (see the module docstring).

    A part is identified by its text: ``42`` and ``"42"`` are the same part, and a ``UUID`` is
    its canonical lowercase hyphenated form.
    """
    if isinstance(part, str):
        text = str.__str__(part)  # the characters themselves, whatever a subclass's __str__ says
    elif isinstance(part, int) and not isinstance(part, bool):
        text = _int_text(part)
    elif isinstance(part, uuid.UUID):
        text = str(part)
    else:
        raise InvalidKey(f"key parts must be {KEY_PARTS}, got {type(part).__name__} {_short(part)}")
    if not text:
        raise InvalidKey(f"key parts must be {KEY_PARTS}, got ''")
    if _UNRESERVED.fullmatch(text):
        return text
    return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")


def _int_text(value: int) -> str:
    try:
        return int.__repr__(value)
    except ValueError:  # beyond the int-to-str digit limit
        pass
    raise InvalidKey(
        "key part is an int with more digits than Python writes as text "
        "(sys.get_int_max_str_digits()); pass it as a str"
    )


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # e.g. an int past the int-to-str digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


class Namespace:
    """A validated key namespace, so keys of different features or services never collide.

    The keys it builds are *logical* keys: every op (``get_json``, ``set_json``, ...) prepends
    the prefix given to :func:`init`, which isolates one service from another on a shared
    Redis. Separators ``.`` and ``:`` are equivalent (``Namespace("user.profile")`` equals
    ``Namespace("user:profile")``); each segment is ``[A-Za-z0-9_-]{1,64}``.

    Example::

        profiles = Namespace("user.profile")
        profiles.key(42)                  # 'user:profile::42'
        profiles.child("avatar").key(42)  # 'user:profile:avatar::42'
        await set_json(profiles.key(42), {"name": "Ada"}, ttl=300)
        await delete_pattern(profiles.pattern())   # every key under the namespace
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

    def key(self, *parts: str | int | uuid.UUID) -> str:
        """The logical key ``<namespace>::<part>:<part>...`` of ``parts`` (non-empty str, int
        or ``uuid.UUID``), each percent-encoded so that untrusted text can be a part: distinct
        parts always give distinct keys, and no part can reach another namespace's keys,
        choose a cluster hash tag or act as a glob.

        Example::

            Namespace("user.profile").key(42, "v2")     # 'user:profile::42:v2'
            Namespace("user.profile").key("a:b{c}")     # 'user:profile::a%3Ab%7Bc%7D'
            Namespace("user.profile").key(user_id)      # a UUID: 'user:profile::6f1c...-...'
        """
        if not parts:
            raise InvalidKey(f"Namespace({self._name!r}).key() needs at least one part")
        return self._name + "::" + ":".join([key_part(p) for p in parts])

    def child(self, name: str) -> Namespace:
        """A sub-namespace: ``Namespace("user").child("profile")`` is ``user:profile``.

        Example::

            avatars = Namespace("user.profile").child("avatar")   # user:profile:avatar
        """
        return Namespace(self._name + ":" + canonical_namespace(name, what="child namespace"))

    def pattern(self, glob: str | None = None) -> str:
        """A ``delete_pattern`` pattern.

        Without ``glob``: every key under this namespace - its own keys, those of its child
        namespaces and the entries of ``@cached`` functions declared with it (``user:profile:*``).
        With ``glob``: this namespace's own keys whose encoded parts match it
        (``user:profile::<glob>``); write the parts as :meth:`key` encodes them.

        Example::

            await delete_pattern(Namespace("user.profile").pattern())        # 'user:profile:*'
            await delete_pattern(Namespace("user.profile").pattern("42:*"))  # 'user:profile::42:*'
        """
        if glob is None:
            return self._name + ":*"
        if not isinstance(glob, str) or not glob:
            raise InvalidKey(f"glob must be a non-empty str, got {_short(glob)}")
        return self._name + "::" + glob

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Namespace) and other._name == self._name

    def __hash__(self) -> int:
        return hash(("Namespace", self._name))

    def __repr__(self) -> str:
        return f"Namespace({self._name!r})"

    def __str__(self) -> str:
        return self._name
