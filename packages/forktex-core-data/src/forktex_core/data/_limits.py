# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The limits that keep every write and query inside what Postgres and asyncpg accept.

Input past one of them gets :class:`~forktex_core.data.InvalidValue` or
:class:`~forktex_core.data.InvalidQuery` naming the field and the limit, before any SQL
runs: a driver error never reaches the caller."""

from __future__ import annotations

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""The range of ``integer`` fields (Postgres ``bigint``)."""

MAX_NAME = 63
"""Characters in a register or field name."""

MAX_DECIMAL_EXPONENT = 100
"""Decimal values have at most this many digits before (or zeros after) the point."""

MAX_JSON_DEPTH = 64
"""Nesting levels of a ``json`` value."""

MAX_JSON_INT_DIGITS = 100
"""Digits of an integer inside a ``json`` value."""

SORT_CHARS = 256
"""Text is sorted (and indexed, and held in a scroll cursor) by its first 256 characters;
texts that share them are ordered by row id. Filters always compare whole values."""

MAX_UNIQUE_BYTES = 2000
"""UTF-8 bytes of a value of a unique text-like field (a Postgres btree key holds at most
about 2,700 bytes)."""

MAX_DOCUMENT_CHARS = 64 * 1024 * 1024
"""Characters of one row's stored JSON document."""

MAX_IN = 32_767
"""Values in one ``in`` condition."""

MAX_CONDITIONS = 1_000
"""Conditions in one query (``where``, ``filter``, ``since`` and ``until`` together)."""

MAX_NESTING = 32
"""Levels of nested Q groups in one query."""

MAX_SORT = 8
"""Fields in one ``order_by`` (the row id is added after them)."""

MAX_SEARCH_CHARS = 10_000
"""Characters of a ``search()`` text."""

MAX_PAGE = 1_000
"""Rows per ``scroll`` / ``paginate`` page and values per facet."""
