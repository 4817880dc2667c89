# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Bulk writes of the Postgres source, inside the caller's transaction: rewriting many
rows at once (update-where, upsert), upserting by a unique field, and writing one import
batch whose bad rows are reported and left out."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ._compile import ROW_COLUMNS, register_literal
from ._definition import Definition, pg_error
from ._errors import DataError, InvalidValue, ReferenceViolation, UniqueViolation, show
from ._fields import Field, FieldType
from ._results import ImportReport, RowError, RowResult
from ._rows import (
    ENCODED_ROWS,
    decode_row,
    document,
    insert_prepared,
    new_ids,
    number_rows,
    prepare_rows,
    rows_insert,
    unique_text,
    write_links,
    write_prepared,
    write_uniques,
)
from ._tabular import Record, from_cell, json_cell

#: Rows per UPDATE statement when many rows are rewritten.
REWRITE_CHUNK = 500
#: How often a batch is retried when a concurrent writer takes a value it checked as free.
RETRIES = 5


async def rewrite_rows(
    conn: AsyncConnection,
    d: Definition,
    current: Sequence[RowResult],
    changes: Sequence[Mapping[str, Any]],
    actor: str | None = None,
) -> list[RowResult]:
    """Apply coerced partial ``changes`` to rows the caller locked ``FOR UPDATE``, with
    their search words, links and unique claims, one statement per chunk."""
    done: list[RowResult] = []
    for start in range(0, len(current), REWRITE_CHUNK):
        rows = current[start : start + REWRITE_CHUNK]
        changed = changes[start : start + REWRITE_CHUNK]
        merged = [{**row.values, **c} for row, c in zip(rows, changed, strict=True)]
        docs, vectors = zip(*(document(d, m) for m in merged), strict=True)
        ids = [row.id for row in rows]
        records = (
            await conn.execute(
                text(
                    "UPDATE forktex_data.rows AS r SET data = CAST(u.doc AS jsonb), "
                    "search = CAST(u.vector AS tsvector), updated_at = now(), "
                    "updated_by = CAST(:actor AS text) FROM "
                    "unnest(CAST(:ids AS uuid[]), CAST(:docs AS text[]), "
                    "CAST(:vectors AS text[])) AS u(id, doc, vector) WHERE r.id = u.id "
                    f"AND r.register_id = {register_literal(d.id)} RETURNING {ROW_COLUMNS}"
                ),
                {"ids": ids, "docs": list(docs), "vectors": list(vectors), "actor": actor},
            )
        ).all()
        by_id = {record.id: decode_row(d, record) for record in records}
        touched = {name for c in changed for name in c}
        fields = [f for f in d.fields if f.name in touched]
        await write_links(
            conn,
            d,
            ids,
            merged,
            replace=True,
            only=[f for f in fields if f.kind is FieldType.REFERENCE],
        )
        await write_uniques(
            conn, d, ids, merged, [f for f in fields if f.unique], replace=[r.values for r in rows]
        )
        done += [by_id[rid] for rid in ids]
    return done


async def locked_rows(
    conn: AsyncConnection, d: Definition, ids: Sequence[uuid.UUID]
) -> list[RowResult]:
    """The register's rows with these ids, locked ``FOR UPDATE``, in the order of ``ids``."""
    records = await conn.execute(
        text(
            f"SELECT {ROW_COLUMNS} FROM forktex_data.rows r WHERE r.id = ANY(:ids) "
            f"AND r.register_id = {register_literal(d.id)} AND r.tenant_id = :t "
            "ORDER BY r.id FOR UPDATE"
        ),
        {"ids": list(ids), "t": d.tenant_id},
    )
    by_id = {record.id: decode_row(d, record) for record in records}
    return [by_id[rid] for rid in ids if rid in by_id]


async def _claimed(
    conn: AsyncConnection, d: Definition, f: Field, values: Sequence[str]
) -> dict[str, uuid.UUID]:
    """Which of ``values`` of unique field ``f`` rows already hold: value -> row id."""
    if not values:
        return {}
    rows = await conn.execute(
        text(
            "SELECT value, row_id FROM forktex_data.uniques WHERE field_id = :f "
            "AND value = ANY(:vals)"
        ),
        {"f": d.field_ids[f.key], "vals": list(values)},
    )
    return {row.value: row.row_id for row in rows}


def check_upsert_key(d: Definition, on: Any) -> Field:
    """The unique field an upsert matches rows by; InvalidValue otherwise."""
    f = d.field(on) if isinstance(on, str) else None
    if f is None or not f.unique:
        unique = [x.name for x in d.fields if x.unique]
        raise InvalidValue(
            f"upsert(on=...) takes the name of a unique field of register {d.name!r}, got "
            f"{show(on, 80)}; unique fields: {', '.join(map(repr, unique)) or '(none)'}",
            field=on if isinstance(on, str) else None,
            value=on,
        )
    return f


def upsert_keys(d: Definition, f: Field, changes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The claimed text of each row's ``on`` value; InvalidValue when one lacks it or two
    rows share it (which of them should win is not for the library to guess)."""
    keys: list[str] = []
    seen: dict[str, int] = {}
    for i, c in enumerate(changes):
        value = c.get(f.name)
        if value is None:
            raise InvalidValue(
                f"upsert row {i} has no value for {f.name!r}, the field rows are matched by",
                field=f.name,
            )
        key = unique_text(f, value)
        if key in seen:
            raise InvalidValue(
                f"upsert rows {seen[key]} and {i} both have {f.name!r} = {show(value, 80)}; "
                "merge them first",
                field=f.name,
                value=value,
            )
        seen[key] = i
        keys.append(key)
    return keys


async def upsert_rows(
    conn: AsyncConnection,
    d: Definition,
    f: Field,
    rows: Sequence[Mapping[str, Any]],
    actor: str | None = None,
) -> list[RowResult]:
    """Update the rows whose unique field ``f`` holds a given value (only the given fields
    change), insert the others; results in the order of ``rows``. A value inserted
    concurrently by another transaction makes that row an update on the next round."""
    changes = [d.info.coercer.build(r, register=d.name, partial=True) for r in rows]
    keys = upsert_keys(d, f, changes)
    result: dict[int, RowResult] = {}
    for _ in range(RETRIES):
        todo = [i for i in range(len(rows)) if i not in result]
        existing = await _claimed(conn, d, f, [keys[i] for i in todo])
        updates = [i for i in todo if keys[i] in existing]
        if updates:
            current = await locked_rows(conn, d, [existing[keys[i]] for i in updates])
            by_id = {row.id: row for row in current}
            pairs = [(i, by_id[existing[keys[i]]]) for i in updates if existing[keys[i]] in by_id]
            written = await rewrite_rows(
                conn, d, [row for _, row in pairs], [changes[i] for i, _ in pairs], actor
            )
            result |= {i: row for (i, _), row in zip(pairs, written, strict=True)}
        inserts = [i for i in todo if i not in result and keys[i] not in existing]
        if not inserts:
            if len(result) == len(rows):
                return [result[i] for i in range(len(rows))]
            continue  # a matched row was deleted meanwhile: insert it next round
        full = [d.info.coercer.build(rows[i], register=d.name) for i in inserts]
        try:
            async with conn.begin_nested():
                await number_rows(conn, d, full)  # in the savepoint: a retry reuses them
                written = await insert_prepared(conn, d, prepare_rows(d, full), actor)
        except UniqueViolation as exc:
            if exc.field != f.name:
                raise
            continue  # another transaction committed one of these values: match it now
        result |= dict(zip(inserts, written, strict=True))
        return [result[i] for i in range(len(rows))]
    raise UniqueViolation(  # pragma: no cover - needs five concurrent races in a row
        f"upsert on {f.name!r} of register {d.name!r} kept racing other writers; retry",
        field=f.name,
    )


def cell_reader(
    d: Definition, columns: Sequence[str]
) -> Callable[[Mapping[str, str]], dict[str, Any]]:
    """A function giving the raw values of a CSV row of these (checked) columns, empty
    cells left out so defaults apply."""
    fields = [(name, d.field(name)) for name in columns]
    plain = [name for name, f in fields if f is not None and not json_cell(f)]
    parsed = [(name, f) for name, f in fields if f is not None and json_cell(f)]

    def read(record: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {name: cell for name in plain if (cell := record[name])}
        for name, f in parsed:
            cell = record[name]
            if cell:
                values[name] = from_cell(f, cell)
        return values

    return read


def check_columns(d: Definition, columns: Sequence[str]) -> None:
    """InvalidValue naming the first header cell that is no field (or repeats one)."""
    names = [f.name for f in d.fields]
    for i, name in enumerate(columns):
        if name not in names:
            raise InvalidValue(
                f"CSV column {show(name, 80)} is not a field of register {d.name!r}; fields: "
                f"{', '.join(map(repr, names)) or '(none)'}",
                field=name,
            )
        if name in columns[:i]:
            raise InvalidValue(f"CSV header names column {show(name, 80)} twice", field=name)


def _error(line: int, exc: DataError) -> RowError:
    return RowError(line, str(exc), getattr(exc, "field", None))


def coerce_row(
    d: Definition, line: int, raw: Mapping[str, Any], *, known: bool = False
) -> dict[str, Any] | RowError:
    """An import row's coerced values, or why it cannot be written (``known``: the row
    names only fields of the register, as a CSV row of checked columns)."""
    if not known and raw.keys() - d.names:
        key = next(k for k in raw if k not in d.names)  # the first, in the row's order
        names = ", ".join(repr(f.name) for f in d.fields) or "(none)"
        return RowError(
            line, f"register {d.name!r} has no field {show(key, 80)}; fields: {names}", key
        )
    try:
        return d.info.coercer.build(raw, register=d.name)
    except DataError as exc:
        return _error(line, exc)


@dataclass(eq=False, slots=True)
class ImportRow:
    """A coerced import row: its line, its values and, once encoded, its stored document
    and search vector (encoded while the previous batch is written, unless the register
    numbers rows: their numbers are only known in the writing transaction)."""

    line: int
    values: dict[str, Any]
    encoded: tuple[str, str] | None = None


_RACED = "a concurrent write interfered with an import batch into register {!r}"


class BatchRaced(DataError):
    """A concurrent writer took a unique value or deleted a referenced row between this
    batch's checks and its writes: its transaction is rolled back and the batch retried."""


class BatchRefused(DataError):
    """A batch written without checking its rows first holds a row that cannot be written:
    its transaction is rolled back and the batch written again, every row checked."""


@functools.lru_cache(maxsize=256)
def _checks_sql(references: tuple[uuid.UUID, ...], uniques: int) -> str:
    """``SELECT o, c, what``: each row (ordinal ``o``) that cannot be written, ``c`` the
    check it fails (the ``c``-th unique field: its value is taken; then the reference
    fields: ``what`` is a target that is not a row of the target register of the tenant)."""
    # LATERAL ... LIMIT 1 keeps each check an index lookup per value: the planner cannot
    # tell how many claims one field has and would otherwise read all of them.
    checks = [
        f"SELECT u.o, {i} AS c, u.v AS what FROM unnest(CAST(:uv{i} AS text[]), "
        f"CAST(:uo{i} AS bigint[])) AS u(v, o) CROSS JOIN LATERAL (SELECT 1 FROM "
        f"forktex_data.uniques q WHERE q.field_id = :uf{i} AND q.value = u.v LIMIT 1) AS q"
        for i in range(uniques)
    ]
    checks += [
        f"SELECT u.o, {uniques + i}, CAST(u.t AS text) FROM unnest(CAST(:lt{i} AS uuid[]), "
        f"CAST(:lo{i} AS bigint[])) AS u(t, o) LEFT JOIN LATERAL (SELECT 1 AS found FROM "
        "forktex_data.rows r WHERE r.id = u.t AND r.tenant_id = :tenant AND "
        f"r.register_id = {register_literal(target)} LIMIT 1) AS r ON true "
        "WHERE r.found IS NULL"
        for i, target in enumerate(references)
    ]
    return " UNION ALL ".join(checks) or "SELECT 0 AS o, 0 AS c, '' AS what WHERE false"


@functools.lru_cache(maxsize=256)
def _batch_sql(register: uuid.UUID, references: tuple[uuid.UUID, ...], uniques: int) -> TextClause:
    """One statement writing an import batch: the rows that pass the checks of
    :func:`_checks_sql` (all of them see the same snapshot), their links and unique
    claims; returns the failed checks. A value claimed, or a target deleted, by a
    concurrent transaction meanwhile makes the statement fail (a retry sees it)."""
    parts = [
        f"bad AS MATERIALIZED ({_checks_sql(references, uniques)})",
        f"t AS MATERIALIZED (SELECT * FROM {ENCODED_ROWS} WITH ORDINALITY AS t(id, doc, "
        "vector, o) WHERE t.o NOT IN (SELECT bad.o FROM bad))",
        f"ins AS ({rows_insert(register, 't')})",
    ]
    parts += [
        f"l{i} AS (INSERT INTO forktex_data.links (field_id, source_id, target_id, tenant_id) "
        f"SELECT :lf{i}, t.id, u.t, :tenant FROM unnest(CAST(:lt{i} AS uuid[]), "
        f"CAST(:lo{i} AS bigint[])) AS u(t, o) JOIN t ON t.o = u.o)"
        for i in range(len(references))
    ]
    parts += [
        f"u{i} AS (INSERT INTO forktex_data.uniques (field_id, value, row_id) "
        f"SELECT :uf{i}, u.v, t.id FROM unnest(CAST(:uv{i} AS text[]), "
        f"CAST(:uo{i} AS bigint[])) AS u(v, o) JOIN t ON t.o = u.o)"
        for i in range(uniques)
    ]
    return text("WITH " + ", ".join(parts) + " SELECT o, c, what FROM bad")


def _batch_params(
    d: Definition, rows: Sequence[ImportRow], references: Sequence[Field], uniques: Sequence[Field]
) -> dict[str, Any]:
    """The values checked and claimed per unique field and the targets per reference
    field, each with its row's ordinal (1-based)."""
    params: dict[str, Any] = {"tenant": d.tenant_id}
    for i, f in enumerate(uniques):
        claims = [
            (unique_text(f, value), o)
            for o, row in enumerate(rows, start=1)
            if (value := row.values.get(f.name)) is not None
        ]
        params |= {
            f"uf{i}": d.field_ids[f.key],
            f"uv{i}": [c[0] for c in claims],
            f"uo{i}": [c[1] for c in claims],
        }
    for i, f in enumerate(references):
        targets: list[uuid.UUID] = []
        ordinals: list[int] = []
        for o, row in enumerate(rows, start=1):
            value = row.values.get(f.name)
            for target in (value or ()) if f.many else ((value,) if value else ()):
                targets.append(target)
                ordinals.append(o)
        params |= {f"lf{i}": d.field_ids[f.key], f"lt{i}": targets, f"lo{i}": ordinals}
    return params


def _repeated(d: Definition, rows: Sequence[ImportRow]) -> dict[int, RowError]:
    """Rows repeating a unique value of an earlier row of the batch (by index)."""
    bad: dict[int, RowError] = {}
    for f in d.fields:
        if not f.unique:
            continue
        first: dict[str, int] = {}
        for i, row in enumerate(rows):
            value = row.values.get(f.name)
            if value is None:
                continue
            key = unique_text(f, value)
            if key not in first:
                first[key] = i
            elif i not in bad:
                bad[i] = RowError(
                    row.line,
                    f"field {f.name!r} is unique and line {rows[first[key]].line} has the "
                    f"same value {show(value, 80)}",
                    f.name,
                )
    return bad


def _failures(
    rows: Sequence[ImportRow],
    found: Sequence[Any],
    references: Sequence[Field],
    uniques: Sequence[Field],
) -> dict[int, RowError]:
    """RowErrors (by index) of the failed checks ``found`` (``o, c, what`` records); a row
    failing several reports the first unique field, else the first missing target."""
    failed: dict[int, dict[int, set[str]]] = {}
    for o, c, what in found:
        failed.setdefault(int(o) - 1, {}).setdefault(int(c), set()).add(what)
    errors: dict[int, RowError] = {}
    for i, checks in failed.items():
        row = rows[i]
        c = min(checks)
        if c < len(uniques):
            f = uniques[c]
            errors[i] = RowError(
                row.line,
                f"field {f.name!r} is unique and {show(row.values[f.name], 80)} is already "
                "taken by another row",
                f.name,
            )
            continue
        f = references[c - len(uniques)]
        value = row.values.get(f.name)
        missing = [t for t in ((value or ()) if f.many else (value,)) if str(t) in checks[c]]
        errors[i] = RowError(
            row.line,
            f"field {f.name!r} references row {missing[0]}, which does not exist in register "
            f"{f.target!r}",
            f.name,
        )
    return errors


async def _numbered_documents(
    conn: AsyncConnection, d: Definition, rows: list[tuple[int, ImportRow]]
) -> tuple[list[tuple[str, str]], dict[int, RowError]]:
    """Number ``rows`` (position in the batch, row) and encode them; a row its numbers make
    unstorable (a formula reading the number gives a value its field cannot hold) is
    refused, and the others are numbered again without it, so numbers stay gapless. Returns
    the documents of the rows kept and the refused rows' errors by position."""
    refused: dict[int, RowError] = {}
    while True:
        kept = [(position, row) for position, row in rows if position not in refused]
        if not kept:
            return [], refused
        savepoint = await conn.begin_nested()
        await number_rows(conn, d, [row.values for _position, row in kept])
        encoded: list[tuple[str, str]] = []
        failed: dict[int, RowError] = {}
        for position, row in kept:
            try:
                encoded.append(document(d, row.values))
            except DataError as exc:
                failed[position] = _error(row.line, exc)
        if not failed:
            await savepoint.commit()
            return encoded, refused
        await savepoint.rollback()  # gives the numbers back
        refused |= failed


async def write_batch(
    conn: AsyncConnection,
    d: Definition,
    batch: Sequence[ImportRow],
    actor: str | None = None,
    *,
    check: bool = True,
) -> tuple[int, list[RowError]]:
    """Write one import batch of coerced rows in the caller's transaction: the good ones,
    the bad ones reported (never written) — in one statement. Returns how many were written
    and the errors; raises :class:`BatchRaced` when a concurrent writer interfered (the
    caller rolls the transaction back and retries).

    Without ``check`` the rows are written as ``insert_many`` writes them, without being
    checked one by one first (most batches are all good), and :class:`BatchRefused` is
    raised when one of them cannot be written: the caller rolls the transaction back and
    writes the batch again with ``check``. Registers that number their rows always check
    first (numbers go to the rows written only)."""
    bad = _repeated(d, batch)
    positions = [i for i in range(len(batch)) if i not in bad]
    rows = [batch[i] for i in positions]
    references = [f for f in d.fields if f.kind is FieldType.REFERENCE]
    uniques = [f for f in d.fields if f.unique]
    key = (tuple(d.targets[f.key] for f in references), len(uniques))
    numbered = any(f.autonumber for f in d.fields)
    if numbered and rows:
        # Numbers are given to the rows that will be written only (no gaps): check first.
        found = (
            await conn.execute(text(_checks_sql(*key)), _batch_params(d, rows, references, uniques))
        ).all()
        failed = _failures(rows, found, references, uniques)
        bad |= {positions[i]: e for i, e in failed.items()}
        kept = [(positions[i], row) for i, row in enumerate(rows) if i not in failed]
        encoded, refused = await _numbered_documents(conn, d, kept)
        bad |= refused
        rows = [row for position, row in kept if position not in refused]
    else:
        encoded = [row.encoded or document(d, row.values) for row in rows]
    if not rows:
        return 0, sorted(bad.values(), key=lambda e: e.line)
    if not check and not numbered:
        try:
            await write_prepared(conn, d, prepare_rows(d, [r.values for r in rows], encoded), actor)
        except (UniqueViolation, ReferenceViolation):
            raise BatchRefused(f"an import batch into register {d.name!r} has a bad row") from None
        return len(rows), sorted(bad.values(), key=lambda e: e.line)
    params = _batch_params(d, rows, references, uniques) | {
        "ids": new_ids(len(rows)),
        "docs": [e[0] for e in encoded],
        "vectors": [e[1] for e in encoded],
        "actor": actor,
    }
    try:
        found = (await conn.execute(_batch_sql(d.id, *key), params)).all()
    except DBAPIError as exc:
        sqlstate, _constraint, _detail = pg_error(exc)
        if sqlstate in ("23505", "23503"):  # a value taken / a target deleted meanwhile
            raise BatchRaced(_RACED.format(d.name)) from None
        raise
    if found and numbered:  # checked free a moment ago: numbers were given to them
        raise BatchRaced(_RACED.format(d.name))
    failed = _failures(rows, found, references, uniques)
    errors = [*bad.values(), *failed.values()]
    return len(rows) - len(failed), sorted(errors, key=lambda e: e.line)


async def run_import(
    records: AsyncIterator[Record],
    *,
    d: Definition,
    csv_header: bool,
    write: Callable[[list[ImportRow]], Awaitable[tuple[int, list[RowError]]]],
    batch_size: int,
    max_errors: int,
) -> ImportReport:
    """Read records, write them ``batch_size`` at a time through ``write`` (one transaction
    each), keep the first ``max_errors`` errors. Rows are read, coerced and encoded while
    the previous batch is written."""
    read = written = failed = batches = 0
    errors: list[RowError] = []
    cells: Callable[[Mapping[str, str]], dict[str, Any]] | None = None
    batch: list[ImportRow] = []
    encode = not any(f.autonumber for f in d.fields)
    unreadable: list[RowError] = []
    # The next batch is read and parsed while Postgres writes the previous one.
    pending: tuple[asyncio.Task[tuple[int, list[RowError]]], list[RowError]] | None = None

    def note(new: Sequence[RowError]) -> None:
        nonlocal failed
        failed += len(new)
        errors.extend(new[: max(0, max_errors - len(errors))])

    async def settle() -> None:
        nonlocal written, batches, pending
        if pending is not None:
            task, unread = pending
            pending = None
            n, problems = await task
            written += n
            batches += 1
            note(sorted([*unread, *problems], key=lambda e: e.line))

    async def flush() -> None:
        nonlocal pending
        await settle()
        if batch or unreadable:
            pending = (asyncio.ensure_future(write(list(batch))), list(unreadable))
            batch.clear()
            unreadable.clear()
            await asyncio.sleep(0)  # hand the write to the driver before reading on

    try:
        async for record in records:
            if csv_header and cells is None:
                if record.values is None:
                    raise InvalidValue(
                        f"the CSV header (line {record.line}) cannot be read: {record.problem}"
                    )
                columns = list(record.values["columns"])
                check_columns(d, columns)
                cells = cell_reader(d, columns)
                continue
            read += 1
            if record.values is None:
                unreadable.append(RowError(record.line, record.problem or "unreadable"))
                continue
            try:
                raw = cells(record.values) if cells is not None else record.values
            except DataError as exc:
                unreadable.append(_error(record.line, exc))
                continue
            values = coerce_row(d, record.line, raw, known=cells is not None)
            if isinstance(values, RowError):
                unreadable.append(values)
                continue
            row = ImportRow(record.line, values)
            if encode:
                try:
                    row.encoded = document(d, values)
                except DataError as exc:  # the row is too large to store
                    unreadable.append(_error(record.line, exc))
                    continue
            batch.append(row)
            if len(batch) >= batch_size:
                await flush()
            elif pending is not None and not len(batch) % 4:
                # Let the write in flight take its next round trip (each one waits for
                # the reader to yield: often enough that the write is never held up long;
                # every 16 rows made each round trip wait milliseconds on a busy machine).
                await asyncio.sleep(0)
        await flush()
        await settle()
    finally:
        if pending is not None:  # reading failed: let the write in flight finish first
            with contextlib.suppress(BaseException):
                await pending[0]
    return ImportReport(read, written, failed, tuple(errors), batches)
