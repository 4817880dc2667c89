# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Export of any ``RowQuery`` as CSV or JSON Lines text, streamed page by page with the
query's keyset cursor (memory stays at one page whatever the number of rows)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from ._errors import InvalidQuery, show
from ._fields import Field, dumps
from ._limits import MAX_PAGE
from ._plan import field_value
from ._query import RowQuery
from ._results import RowResult
from ._tabular import csv_line, to_cell, to_plain


async def _columns(query: RowQuery, columns: Sequence[str] | None) -> list[Field]:
    if not isinstance(query, RowQuery):
        raise InvalidQuery(f"export takes a RowQuery, got {show(query, 80)}")
    info = (await query.plan()).info
    if columns is None:
        return list(info.fields)
    if isinstance(columns, str) or not all(isinstance(c, str) for c in columns) or not columns:
        raise InvalidQuery(f"columns takes a list of field names, got {show(columns, 80)}")
    return [info.field(name) for name in columns]


async def _pages(query: RowQuery, page_size: int) -> AsyncIterator[tuple[RowResult, ...]]:
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise InvalidQuery(f"page_size must be an int from 1 to {MAX_PAGE}, got {show(page_size)}")
    page = await query.scroll(page_size=page_size)
    while True:
        yield page.items
        if page.next_cursor is None:
            return
        page = await query.scroll(page_size=page_size, cursor=page.next_cursor)


async def export_csv(
    query: RowQuery, *, columns: Sequence[str] | None = None, page_size: int = 1000
) -> AsyncIterator[str]:
    """The query's rows as CSV text chunks: a header of field names (``columns``, default
    every field; system columns such as ``id`` may be named), then one chunk per page.
    :meth:`Register.import_csv` reads it back.

    Example::

        with open("paid.csv", "w", newline="") as out:
            async for chunk in export_csv(RowQuery(invoices).where(status="paid")):
                out.write(chunk)
    """
    fields = await _columns(query, columns)
    yield csv_line([f.name for f in fields])
    async for rows in _pages(query, page_size):
        yield "".join(csv_line([to_cell(f, field_value(row, f)) for f in fields]) for row in rows)


async def export_jsonl(
    query: RowQuery, *, columns: Sequence[str] | None = None, page_size: int = 1000
) -> AsyncIterator[str]:
    """The query's rows as JSON Lines text chunks (one object per row: field name -> its
    stored JSON form), one chunk per page; :meth:`Register.import_jsonl` reads it back.

    Example::

        async for chunk in export_jsonl(RowQuery(invoices), columns=["id", "number"]):
            await response.write(chunk.encode())
    """
    fields = await _columns(query, columns)
    async for rows in _pages(query, page_size):
        yield "".join(
            dumps({f.name: to_plain(f, field_value(row, f)) for f in fields}) + "\n" for row in rows
        )
