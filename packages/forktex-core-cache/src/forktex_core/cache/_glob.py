# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Redis glob patterns (``SCAN MATCH``): escaping text, and what a pattern pins down.

Redis' glob language: ``*`` matches any run of bytes, ``?`` any one byte, ``[...]`` one byte of
a class (``^`` negates, ``a-z`` ranges, ``\\`` escapes inside it, an unclosed ``[`` runs to the
end of the pattern), ``\\x`` the byte ``x`` itself (a trailing lone ``\\`` matches ``\\``), and
every other byte itself. Matching is case-sensitive and anchored at both ends.

So the keys a pattern can match are confined exactly by its *literal head*: the bytes before
its first ``*``, ``?`` or ``[``. A pattern with a non-empty head matches only keys that start
with it - never every key. An empty head excludes nothing for sure: ``*``, ``?*`` and ``*?*``
match every key (of at least one byte), ``[^x]*`` all but those starting with ``x``; callers
that must not match everything refuse every pattern with an empty head (fail closed).
"""

from __future__ import annotations

import re
from typing import Final

_SPECIAL: Final = re.compile(r"([*?\[\]\\])")
_WILDCARDS: Final = frozenset("*?[")


def glob_escape(text: str) -> str:
    """Escape Redis glob characters so ``text`` matches itself literally in SCAN MATCH.

    Example::

        glob_escape("a*b")   # 'a\\\\*b'
    """
    return _SPECIAL.sub(r"\\\1", text)


def literal_head(pattern: str) -> str:
    """The text every key matching ``pattern`` starts with (escapes resolved).

    Example::

        literal_head("user:*")     # 'user:'
        literal_head("a\\\\*b?")   # 'a*b'
        literal_head("?*")         # ''
    """
    head: list[str] = []
    i, end = 0, len(pattern)
    while i < end:
        char = pattern[i]
        if char in _WILDCARDS:
            break
        if char == "\\" and i + 1 < end:
            i += 1
            char = pattern[i]
        head.append(char)
        i += 1
    return "".join(head)
