# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Full-text search, defined once and evaluated identically everywhere.

A row's searchable text (its text, email, url and select values, in field order) is split
into **words**: runs of letters and digits, Unicode-normalised (NFKC) and case-folded;
every other character separates words. Each word gets a position. Postgres stores this as
the row's ``tsvector`` (built here, not by Postgres's parser) and a query compiles to a
``tsquery`` of the same words, so the GIN index answers it; ``MemoryRegister`` evaluates
the same parsed query against the same word positions in Python — the two cannot
disagree.

Query syntax (as web search engines): words are ANDed; ``"quoted words"`` must occur in
sequence; ``or`` between two terms makes either suffice (``or`` binds loosest); ``-term``
excludes rows containing it; a term like ``foo-bar`` or ``a_b`` is the phrase of its
words. A query with no words at all (``"!!!"``) matches nothing.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._fields import STRINGS, Field, FieldType

MAX_WORD_CHARS = 100
"""Longer words are not indexed (nor searched for)."""
MAX_POSITION = 16_383
"""Postgres's largest word position; later words share it."""
MAX_POSITIONS_PER_WORD = 256
"""Postgres keeps at most this many positions per word."""
MAX_VECTOR_BYTES = 512 * 1024
"""Estimated size of a row's search vector past which further words are not indexed
(Postgres refuses vectors over 1 MB)."""

_WORD = re.compile(r"[^\W_]+")
_ASCII_WORD = re.compile(r"[a-z0-9]+")  # the same words in lower-cased ASCII, found faster


@dataclass(frozen=True)
class SearchConfig:
    """How a register's text is split into searchable words. ``fold_accents=True`` also
    removes accents and other combining marks (``"Crème Brûlée"`` is found by ``creme
    brulee`` and the other way round).

    Example::

        await Register.create("recipes", tenant_id=org, fields=[...],
                              search=SearchConfig(fold_accents=True))
    """

    fold_accents: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.fold_accents, bool):
            raise TypeError(f"fold_accents must be True or False, got {self.fold_accents!r}")

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {"fold_accents": self.fold_accents}

    @classmethod
    def from_json(cls, raw: Any) -> SearchConfig:
        """The configuration of a stored form (missing keys: the defaults)."""
        return cls(fold_accents=bool((raw or {}).get("fold_accents", False)))


PLAIN = SearchConfig()


def _strip_marks(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


def words(text: str, config: SearchConfig = PLAIN) -> list[str]:
    """The words of ``text`` in order: runs of letters and digits, NFKC, case-folded
    (and without accents when ``config.fold_accents``).

    Example::

        words("Ada's e-mail: ADA@Example.com")  # ['ada', 's', 'e', 'mail', 'ada', ...]
    """
    # ASCII is unchanged by NFKC and case-folds like lower(): the common case is cheap.
    if text.isascii():
        found = _ASCII_WORD.findall(text.lower())
    else:
        found = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
        if config.fold_accents:
            found = [w if w.isascii() else _strip_marks(w) for w in found]
    if max(map(len, found), default=0) <= MAX_WORD_CHARS:  # the common case: no long word
        return found
    return [w for w in found if len(w) <= MAX_WORD_CHARS]


# -- documents ----------------------------------------------------------------------------

WordIndex = Mapping[str, tuple[int, ...]]
"""Word -> its sorted positions in a row's searchable text."""


def search_columns(fields: Iterable[Field]) -> tuple[tuple[str, str, bool], ...]:
    """``(name, storage key, many)`` of the fields whose values are search text, in field
    order: text-like and single_select fields, and multi_select (each chosen value)."""
    return tuple(
        (f.name, f.key, f.kind is FieldType.MULTI_SELECT)
        for f in fields
        if f.kind in STRINGS or f.kind is FieldType.MULTI_SELECT
    )


def searchable_parts(
    columns: Iterable[tuple[str, str, bool]], values: Mapping[str, Any], *, by_key: bool
) -> list[str]:
    """The search text of a row, in field order: ``values`` maps field names (or storage
    keys, ``by_key``) to a string, or a sequence of strings for multi_select."""
    parts: list[str] = []
    for name, key, many in columns:
        raw = values.get(key if by_key else name)
        if raw is not None:
            if many:
                parts.extend(raw)
            else:
                parts.append(raw)
    return parts


def index(parts: Iterable[str], config: SearchConfig = PLAIN) -> WordIndex:
    """The word positions of a row's searchable strings, read as one text (a space between
    two values, which never joins words)."""
    found = words(" ".join(parts), config)
    if len(found) <= MAX_POSITION:
        fast = _index_within_limits(found)
        if fast is not None:
            return fast
    positions: dict[str, list[int]] = {}
    size = 0
    position = 0
    for word in found:
        if position < MAX_POSITION:
            position += 1
        seen = positions.get(word)
        if seen is None:
            cost = (len(word) if word.isascii() else len(word.encode())) + 8
            if size + cost > MAX_VECTOR_BYTES:
                continue
            size += cost
            positions[word] = [position]
        elif seen[-1] != position and len(seen) < MAX_POSITIONS_PER_WORD:
            if size + 2 > MAX_VECTOR_BYTES:
                continue
            size += 2
            seen.append(position)
    return {word: tuple(found) for word, found in positions.items()}


def _index_within_limits(found: list[str]) -> WordIndex | None:
    """The index of at most ``MAX_POSITION`` words when no limit applies (the common
    case, and the same result as the general loop), else None."""
    positions: dict[str, list[int]] = {}
    for position, word in enumerate(found, start=1):
        seen = positions.get(word)
        if seen is None:
            positions[word] = [position]
        else:
            seen.append(position)
    size = 2 * (len(found) - len(positions))
    for word, seen in positions.items():
        if len(seen) > MAX_POSITIONS_PER_WORD:
            return None
        size += (len(word) if word.isascii() else len(word.encode())) + 8
    if size > MAX_VECTOR_BYTES:
        return None
    return {word: tuple(seen) for word, seen in positions.items()}


def vector_literal(found: WordIndex) -> str:
    """The ``tsvector`` input text of an index (words are letters and digits only, so
    quoting needs no escapes; Postgres sorts them)."""
    return " ".join(
        f"'{w}':{pos[0]}" if len(pos) == 1 else f"'{w}':{','.join(map(str, pos))}"
        for w, pos in found.items()
    )


def vector_of(
    columns: Iterable[tuple[str, str, bool]],
    data: Mapping[str, Any],
    config: SearchConfig = PLAIN,
) -> str:
    """The ``tsvector`` input text of a stored JSON document (keyed by storage key):
    the vector ``vector_literal(index(parts))`` stands for, built directly when no limit
    can apply."""
    return vector_of_parts(searchable_parts(columns, data, by_key=True), config)


def vector_of_parts(parts: list[str], config: SearchConfig = PLAIN) -> str:
    """The ``tsvector`` input text of a row's search text (its searchable values in field
    order, as :func:`searchable_parts` lists them): ``vector_literal(index(parts))``.

    Example::

        vector_of_parts(["Ada Lovelace", "ada@example.com"])  # "'ada':1 'lovelace':2 ..."
    """
    text = " ".join(parts)
    if len(text) > _SHORT_TEXT:
        return vector_literal(index(parts, config))
    found = words(text, config)
    if len(found) > MAX_POSITIONS_PER_WORD:  # a word could repeat past the limit
        return vector_literal(index(parts, config))
    # At most 256 words of a short text: positions 1..n, no limit applies. A word that
    # repeats is listed once per position: Postgres merges them ('a':1 'a':3 is 'a':1,3).
    return " ".join([f"'{word}':{position}" for position, word in enumerate(found, start=1)])


_SHORT_TEXT = 30_000
"""Texts up to this many characters stay far below ``MAX_VECTOR_BYTES``."""


# -- queries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phrase:
    """Words that must occur one after the other (a single word is a phrase of one);
    with ``prefix`` the last one is a word's beginning (``acm*`` finds ``acme``)."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class Not:
    """Rows without the inner term."""

    inner: Phrase


@dataclass(frozen=True)
class All:
    """Every term must match."""

    terms: tuple[Phrase | Not, ...]


@dataclass(frozen=True)
class Any_:
    """One of the alternatives must match."""

    options: tuple[All, ...]


Query = Any_
_CHUNK = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@functools.lru_cache(maxsize=256)
def parse(text: str, config: SearchConfig = PLAIN) -> Query | None:
    """The query of a search text, or ``None`` when it holds no words (matches nothing).
    A bare term ending in ``*`` ends with a word's beginning (``acm*``).

    Example::

        parse('acme "big deal" -void or globex')
    """
    options: list[All] = []
    terms: list[Phrase | Not] = []
    pending_or = False
    for match in _CHUNK.finditer(text):
        minus, quoted, bare = match.groups()
        negated = bool(minus)
        if bare is not None:
            if bare.casefold() == "or" and terms:
                pending_or = True
                continue
            if bare.startswith("-") and len(bare) > 1:
                negated, bare = True, bare[1:]
            prefix = bare.endswith("*")
            found = words(bare, config)
        else:
            prefix = False
            found = words(quoted, config)
        if not found:
            continue
        if pending_or:
            options.append(All(tuple(terms)))
            terms = []
            pending_or = False
        phrase = Phrase(tuple(found), prefix)
        terms.append(Not(phrase) if negated else phrase)
    if pending_or:  # a trailing "or" is a word
        terms.append(Phrase(("or",)))
    if terms:
        options.append(All(tuple(terms)))
    return Any_(tuple(options)) if options else None


def _phrase_sql(phrase: Phrase) -> str:
    quoted = [f"'{w}'" for w in phrase.words]
    if phrase.prefix:
        quoted[-1] += ":*"
    return "(" + " <-> ".join(quoted) + ")"


def as_you_type(text: str) -> str:
    """``text`` with its last term read as a word's beginning (``acme co`` finds ``acme
    corp``): a ``*`` appended unless the text ends in a space, a quote, ``*`` or ``or``."""
    last = text.split()[-1] if text.split() else ""
    if not last or text[-1].isspace() or last.endswith(('"', "*")) or last.casefold() == "or":
        return text
    return text + "*"


def query_literal(query: Query) -> str:
    """The ``tsquery`` input text of a parsed query."""
    alternatives = []
    for option in query.options:
        terms = [
            f"!{_phrase_sql(t.inner)}" if isinstance(t, Not) else _phrase_sql(t)
            for t in option.terms
        ]
        alternatives.append("(" + " & ".join(terms) + ")")
    return " | ".join(alternatives)


def _positions(found: WordIndex, word: str, prefix: bool) -> set[int] | tuple[int, ...] | None:
    if not prefix:
        return found.get(word)
    return {p for w, ps in found.items() if w.startswith(word) for p in ps}


def _has_phrase(found: WordIndex, phrase: Phrase) -> bool:
    last = len(phrase.words) - 1
    first = _positions(found, phrase.words[0], phrase.prefix and last == 0)
    if not first:
        return False
    starts = set(first)
    for offset, word in enumerate(phrase.words[1:], start=1):
        later = _positions(found, word, phrase.prefix and offset == last)
        if not later:
            return False
        starts &= {p - offset for p in later}
        if not starts:
            return False
    return True


def matches(query: Query | None, found: WordIndex) -> bool:
    """Whether a row with these word positions matches the query (None matches nothing)."""
    if query is None:
        return False
    return any(
        all(
            not _has_phrase(found, t.inner) if isinstance(t, Not) else _has_phrase(found, t)
            for t in option.terms
        )
        for option in query.options
    )
