# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Row storage: JSONB documents keyed by field storage keys, their search vectors, the
reference ``links`` and the ``uniques`` side table that makes Postgres enforce unique
fields. Rows, links and unique claims are written and removed together here."""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from forktex_core.db import uuid7_many

from ._compile import ROW_COLUMNS, register_literal
from ._definition import Definition, duplicate_field, duplicate_value, pg_error
from ._errors import DataError, InvalidValue, ReferenceViolation, UniqueViolation
from ._fields import Field, FieldType, check_key, dumps, to_json
from ._limits import MAX_DOCUMENT_CHARS
from ._results import RowResult
from ._search import PLAIN, SearchConfig, search_columns, vector_of, vector_of_parts


def document(d: Definition, values: dict[str, Any]) -> tuple[str, str]:
    """The stored JSONB text of coerced values (unset fields are left out) and the
    ``tsvector`` text of its searchable values. The register's formula fields are computed
    into ``values`` first (every write stores rows through here)."""
    if d.formulas:
        d.formulas.fill(values, d.name)
    data: dict[str, Any] = {}
    parts: list[str] = []  # the search text, as searchable_parts() lists it
    for name, key, encode, search in d.writers:
        value = values.get(name)
        if value is not None:
            stored = data[key] = value if encode is None else encode(value)
            if search:
                if search == 1:
                    parts.append(stored)
                else:
                    parts.extend(stored)
    doc = dumps(data)
    if len(doc) > MAX_DOCUMENT_CHARS:
        raise InvalidValue(
            f"a row of register {d.name!r} takes {len(doc):,} characters as JSON; the limit "
            f"is {MAX_DOCUMENT_CHARS:,}: store large content elsewhere (e.g. object storage) "
            "and keep a link in the row"
        )
    return doc, vector_of_parts(parts, d.search_config)


def decode_row(d: Definition, record: Any) -> RowResult:
    """A ``RowResult`` from a ``SELECT {ROW_COLUMNS}`` record."""
    row_id, data, created_at, updated_at, archived_at, created_by, updated_by = record
    if isinstance(data, str):
        data = json.loads(data)
    values = {}
    for name, key, decode in d.decoders:
        raw = data.get(key)
        values[name] = raw if decode is None or raw is None else decode(raw)
    return RowResult(
        id=row_id,
        register=d.name,
        values=MappingProxyType(values),
        created_at=created_at,
        updated_at=updated_at,
        archived_at=archived_at,
        created_by=created_by,
        updated_by=updated_by,
    )


async def lock_version(conn: AsyncConnection, d: Definition) -> int | None:
    """The register's current version, share-locked so no schema change runs until this
    transaction ends (``None``: the register was dropped)."""
    result = await conn.execute(
        text(
            "SELECT version FROM forktex_data.registers WHERE id = :id AND tenant_id = :t "
            "FOR KEY SHARE"
        ),
        {"id": d.id, "t": d.tenant_id},
    )
    version = result.scalar_one_or_none()
    return int(version) if version is not None else None


_FK_DETAIL = re.compile(r"^Key \(target_id\)=\((?P<id>[0-9a-f-]+)\) is not present")


async def number_rows(
    conn: AsyncConnection, d: Definition, values: Sequence[dict[str, Any]]
) -> None:
    """Fill the register's autonumber fields of coerced rows about to be inserted with the
    next numbers of their counters (locked until the transaction ends: numbers have no
    gaps and follow commit order of the writers)."""
    for f in d.fields:
        if not f.autonumber or not values:
            continue
        last = (
            await conn.execute(
                text(
                    "INSERT INTO forktex_data.autonumbers (field_id, last) VALUES (:f, :n) "
                    "ON CONFLICT (field_id) DO UPDATE SET last = forktex_data.autonumbers.last "
                    "+ :n RETURNING last"
                ),
                {"f": d.field_ids[f.key], "n": len(values)},
            )
        ).scalar_one()
        first = int(last) - len(values) + 1
        for i, v in enumerate(values):
            v[f.name] = first + i


def chunk_size(total: int) -> int:
    """Rows per INSERT statement of an ``insert_many`` of ``total`` rows: half of them (the
    second half is prepared in Python while Postgres writes the first), at least 500 and
    at most 1,000 rows per statement. Every statement costs the client and the server
    CPU of its own: 125-row statements cost a fifth more per row than 1,000-row ones,
    which a busy machine pays for in throughput."""
    return min(1000, max(500, -(-total // 2)))


@dataclass(frozen=True)
class PreparedRows:
    """Coerced rows ready for one INSERT: ids, documents, search vectors, and the link and
    unique-value claims per field."""

    ids: list[uuid.UUID]
    values: list[dict[str, Any]]
    docs: list[str]
    vectors: list[str]
    links: list[tuple[list[uuid.UUID], list[uuid.UUID]]]  # per reference field
    uniques: list[tuple[list[str], list[uuid.UUID]]]  # per unique field


def _references(d: Definition) -> list[Field]:
    return [f for f in d.fields if f.kind is FieldType.REFERENCE]


def _uniques(d: Definition) -> list[Field]:
    return [f for f in d.fields if f.unique]


def prepare_rows(
    d: Definition,
    values: Sequence[dict[str, Any]],
    encoded: Sequence[tuple[str, str]] | None = None,
) -> PreparedRows:
    """Everything :func:`insert_prepared` sends, computed in Python (``encoded``: the
    rows' documents and search vectors, when :func:`document` gave them already)."""
    ids = new_ids(len(values))
    if encoded is None:
        encoded = [document(d, v) for v in values]
    docs = [e[0] for e in encoded]
    vectors = [e[1] for e in encoded]
    links = []
    for f in _references(d):
        sources: list[uuid.UUID] = []
        targets: list[uuid.UUID] = []
        for rid, v in zip(ids, values, strict=True):
            value = v.get(f.name)
            for target in (value or ()) if f.many else ((value,) if value else ()):
                sources.append(rid)
                targets.append(target)
        links.append((sources, targets))
    uniques = []
    for f in _uniques(d):
        claims = [
            (unique_text(f, value), rid)
            for rid, v in zip(ids, values, strict=True)
            if (value := v.get(f.name)) is not None
        ]
        uniques.append(([c[0] for c in claims], [c[1] for c in claims]))
    return PreparedRows(ids, list(values), docs, vectors, links, uniques)


#: The ``:ids`` / ``:docs`` / ``:vectors`` parameters of an insert as a set of rows.
ENCODED_ROWS = "unnest(CAST(:ids AS uuid[]), CAST(:docs AS text[]), CAST(:vectors AS text[]))"


def rows_insert(register: uuid.UUID, source: str) -> str:
    """``INSERT INTO rows`` of the register's rows ``t(id, doc, vector)`` of ``source``
    (a ``FROM`` item), tenant ``:tenant``, written by ``:actor``."""
    return (
        "INSERT INTO forktex_data.rows (id, tenant_id, register_id, data, search, "
        f"created_by, updated_by) SELECT t.id, :tenant, {register_literal(register)}, "
        "CAST(t.doc AS jsonb), CAST(t.vector AS tsvector), CAST(:actor AS text), "
        f"CAST(:actor AS text) FROM {source}"
    )


@functools.lru_cache(maxsize=256)
def _insert_sql(register: uuid.UUID, references: tuple[uuid.UUID, ...], uniques: int) -> TextClause:
    """One statement writing rows, their links (only to rows of each target register of
    the tenant: others do not join and are counted as missing) and unique claims."""
    parts = [
        f"WITH ins AS ({rows_insert(register, ENCODED_ROWS + ' AS t(id, doc, vector)')} "
        "RETURNING 1)"
    ]
    counts = []
    for i, target in enumerate(references):
        parts.append(f"l{i} AS ({_links_insert(target, str(i))} RETURNING 1)")
        counts.append(f"(SELECT count(*) FROM l{i}) AS l{i}")
    for i in range(uniques):
        parts.append(
            f"u{i} AS (INSERT INTO forktex_data.uniques (field_id, value, row_id) "
            f"SELECT :uf{i}, u.v, u.r FROM unnest(CAST(:uv{i} AS text[]), "
            f"CAST(:ur{i} AS uuid[])) AS u(v, r) RETURNING 1)"
        )
    # Every row gets now() (the transaction's start) as created_at and updated_at: one
    # timestamp comes back instead of three columns per row.
    columns = ", ".join(["(SELECT count(*) FROM ins) AS n", "now() AS at", *counts])
    return text(", ".join(parts) + f" SELECT {columns}")


async def insert_prepared(
    conn: AsyncConnection, d: Definition, rows: PreparedRows, actor: str | None = None
) -> list[RowResult]:
    """Insert prepared rows, their links and unique claims in one statement."""
    at = await write_prepared(conn, d, rows, actor)
    return [
        RowResult(
            id=rid,
            register=d.name,
            values=MappingProxyType(v),  # a fresh dict from the coercer, not shared
            created_at=at,
            updated_at=at,
            created_by=actor,
            updated_by=actor,
        )
        for rid, v in zip(rows.ids, rows.values, strict=True)
    ]


async def write_prepared(
    conn: AsyncConnection, d: Definition, rows: PreparedRows, actor: str | None = None
) -> Any:
    """:func:`insert_prepared` without building the results: returns the rows'
    ``created_at``. A value taken raises UniqueViolation, a target that is no row of its
    register ReferenceViolation."""
    references, uniques = _references(d), _uniques(d)
    params: dict[str, Any] = {
        "tenant": d.tenant_id, "ids": rows.ids, "docs": rows.docs, "vectors": rows.vectors,
        "actor": actor,
    }  # fmt: skip
    for i, (f, (sources, targets)) in enumerate(zip(references, rows.links, strict=True)):
        params |= {f"lf{i}": d.field_ids[f.key], f"ls{i}": sources, f"lt{i}": targets}
    for i, (f, (vals, rids)) in enumerate(zip(uniques, rows.uniques, strict=True)):
        params |= {f"uf{i}": d.field_ids[f.key], f"uv{i}": vals, f"ur{i}": rids}
    statement = _insert_sql(d.id, tuple(d.targets[f.key] for f in references), len(uniques))
    try:
        result = (await conn.execute(statement, params)).all()
    except DBAPIError as exc:
        sqlstate, _constraint, detail = pg_error(exc)
        if sqlstate == "23505":
            field_id = duplicate_field(detail)
            taken = next((x for x in uniques if d.field_ids[x.key] == field_id), None)
            if taken is not None:
                raise unique_error(exc, d, taken) from None
        _raise_if_target_gone(
            exc, d, [(f, targets) for f, (_s, targets) in zip(references, rows.links, strict=True)]
        )
        raise
    counts = result[0]
    for i, (f, (_sources, targets)) in enumerate(zip(references, rows.links, strict=True)):
        if counts[2 + i] != len(targets):
            await _missing_targets(conn, d, f, targets)
    return counts.at


def new_ids(count: int) -> list[uuid.UUID]:
    """``count`` new row ids (UUIDv7: time-ordered, so ids of new rows append to the
    indexes), made in one go: every row written needs one."""
    return uuid7_many(count)


async def select_row(
    conn: AsyncConnection, d: Definition, row_id: uuid.UUID, *, for_update: bool = False
) -> RowResult | None:
    record = (
        await conn.execute(
            text(
                f"SELECT {ROW_COLUMNS} FROM forktex_data.rows r WHERE r.id = :id "
                f"AND r.register_id = {register_literal(d.id)} AND r.tenant_id = :t"
                + (" FOR UPDATE" if for_update else "")
            ),
            {"id": row_id, "t": d.tenant_id},
        )
    ).first()
    return decode_row(d, record) if record is not None else None


async def update_row(
    conn: AsyncConnection,
    d: Definition,
    current: RowResult,
    changed: Mapping[str, Any],
    actor: str | None = None,
) -> RowResult:
    merged = {**current.values, **changed}
    doc, vector = document(d, merged)
    record = (
        await conn.execute(
            text(
                "UPDATE forktex_data.rows AS r SET data = CAST(:doc AS jsonb), "
                "updated_at = now(), search = CAST(:vector AS tsvector), "
                f"updated_by = CAST(:actor AS text) WHERE r.id = :id RETURNING {ROW_COLUMNS}"
            ),
            {"doc": doc, "vector": vector, "id": current.id, "actor": actor},
        )
    ).one()
    touched = [f for f in d.fields if f.name in changed]
    await write_links(
        conn, d, [current.id], [merged], replace=True, only=[f for f in touched if _is_ref(f)]
    )
    await write_uniques(
        conn,
        d,
        [current.id],
        [merged],
        [f for f in touched if f.unique],
        replace=[current.values],
    )
    return decode_row(d, record)


def _is_ref(f: Field) -> bool:
    return f.kind is FieldType.REFERENCE


async def write_links(
    conn: AsyncConnection,
    d: Definition,
    ids: Sequence[uuid.UUID],
    values: Sequence[Mapping[str, Any]],
    *,
    replace: bool,
    only: Sequence[Field] | None = None,
) -> None:
    """Record reference values in ``links`` (foreign keys make Postgres refuse dangling
    ones), after checking each target is a row of the target register of this tenant."""
    fields = [f for f in (d.fields if only is None else only) if _is_ref(f)]
    for f in fields:
        field_id = d.field_ids[f.key]
        sources: list[uuid.UUID] = []
        targets: list[uuid.UUID] = []
        for rid, v in zip(ids, values, strict=True):
            value = v.get(f.name)
            for target in (value or ()) if f.many else ((value,) if value else ()):
                sources.append(rid)
                targets.append(target)
        if replace:
            await conn.execute(
                text("DELETE FROM forktex_data.links WHERE field_id = :f AND source_id = ANY(:s)"),
                {"f": field_id, "s": list(ids)},
            )
        if not targets:
            continue
        try:
            inserted = await conn.execute(
                text(_links_insert(d.targets[f.key], "")),
                {"lf": field_id, "ls": sources, "lt": targets, "tenant": d.tenant_id},
            )
        except DBAPIError as exc:
            _raise_if_target_gone(exc, d, [(f, targets)])
            raise
        if inserted.rowcount != len(targets):
            await _missing_targets(conn, d, f, targets)


def _links_insert(target_register: uuid.UUID, suffix: str) -> str:
    """``INSERT INTO links`` of the pairs ``:ls<suffix>`` / ``:lt<suffix>`` whose target
    is a row of ``target_register`` of the tenant (others are left out: the caller counts
    them as missing). The foreign key then share-locks each target until commit. The
    sources are new rows, or rows whose links of the field were just deleted, and a
    coerced value names each target once: no pair can exist already (``ON CONFLICT``
    would make every insert a slower speculative one)."""
    return (
        "INSERT INTO forktex_data.links (field_id, source_id, target_id, tenant_id) "
        f"SELECT :lf{suffix}, u.s, u.t, :tenant FROM unnest(CAST(:ls{suffix} AS uuid[]), "
        f"CAST(:lt{suffix} AS uuid[])) AS u(s, t) CROSS JOIN LATERAL (SELECT 1 FROM "
        # LIMIT keeps this a lookup per target, never a read of the whole target register
        "forktex_data.rows r WHERE r.id = u.t AND r.tenant_id = :tenant AND "
        f"r.register_id = {register_literal(target_register)} LIMIT 1) AS found"
    )


def _raise_if_target_gone(
    exc: DBAPIError, d: Definition, written: Sequence[tuple[Field, Sequence[uuid.UUID]]]
) -> None:
    """ReferenceViolation when ``exc`` is the foreign key refusing a link whose target was
    deleted while the write ran (the transaction is aborted: nothing can be queried)."""
    sqlstate, _constraint, detail = pg_error(exc)
    gone = _FK_DETAIL.match(detail) if sqlstate == "23503" else None
    if gone is None:
        return
    for f, targets in written:
        if uuid.UUID(gone["id"]) in targets:
            raise ReferenceViolation(
                f"field {f.name!r} of register {d.name!r} references row {gone['id']}, which "
                f"was deleted from register {f.target!r} while this write ran"
            ) from None


async def _missing_targets(
    conn: AsyncConnection, d: Definition, f: Field, targets: Sequence[uuid.UUID]
) -> None:
    """ReferenceViolation naming the targets that are not rows of the target register
    (returns when there are none)."""
    wanted = set(targets)
    if not wanted:
        return
    found = {
        row[0]
        for row in await conn.execute(
            text(
                "SELECT id FROM forktex_data.rows WHERE id = ANY(:ids) AND tenant_id = :t "
                f"AND register_id = {register_literal(d.targets[f.key])}"
            ),
            {"ids": list(wanted), "t": d.tenant_id},
        )
    }
    missing = sorted(str(t) for t in wanted - found)
    if not missing:
        return
    raise ReferenceViolation(
        f"field {f.name!r} of register {d.name!r} references row(s) "
        f"{', '.join(missing[:5])} that do not exist in register {f.target!r}"
    )


def unique_text(f: Field, value: Any) -> str:
    """The text a unique value is claimed under: the stored JSON value as ``->>`` reads it."""
    raw = to_json(f, value)
    return raw if isinstance(raw, str) else dumps(raw)


async def write_uniques(
    conn: AsyncConnection,
    d: Definition,
    ids: Sequence[uuid.UUID],
    values: Sequence[Mapping[str, Any]],
    fields: Sequence[Field],
    *,
    replace: Sequence[Mapping[str, Any]] | None,
) -> None:
    """Claim the rows' values of unique fields in ``uniques`` (primary key: field, value).
    A taken value fails here, atomically, whoever wrote it first. ``replace`` holds the
    rows' previous values, whose claims are released first."""
    for f in fields:
        field_id = d.field_ids[f.key]
        if replace is not None:
            released = [
                unique_text(f, value) for v in replace if (value := v.get(f.name)) is not None
            ]
            await conn.execute(
                text(
                    "DELETE FROM forktex_data.uniques WHERE field_id = :f "
                    "AND value = ANY(:vals) AND row_id = ANY(:ids)"
                ),
                {"f": field_id, "vals": released, "ids": list(ids)},
            )
        claims = [
            (unique_text(f, value), rid)
            for rid, v in zip(ids, values, strict=True)
            if (value := v.get(f.name)) is not None
        ]
        if not claims:
            continue
        try:
            await conn.execute(
                text(
                    "INSERT INTO forktex_data.uniques (field_id, value, row_id) "
                    "SELECT :f, u.v, u.r FROM unnest(CAST(:vals AS text[]), "
                    "CAST(:rids AS uuid[])) AS u(v, r)"
                ),
                {"f": field_id, "vals": [c[0] for c in claims], "rids": [c[1] for c in claims]},
            )
        except DBAPIError as exc:
            raise unique_error(exc, d, f) from None


def unique_error(exc: DBAPIError, d: Definition, f: Field) -> DataError | DBAPIError:
    sqlstate, _constraint, detail = pg_error(exc)
    if sqlstate != "23505":
        return exc
    value = duplicate_value(detail)
    return UniqueViolation(
        f"field {f.name!r} of register {d.name!r} is unique and the value "
        f"{value if value is not None else '(given)'} is already taken by another row",
        field=f.name,
        value=value,
    )


async def delete_locked(conn: AsyncConnection, d: Definition, ids: Sequence[uuid.UUID]) -> int:
    """Delete rows the caller has locked ``FOR UPDATE``, with their outgoing links and
    unique claims (the foreign key from ``links.target_id`` refuses the delete while
    another row still references one of them). Returns how many rows were deleted."""
    if not ids:
        return 0
    await conn.execute(
        text("DELETE FROM forktex_data.links WHERE source_id = ANY(:ids)"), {"ids": list(ids)}
    )
    for f in _uniques(d):  # claims are found by their values
        await conn.execute(
            text(
                "DELETE FROM forktex_data.uniques u USING forktex_data.rows r "
                f"WHERE r.id = ANY(:ids) AND u.field_id = :f "
                f"AND u.value = r.data->>'{check_key(f.key)}' AND u.row_id = r.id"
            ),
            {"ids": list(ids), "f": d.field_ids[f.key]},
        )
    result = await conn.execute(
        text(
            "DELETE FROM forktex_data.rows WHERE id = ANY(:ids) AND tenant_id = :t "
            f"AND register_id = {register_literal(d.id)}"
        ),
        {"ids": list(ids), "t": d.tenant_id},
    )
    return int(result.rowcount)


async def refresh_search(
    conn: AsyncConnection,
    register_id: uuid.UUID,
    fields: Sequence[Field],
    config: SearchConfig = PLAIN,
) -> None:
    """Rewrite the search vector of every row of a register from its stored values (after
    the set of searchable fields changed), in batches."""
    columns = search_columns(fields)
    last = uuid.UUID(int=0)
    while True:
        batch = (
            await conn.execute(
                text(
                    "SELECT id, data FROM forktex_data.rows "
                    f"WHERE register_id = {register_literal(register_id)} AND id > :last "
                    "ORDER BY id LIMIT 2000"
                ),
                {"last": last},
            )
        ).all()
        if not batch:
            return
        ids = [row.id for row in batch]
        vectors = [
            vector_of(
                columns, json.loads(row.data) if isinstance(row.data, str) else row.data, config
            )
            for row in batch
        ]
        await conn.execute(
            text(
                "UPDATE forktex_data.rows AS r SET search = CAST(u.vector AS tsvector) FROM "
                "unnest(CAST(:ids AS uuid[]), CAST(:vectors AS text[])) AS u(id, vector) "
                "WHERE r.id = u.id"
            ),
            {"ids": ids, "vectors": vectors},
        )
        last = ids[-1]


async def referencing(conn: AsyncConnection, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> str:
    """``"'invoices'.'customer'"``-style list of what references any of ``ids``."""
    rows = await conn.execute(
        text(
            "SELECT DISTINCT g.name AS register, f.name AS field FROM forktex_data.links l "
            "JOIN forktex_data.fields f ON f.id = l.field_id "
            "JOIN forktex_data.registers g ON g.id = f.register_id "
            "WHERE l.target_id = ANY(:ids) AND l.tenant_id = :t ORDER BY 1, 2"
        ),
        {"ids": list(ids), "t": tenant_id},
    )
    return ", ".join(f"{r.register!r}.{r.field!r}" for r in rows) or "(another row)"
