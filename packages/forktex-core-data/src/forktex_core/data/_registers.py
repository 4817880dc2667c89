# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``Register``: a tenant's logical table stored in Postgres (``forktex_data``), and the
Postgres implementation of :class:`RegisterSource`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Generator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from forktex_core.db import get_engine, uuid7

from . import _bulk, _evolve
from ._aggregates import AggregateSpec, finish
from ._compile import (
    ROW_COLUMNS,
    Sql,
    aggregate_sql,
    facet_sql,
    joint_facet_sql,
    joint_facets,
    register_literal,
    select_sql,
    where_sql,
)
from ._definition import Definition, load_definition, pg_error
from ._errors import (
    DataError,
    InvalidDefinition,
    InvalidValue,
    NotFound,
    ReferenceViolation,
    RegisterNotLoaded,
    SchemaConflict,
    show,
)
from ._fields import (
    Field,
    FieldType,
    as_row_id,
    check_actor,
    check_name,
    coerce,
    dumps,
    from_json,
    text_problem,
)
from ._formulas import FormulaFields
from ._plan import QueryPlan, RegisterInfo
from ._results import AggregateRow, FacetCount, ImportReport, RowResult, TypeChange
from ._rows import (
    chunk_size,
    decode_row,
    delete_locked,
    insert_prepared,
    lock_version,
    number_rows,
    prepare_rows,
    referencing,
    select_row,
    update_row,
)
from ._schema import init_schema
from ._search import SearchConfig
from ._tabular import ImportSource, csv_records, jsonl_records


def _tenant(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidValue(
        f"tenant_id must be a UUID (or its string form), got {show(value, 80)}", field="tenant_id"
    )


def _engine_arg(engine: Any) -> AsyncEngine | None:
    if engine is not None and not isinstance(engine, AsyncEngine):
        raise InvalidValue(
            f"engine must be a SQLAlchemy AsyncEngine or None (use forktex_core.db's engine), "
            f"got {show(engine, 80)}"
        )
    return engine


class Register:
    """A register (logical table) of one tenant, stored in Postgres.

    Connection: ``engine=`` if given, else the process-wide engine of
    ``forktex_core.db.init_engine(...)``, looked up on each use. The ``forktex_data``
    schema is created/migrated the first time an engine is used (or call
    :func:`init_schema` at start-up).

    ``Register.load(name, tenant_id=...)`` returns a handle at once; the definition is
    fetched by ``await``-ing it or by the first query / write. Every operation is scoped to
    the tenant: another tenant's registers and rows behave as if they did not exist.

    Example::

        invoices = await Register.create("invoices", tenant_id=org, fields=[
            Field("number", "text", required=True, unique=True),
            Field("status", "single_select", choices=("draft", "paid"), default="draft"),
            Field("amount", "decimal"),
            Field("issued_at", "datetime", indexed=True),
        ])
        row = await invoices.insert({"number": "A-1", "amount": "120.00", "issued_at": now})

        invoices = Register.load("invoices", tenant_id=org)  # lazy handle, no I/O yet
        page = await RowQuery(invoices).where(status="paid").scroll(page_size=50)
    """

    def __init__(
        self,
        name: str,
        *,
        tenant_id: uuid.UUID | str,
        engine: AsyncEngine | None = None,
        _definition: Definition | None = None,
    ) -> None:
        self._name = check_name(name, "register")
        self._tenant_id = _tenant(tenant_id)
        self._engine = _engine_arg(engine)
        self._def = _definition
        self._lock = asyncio.Lock()
        self._target_cache: dict[uuid.UUID, Register] = {}

    # -- construction ------------------------------------------------------------------

    @classmethod
    def load(
        cls, name: str, *, tenant_id: uuid.UUID | str, engine: AsyncEngine | None = None
    ) -> Register:
        """A handle on the tenant's register ``name``. No I/O happens here: ``await`` the
        handle to fetch the definition now (raises :class:`NotFound`), or just use it — the
        first query or write fetches it.

        Example::

            invoices = Register.load("invoices", tenant_id=org)          # lazy
            invoices = await Register.load("invoices", tenant_id=org)    # eager
        """
        return cls(name, tenant_id=tenant_id, engine=engine)

    def __await__(self) -> Generator[Any, None, Register]:
        return self._resolved().__await__()

    async def _resolved(self) -> Register:
        await self._definition()
        return self

    @classmethod
    async def create(
        cls,
        name: str,
        *,
        tenant_id: uuid.UUID | str,
        fields: Sequence[Field] = (),
        label: str | None = None,
        date_field: str | None = None,
        search: SearchConfig | None = None,
        engine: AsyncEngine | None = None,
    ) -> Register:
        """Create the tenant's register ``name`` with ``fields``; returns it loaded.

        Reference fields name their target register (of the same tenant; the register
        itself for a self-reference). ``date_field`` is what ``since()`` / ``until()`` use
        by default. Raises :class:`InvalidDefinition` when the name is taken.

        Example::

            customers = await Register.create("customers", tenant_id=org, fields=[
                Field("name", "text", required=True),
                Field("email", "email", unique=True),
            ])
        """
        register = cls(name, tenant_id=tenant_id, engine=engine)
        if label is not None and (not isinstance(label, str) or text_problem(label) is not None):
            raise InvalidDefinition(
                f"label must be a string (without NUL or lone surrogates) or None, got "
                f"{show(label, 80)}"
            )
        if isinstance(fields, (str, Field)) or not all(isinstance(f, Field) for f in fields):
            raise InvalidDefinition(
                f"fields must be a list of Field(...) definitions, got {show(fields, 80)}"
            )
        if search is None:
            search = SearchConfig()
        elif not isinstance(search, SearchConfig):
            raise InvalidDefinition(
                f"search takes a SearchConfig(fold_accents=...), got {show(search, 80)}"
            )
        names = [f.name for f in fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidDefinition(f"register {name!r} names field(s) twice: {duplicates}")
        FormulaFields(fields, name)  # formulas are checked before anything is stored
        if date_field is not None:
            dated = next((f for f in fields if f.name == date_field), None)
            if dated is None or dated.kind not in (FieldType.DATE, FieldType.DATETIME):
                raise InvalidDefinition(
                    f"date_field {date_field!r} must name a date or datetime field of "
                    f"register {name!r}"
                )
        bind = await register._bind()
        register_id = uuid7()
        try:
            async with bind.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO forktex_data.registers (id, tenant_id, name, label, "
                        "date_field, search) VALUES (:id, :t, :name, :label, :df, "
                        "CAST(:search AS jsonb))"
                    ),
                    {
                        "id": register_id,
                        "t": register.tenant_id,
                        "name": name,
                        "label": label,
                        "df": date_field,
                        "search": dumps(search.to_json()),
                    },
                )
                for f in fields:
                    await _evolve.insert_field(conn, register_id, register.tenant_id, name, f)
        except DBAPIError as exc:
            sqlstate, constraint, _ = pg_error(exc)
            if sqlstate == "23505" and constraint == "registers_tenant_name_key":
                raise InvalidDefinition(
                    f"register {name!r} already exists for this tenant; load it with "
                    "Register.load(...) or pick another name"
                ) from None
            raise
        await register.refresh()
        await _evolve.build_indexes(register._handle())
        return register

    @classmethod
    async def catalog(
        cls, *, tenant_id: uuid.UUID | str, engine: AsyncEngine | None = None
    ) -> list[Register]:
        """Every register of the tenant, loaded, by name.

        Example::

            names = [r.name for r in await Register.catalog(tenant_id=org)]
        """
        tenant = _tenant(tenant_id)
        probe = cls("catalog", tenant_id=tenant, engine=engine)
        bind = await probe._bind()
        async with bind.connect() as conn:
            names = (
                (
                    await conn.execute(
                        text(
                            "SELECT name FROM forktex_data.registers WHERE tenant_id = :t "
                            "ORDER BY name"
                        ),
                        {"t": tenant},
                    )
                )
                .scalars()
                .all()
            )
        registers = [cls(n, tenant_id=tenant, engine=engine) for n in names]
        for register in registers:
            await register.refresh()
        return registers

    # -- definition --------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The register's name (as loaded)."""
        return self._def.name if self._def is not None else self._name

    @property
    def tenant_id(self) -> uuid.UUID:
        """The tenant owning the register."""
        return self._tenant_id

    @property
    def loaded(self) -> bool:
        """Whether the definition has been fetched."""
        return self._def is not None

    def _loaded(self) -> Definition:
        if self._def is None:
            raise RegisterNotLoaded(
                f"register {self._name!r} is not loaded yet: use "
                f"'await Register.load({self._name!r}, tenant_id=...)' or run a query first"
            )
        return self._def

    @property
    def id(self) -> uuid.UUID:
        """The register's id (needs the definition loaded)."""
        return self._loaded().id

    @property
    def fields(self) -> tuple[Field, ...]:
        """The field definitions in order (needs the definition loaded)."""
        return self._loaded().fields

    @property
    def label(self) -> str | None:
        return self._loaded().label

    @property
    def date_field(self) -> str | None:
        """The default field of ``since()`` / ``until()``, if set."""
        return self._loaded().date_field

    @property
    def search_config(self) -> SearchConfig:
        """How the register's text is split into searchable words."""
        return self._loaded().search_config

    @property
    def version(self) -> int:
        """Bumped by every schema change."""
        return self._loaded().version

    @property
    def relationships(self) -> tuple[Field, ...]:
        """The reference fields (``target`` register, ``many`` for many-to-many)."""
        return tuple(f for f in self.fields if f.kind is FieldType.REFERENCE)

    def field(self, name: str) -> Field:
        """The field called ``name``; :class:`InvalidDefinition` lists the fields otherwise."""
        d = self._loaded()
        f = d.field(name)
        if f is None:
            raise InvalidDefinition(
                f"register {d.name!r} has no field {name!r}; fields: "
                f"{', '.join(repr(x.name) for x in d.fields) or '(none)'}"
            )
        return f

    def __repr__(self) -> str:
        state = "" if self.loaded else ", not loaded"
        return f"Register({self.name!r}, tenant_id={str(self._tenant_id)!r}{state})"

    async def _bind(self) -> AsyncEngine:
        engine = self._engine if self._engine is not None else get_engine()
        await init_schema(engine)
        return engine

    def _handle(self) -> _evolve.Handle:
        return _evolve.Handle(
            self.name, self._tenant_id, self._bind, self._definition, self.refresh, self._forget
        )

    def _forget(self) -> None:
        self._def = None

    async def _definition(self) -> Definition:
        if self._def is None:
            await self.refresh()
        assert self._def is not None
        return self._def

    async def refresh(self) -> Register:
        """Fetch the definition again (after another process changed it).

        Example::

            await invoices.refresh()
        """
        bind = await self._bind()
        async with self._lock, bind.connect() as conn:
            found = await load_definition(conn, self._tenant_id, name=self.name)
        if found is None:
            raise NotFound(
                f"register {self.name!r} does not exist for tenant {self._tenant_id}; "
                "create it with Register.create(...)"
            )
        self._def = found
        return self

    async def drop(self) -> None:
        """Delete the register with all its rows and fields. Raises
        :class:`ReferenceViolation` while another register's reference field targets it.

        Example::

            await scratch.drop()
        """
        await _evolve.drop_register(self._handle())

    # -- rows --------------------------------------------------------------------------

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[tuple[AsyncConnection, Definition]]:
        """A transaction with the register's version share-locked; retried once with a fresh
        definition when the register changed since it was loaded."""
        bind = await self._bind()
        for attempt in range(2):
            d = await self._definition()
            async with bind.begin() as conn:
                version = await lock_version(conn, d)
                if version is None:
                    raise NotFound(f"register {d.name!r} no longer exists for this tenant")
                if version == d.version:
                    yield conn, d
                    return
            if attempt == 0:
                await self.refresh()
        raise SchemaConflict(  # pragma: no cover - needs two schema changes in between
            f"register {self.name!r} keeps changing; retry the write"
        )

    async def insert(self, values: Mapping[str, Any], *, actor: Any = None) -> RowResult:
        """Insert one row (field name -> value; values are coerced per field type, defaults
        filled, required fields checked); returns it.

        Example::

            row = await invoices.insert({"number": "A-1", "amount": "120.00"}, actor=user_id)
        """
        return (await self.insert_many([values], actor=actor))[0]

    async def insert_many(
        self, rows: Sequence[Mapping[str, Any]], *, actor: Any = None
    ) -> list[RowResult]:
        """Insert rows in one transaction (all or nothing); returns them in order.
        ``actor`` (a user id or name) is recorded as the rows' ``created_by`` and
        ``updated_by``.

        Example::

            await invoices.insert_many([{"number": "A-2"}, {"number": "A-3"}])
        """
        if isinstance(rows, Mapping) or not isinstance(rows, (list, tuple)):
            raise InvalidValue(f"insert_many() takes a list of mappings, got {show(rows, 80)}")
        who = check_actor(actor)
        if not rows:
            return []
        async with self._writing() as (conn, current):
            return await _insert_pipelined(conn, current, rows, who)

    async def upsert(
        self, rows: Sequence[Mapping[str, Any]], *, on: str, actor: Any = None
    ) -> list[RowResult]:
        """Insert rows, or update the row whose unique field ``on`` already holds the
        row's value (only the given fields change); one transaction, results in order.
        Concurrent upserts of the same value make one row: the later one updates it.

        Example::

            await invoices.upsert([{"number": "A-1", "status": "paid"}], on="number")
        """
        if isinstance(rows, Mapping) or not isinstance(rows, (list, tuple)):
            raise InvalidValue(f"upsert() takes a list of mappings, got {show(rows, 80)}")
        who = check_actor(actor)
        d = await self._definition()
        _bulk.check_upsert_key(d, on)
        if not rows:
            return []
        async with self._writing() as (conn, current):
            key = _bulk.check_upsert_key(current, on)
            return await _bulk.upsert_rows(conn, current, key, rows, who)

    async def import_csv(
        self,
        source: ImportSource,
        *,
        batch_size: int = 1000,
        max_errors: int = 1000,
        max_record_chars: int = 1_000_000,
        actor: Any = None,
    ) -> ImportReport:
        """Stream a CSV file (header line of field names, UTF-8) into the register,
        ``batch_size`` rows per transaction. Bad rows are not written and are reported with
        their line number and reason; the good rows of their batch are written. See the
        README's *Bulk data* for cell formats.

        Example::

            report = await invoices.import_csv("invoices.csv", batch_size=500)
            for error in report.errors:
                print(error.line, error.reason)
        """
        return await self._import(
            csv_records, source, True, batch_size, max_errors, max_record_chars, actor
        )

    async def import_jsonl(
        self,
        source: ImportSource,
        *,
        batch_size: int = 1000,
        max_errors: int = 1000,
        max_record_chars: int = 1_000_000,
        actor: Any = None,
    ) -> ImportReport:
        """Stream JSON Lines (one JSON object of field name -> value per line) into the
        register, like :meth:`import_csv`.

        Example::

            report = await invoices.import_jsonl(chunks_from_upload)
        """
        return await self._import(
            jsonl_records, source, False, batch_size, max_errors, max_record_chars, actor
        )

    async def _import(
        self,
        reader: Any,
        source: ImportSource,
        csv_header: bool,
        batch_size: int,
        max_errors: int,
        max_record_chars: int,
        actor: Any,
    ) -> ImportReport:
        who = check_actor(actor)
        for name, value, low, high in (
            ("batch_size", batch_size, 1, 10_000),
            ("max_errors", max_errors, 0, 1_000_000),
            ("max_record_chars", max_record_chars, 1, 64 * 1024 * 1024),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidValue(
                    f"{name} must be an int from {low} to {high:,}, got {show(value)}"
                )
        d = await self._definition()

        async def write(batch: list[_bulk.ImportRow]) -> tuple[int, list[Any]]:
            check = False  # most batches are all good: checked only when one is not
            for _ in range(_bulk.RETRIES):
                try:
                    async with self._writing() as (conn, current):
                        if current.version != d.version:  # rows were coerced for the old fields
                            raise SchemaConflict(
                                f"register {d.name!r} changed during the import; the batches "
                                "before this one are written: import the rest again"
                            )
                        return await _bulk.write_batch(conn, current, batch, who, check=check)
                except _bulk.BatchRefused:
                    check = True  # rolled back: write it again, every row checked
                except _bulk.BatchRaced:
                    continue  # rolled back: check the batch again in a new transaction
            raise DataError(  # pragma: no cover - needs five concurrent races in a row
                f"an import batch into register {d.name!r} kept racing other writers"
            )

        return await _bulk.run_import(
            reader(source, max_record_chars=max_record_chars),
            d=d,
            csv_header=csv_header,
            write=write,
            batch_size=batch_size,
            max_errors=max_errors,
        )

    async def get(self, row_id: uuid.UUID | str) -> RowResult:
        """The row with this id (active or archived); :class:`NotFound` otherwise.

        Example::

            row = await invoices.get(row_id)
        """
        rid = _row_id(row_id)
        d = await self._definition()
        bind = await self._bind()
        async with bind.connect() as conn:
            row = await select_row(conn, d, rid)
        if row is None:
            raise NotFound(f"register {d.name!r} has no row {rid}")
        return row

    async def update(
        self, row_id: uuid.UUID | str, values: Mapping[str, Any], *, actor: Any = None
    ) -> RowResult:
        """Change some fields of a row (others keep their values; ``None`` clears a field);
        returns the updated row.

        Example::

            await invoices.update(row.id, {"status": "paid"}, actor=user_id)
        """
        who = check_actor(actor)
        rid = _row_id(row_id)
        d = await self._definition()
        d.info.coercer.build(values, register=d.name, partial=True)  # fail before I/O
        async with self._writing() as (conn, current):
            changed = current.info.coercer.build(values, register=d.name, partial=True)
            row = await select_row(conn, current, rid, for_update=True)
            if row is None:
                raise NotFound(f"register {current.name!r} has no row {rid}")
            return await update_row(conn, current, row, changed, who)

    async def archive(self, row_id: uuid.UUID | str) -> RowResult:
        """Soft-archive a row (queries skip it unless ``.archived()``); idempotent.

        Example::

            await invoices.archive(row.id)
        """
        return await self._set_archived(row_id, True)

    async def restore(self, row_id: uuid.UUID | str) -> RowResult:
        """Undo :meth:`archive`; idempotent.

        Example::

            await invoices.restore(row.id)
        """
        return await self._set_archived(row_id, False)

    async def _set_archived(self, row_id: uuid.UUID | str, archived: bool) -> RowResult:
        rid = _row_id(row_id)
        d = await self._definition()
        value = "COALESCE(r.archived_at, now())" if archived else "NULL"
        bind = await self._bind()
        async with bind.begin() as conn:
            record = (
                await conn.execute(
                    text(
                        f"UPDATE forktex_data.rows AS r SET archived_at = {value}, "
                        "updated_at = now() WHERE r.id = :id AND r.tenant_id = :t AND "
                        f"r.register_id = {register_literal(d.id)} RETURNING {ROW_COLUMNS}"
                    ),
                    {"id": rid, "t": d.tenant_id},
                )
            ).first()
        if record is None:
            raise NotFound(f"register {d.name!r} has no row {rid}")
        return decode_row(d, record)

    async def delete(self, row_id: uuid.UUID | str) -> None:
        """Hard-delete a row. Raises :class:`ReferenceViolation` while other rows reference
        it (remove those references first, or archive instead).

        Example::

            await invoices.delete(row.id)
        """
        rid = _row_id(row_id)
        d = await self._definition()
        try:
            # The register is share-locked like for any write (no schema change can claim
            # values of the row meanwhile), the row locked first (no update can add links).
            async with self._writing() as (conn, current):
                locked = await _lock_rows(conn, current, "r.id = :id", {"id": rid})
                deleted = await delete_locked(conn, current, locked)
        except DBAPIError as exc:
            raise await self._reference_error(exc, [rid]) from None
        if not deleted:
            raise NotFound(f"register {d.name!r} has no row {rid}")

    async def _reference_error(
        self, exc: DBAPIError, ids: Sequence[uuid.UUID]
    ) -> ReferenceViolation | DBAPIError:
        sqlstate, _, _ = pg_error(exc)
        if sqlstate != "23503":
            return exc
        bind = await self._bind()
        async with bind.connect() as conn:
            where = await referencing(conn, self._tenant_id, ids)
        return ReferenceViolation(
            f"cannot delete: row(s) of register {self.name!r} are still referenced by {where}; "
            "remove those references first, or archive instead"
        )

    # -- schema evolution ---------------------------------------------------------------

    async def add_field(self, field: Field) -> Register:
        """Add a field. Existing rows get its ``default`` (a required field needs one when
        the register has rows), their number (autonumber) or its formula's value (a row
        whose value the field cannot hold fails the change, naming the row). Unique /
        indexed fields get their constraint / index.

        Example::

            await invoices.add_field(Field("paid_on", "date"))
            await invoices.add_field(Field("gross", "decimal", formula="{net} * 1.19"))
        """
        await _evolve.add_field(self._handle(), field)
        return self

    async def rename_field(self, old: str, new: str) -> Register:
        """Rename a field (metadata only: stored values, indexes and links stay).

        Example::

            await invoices.rename_field("amount", "total")
        """
        await _evolve.rename_field(self._handle(), old, new)
        return self

    async def remove_field(self, name: str) -> Register:
        """Remove a field and its values from every row (one transaction).

        Example::

            await invoices.remove_field("legacy_code")
        """
        await _evolve.remove_field(self._handle(), name)
        return self

    async def change_field_type(
        self,
        name: str,
        new_type: FieldType | str,
        *,
        choices: Sequence[str] = (),
        target: str | None = None,
        many: bool = False,
        dry_run: bool = False,
    ) -> TypeChange:
        """Change a field's type, converting every row's value in one transaction. If any
        value cannot convert, :class:`ConversionFailed` lists them and nothing changes.

        The returned :class:`TypeChange` reports the values that lose information (the new
        value does not convert back, e.g. a datetime that becomes a date, or the change
        cannot be undone, e.g. a reference that becomes text). ``dry_run=True`` changes
        nothing and returns that report, failures included, so a UI can ask before
        converting.

        Example::

            report = await invoices.change_field_type("issued_at", "date", dry_run=True)
            if not report.failed and not report.lossy:
                await invoices.change_field_type("issued_at", "date")
            await invoices.change_field_type("status", "single_select", choices=("a", "b"))
        """
        return await _evolve.change_type(
            self._handle(),
            name,
            new_type,
            choices=tuple(choices),
            target=target,
            many=many,
            dry_run=dry_run,
        )

    async def set_indexed(self, name: str, indexed: bool = True) -> Register:
        """Build (``CREATE INDEX CONCURRENTLY``: writers are not blocked) or drop the
        expression index of a field; filters and sorts on it use the index.

        Example::

            await invoices.set_indexed("issued_at")
        """
        await _evolve.set_indexed(self._handle(), name, indexed)
        return self

    async def set_unique(self, name: str, unique: bool = True) -> Register:
        """Make a field unique (fails with :class:`UniqueViolation` if rows share a value)
        or drop the constraint.

        Example::

            await customers.set_unique("email")
        """
        await _evolve.set_unique(self._handle(), name, unique)
        return self

    async def set_required(self, name: str, required: bool = True) -> Register:
        """Make a field required (fails if rows have no value) or optional.

        Example::

            await invoices.set_required("number")
        """
        await _evolve.set_required(self._handle(), name, required)
        return self

    async def set_formula(self, name: str, formula: str) -> int:
        """Change the formula of formula field ``name`` and recompute it for every row, in
        one transaction (checked like a new formula first; a row whose result the field
        cannot hold fails the change, naming the row). Returns how many rows were
        recomputed.

        Example::

            await invoices.set_formula("gross", "round({net} * 1.21, 2)")
        """
        return await _evolve.set_formula(self._handle(), name, formula)

    async def set_search(self, config: SearchConfig) -> Register:
        """Change how the register's text is searched (e.g. fold accents) and rebuild every
        row's search words, in one transaction.

        Example::

            await recipes.set_search(SearchConfig(fold_accents=True))
        """
        await _evolve.set_search(self._handle(), config)
        return self

    # -- RegisterSource ------------------------------------------------------------------

    async def describe(self) -> RegisterInfo:
        return (await self._definition()).info

    async def fetch_rows(
        self,
        plan: QueryPlan,
        *,
        limit: int | None = None,
        offset: int = 0,
        after: tuple[Any, ...] | None = None,
    ) -> list[RowResult]:
        d = await self._definition()
        sql = select_sql(plan, d.id, d.tenant_id, limit=limit, offset=offset, after=after)
        bind = await self._bind()
        async with bind.connect() as conn:
            result = await conn.execute(_statement(sql.text), sql.params)
            return [decode_row(d, record) for record in result]

    async def count_rows(self, plan: QueryPlan) -> int:
        d = await self._definition()
        sql = Sql()
        where = where_sql(sql, plan, d.id, d.tenant_id)
        bind = await self._bind()
        async with bind.connect() as conn:
            result = await conn.execute(
                text(f"SELECT count(*) FROM forktex_data.rows r WHERE {where}"), sql.params
            )
            return int(result.scalar_one())

    async def facet_counts(self, plan: QueryPlan, field: Field, limit: int) -> list[FacetCount]:
        d = await self._definition()
        statement, params = facet_sql(plan, field, d.id, d.tenant_id, limit)
        bind = await self._bind()
        async with bind.connect() as conn:
            rows = await conn.execute(text(statement), params)
            return [FacetCount(_facet_value(field, row.v), int(row.n)) for row in rows]

    async def facet_counts_together(
        self, plan: QueryPlan, fields: Sequence[Field], limit: int
    ) -> dict[str, list[FacetCount]]:
        """:meth:`facet_counts` of several fields: the fields of few values (selects,
        booleans) counted together in one scan of the rows, the others one by one."""
        d = await self._definition()
        joint = joint_facets(fields)
        result: dict[str, list[FacetCount]] = {f.name: [] for f in joint}
        if joint:
            sql = joint_facet_sql(plan, joint, d.id, d.tenant_id, limit)
            # GROUPING(g0, g1, ...) of the set grouped by field i alone: every other bit set
            every = (1 << len(joint)) - 1
            owner = {every ^ (1 << (len(joint) - 1 - i)): i for i in range(len(joint))}
            bind = await self._bind()
            async with bind.connect() as conn:
                if _whole(plan):
                    await conn.execute(_NO_JIT)
                for row in await conn.execute(text(sql.text), sql.params):
                    i = owner[row.s]
                    f = joint[i]
                    result[f.name].append(FacetCount(_facet_value(f, row[1 + i]), int(row.n)))
        for f in fields:
            if f.name not in result:
                result[f.name] = await self.facet_counts(plan, f, limit)
        return {f.name: result[f.name] for f in fields}

    async def aggregate_rows(
        self,
        plan: QueryPlan,
        groups: Sequence[Field],
        specs: Sequence[AggregateSpec],
        limit: int,
    ) -> list[AggregateRow]:
        """Aggregates per group, computed by Postgres (see ``RowQuery.aggregate``)."""
        d = await self._definition()
        sql = aggregate_sql(plan, groups, specs, d.id, d.tenant_id, limit)
        bind = await self._bind()
        async with bind.connect() as conn:
            if _whole(plan):
                await conn.execute(_NO_JIT)
            found = (await conn.execute(text(sql.text), sql.params)).all()
        result = []
        for row in found:
            group = {f.name: _facet_value(f, row[i]) for i, f in enumerate(groups)}
            values = {}
            for j, spec in enumerate(specs):
                raw = row[len(groups) + 2 * j]
                if spec.field is not None and spec.function in ("min", "max"):
                    raw = _facet_value(spec.field, raw)
                count = row[len(groups) + 2 * j + 1]
                values[spec.name] = finish(spec, raw, None if count is None else int(count))
            result.append(AggregateRow(group=group, values=values))
        return result

    async def archive_rows(self, plan: QueryPlan, archived: bool) -> int:
        d = await self._definition()
        sql = Sql()
        where = where_sql(sql, plan, d.id, d.tenant_id)
        value = "now()" if archived else "NULL"
        bind = await self._bind()
        async with bind.begin() as conn:
            result = await conn.execute(
                text(
                    f"UPDATE forktex_data.rows AS r SET archived_at = {value}, "
                    f"updated_at = now() WHERE {where}"
                ),
                sql.params,
            )
            return int(result.rowcount)

    async def update_rows(
        self, plan: QueryPlan, values: Mapping[str, Any], *, actor: Any = None
    ) -> int:
        """Change the given fields of every matching row (coerced and validated like
        :meth:`update`), in one transaction; returns how many rows changed."""
        who = check_actor(actor)
        d = await self._definition()
        changed = d.info.coercer.build(values, register=d.name, partial=True)
        sql = Sql()
        where = where_sql(sql, plan, d.id, d.tenant_id)
        async with self._writing() as (conn, current):
            if current is not d:  # the plan was validated against the old definition
                raise SchemaConflict(
                    f"register {d.name!r} changed while updating; run the query again"
                )
            ids = await _lock_rows(conn, d, where, sql.params)
            for start in range(0, len(ids), _bulk.REWRITE_CHUNK):
                rows = await _bulk.locked_rows(conn, d, ids[start : start + _bulk.REWRITE_CHUNK])
                await _bulk.rewrite_rows(conn, d, rows, [changed] * len(rows), who)
            return len(ids)

    async def delete_rows(self, plan: QueryPlan) -> int:
        d = await self._definition()
        sql = Sql()
        where = where_sql(sql, plan, d.id, d.tenant_id)
        ids: list[uuid.UUID] = []
        try:
            async with self._writing() as (conn, current):
                if current is not d:  # the plan was validated against the old definition
                    raise SchemaConflict(
                        f"register {d.name!r} changed while deleting; run the query again"
                    )
                ids = await _lock_rows(conn, d, where, sql.params)
                return await delete_locked(conn, d, ids)
        except DBAPIError as exc:
            raise await self._reference_error(exc, ids) from None

    async def _target(self, field: Field) -> Register | None:
        """The register a reference field points to (``None``: gone)."""
        d = await self._definition()
        target_id = d.targets.get(field.key)
        if target_id is None:
            return None
        target = self._target_cache.get(target_id)
        if target is None or target._def is None:
            bind = await self._bind()
            async with bind.connect() as conn:
                found = await load_definition(conn, self._tenant_id, register_id=target_id)
            if found is None:
                return None
            target = Register(found.name, tenant_id=self._tenant_id, engine=self._engine,
                              _definition=found)  # fmt: skip
            self._target_cache[target_id] = target
        return target

    async def describe_target(self, field: Field) -> RegisterInfo:
        """The register a reference field points to (for filters on its fields)."""
        target = await self._target(field)
        if target is None:
            raise NotFound(f"the target register {field.target!r} of {field.name!r} is gone")
        await target.refresh()  # the filter compiles to its fields' current storage keys
        return await target.describe()

    async def fetch_targets(
        self, field: Field, ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, RowResult]:
        if not ids:
            return {}
        target = await self._target(field)
        if target is None:
            return {}
        td = await target._definition()
        bind = await self._bind()
        async with bind.connect() as conn:
            result = await conn.execute(
                text(
                    f"SELECT {ROW_COLUMNS} FROM forktex_data.rows r WHERE "
                    f"r.register_id = {register_literal(td.id)} AND r.tenant_id = :t "
                    "AND r.id = ANY(:ids)"
                ),
                {"t": td.tenant_id, "ids": list(ids)},
            )
            return {record.id: decode_row(td, record) for record in result}


async def _lock_rows(
    conn: AsyncConnection, d: Definition, where: str, params: Mapping[str, Any]
) -> list[uuid.UUID]:
    """Ids of the register's rows matching ``where``, locked ``FOR UPDATE``."""
    result = await conn.execute(
        text(
            f"SELECT r.id FROM forktex_data.rows r WHERE {where} "
            f"AND r.register_id = {register_literal(d.id)} AND r.tenant_id = :lock_t "
            "FOR UPDATE"
        ),
        {**params, "lock_t": d.tenant_id},
    )
    return list(result.scalars().all())


async def _insert_pipelined(
    conn: AsyncConnection, d: Definition, rows: Sequence[Mapping[str, Any]], actor: str | None
) -> list[RowResult]:
    """Insert in chunks (:func:`chunk_size`), coercing and encoding the next chunk in
    Python while Postgres writes the previous one (same transaction: all or nothing)."""
    done: list[RowResult] = []
    pending: asyncio.Task[list[RowResult]] | None = None
    numbered: list[dict[str, Any]] | None = None
    if any(f.autonumber for f in d.fields):  # numbers are taken before the first chunk
        numbered = [d.info.coercer.build(r, register=d.name) for r in rows]
        await number_rows(conn, d, numbered)
    try:
        size = chunk_size(len(rows))
        for start in range(0, len(rows), size):
            chunk = (
                numbered[start : start + size]
                if numbered is not None
                else [d.info.coercer.build(r, register=d.name) for r in rows[start : start + size]]
            )
            prepared = prepare_rows(d, chunk)
            if pending is not None:
                done += await pending
            pending = asyncio.ensure_future(insert_prepared(conn, d, prepared, actor))
            await asyncio.sleep(0)  # hand the statement to the driver before the next chunk
        if pending is not None:
            done += await pending
            pending = None
    finally:
        if pending is not None:  # an error while preparing: let the statement finish first
            with contextlib.suppress(BaseException):
                await pending
    return done


_NO_JIT = text("SET LOCAL jit = off")
"""Run, in its transaction, before an aggregate or a joint facet count that reads a whole
register. Over a large register their estimated cost passes ``jit_above_cost`` and
Postgres compiles their expressions in every process (30 ms each at 1,000,000 rows, where
the group-by of tools/bench/data_scale.py ran 5-10% faster without): such a statement
spends its time reading JSONB documents, not evaluating expressions. Filtered ones rarely
reach the threshold and are spared the extra round trip."""


def _whole(plan: QueryPlan) -> bool:
    """Whether ``plan`` reads every row of the register (no filter, no search)."""
    return not plan.conditions and plan.search is None


@functools.lru_cache(maxsize=1024)
def _statement(sql: str) -> TextClause:
    """``text(sql)``, parsed once per distinct query shape."""
    return text(sql)


def _facet_value(f: Field, value: Any) -> Any:
    if value is None:
        return value
    if f.kind is FieldType.DECIMAL:
        return coerce(f, value)
    if f.kind in (FieldType.DATE, FieldType.DATETIME) and f.key[:1] != "$":
        return from_json(f, value)
    return value


def _row_id(value: Any) -> uuid.UUID:
    rid = as_row_id(value)
    if rid is None or isinstance(value, bool):
        raise InvalidValue(f"row id must be a UUID (or its string form), got {show(value, 80)}")
    return rid
