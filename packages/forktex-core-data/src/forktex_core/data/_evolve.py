# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Schema evolution: add, rename, remove and retype fields, uniqueness, required flags and
indexes. Each change is one transaction holding the register row ``FOR UPDATE``, which
waits for in-flight writes (they hold it ``FOR KEY SHARE``) and holds back new ones."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from forktex_core.db import uuid7

from ._compile import register_literal
from ._convert import Conversion, convert
from ._definition import Definition, load_definition, pg_error, stored_options
from ._errors import (
    ConversionFailed,
    InvalidDefinition,
    InvalidValue,
    NotFound,
    ReferenceViolation,
    show,
)
from ._fields import (
    STRINGS,
    Field,
    FieldType,
    check_key,
    dumps,
    to_json,
)
from ._formula_rows import change_formula, check_unread, recompute_formulas, rename_readers
from ._index import analyze, create_index, discard_index, drop_index, register_index_keys
from ._limits import MAX_UNIQUE_BYTES
from ._results import TypeChange
from ._rows import refresh_search, unique_error
from ._search import SearchConfig


@dataclass(frozen=True)
class Handle:
    """What a schema change needs from a register: its name and tenant, its engine, its
    cached definition (``definition``), a way to re-read it (``refresh``) and to drop the
    cache (``forget``). A ``Register`` hands one over, so this module never imports it."""

    name: str
    tenant_id: uuid.UUID
    bind: Callable[[], Awaitable[AsyncEngine]]
    definition: Callable[[], Awaitable[Definition]]
    refresh: Callable[[], Awaitable[object]]
    forget: Callable[[], None]


@asynccontextmanager
async def _evolving(register: Handle) -> AsyncIterator[tuple[AsyncConnection, Definition]]:
    bind = await register.bind()
    current = await register.definition()
    async with bind.begin() as conn:
        d = await load_definition(
            conn, register.tenant_id, register_id=current.id, lock="FOR UPDATE"
        )
        if d is None:
            raise NotFound(f"register {register.name!r} no longer exists for this tenant")
        yield conn, d
        await conn.execute(
            text(
                "UPDATE forktex_data.registers SET version = version + 1, updated_at = now() "
                "WHERE id = :id"
            ),
            {"id": d.id},
        )
    await register.refresh()


def _require(d: Definition, name: Any) -> Field:
    f = d.field(name) if isinstance(name, str) else None
    if f is None:
        raise InvalidDefinition(
            f"register {d.name!r} has no field {show(name, 80)}; fields: "
            f"{', '.join(repr(x.name) for x in d.fields) or '(none)'}"
        )
    return f


async def _next_key(conn: AsyncConnection) -> str:
    """A storage key never used before by any field of any register: a key belongs to one
    field for its whole life (a type change gets a new one), so every value stored under
    it was written by that field's coercion."""
    number = (await conn.execute(text("SELECT nextval('forktex_data.field_keys')"))).scalar_one()
    return check_key(f"f{number}")


async def _target_id(
    conn: AsyncConnection, register_id: uuid.UUID, tenant_id: uuid.UUID, own: str, f: Field
) -> uuid.UUID | None:
    if f.kind is not FieldType.REFERENCE:
        return None
    if f.target == own:
        return register_id
    found = (
        await conn.execute(
            text("SELECT id FROM forktex_data.registers WHERE tenant_id = :t AND name = :n"),
            {"t": tenant_id, "n": f.target},
        )
    ).scalar_one_or_none()
    if found is None:
        raise InvalidDefinition(
            f"reference field {f.name!r} targets register {f.target!r}, which does not exist "
            "for this tenant; create it first"
        )
    return uuid.UUID(str(found))


async def insert_field(
    conn: AsyncConnection, register_id: uuid.UUID, tenant_id: uuid.UUID, register: str, f: Field
) -> Field:
    """Store a new field definition with a fresh storage key; returns it keyed."""
    keyed = f.with_key(await _next_key(conn))
    target = await _target_id(conn, register_id, tenant_id, register, f)
    try:
        await conn.execute(
            text(
                "INSERT INTO forktex_data.fields (id, register_id, tenant_id, name, key, type, "
                "position, required, is_unique, indexed, default_value, options, "
                "target_register_id) VALUES (:id, :rid, :t, :name, :key, :type, "
                "(SELECT coalesce(max(position), 0) + 1 FROM forktex_data.fields "
                "WHERE register_id = :rid), :req, :uniq, :idx, CAST(:dflt AS jsonb), "
                "CAST(:opts AS jsonb), :target)"
            ),
            {
                "id": uuid7(),
                "rid": register_id,
                "t": tenant_id,
                "name": keyed.name,
                "key": keyed.key,
                "type": keyed.kind.value,
                "req": keyed.required,
                "uniq": keyed.unique,
                "idx": keyed.indexed,
                "dflt": None if keyed.default is None else dumps(to_json(keyed, keyed.default)),
                "opts": stored_options(keyed),
                "target": target,
            },
        )
    except DBAPIError as exc:
        sqlstate, constraint, _ = pg_error(exc)
        if sqlstate == "23505" and constraint == "fields_register_name_key":
            raise InvalidDefinition(
                f"register {register!r} already has a field {f.name!r}"
            ) from None
        raise
    return keyed


async def build_indexes(register: Handle, *, analyze_after: bool = False) -> None:
    """Build the indexes of every ``indexed`` field (idempotent, concurrently); with
    ``analyze_after``, refresh the planner's statistics afterwards."""
    d = await register.definition()
    bind = await register.bind()
    built = False
    for f in d.fields:
        if f.indexed:
            await create_index(bind, d.id, f)
            built = True
    if built and analyze_after:
        await analyze(bind)


async def _refresh_search(conn: AsyncConnection, d: Definition, fields: tuple[Field, ...]) -> None:
    await refresh_search(conn, d.id, fields, d.search_config)


def _texty(f: Field) -> bool:
    return f.kind in STRINGS or f.kind is FieldType.MULTI_SELECT


async def add_field(register: Handle, field: Field) -> None:
    if not isinstance(field, Field):
        raise InvalidDefinition(f"add_field() takes a Field(...), got {show(field, 80)}")
    async with _evolving(register) as (conn, d):
        if d.field(field.name) is not None:
            raise InvalidDefinition(f"register {d.name!r} already has a field {field.name!r}")
        if field.required and field.default is None:
            count = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM forktex_data.rows "
                        f"WHERE register_id = {register_literal(d.id)}"
                    )
                )
            ).scalar_one()
            if count:
                raise InvalidDefinition(
                    f"required field {field.name!r} needs a default: register {d.name!r} "
                    f"has {count} row(s) that would have no value"
                )
        if field.formula is not None:  # checked against the fields before it is stored
            _ = replace(d, fields=(*d.fields, field)).formulas
        keyed = await insert_field(conn, d.id, d.tenant_id, d.name, field)
        if keyed.autonumber:
            await number_existing(conn, d, keyed)
        if keyed.formula is not None:
            await recompute_formulas(conn, replace(d, fields=(*d.fields, keyed)))
        if keyed.default is not None:
            await conn.execute(
                text(
                    "UPDATE forktex_data.rows SET data = data || "
                    f"jsonb_build_object('{keyed.key}', CAST(:v AS jsonb)) "
                    f"WHERE register_id = {register_literal(d.id)}"
                ),
                {"v": dumps(to_json(keyed, keyed.default))},
            )
            if _texty(keyed):
                await _refresh_search(conn, d, (*d.fields, keyed))
    if field.indexed:
        await build_indexes(register, analyze_after=True)


async def number_existing(conn: AsyncConnection, d: Definition, f: Field) -> None:
    """Number the rows of a register that gains an autonumber field, oldest first, and
    start its counter after them."""
    key = check_key(f.key)
    result = await conn.execute(
        text(
            "WITH numbered AS (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n "
            f"FROM forktex_data.rows WHERE register_id = {register_literal(d.id)}) "
            f"UPDATE forktex_data.rows r SET data = r.data || jsonb_build_object('{key}', "
            "numbered.n) FROM numbered WHERE r.id = numbered.id"
        )
    )
    await conn.execute(
        text(
            "INSERT INTO forktex_data.autonumbers (field_id, last) SELECT f.id, :n FROM "
            "forktex_data.fields f WHERE f.register_id = :rid AND f.key = :key"
        ),
        {"n": int(result.rowcount), "rid": d.id, "key": f.key},
    )


async def rename_field(register: Handle, old: str, new: str) -> None:
    async with _evolving(register) as (conn, d):
        f = _require(d, old)
        Field(new, "text")  # validates the new name (length, characters, reserved names)
        if d.field(new) is not None:
            raise InvalidDefinition(f"register {d.name!r} already has a field {new!r}")
        if "{" in new or "}" in new:
            check_unread(d, f, "rename", f" to {new!r} (a formula cannot write {{ or }})")
        await conn.execute(
            text("UPDATE forktex_data.fields SET name = :new WHERE id = :id"),
            {"new": new, "id": d.field_ids[f.key]},
        )
        await rename_readers(conn, d, old, new)
        if d.date_field == old:
            await conn.execute(
                text("UPDATE forktex_data.registers SET date_field = :new WHERE id = :id"),
                {"new": new, "id": d.id},
            )


async def remove_field(register: Handle, name: str) -> None:
    async with _evolving(register) as (conn, d):
        f = _require(d, name)
        check_unread(d, f, "remove")
        await _delete_links(conn, d, d.field_ids[f.key])
        await conn.execute(
            text("DELETE FROM forktex_data.uniques WHERE field_id = :id"),
            {"id": d.field_ids[f.key]},
        )
        await conn.execute(
            text("DELETE FROM forktex_data.fields WHERE id = :id"), {"id": d.field_ids[f.key]}
        )
        await conn.execute(
            text(
                f"UPDATE forktex_data.rows SET data = data - '{check_key(f.key)}' "
                f"WHERE register_id = {register_literal(d.id)} "
                f"AND data->'{check_key(f.key)}' IS NOT NULL"
            )
        )
        if _texty(f):
            await _refresh_search(conn, d, tuple(x for x in d.fields if x.key != f.key))
        if d.date_field == name:
            await conn.execute(
                text("UPDATE forktex_data.registers SET date_field = NULL WHERE id = :id"),
                {"id": d.id},
            )
    if f.indexed:
        await drop_index(await register.bind(), d.id, f.key)


async def change_type(
    register: Handle,
    name: str,
    new_type: FieldType | str,
    *,
    choices: tuple[str, ...],
    target: str | None,
    many: bool,
    dry_run: bool,
) -> TypeChange:
    if not isinstance(dry_run, bool):
        raise InvalidDefinition(f"dry_run must be True or False, got {show(dry_run)}")
    if dry_run:
        bind = await register.bind()
        current = await register.definition()
        async with bind.connect() as conn:
            d = await load_definition(conn, register.tenant_id, register_id=current.id)
            if d is None:
                raise NotFound(f"register {register.name!r} no longer exists for this tenant")
            work = await _convert_all(conn, d, name, new_type, choices, target, many)
        return _report(work, dry_run=True)
    async with _evolving(register) as (conn, d):
        work = await _convert_all(conn, d, name, new_type, choices, target, many)
        old = work.old
        if work.failures:
            raise ConversionFailed(
                f"{work.failed} of {work.total} value(s) of field {name!r} cannot convert from "
                f"{old.kind.value} to {work.new.kind.value}; nothing was changed. First: "
                f"row {work.failures[0][0]}: {work.failures[0][2]}",
                field=name,
                failures=work.failures,
                failed=work.failed,
            )
        new = work.new.with_key(await _next_key(conn))
        old_key, new_key = check_key(old.key), new.key
        if work.ids:
            await conn.execute(
                text(
                    f"UPDATE forktex_data.rows AS r SET data = (r.data - '{old_key}') || "
                    f"jsonb_build_object('{new_key}', CAST(u.v AS jsonb)) FROM "
                    "unnest(CAST(:ids AS uuid[]), CAST(:docs AS text[])) AS u(id, v) "
                    "WHERE r.id = u.id"
                ),
                {"ids": work.ids, "docs": work.docs},
            )
        if work.emptied:
            await conn.execute(
                text(
                    f"UPDATE forktex_data.rows SET data = data - '{old_key}' WHERE id = ANY(:ids)"
                ),
                {"ids": work.emptied},
            )
        field_id = d.field_ids[old.key]
        await conn.execute(
            text(
                "UPDATE forktex_data.fields SET type = :type, key = :key, "
                "options = CAST(:opts AS jsonb), default_value = CAST(:dflt AS jsonb), "
                "target_register_id = CASE WHEN :ref THEN target_register_id END "
                "WHERE id = :id"
            ),
            {
                "type": new.kind.value,
                "key": new_key,
                "opts": stored_options(new),
                "dflt": None if new.default is None else dumps(to_json(new, new.default)),
                "ref": new.kind is FieldType.REFERENCE,
                "id": field_id,
            },
        )
        if old.kind is FieldType.REFERENCE and new.kind is not FieldType.REFERENCE:
            await _delete_links(conn, d, field_id)
        if old.unique:
            await conn.execute(
                text("DELETE FROM forktex_data.uniques WHERE field_id = :id"), {"id": field_id}
            )
            await _claim_uniques(conn, d, new, field_id)
        if _texty(old) or _texty(new):
            fields = tuple(new if x.key == old.key else x for x in d.fields)
            await _refresh_search(conn, d, fields)
        if d.date_field == name and new.kind not in (FieldType.DATE, FieldType.DATETIME):
            await conn.execute(
                text("UPDATE forktex_data.registers SET date_field = NULL WHERE id = :id"),
                {"id": d.id},
            )
    if old.indexed:
        bind = await register.bind()
        await create_index(bind, d.id, new)
        await drop_index(bind, d.id, old.key)
        await analyze(bind)
    return _report(work, dry_run=False)


def _report(work: Conversion, *, dry_run: bool) -> TypeChange:
    return TypeChange(
        work.old.name,
        work.old.kind.value,
        work.new.kind.value,
        converted=len(work.ids),
        lossy=work.lossy,
        losses=tuple(work.losses),
        failed=work.failed,
        failures=tuple(work.failures),
        dry_run=dry_run,
    )


async def _convert_all(
    conn: AsyncConnection,
    d: Definition,
    name: str,
    new_type: FieldType | str,
    choices: tuple[str, ...],
    target: str | None,
    many: bool,
) -> Conversion:
    """Convert every stored value of field ``name`` (nothing is written)."""
    old = _require(d, name)
    check_unread(d, old, "change the type of")
    if old.formula is not None:
        raise InvalidDefinition(
            f"field {name!r} of register {d.name!r} is computed by its formula; to change "
            "its type, remove it and add a formula field of the new type"
        )
    new = Field(
        old.name, new_type, required=old.required, unique=old.unique, indexed=old.indexed,
        choices=choices, target=target, many=many, label=old.label,
    )  # fmt: skip
    if new.kind is FieldType.REFERENCE and not (
        old.kind is FieldType.REFERENCE and old.target == new.target
    ):
        raise InvalidDefinition(
            f"cannot change field {name!r} into a reference to {new.target!r}: add a new "
            "reference field and fill it instead"
        )
    default = None
    if old.default is not None:
        try:
            default = convert(old, new, old.default)
        except InvalidValue as exc:
            raise InvalidDefinition(
                f"the default of field {name!r} cannot convert: {exc}"
            ) from None
    new = Field(
        new.name, new.kind, required=new.required, unique=new.unique, indexed=new.indexed,
        default=default, choices=new.choices, target=new.target, many=new.many,
        label=new.label,
    )  # fmt: skip
    work = Conversion(old, new)
    old_key = check_key(old.key)
    records = await conn.execute(
        text(
            f"SELECT r.id, (r.data->'{old_key}')::text AS v FROM forktex_data.rows r "
            f"WHERE r.register_id = {register_literal(d.id)} "
            f"AND r.data->'{old_key}' IS NOT NULL ORDER BY r.id"
        )
    )
    for record in records:
        work.add(record.id, json.loads(record.v))
    return work


async def _delete_links(conn: AsyncConnection, d: Definition, field_id: uuid.UUID | None) -> None:
    """Delete the links of one reference field (None: of every field) of the register,
    found through its rows (the links' primary key starts with the source row)."""
    await conn.execute(
        text(
            "DELETE FROM forktex_data.links WHERE source_id IN (SELECT id FROM "
            f"forktex_data.rows WHERE register_id = {register_literal(d.id)})"
            + ("" if field_id is None else " AND field_id = :f")
        ),
        {"f": field_id},
    )


async def _claim_uniques(
    conn: AsyncConnection, d: Definition, f: Field, field_id: uuid.UUID
) -> None:
    key = check_key(f.key)
    try:
        await conn.execute(
            text(
                "INSERT INTO forktex_data.uniques (field_id, value, row_id) "
                f"SELECT :f, r.data->>'{key}', r.id FROM forktex_data.rows r "
                f"WHERE r.register_id = {register_literal(d.id)} "
                f"AND r.data->>'{key}' IS NOT NULL"
            ),
            {"f": field_id},
        )
    except DBAPIError as exc:
        raise unique_error(exc, d, f) from None


async def set_indexed(register: Handle, name: str, indexed: bool) -> None:
    if not isinstance(indexed, bool):
        raise InvalidDefinition(f"indexed must be True or False, got {show(indexed)}")
    await register.refresh()
    d = await register.definition()
    f = _require(d, name)
    if indexed and not f.sortable:
        raise InvalidDefinition(
            f"field {name!r} ({f.kind.value}) cannot be indexed; indexes work for text, "
            "integer, decimal, boolean, date, datetime, email, url, single_select and single "
            "references"
        )
    bind = await register.bind()
    if indexed:
        await create_index(bind, d.id, f)
    try:
        async with _evolving(register) as (conn, current):
            now = _require(current, name)
            if now.key != f.key:
                raise InvalidDefinition(f"field {name!r} changed meanwhile; retry")
            await conn.execute(
                text("UPDATE forktex_data.fields SET indexed = :v WHERE id = :id"),
                {"v": indexed, "id": current.field_ids[f.key]},
            )
    except BaseException:
        if indexed and not f.indexed:  # the index just built belongs to no definition
            await asyncio.shield(discard_index(bind, d.id, f.key))
        raise
    if indexed:
        await analyze(bind)
    else:
        await drop_index(bind, d.id, f.key)


async def set_unique(register: Handle, name: str, unique: bool) -> None:
    if not isinstance(unique, bool):
        raise InvalidDefinition(f"unique must be True or False, got {show(unique)}")
    async with _evolving(register) as (conn, d):
        f = _require(d, name)
        if f.formula is not None:
            replace(f, unique=unique)  # InvalidDefinition: a formula field is never unique
        if unique and not f.uniqueable:
            raise InvalidDefinition(
                f"field {name!r} ({f.kind.value}) cannot be unique; unique works for text, "
                "integer, decimal, date, datetime, email, url, single_select and single "
                "references"
            )
        if unique and f.default is not None:
            raise InvalidDefinition(f"field {name!r} has a default and cannot be unique")
        field_id = d.field_ids[f.key]
        if unique and f.kind in STRINGS:
            await _check_unique_sizes(conn, d, f)
        await conn.execute(
            text("DELETE FROM forktex_data.uniques WHERE field_id = :id"), {"id": field_id}
        )
        if unique:
            await _claim_uniques(conn, d, f, field_id)
        await conn.execute(
            text("UPDATE forktex_data.fields SET is_unique = :v WHERE id = :id"),
            {"v": unique, "id": field_id},
        )


async def _check_unique_sizes(conn: AsyncConnection, d: Definition, f: Field) -> None:
    key = check_key(f.key)
    found = (
        await conn.execute(
            text(
                f"SELECT r.id, count(*) OVER () AS n FROM forktex_data.rows r "
                f"WHERE r.register_id = {register_literal(d.id)} "
                f"AND octet_length(r.data->>'{key}') > :limit LIMIT 1"
            ),
            {"limit": MAX_UNIQUE_BYTES},
        )
    ).first()
    if found is not None:
        raise InvalidDefinition(
            f"field {f.name!r} cannot be unique: {found.n} row(s) of register {d.name!r} "
            f"(e.g. {found.id}) hold values over {MAX_UNIQUE_BYTES:,} bytes of UTF-8, the "
            "limit for a unique key; shorten them first"
        )


async def set_required(register: Handle, name: str, required: bool) -> None:
    if not isinstance(required, bool):
        raise InvalidDefinition(f"required must be True or False, got {show(required)}")
    async with _evolving(register) as (conn, d):
        f = _require(d, name)
        if f.formula is not None:
            replace(f, required=required)  # InvalidDefinition: never required
        if required:
            missing = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM forktex_data.rows "
                        f"WHERE register_id = {register_literal(d.id)} "
                        f"AND data->'{check_key(f.key)}' IS NULL"
                    )
                )
            ).scalar_one()
            if missing:
                raise InvalidDefinition(
                    f"{missing} row(s) of register {d.name!r} have no value for {name!r}; "
                    f"fill them first (RowQuery(register).where({name}=None) finds them)"
                )
        await conn.execute(
            text("UPDATE forktex_data.fields SET required = :v WHERE id = :id"),
            {"v": required, "id": d.field_ids[f.key]},
        )


async def set_formula(register: Handle, name: str, source: str) -> int:
    async with _evolving(register) as (conn, d):
        return await change_formula(conn, d, _require(d, name), source)


async def set_search(register: Handle, config: SearchConfig) -> None:
    if not isinstance(config, SearchConfig):
        raise InvalidDefinition(
            f"search takes a SearchConfig(fold_accents=...), got {show(config, 80)}"
        )
    async with _evolving(register) as (conn, d):
        await conn.execute(
            text("UPDATE forktex_data.registers SET search = CAST(:s AS jsonb) WHERE id = :id"),
            {"s": dumps(config.to_json()), "id": d.id},
        )
        await refresh_search(conn, d.id, d.fields, config)


async def drop_register(register: Handle) -> None:
    d = await register.definition()
    bind = await register.bind()
    async with bind.begin() as conn:
        locked = await load_definition(conn, d.tenant_id, register_id=d.id, lock="FOR UPDATE")
        if locked is None:
            raise NotFound(f"register {d.name!r} does not exist for this tenant")
        users = (
            await conn.execute(
                text(
                    "SELECT g.name AS register, f.name AS field FROM forktex_data.fields f "
                    "JOIN forktex_data.registers g ON g.id = f.register_id "
                    "WHERE f.target_register_id = :id AND f.register_id <> :id ORDER BY 1, 2"
                ),
                {"id": d.id},
            )
        ).all()
        if users:
            where = ", ".join(f"{u.register!r}.{u.field!r}" for u in users)
            raise ReferenceViolation(
                f"register {d.name!r} is the target of reference field(s) {where}; remove "
                "or retype those fields first"
            )
        await _delete_links(conn, d, None)
        await conn.execute(
            text(
                "DELETE FROM forktex_data.uniques WHERE field_id IN "
                "(SELECT id FROM forktex_data.fields WHERE register_id = :id)"
            ),
            {"id": d.id},
        )
        await conn.execute(
            text(f"DELETE FROM forktex_data.rows WHERE register_id = {register_literal(d.id)}")
        )
        await conn.execute(text("DELETE FROM forktex_data.registers WHERE id = :id"), {"id": d.id})
    for key in await register_index_keys(bind, d.id):
        await drop_index(bind, d.id, key)
    register.forget()
