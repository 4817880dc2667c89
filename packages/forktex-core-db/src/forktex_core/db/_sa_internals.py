# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The SQLAlchemy internals the tenant guard reads, in one place.

SQLAlchemy 2.0 has no public accessor for what an INSERT/UPDATE will write, a statement's
options and hints, or a FROM element's inner FROM objects; the guard must see them to prove
a statement safe. Every such read is here, so an upgrade of SQLAlchemy (pinned ``<2.1``)
is checked against one file, and ``tools/layering.py`` sees each read marked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def insert_values(stmt: Any) -> Mapping[Any, Any]:
    """``insert(...).values(k=v)``: the single-row values, keyed by column or name."""
    return stmt._values or {}  # third-party private: sqlalchemy (no public accessor)


def multi_values(stmt: Any) -> Any:
    """``insert(...).values([{...}, {...}])``: the multi-row VALUES lists."""
    return stmt._multi_values  # third-party private: sqlalchemy (no public accessor)


def set_pairs(stmt: Any) -> list[tuple[Any, Any]]:
    """What an UPDATE sets: ``values(...)`` and ``ordered_values(...)`` as (key, value)."""
    values = stmt._values or {}  # third-party private: sqlalchemy (no public accessor)
    ordered = stmt._ordered_values or ()  # third-party private: sqlalchemy (no accessor)
    return [*values.items(), *ordered]


def post_values_clause(stmt: Any) -> Any:
    """An INSERT's ``ON CONFLICT`` clause (Postgres upsert), or None."""
    return stmt._post_values_clause  # third-party private: sqlalchemy (no public accessor)


def with_options(statement: Any) -> tuple[Any, ...]:
    """The options attached with ``statement.options(...)``."""
    return getattr(statement, "_with_options", ())  # third-party private: sqlalchemy


def hints(statement: Any) -> list[str]:
    """Every SQL hint text (``with_hint``, ``with_statement_hint``)."""
    statement_hints = getattr(statement, "_statement_hints", ())  # third-party private: sqlalchemy
    texts = [text for _, text in statement_hints]
    texts.extend(getattr(statement, "_hints", {}).values())  # third-party private: sqlalchemy
    return texts


def from_objects(element: Any) -> Iterable[Any]:
    """The FROM objects an element stands for (a join's tables, an alias's original)."""
    return getattr(element, "_from_objects", ())  # third-party private: sqlalchemy


def clone(element: Any) -> Any:
    """A shallow copy of a clause element, as SQLAlchemy's own traversals make them."""
    return element._clone()  # third-party private: sqlalchemy (no public accessor)
