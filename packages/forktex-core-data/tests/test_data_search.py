# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The word splitting and query parsing that Postgres and the in-memory source share, and
the fast path that builds a row's search vector for Postgres: it must give exactly the
word positions the general index gives (the in-memory evaluator reads those)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from forktex_core.data import Field, SearchConfig
from forktex_core.data._definition import Definition
from forktex_core.data._fields import dumps, to_json
from forktex_core.data._rows import document
from forktex_core.data._search import (
    MAX_POSITIONS_PER_WORD,
    index,
    matches,
    parse,
    search_columns,
    vector_literal,
    vector_of,
    words,
)

COLUMNS = search_columns(
    [
        Field("a", "text").with_key("f1"),
        Field("n", "integer").with_key("f2"),
        Field("m", "multi_select", choices=("x y", "z")).with_key("f3"),
        Field("b", "email").with_key("f4"),
    ]
)
word_text = st.text(alphabet="ab cA-_é1\u00df.", max_size=40)


def _entries(vector: str) -> dict[str, set[str]]:
    """Each word's positions, as Postgres reads a vector (a word may be listed more than
    once: its positions are merged)."""
    found: dict[str, set[str]] = {}
    for entry in vector.split():
        word, positions = entry.rsplit(":", 1)
        found.setdefault(word, set()).update(positions.split(","))
    return found


@settings(max_examples=300, deadline=None, database=None)
@given(
    a=st.one_of(st.none(), word_text, st.integers(0, 400).map(lambda n: "w " * n)),
    m=st.lists(st.sampled_from(["x y", "z"]), max_size=2),
    b=st.one_of(st.none(), word_text),
)
def test_the_fast_vector_equals_the_general_index(
    a: str | None, m: list[str], b: str | None
) -> None:
    data = {"f1": a, "f2": 7, "f3": m or None, "f4": b}
    parts = [p for p in (a, *m, b) if p is not None]
    assert _entries(vector_of(COLUMNS, data)) == _entries(vector_literal(index(parts)))


ROW_FIELDS = (
    Field("a", "text").with_key("f1"),
    Field("n", "integer").with_key("f2"),
    Field("m", "multi_select", choices=("x y", "z")).with_key("f3"),
    Field("d", "date").with_key("f7"),
    Field("s", "single_select", choices=("Open", "Crème")).with_key("f4"),
    Field("b", "email").with_key("f5"),
)


@settings(max_examples=200, deadline=None, database=None)
@given(
    a=st.one_of(st.none(), word_text),
    n=st.one_of(st.none(), st.integers(-5, 5)),
    m=st.one_of(st.none(), st.lists(st.sampled_from(["x y", "z"]), min_size=1, unique=True)),
    d=st.one_of(st.none(), st.dates()),
    s=st.one_of(st.none(), st.sampled_from(["Open", "Crème"])),
    b=st.one_of(st.none(), word_text),
    fold=st.booleans(),
)
def test_a_document_and_its_search_text_are_built_in_one_pass_as_defined(
    a: str | None,
    n: int | None,
    m: list[str] | None,
    d: date | None,
    s: str | None,
    b: str | None,
    fold: bool,
) -> None:
    """What a write stores: the JSON of each set field's stored value by storage key, and
    the vector of the stored document's search text (built together in one pass)."""
    definition = Definition(
        uuid.uuid4(), uuid.uuid4(), "r", None, None, 1, ROW_FIELDS, {}, {},
        SearchConfig(fold_accents=fold),
    )  # fmt: skip
    values: dict[str, Any] = {"a": a, "n": n, "m": tuple(m) if m else None, "d": d, "s": s, "b": b}
    stored = {f.key: to_json(f, values[f.name]) for f in ROW_FIELDS if values[f.name] is not None}
    expected = (
        dumps(stored),
        vector_of(search_columns(ROW_FIELDS), stored, SearchConfig(fold_accents=fold)),
    )
    assert document(definition, values) == expected


def test_words_and_their_limits() -> None:
    assert words("Ada's e-mail: ADA@Example.COM, Straße ﬁle") == [
        "ada", "s", "e", "mail", "ada", "example", "com", "strasse", "file",
    ]  # fmt: skip
    assert words("x" * 101 + " ok") == ["ok"]  # words over 100 characters are not indexed
    found = index(["w " * 300])
    assert len(found["w"]) == MAX_POSITIONS_PER_WORD


def test_queries_parse_like_web_search() -> None:
    doc = index(["big deal for acme", "paid"])
    for query, expected in [
        ("acme", True),
        ("ACME paid", True),
        ('"big deal"', True),
        ('"deal big"', False),
        ("acme -paid", False),
        ('-"big deal"', False),
        ("globex or acme", True),
        ("globex or initech", False),
        ("big-deal", True),  # the phrase of its words
        ("or", False),  # a lone "or" is a word
    ]:
        assert matches(parse(query), doc) is expected, query
    assert parse("!!!") is None and matches(parse("- _ %"), doc) is False
