# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Reading CSV and JSON Lines as a stream of numbered records, and the text form of field
values in a CSV cell (what import reads and export writes). No database here."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import json
import json.scanner
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ._errors import InvalidValue, show
from ._fields import Field, FieldType, dumps, to_json

#: What ``import_csv`` / ``import_jsonl`` read: a path, an open file (text or binary), or
#: an iterable / async iterable of ``str`` or ``bytes`` chunks (any size, not only lines).
ImportSource = str | os.PathLike[str] | IO[Any] | Iterable[str | bytes] | AsyncIterable[str | bytes]

#: Python's csv module refuses longer cells (its process-wide default, left alone here).
MAX_CELL_CHARS = 131_072
_CHUNK = 1 << 16


@dataclass(slots=True)  # one per record read: built fast (a frozen one costs 3x more)
class Record:
    """One record of the input: its first line number (1-based) and its values, or why it
    could not be read."""

    line: int
    values: dict[str, Any] | None
    problem: str | None = None


async def _chunks(source: ImportSource) -> AsyncIterator[str]:
    """The source as text chunks (UTF-8, a leading byte order mark dropped)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()

    def text_of(chunk: Any, final: bool = False) -> str:
        if isinstance(chunk, str):
            return chunk
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            try:
                return decoder.decode(bytes(chunk), final)
            except UnicodeDecodeError as exc:
                raise InvalidValue(
                    f"the import is not UTF-8 text: {exc.reason} at byte {exc.start} of a chunk"
                ) from None
        raise InvalidValue(f"an import source yields str or bytes chunks, got {show(chunk, 80)}")

    if isinstance(source, (str, os.PathLike)):
        try:
            handle = await asyncio.to_thread(open, source, "rb")
        except OSError as exc:
            raise InvalidValue(f"cannot open the import file: {exc.strerror}") from None
        try:
            while block := await asyncio.to_thread(handle.read, _CHUNK):
                yield text_of(block)
        finally:
            handle.close()
    elif hasattr(source, "read"):
        while data := await asyncio.to_thread(source.read, _CHUNK):
            yield text_of(data)
    elif isinstance(source, AsyncIterable):
        async for piece in source:
            yield text_of(piece)
    elif isinstance(source, Iterable) and not isinstance(source, (bytes, bytearray)):
        for item in source:
            yield text_of(item)
    else:
        raise InvalidValue(
            "import takes a file path, an open file, or an (async) iterable of str/bytes "
            f"chunks, got {show(source, 80)}"
        )
    tail = decoder.decode(b"", True)
    if tail:
        yield tail


async def _lines(source: ImportSource, limit: int) -> AsyncIterator[list[tuple[str | None, int]]]:
    """Physical lines with their line ends, numbered from 1, in one list per chunk read (a
    step of an async generator costs more than reading a line: one step per chunk); a
    line longer than ``limit`` characters comes as ``None`` (its text is dropped as it
    arrives: memory stays bounded)."""
    pending: list[str] = []
    size = 0
    number = 0
    oversized = False
    async for chunk in _chunks(source):
        lines: list[tuple[str | None, int]] = []
        start = 0
        while True:
            end = chunk.find("\n", start)
            if end < 0:
                rest = chunk[start:]
                if rest and not oversized:
                    pending.append(rest)
                    size += len(rest)
                    if size > limit:
                        oversized, pending, size = True, [], 0
                break
            number += 1
            piece = chunk[start : end + 1]
            if oversized or size + len(piece) > limit:
                lines.append((None, number))
            elif pending:
                lines.append(("".join(pending) + piece, number))
            else:
                lines.append((piece, number))
            pending, size, oversized = [], 0, False
            start = end + 1
        if lines:
            yield lines
    if pending or oversized:
        yield [((None if oversized else "".join(pending)), number + 1)]


class _Feed:
    """An iterator handing ``csv.reader`` the record put into ``text``, once."""

    __slots__ = ("text",)

    def __init__(self) -> None:
        self.text: str | None = None

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        text, self.text = self.text, None
        if text is None:
            raise StopIteration
        return text


async def csv_records(source: ImportSource, *, max_record_chars: int) -> AsyncIterator[Record]:
    """The header's column names (as the ``values`` of line 1), then one record per CSV row
    (RFC 4180: quoted cells may hold commas, quotes as ``""`` and line breaks). A record
    longer than ``max_record_chars`` or malformed is a ``Record`` with a ``problem``;
    reading goes on at the next record."""
    record: list[str] = []
    size = 0
    first = 0
    quotes = 0
    skipping = False
    header: list[str] | None = None
    # One reader parses every record (creating one per record costs more than parsing):
    # it is handed each whole record, quoted line breaks included.
    feed = _Feed()
    reader = csv.reader(feed, strict=True)
    async for lines in _lines(source, max_record_chars):
        for line, number in lines:
            if not record and not skipping and line is not None and not line.count('"') % 2:
                first, text = number, line  # the common case: a record of one line
            else:
                if not record and not skipping:
                    first = number
                if line is None:  # its quotes are unknown: the record ends with it
                    yield Record(
                        first, None, f"the record is longer than {max_record_chars:,} characters"
                    )
                    record, size, quotes, skipping = [], 0, 0, False
                    continue
                quotes += line.count('"')
                if not skipping:
                    record.append(line)
                    size += len(line)
                    if size > max_record_chars:
                        skipping, record, size = True, [], 0
                if quotes % 2:
                    continue  # a quoted cell goes on past this line break
                text, skipped = "".join(record), skipping
                record, size, quotes, skipping = [], 0, 0, False
                if skipped:
                    yield Record(
                        first, None, f"the record is longer than {max_record_chars:,} characters"
                    )
                    continue
            if not text.strip():
                continue  # blank lines separate nothing in CSV
            feed.text = text
            try:
                cells = next(reader)
            except csv.Error as exc:
                reader = csv.reader(feed, strict=True)  # start afresh after the bad record
                yield Record(first, None, f"malformed CSV: {exc}")
                continue
            if header is None:
                header = cells
                yield Record(first, {"columns": cells})
                continue
            if len(cells) != len(header):
                yield Record(
                    first, None, f"the row has {len(cells)} cells, the header has {len(header)}"
                )
                continue
            yield Record(first, dict(zip(header, cells, strict=False)))  # lengths checked above
    if record or skipping:
        yield Record(first, None, "the file ends inside a quoted cell (a quote is not closed)")


async def jsonl_records(source: ImportSource, *, max_record_chars: int) -> AsyncIterator[Record]:
    """One record per non-blank line holding a JSON object."""
    async for lines in _lines(source, max_record_chars):
        for line, number in lines:
            if line is None:
                yield Record(
                    number, None, f"the line is longer than {max_record_chars:,} characters"
                )
                continue
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                yield Record(number, None, f"not JSON: {getattr(exc, 'msg', 'nested too deeply')}")
                continue
            if not isinstance(value, dict):
                yield Record(number, None, f"a line must hold a JSON object, got {show(value, 60)}")
                continue
            yield Record(number, value)


_JSON_CELLS = frozenset({FieldType.JSON, FieldType.MULTI_SELECT})


def json_cell(f: Field) -> bool:
    """Whether a CSV cell of ``f`` may hold JSON text."""
    return f.kind in _JSON_CELLS or (f.kind is FieldType.REFERENCE and f.many)


def from_cell(f: Field, cell: str) -> Any:
    """The raw value of a CSV cell for ``f`` (coerced afterwards like any write): empty is
    no value; json cells, and ``[...]`` lists of multi_select / many-reference cells, are
    JSON text."""
    if cell == "":
        return None
    if f.kind is FieldType.JSON or (json_cell(f) and cell.lstrip().startswith("[")):
        try:
            return _json_text(cell)
        except (json.JSONDecodeError, RecursionError):
            raise InvalidValue(
                f"field {f.name!r} takes JSON text in a CSV cell, got {show(cell, 80)}",
                field=f.name,
                value=cell,
            ) from None
    return cell


# The scanner json.loads ends in (typeshed types its argument as the scanner itself).
_SCAN = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _json_text(cell: str) -> Any:
    """``json.loads(cell)``, without its wrappers when the cell is one JSON value with no
    surrounding space (as exports write it)."""
    try:
        value, end = _SCAN(cell, 0)
    except StopIteration:
        end = -1
    return value if end == len(cell) else json.loads(cell)


def to_cell(f: Field, value: Any) -> str:
    """The CSV cell of a value of ``f`` (what :func:`from_cell` reads back)."""
    if value is None:
        return ""
    if isinstance(value, uuid.UUID):
        return str(value)
    if f.kind is FieldType.BOOLEAN:
        return "true" if value else "false"
    stored = to_json(f, value)
    if json_cell(f):
        return dumps(stored)
    return stored if isinstance(stored, str) else dumps(stored)


def to_plain(f: Field, value: Any) -> Any:
    """The JSON value of a value of ``f`` in an export line."""
    if isinstance(value, uuid.UUID):
        return str(value)
    return to_json(f, value)


def csv_line(cells: Sequence[str]) -> str:
    """One CSV record with ``\\r\\n`` (RFC 4180), quoting only where needed."""
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue()
