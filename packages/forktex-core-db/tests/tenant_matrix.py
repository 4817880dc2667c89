# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The tenant-guard matrix: statement form x operation, run as tenant A and with no scope.

Each cell is one way of reading or writing org-scoped rows (ORM, Core on ``__table__``,
``table()``, aliases, joins, subqueries, CTEs, ``exists``, ``from_statement``, raw text,
relationship loads, identity-map hits, executemany, upserts, flushes, DDL, ...). The seed
holds rows of org A and org B; B's values are recognisable (``B-`` numbers, amounts from
7001, ``b-`` notes, B's ids).

:func:`run_matrix` runs every cell twice in a fresh session and transaction:

* inside ``tenant_scope(A)``: the cell must end as declared — ``filtered`` (it runs and its
  result holds nothing of B), ``confined`` (a write that runs and changes only A's rows) or
  ``refused`` (``TenantViolation``);
* with no scope: every cell touching an org-scoped table must be refused; control cells
  (no org-scoped table) must run;

and afterwards the database itself is read back (in the same transaction, on the raw
connection) and B's rows — with no scope: every row — must be exactly as seeded. The
transaction is then rolled back. It returns the list of failures, so a test can also check
that disabling any single piece of the guard makes the matrix fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    DDL,
    ForeignKey,
    Integer,
    String,
    bindparam,
    column,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    table,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import (
    Mapped,
    aliased,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
    subqueryload,
)

from forktex_core.db import (
    BaseDBModel,
    ForktexSession,
    NotFound,
    OrgScopedMixin,
    Repository,
    TenantViolation,
    tenant_scope,
    unscoped,
)
from forktex_core.db._sqlguard import ORG_PARAM

ORG_A = uuid.UUID("0190f5c4-0000-7000-8000-0000000000aa")
ORG_B = uuid.UUID("0190f5c4-0000-7000-8000-0000000000bb")
SCHEMA = "mx_tenant"


class MxInvoice(OrgScopedMixin, BaseDBModel):
    __tablename__ = "mx_invoice"
    __filter_fields__ = ("number", "amount")
    __sort_fields__ = ("number",)
    number: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int]
    lines: Mapped[list[MxLine]] = relationship(back_populates="invoice", lazy="select")


class MxLine(OrgScopedMixin, BaseDBModel):
    __tablename__ = "mx_line"
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mx_invoice.id"))
    note: Mapped[str] = mapped_column(String(20))
    invoice: Mapped[MxInvoice] = relationship(back_populates="lines")


class MxPlain(BaseDBModel):
    """Not org-scoped: joins against it and control cells."""

    __tablename__ = "mx_plain"
    title: Mapped[str] = mapped_column(String(20))


class MxDoc(OrgScopedMixin, BaseDBModel):
    """An org-scoped table in its own schema (schema-qualified rendering)."""

    __tablename__ = "mx_doc"
    __table_args__ = {"schema": SCHEMA}  # noqa: RUF012 - read by SQLAlchemy
    title: Mapped[str] = mapped_column(String(20))


class MxAsset(OrgScopedMixin, BaseDBModel):
    """Joined-table inheritance: ``mx_vehicle`` has no org_id of its own."""

    __tablename__ = "mx_asset"
    kind: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(20))
    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "asset"}  # noqa: RUF012


class MxVehicle(MxAsset):
    __tablename__ = "mx_vehicle"
    id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mx_asset.id"), primary_key=True)
    plate: Mapped[str] = mapped_column(String(20))
    wheels: Mapped[int] = mapped_column(Integer, default=4)
    __mapper_args__ = {"polymorphic_identity": "vehicle"}  # noqa: RUF012


MODELS: tuple[Any, ...] = (MxInvoice, MxLine, MxPlain, MxDoc, MxAsset, MxVehicle)
ORG_TABLES = (MxInvoice, MxLine, MxDoc, MxAsset)


@dataclass
class Seed:
    """Ids of the seeded rows and the values that only B's rows hold."""

    a_inv: uuid.UUID
    a_inv2: uuid.UUID
    b_inv: uuid.UUID
    a_line: uuid.UUID
    b_line: uuid.UUID
    b_line_on_a: uuid.UUID  # a line of org B attached to A's invoice (cross-org reference)
    a_line_on_b: uuid.UUID  # a line of org A attached to B's invoice
    b_doc: uuid.UUID
    b_vehicle: uuid.UUID
    b_plain: uuid.UUID
    b_values: set[Any] = field(default_factory=set)


async def create_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        tables = [m.__table__ for m in MODELS]
        await conn.run_sync(lambda sync: BaseDBModel.metadata.create_all(sync, tables=tables))
        names = ", ".join(t.fullname for t in tables)
        await conn.exec_driver_sql(f"TRUNCATE {names} CASCADE")


async def seed(engine: AsyncEngine) -> Seed:
    maker = async_sessionmaker(engine, sync_session_class=ForktexSession, expire_on_commit=False)
    with unscoped():
        async with maker() as session, session.begin():
            a1 = MxInvoice(org_id=ORG_A, number="A-1", amount=10)
            a2 = MxInvoice(org_id=ORG_A, number="A-2", amount=20)
            b1 = MxInvoice(org_id=ORG_B, number="B-1", amount=7001)
            session.add_all([a1, a2, b1])
            await session.flush()
            a_line = MxLine(org_id=ORG_A, invoice_id=a1.id, note="a-line")
            b_line = MxLine(org_id=ORG_B, invoice_id=b1.id, note="b-line")
            b_on_a = MxLine(org_id=ORG_B, invoice_id=a1.id, note="b-on-a")
            a_on_b = MxLine(org_id=ORG_A, invoice_id=b1.id, note="a-on-b")
            b_doc = MxDoc(org_id=ORG_B, title="b-doc")
            b_vehicle = MxVehicle(org_id=ORG_B, label="b-van", plate="b-plate", wheels=7006)
            session.add_all([a_line, b_line, b_on_a, a_on_b, b_doc, b_vehicle])
            b_plain = MxPlain(title="B-1")
            session.add_all(
                [
                    MxDoc(org_id=ORG_A, title="a-doc"),
                    MxVehicle(org_id=ORG_A, label="a-van", plate="a-plate", wheels=4),
                    MxPlain(title="A-1"),
                    b_plain,
                ]
            )
    found = Seed(
        a_inv=a1.id,
        a_inv2=a2.id,
        b_inv=b1.id,
        a_line=a_line.id,
        b_line=b_line.id,
        b_line_on_a=b_on_a.id,
        a_line_on_b=a_on_b.id,
        b_doc=b_doc.id,
        b_vehicle=b_vehicle.id,
        b_plain=b_plain.id,
    )
    found.b_values = {
        ORG_B,
        b1.id,
        b_line.id,
        b_on_a.id,
        b_doc.id,
        b_vehicle.id,
        "B-1",
        7001,
        "b-line",
        "b-on-a",
        "b-doc",
        "b-van",
        "b-plate",
        7006,
    }
    return found


async def snapshot(
    conn: Any, only_org: uuid.UUID | None, b_plain: uuid.UUID | None = None
) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of the org-scoped tables (only ``only_org``'s when given), read on the raw
    connection (no guard), plus the plain table (only row ``b_plain`` when given)."""
    result: dict[str, set[tuple[Any, ...]]] = {}
    for model in ORG_TABLES:
        t = model.__table__
        stmt = select(t)
        if only_org is not None:
            stmt = stmt.where(t.c.org_id == only_org)
        result[t.fullname] = {tuple(r) for r in (await conn.execute(stmt)).all()}
    vehicles = MxVehicle.__table__
    assets = MxAsset.__table__
    stmt = select(vehicles).join(assets, assets.c.id == vehicles.c.id)
    if only_org is not None:
        stmt = stmt.where(assets.c.org_id == only_org)
    result["mx_vehicle"] = {tuple(r) for r in (await conn.execute(stmt)).all()}
    plain = MxPlain.__table__
    stmt = select(plain) if b_plain is None else select(plain).where(plain.c.id == b_plain)
    result["mx_plain"] = {tuple(r) for r in (await conn.execute(stmt)).all()}
    return result


def _values(obj: Any, out: set[Any], depth: int = 0) -> None:
    if depth > 6:
        return
    if isinstance(obj, (list, tuple, set, frozenset)) or type(obj).__name__ == "Row":
        for item in obj:
            _values(item, out, depth + 1)
    elif isinstance(obj, dict):
        for item in obj.values():
            _values(item, out, depth + 1)
    elif hasattr(obj, "__dict__") and hasattr(obj, "_sa_instance_state"):
        for key, item in obj.__dict__.items():
            if not key.startswith("_"):
                _values(item, out, depth + 1)
    else:
        try:
            hash(obj)
        except TypeError:
            return
        out.add(obj)


def no_b_values(result: Any, s: Seed) -> bool:
    found: set[Any] = set()
    _values(result, found)
    return not (found & s.b_values)


Run = Callable[[AsyncSession, Seed], Awaitable[Any]]


@dataclass(frozen=True)
class Cell:
    """One statement form x operation (cells that must be refused select columns, not
    entities: loading another org's entity would also trip the load-time check, which
    would hide a missing refusal). ``in_scope``: what must happen inside
    ``tenant_scope(A)``: ``filtered`` / ``confined`` / ``refused``, or ``hidden`` (SQLAlchemy's
    ObjectDeletedError: the session cannot see the row). ``check``: for cells that
    run, whether the result is right (default: it holds none of B's values). ``prepare``
    runs first in the same session, unscoped (e.g. loads B's rows into the identity map)."""

    form: str
    op: str
    run: Run
    in_scope: str
    check: Callable[[Any, Seed], bool] = no_b_values
    prepare: Run | None = None
    touches_org: bool = True

    @property
    def name(self) -> str:
        return f"{self.form}/{self.op}"


async def _all(session: AsyncSession, stmt: Any, params: Any = None) -> list[Any]:
    result = await session.execute(stmt, params)
    return list(result.unique().all())


async def _load_b(session: AsyncSession, s: Seed) -> Any:
    return await session.get(MxInvoice, s.b_inv)


async def _load_b_line(session: AsyncSession, s: Seed) -> Any:
    return await session.get(MxLine, s.b_line)


async def _load_a_line_on_b_and_b(session: AsyncSession, s: Seed) -> Any:
    line = await session.get(MxLine, s.a_line_on_b)
    await session.get(MxInvoice, s.b_inv)
    return line


def _any(result: Any, s: Seed) -> bool:
    return True


def _only_a_notes(rows: Any, s: Seed) -> bool:
    return {r[1] for r in rows} <= {"a-line", "a-on-b"}


def _recursive_cte(s: Seed) -> Any:
    walk = select(INV.c.id, INV.c.amount).cte("walk", recursive=True)
    step = select(INV.c.id, INV.c.amount).join(walk, walk.c.id == INV.c.id).where(INV.c.amount < 0)
    return select(walk.union_all(step))


def _lateral(s: Seed) -> Any:
    notes = select(MxLine.note).where(MxLine.note != MxPlain.title).lateral()
    return select(MxPlain.title, notes.c.note).join(notes, true())


def _eq(expected: Any) -> Callable[[Any, Seed], bool]:
    return lambda result, s: result == expected


def _rows(stmt: Any, params: Any = None) -> Run:
    return lambda session, s: _all(session, stmt, params)


def _rows_of(build: Callable[[Seed], Any], params: Any = None) -> Run:
    return lambda session, s: _all(session, build(s), params)


async def _scalar(session: AsyncSession, stmt: Any) -> Any:
    return (await session.execute(stmt)).scalar()


INV = MxInvoice.__table__
LINE = MxLine.__table__
LIGHT_INV = table("mx_invoice", column("number"), column("amount"))


async def _get_b(session: AsyncSession, s: Seed) -> Any:
    return await session.get(MxInvoice, s.b_inv)


async def _lazy_lines(session: AsyncSession, s: Seed) -> Any:
    inv = await session.get(MxInvoice, s.a_inv)
    assert inv is not None
    lines = await session.run_sync(lambda sync: list(sync.get(MxInvoice, s.a_inv).lines))
    return [(line.id, line.note) for line in lines]


async def _lazy_many_to_one(session: AsyncSession, s: Seed) -> Any:
    line = await session.get(MxLine, s.a_line_on_b)
    assert line is not None
    return await session.run_sync(lambda sync: sync.get(MxLine, s.a_line_on_b).invoice)


async def _expired_attribute(session: AsyncSession, s: Seed) -> Any:
    def read(sync: Any) -> Any:
        obj = sync.identity_map.get(sync.identity_key(MxInvoice, s.b_inv))
        sync.expire(obj)
        return obj.amount

    return await session.run_sync(read)


async def _repo_list(session: AsyncSession, s: Seed) -> Any:
    return (await Repository(session, MxInvoice).list()).items


async def _repo_count(session: AsyncSession, s: Seed) -> Any:
    return await Repository(session, MxInvoice).count()


async def _repo_exists_b(session: AsyncSession, s: Seed) -> Any:
    return await Repository(session, MxInvoice).exists(filters={"number": "B-1"})


async def _repo_get_b(session: AsyncSession, s: Seed) -> Any:
    try:
        return await Repository(session, MxInvoice).get(s.b_inv)
    except NotFound:
        return None


async def _repo_scroll(session: AsyncSession, s: Seed) -> Any:
    return (await Repository(session, MxInvoice).scroll(sort=["number"])).items


async def _repo_create_b(session: AsyncSession, s: Seed) -> Any:
    return await Repository(session, MxInvoice).create(org_id=ORG_B, number="X", amount=1)


async def _repo_update_b(session: AsyncSession, s: Seed) -> Any:
    try:
        return await Repository(session, MxInvoice).update(s.b_inv, amount=1)
    except NotFound:
        return None


async def _repo_delete_b(session: AsyncSession, s: Seed) -> Any:
    try:
        return await Repository(session, MxLine).delete(s.b_line)
    except NotFound:
        return None


async def _exec(session: AsyncSession, stmt: Any, params: Any = None) -> Any:
    result = await session.execute(stmt, params)
    return getattr(result, "rowcount", None)


def _do(build: Callable[[Seed], Any], params: Callable[[Seed], Any] | None = None) -> Run:
    return lambda session, s: _exec(session, build(s), params(s) if params else None)


async def _flush_add_b(session: AsyncSession, s: Seed) -> Any:
    session.add(MxInvoice(org_id=ORG_B, number="X", amount=1))
    await session.flush()


async def _flush_add_no_org(session: AsyncSession, s: Seed) -> Any:
    doc = MxInvoice(number="A-new", amount=3)
    session.add(doc)
    await session.flush()
    return doc.org_id


async def _flush_update_b(session: AsyncSession, s: Seed) -> Any:
    obj = session.sync_session.identity_map.get(
        session.sync_session.identity_key(MxInvoice, s.b_inv)
    )
    obj.amount = 1
    await session.flush()


async def _flush_delete_b(session: AsyncSession, s: Seed) -> Any:
    obj = session.sync_session.identity_map.get(session.sync_session.identity_key(MxLine, s.b_line))
    await session.delete(obj)
    await session.flush()


async def _flush_move_a_to_b(session: AsyncSession, s: Seed) -> Any:
    obj = await session.get(MxInvoice, s.a_inv2)
    assert obj is not None
    obj.org_id = ORG_B
    await session.flush()


async def _legacy_bulk_update(session: AsyncSession, s: Seed) -> Any:
    rows = [{"id": s.b_inv, "amount": 777}]
    await session.run_sync(lambda sync: sync.bulk_update_mappings(MxInvoice, rows))


async def _legacy_bulk_insert(session: AsyncSession, s: Seed) -> Any:
    rows = [{"org_id": ORG_B, "number": "X", "amount": 1}]
    await session.run_sync(lambda sync: sync.bulk_insert_mappings(MxInvoice, rows))


async def _legacy_bulk_save(session: AsyncSession, s: Seed) -> Any:
    objects = [MxInvoice(org_id=ORG_B, number="X", amount=1)]
    await session.run_sync(lambda sync: sync.bulk_save_objects(objects))


async def _orm_update_keeps_b_in_memory(session: AsyncSession, s: Seed) -> Any:
    await session.execute(update(MxInvoice).values(amount=5))
    obj = session.sync_session.identity_map.get(
        session.sync_session.identity_key(MxInvoice, s.b_inv)
    )
    return obj.amount if obj is not None else None


async def _merge_b(session: AsyncSession, s: Seed) -> Any:
    merged = await session.merge(MxInvoice(id=s.b_inv, org_id=ORG_A, number="A-x", amount=1))
    await session.flush()
    return merged


def _upsert_b(s: Seed) -> Any:
    stmt = pg_insert(MxInvoice).values(id=s.b_inv, org_id=ORG_A, number="A-up", amount=777)
    return stmt.on_conflict_do_update(index_elements=["id"], set_={"amount": 777})


def _upsert_core_b(s: Seed) -> Any:
    stmt = pg_insert(INV).values(id=s.b_inv, org_id=ORG_A, number="A-up", amount=777)
    return stmt.on_conflict_do_update(
        index_elements=["id"], set_={"amount": stmt.excluded.amount, "number": "A-up"}
    )


def _upsert_set_org(s: Seed) -> Any:
    stmt = pg_insert(MxInvoice).values(id=s.a_inv2, org_id=ORG_A, number="A-2", amount=1)
    return stmt.on_conflict_do_update(index_elements=["id"], set_={"org_id": ORG_B})


def _upsert_many(s: Seed) -> Any:
    stmt = pg_insert(MxInvoice)
    return stmt.on_conflict_do_update(index_elements=["id"], set_={"amount": stmt.excluded.amount})


def _cte_insert_b(s: Seed) -> Any:
    cte = insert(INV).values(org_id=ORG_B, number="X", amount=1).returning(INV.c.id).cte()
    return select(cte)


def _cte_insert_a(s: Seed) -> Any:
    cte = insert(INV).values(org_id=ORG_A, number="Y", amount=1).returning(INV.c.id).cte()
    return select(cte)


def _cte_update_org(s: Seed) -> Any:
    cte = update(INV).values(org_id=ORG_A).returning(INV.c.id).cte()
    return select(cte)


def _cte_update_all(s: Seed) -> Any:
    cte = update(INV).values(amount=778).returning(INV.c.id).cte()
    return select(cte)


CELLS: tuple[Cell, ...] = (
    # -- reads: ORM ------------------------------------------------------------------
    Cell("orm select", "all rows", _rows(select(MxInvoice)), "filtered"),
    Cell(
        "orm select",
        "where id = B's",
        _rows_of(lambda s: select(MxInvoice).where(MxInvoice.id == s.b_inv)),
        "filtered",
        _eq([]),
    ),
    Cell(
        "orm select", "columns only", _rows(select(MxInvoice.number, MxInvoice.amount)), "filtered"
    ),
    Cell(
        "orm select",
        "count(*) select_from",
        lambda session, s: _scalar(session, select(func.count()).select_from(MxInvoice)),
        "filtered",
        _eq(2),
    ),
    Cell(
        "orm select",
        "FROM implied by WHERE",
        lambda session, s: _scalar(session, select(func.count()).where(MxInvoice.number == "B-1")),
        "filtered",
        _eq(0),
    ),
    Cell("orm select", "aliased entity", _rows(select(aliased(MxInvoice))), "filtered"),
    Cell(
        "orm select",
        "with_for_update",
        _rows(select(MxInvoice).with_for_update(of=MxInvoice)),
        "filtered",
    ),
    Cell("orm get", "B's primary key", _get_b, "filtered", _eq(None)),
    Cell(
        "orm get",
        "B's row already in the identity map",
        _get_b,
        "filtered",
        _eq(None),
        prepare=_load_b,
    ),
    Cell(
        "orm get",
        "expired attribute of B's row",
        _expired_attribute,
        "hidden",
        prepare=_load_b,
    ),
    Cell(
        "orm select",
        "param overriding the guard's org",
        _rows(select(MxInvoice.number), {ORG_PARAM: ORG_B}),
        "refused",
    ),
    Cell(
        "orm select",
        "bindparam named like the guard's org",
        _rows(select(MxInvoice.number).where(MxInvoice.org_id == bindparam(ORG_PARAM, ORG_B))),
        "refused",
    ),
    # -- reads: Core on the table ------------------------------------------------------
    Cell("core select", "Model.__table__", _rows(select(INV)), "filtered"),
    Cell("core select", "table() by name", _rows(select(LIGHT_INV)), "filtered"),
    Cell("core select", "table alias", _rows(select(INV.alias())), "filtered"),
    Cell(
        "core select",
        "count(*) over the table",
        lambda session, s: _scalar(session, select(func.count()).select_from(INV)),
        "filtered",
        _eq(2),
    ),
    Cell(
        "core select",
        "schema-qualified table",
        _rows(select(MxDoc.__table__)),
        "filtered",
    ),
    Cell("orm select", "schema-qualified model", _rows(select(MxDoc)), "filtered"),
    # -- exists / subqueries / CTEs / set operations -----------------------------------
    Cell(
        "exists",
        "exists().where(column)",
        lambda session, s: _scalar(session, select(exists().where(MxInvoice.number == "B-1"))),
        "filtered",
        _eq(False),
    ),
    Cell(
        "exists",
        "exists(select(Model))",
        lambda session, s: _scalar(
            session, select(exists(select(MxInvoice).where(MxInvoice.number == "B-1")))
        ),
        "filtered",
        _eq(False),
    ),
    Cell(
        "exists",
        "exists on the Core table",
        lambda session, s: _scalar(session, select(exists().where(INV.c.amount > 7000))),
        "filtered",
        _eq(False),
    ),
    Cell(
        "subquery",
        "scalar subquery",
        lambda session, s: _scalar(
            session, select(select(func.sum(MxInvoice.amount)).scalar_subquery())
        ),
        "filtered",
        _eq(30),
    ),
    Cell("subquery", "FROM subquery", _rows(select(select(INV).subquery())), "filtered"),
    Cell("cte", "select from CTE", _rows(select(select(MxInvoice).cte())), "filtered"),
    Cell("cte", "recursive CTE", _rows_of(_recursive_cte), "filtered"),
    Cell(
        "set operation",
        "union of ORM and Core",
        _rows(select(MxInvoice.number).union_all(select(INV.c.number), select(LIGHT_INV.c.number))),
        "filtered",
    ),
    Cell("lateral", "LATERAL subquery", _rows_of(_lateral), "filtered", _only_a_notes),
    # -- joins ------------------------------------------------------------------------
    Cell("join", "ORM relationship join", _rows(select(MxLine).join(MxLine.invoice)), "filtered"),
    Cell(
        "join",
        "outer join from a plain table",
        _rows(
            select(MxPlain.title, MxInvoice.number, MxInvoice.amount).outerjoin(
                MxInvoice, MxInvoice.number == MxPlain.title
            )
        ),
        "filtered",
        lambda rows, s: sorted(tuple(r) for r in rows) == [("A-1", "A-1", 10), ("B-1", None, None)],
    ),
    Cell(
        "join",
        "Core join of tables",
        _rows(select(LINE.c.note, INV.c.number).select_from(LINE.join(INV))),
        "filtered",
    ),
    Cell(
        "join",
        "joined inheritance (ORM)",
        _rows(select(MxVehicle)),
        "filtered",
    ),
    Cell(
        "join",
        "joined-inheritance table alone",
        _rows(select(MxVehicle.__table__)),
        "filtered",
    ),
    # -- from_statement / raw SQL -------------------------------------------------------
    Cell(
        "from_statement",
        "select(Model).from_statement(select(table))",
        _rows(select(MxInvoice).from_statement(select(INV))),
        "filtered",
    ),
    Cell(
        "from_statement",
        "from_statement(text)",
        _rows(select(MxInvoice).from_statement(text("SELECT * FROM mx_invoice"))),
        "refused",
    ),
    Cell(
        "text", "SELECT naming the table", _rows(text("SELECT number FROM mx_invoice")), "refused"
    ),
    Cell(
        "text",
        "quoted, upper-case name",
        _rows(text('SELECT number FROM "MX_INVOICE"')),
        "refused",
    ),
    Cell(
        "text",
        "text FROM clause",
        _rows(select(text("*")).select_from(text("mx_invoice"))),
        "refused",
    ),
    Cell(
        "text",
        "literal_column subquery",
        _rows(select(literal_column("(SELECT max(amount) FROM mx_invoice)"))),
        "refused",
    ),
    Cell(
        "text",
        "statement hint",
        _rows(select(MxPlain.title).with_statement_hint("UNION SELECT number FROM mx_invoice")),
        "refused",
    ),
    Cell(
        "text",
        "prefix_with",
        _rows(select(MxPlain.title).prefix_with("/* mx_invoice */")),
        "refused",
    ),
    # -- relationship loads -------------------------------------------------------------
    Cell("relationship", "lazy collection", _lazy_lines, "filtered"),
    Cell(
        "relationship",
        "lazy many-to-one from the identity map",
        _lazy_many_to_one,
        "filtered",
        _eq(None),
        prepare=_load_a_line_on_b_and_b,
    ),
    Cell(
        "relationship",
        "selectinload",
        _rows(select(MxInvoice).options(selectinload(MxInvoice.lines))),
        "filtered",
    ),
    Cell(
        "relationship",
        "joinedload",
        _rows(select(MxInvoice).options(joinedload(MxInvoice.lines))),
        "filtered",
    ),
    Cell(
        "relationship",
        "subqueryload",
        _rows(select(MxInvoice).options(subqueryload(MxInvoice.lines))),
        "filtered",
    ),
    # -- Repository -----------------------------------------------------------------------
    Cell("repository", "list", _repo_list, "filtered"),
    Cell("repository", "count", _repo_count, "filtered", _eq(2)),
    Cell("repository", "exists(B's number)", _repo_exists_b, "filtered", _eq(False)),
    Cell("repository", "get(B's id)", _repo_get_b, "filtered", _eq(None)),
    Cell("repository", "scroll", _repo_scroll, "filtered"),
    Cell("repository", "create for B", _repo_create_b, "refused"),
    Cell("repository", "update B's id", _repo_update_b, "filtered", _eq(None)),
    Cell("repository", "delete B's id", _repo_delete_b, "filtered", _eq(None)),
    # -- UPDATE ----------------------------------------------------------------------------
    Cell(
        "orm update",
        "all rows",
        _do(lambda s: update(MxInvoice).values(amount=777)),
        "confined",
        _eq(2),
    ),
    Cell(
        "orm update",
        "where id = B's",
        _do(lambda s: update(MxInvoice).where(MxInvoice.id == s.b_inv).values(amount=777)),
        "confined",
        _eq(0),
    ),
    Cell(
        "orm update",
        "executemany by primary key",
        _do(
            lambda s: update(MxInvoice),
            lambda s: [{"id": s.b_inv, "amount": 777}, {"id": s.a_inv, "amount": 778}],
        ),
        "confined",
        lambda result, s: True,
    ),
    Cell(
        "orm update",
        "executemany setting org_id",
        _do(lambda s: update(MxInvoice), lambda s: [{"id": s.a_inv2, "org_id": ORG_B}]),
        "refused",
    ),
    Cell(
        "orm update",
        "values(org_id=B)",
        _do(lambda s: update(MxInvoice).where(MxInvoice.id == s.a_inv2).values(org_id=ORG_B)),
        "refused",
    ),
    Cell(
        "orm update",
        "ordered_values org_id",
        _do(lambda s: update(MxInvoice).ordered_values((MxInvoice.org_id, ORG_B))),
        "refused",
    ),
    Cell(
        "orm update",
        "org_id from an expression",
        _do(
            lambda s: update(MxInvoice).values(
                org_id=select(INV.c.org_id).limit(1).scalar_subquery()
            )
        ),
        "refused",
    ),
    Cell(
        "orm update",
        "keeps B's object in memory untouched",
        _orm_update_keeps_b_in_memory,
        "confined",
        _eq(7001),
        prepare=_load_b,
    ),
    Cell(
        "core update",
        "Model.__table__",
        _do(lambda s: update(INV).values(amount=777)),
        "confined",
        _eq(2),
    ),
    Cell(
        "core update",
        "executemany with bindparam",
        _do(
            lambda s: (
                update(INV).where(INV.c.id == bindparam("b_id")).values(amount=bindparam("amt"))
            ),
            lambda s: [{"b_id": s.b_inv, "amt": 777}],
        ),
        "confined",
    ),
    Cell(
        "core update",
        "org_id in the parameters",
        _do(lambda s: update(INV).where(INV.c.id == s.a_inv2), lambda s: {"org_id": ORG_B}),
        "refused",
    ),
    Cell(
        "core update",
        "UPDATE plain ... FROM org table",
        _do(lambda s: update(MxPlain).where(MxPlain.title == MxInvoice.number).values(title="hit")),
        "confined",
        _eq(1),
    ),
    Cell(
        "core update",
        "joined-inheritance table",
        _do(lambda s: update(MxVehicle.__table__).values(plate="hit")),
        "confined",
        _eq(1),
    ),
    Cell("cte", "UPDATE in a CTE", _rows_of(_cte_update_all), "confined"),
    Cell("cte", "UPDATE setting org_id in a CTE", _rows_of(_cte_update_org), "refused"),
    # -- DELETE ----------------------------------------------------------------------------
    Cell(
        "orm delete",
        "where id = B's",
        _do(lambda s: delete(MxLine).where(MxLine.id == s.b_line)),
        "confined",
        _eq(0),
    ),
    Cell("core delete", "Model.__table__", _do(lambda s: delete(LINE)), "confined", _eq(2)),
    Cell(
        "core delete",
        "DELETE ... USING org table",
        _do(
            lambda s: delete(MxLine).where(
                MxLine.invoice_id == MxInvoice.id, MxInvoice.number == "B-1"
            )
        ),
        "confined",
        _eq(0),
    ),
    Cell("core delete", "table() by name", _do(lambda s: delete(table("mx_line"))), "refused"),
    # -- INSERT ----------------------------------------------------------------------------
    Cell(
        "orm insert",
        "values(org_id=B)",
        _do(lambda s: insert(MxInvoice).values(org_id=ORG_B, number="X", amount=1)),
        "refused",
    ),
    Cell(
        "core insert",
        "values(org_id=B)",
        _do(lambda s: insert(INV).values(id=uuid.uuid4(), org_id=ORG_B, number="X", amount=1)),
        "refused",
    ),
    Cell(
        "core insert",
        "multi-row values, one of B",
        _do(
            lambda s: insert(INV).values(
                [
                    {"id": uuid.uuid4(), "org_id": ORG_A, "number": "Y", "amount": 1},
                    {"id": uuid.uuid4(), "org_id": ORG_B, "number": "X", "amount": 1},
                ]
            )
        ),
        "refused",
    ),
    Cell(
        "core insert",
        "org_id through a bindparam",
        _do(
            lambda s: insert(INV).values(
                id=uuid.uuid4(), org_id=bindparam("o"), number="X", amount=1
            ),
            lambda s: {"o": ORG_B},
        ),
        "refused",
    ),
    Cell(
        "orm insert",
        "executemany with org_id=B",
        _do(
            lambda s: insert(MxInvoice),
            lambda s: [
                {"number": "Y", "amount": 1},
                {"org_id": ORG_B, "number": "X", "amount": 1},
            ],
        ),
        "refused",
    ),
    Cell(
        "orm insert",
        "executemany without org_id",
        _do(lambda s: insert(MxInvoice), lambda s: [{"number": "A-9", "amount": 1}]),
        "confined",
    ),
    Cell(
        "core insert",
        "INSERT ... SELECT",
        _do(
            lambda s: insert(INV).from_select(
                ["id", "org_id", "number", "amount"],
                select(func.gen_random_uuid(), INV.c.org_id, INV.c.number, INV.c.amount),
            )
        ),
        "refused",
    ),
    Cell("cte", "INSERT for B in a CTE", _rows_of(_cte_insert_b), "refused"),
    Cell("cte", "INSERT for A in a CTE", _rows_of(_cte_insert_a), "refused"),
    # -- upserts ----------------------------------------------------------------------------
    Cell("upsert", "conflict on B's row (ORM)", _do(_upsert_b), "confined"),
    Cell("upsert", "conflict on B's row (Core)", _do(_upsert_core_b), "confined"),
    Cell("upsert", "set_ org_id=B", _do(_upsert_set_org), "refused"),
    Cell(
        "upsert",
        "executemany conflicting with B's row",
        _do(
            _upsert_many,
            lambda s: [{"id": s.b_inv, "org_id": ORG_A, "number": "A-up", "amount": 777}],
        ),
        "confined",
    ),
    # -- unit of work ------------------------------------------------------------------------
    Cell("flush", "add a row of B", _flush_add_b, "refused"),
    Cell("flush", "add a row without org_id", _flush_add_no_org, "confined", _eq(ORG_A)),
    Cell("flush", "update B's loaded row", _flush_update_b, "refused", prepare=_load_b),
    Cell("flush", "delete B's loaded row", _flush_delete_b, "refused", prepare=_load_b_line),
    Cell("flush", "move A's row to B", _flush_move_a_to_b, "refused"),
    Cell("flush", "merge over B's loaded row", _merge_b, "refused", prepare=_load_b),
    Cell("flush", "legacy bulk_update_mappings on B's id", _legacy_bulk_update, "refused"),
    Cell("flush", "legacy bulk_insert_mappings for B", _legacy_bulk_insert, "refused"),
    Cell("flush", "legacy bulk_save_objects for B", _legacy_bulk_save, "refused"),
    # -- DDL ----------------------------------------------------------------------------------
    Cell(
        "ddl", "DDL() naming the table", _do(lambda s: DDL("TRUNCATE mx_line CASCADE")), "refused"
    ),
    Cell("ddl", "TRUNCATE as text", _do(lambda s: text("TRUNCATE mx_line CASCADE")), "refused"),
    # -- controls: no org-scoped table involved -------------------------------------------------
    Cell("control", "plain table", _rows(select(MxPlain)), "filtered", _any, touches_org=False),
    Cell(
        "control",
        "text without org tables",
        _rows(text("SELECT 1")),
        "filtered",
        _any,
        touches_org=False,
    ),
)


async def _state(conn: Any, s: Seed, scoped: bool) -> dict[str, set[tuple[Any, ...]]]:
    return await snapshot(conn, ORG_B, s.b_plain) if scoped else await snapshot(conn, None)


@dataclass
class Failure:
    cell: str
    mode: str
    problem: str

    def __str__(self) -> str:
        return f"[{self.mode}] {self.cell}: {self.problem}"


async def _run_cell(
    maker: async_sessionmaker[AsyncSession], cell: Cell, s: Seed, scoped: bool, baseline: Any
) -> list[Failure]:
    mode = "tenant_scope(A)" if scoped else "no scope"
    failures: list[Failure] = []
    outcome: str
    result: Any = None
    async with maker() as session:
        await session.begin()
        if cell.prepare is not None:
            with unscoped():
                # held here: the identity map only keeps weak references
                session.info["prepared"] = await cell.prepare(session, s)
        try:
            if scoped:
                with tenant_scope(ORG_A):
                    result = await cell.run(session, s)
            else:
                result = await cell.run(session, s)
            outcome = "ran"
        except TenantViolation:
            outcome = "refused"
        except Exception as exc:
            outcome = f"error {type(exc).__name__}: {str(exc)[:200]}"
        try:
            conn = await session.connection()
            after = await _state(conn, s, scoped)
        except Exception:
            await session.rollback()
            async with maker() as fresh:
                after = await _state(await fresh.connection(), s, scoped)
        await session.rollback()
    expected = cell.in_scope if scoped else ("refused" if cell.touches_org else "ran")
    if expected == "refused":
        if outcome != "refused":
            failures.append(Failure(cell.name, mode, f"expected TenantViolation, got {outcome}"))
    elif expected == "hidden":
        if not outcome.startswith("error ObjectDeletedError"):
            failures.append(Failure(cell.name, mode, f"expected ObjectDeletedError, got {outcome}"))
    elif outcome != "ran":
        failures.append(Failure(cell.name, mode, f"expected it to run, got {outcome}"))
    elif not cell.check(result, s):
        failures.append(Failure(cell.name, mode, f"wrong or leaking result {result!r:.300}"))
    want = baseline[1] if scoped else baseline[0]
    if after != want:
        changed = [name for name in want if want[name] != after.get(name)]
        failures.append(Failure(cell.name, mode, f"database changed: {changed}"))
    return failures


async def run_matrix(
    engine: AsyncEngine, cells: tuple[Cell, ...] = CELLS, *, stop_at_first: bool = False
) -> list[Failure]:
    """Seed, then run every cell as tenant A and with no scope; the list of failures
    (only the first one with ``stop_at_first``)."""
    await create_tables(engine)
    s = await seed(engine)
    async with engine.connect() as conn:
        baseline = (await _state(conn, s, False), await _state(conn, s, True))
    maker = async_sessionmaker(engine, sync_session_class=ForktexSession, expire_on_commit=False)
    failures: list[Failure] = []
    for cell in cells:
        for scoped in (True, False):
            failures.extend(await _run_cell(maker, cell, s, scoped, baseline))
            if failures and stop_at_first:
                return failures
    return failures
