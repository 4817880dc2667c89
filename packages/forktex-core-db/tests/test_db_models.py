# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""BaseDBModel, UUIDv7, TimestampMixin, AuditMixin, composition on a foreign base."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import ForeignKey, MetaData, String, insert, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from forktex_core.db import (
    AuditMixin,
    BaseDBModel,
    InvalidArgument,
    OrgScopedMixin,
    TimestampMixin,
    UUIDPrimaryKeyMixin,
    acting_as,
    current_actor,
    get_session,
    tenant_scope,
    unscoped,
    utcnow,
    uuid7,
    uuid7_many,
)


class MdlItem(AuditMixin, BaseDBModel):
    __tablename__ = "mdl_item"
    name: Mapped[str] = mapped_column(String(100))
    seen: Mapped[datetime | None]


class _OtherBase(DeclarativeBase):
    metadata = MetaData()


class MdlOrg(UUIDPrimaryKeyMixin, _OtherBase):
    __tablename__ = "mdl_org"


class MdlComposed(OrgScopedMixin, AuditMixin, TimestampMixin, UUIDPrimaryKeyMixin, _OtherBase):
    __tablename__ = "mdl_composed"
    __org_foreign_key__ = "mdl_org.id"
    note: Mapped[str] = mapped_column(String(50), default="")


class MdlParent(BaseDBModel):
    __tablename__ = "mdl_parent"


class MdlChild(BaseDBModel):
    __tablename__ = "mdl_child"
    parent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mdl_parent.id"))


# -- UUIDv7 -------------------------------------------------------------------------------
def test_uuid7_layout_and_timestamp() -> None:
    before = int(time.time() * 1000)
    value = uuid7()
    after = int(time.time() * 1000)
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_uuid7_strictly_increasing_within_a_millisecond() -> None:
    values = [uuid7() for _ in range(20_000)]
    assert len(set(values)) == len(values)
    assert values == sorted(values)
    assert values == sorted(values, key=str)  # text order too (what Postgres compares)
    per_ms: dict[int, int] = {}
    for v in values:
        per_ms[v.int >> 80] = per_ms.get(v.int >> 80, 0) + 1
    assert max(per_ms.values()) > 1  # we did exercise the same-millisecond path


def test_uuid7_unique_across_threads() -> None:
    out: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def work(i: int) -> None:
        out[i].extend(uuid7() for _ in range(5000))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [v for chunk in out for v in chunk]
    assert len(set(every)) == 20_000
    for chunk in out:
        assert chunk == sorted(chunk)


def test_uuid7_many_continues_the_sequence_of_uuid7() -> None:
    before = uuid7()
    many = uuid7_many(20_000)
    after = uuid7()
    assert len(set(many)) == 20_000
    assert [before, *many, after] == sorted([before, *many, after])
    assert all(v.version == 7 and v.variant == uuid.RFC_4122 for v in many)
    assert len({v.int & 0xFFFF_FFFF for v in many}) > 19_000  # the random tails differ
    assert uuid7_many(0) == []


@pytest.mark.parametrize("count", [-1, 2.0, True, "3", None])
def test_uuid7_many_bad_count(count: object) -> None:
    with pytest.raises(InvalidArgument, match="count must be an int"):
        uuid7_many(count)  # type: ignore[arg-type]


# -- BaseDBModel + TimestampMixin ------------------------------------------------------
def test_id_assigned_at_construction_and_explicit_id_wins() -> None:
    item = MdlItem(name="a")
    assert isinstance(item.id, uuid.UUID) and item.id.version == 7
    mine = uuid.uuid4()
    assert MdlItem(name="b", id=mine).id == mine
    assert repr(MdlItem(id=mine)) == f"<MdlItem id={mine}>"
    # children can point at a parent before anything is flushed
    parent = MdlParent()
    assert MdlChild(parent_id=parent.id).parent_id == parent.id


def test_table_layout_and_naming_convention() -> None:
    cols = [c.name for c in MdlItem.__table__.columns]
    assert cols[0] == "id"
    assert cols[-4:] == ["created_at", "updated_at", "created_by", "updated_by"]
    assert MdlItem.__table__.primary_key.name == "pk_mdl_item"
    created = MdlItem.__table__.c.created_at
    assert created.type.timezone is True  # type: ignore[attr-defined]
    assert MdlItem.__table__.c.seen.type.timezone is True  # type: ignore[attr-defined]
    fks = list(MdlComposed.__table__.c.org_id.foreign_keys)
    assert [fk.target_fullname for fk in fks] == ["mdl_org.id"]
    assert MdlComposed.__table__.c.org_id.index is True
    assert MdlComposed.__table__.c.org_id.nullable is False


async def test_timestamps_are_aware_equal_on_insert_and_bumped_on_update(
    db: AsyncEngine, make_tables: Any
) -> None:
    await make_tables(MdlItem)
    start = utcnow()
    async with get_session() as session:
        item = MdlItem(name="t")
        session.add(item)
        await session.flush()
        assert item.created_at.tzinfo is not None
        assert item.created_at == item.updated_at
        assert item.created_at >= start
    async with get_session() as session:
        db_item = await session.get(MdlItem, item.id)
        assert db_item is not None
        assert db_item.created_at.utcoffset() == timedelta(0)
        assert db_item.created_at == db_item.updated_at
        created = db_item.created_at
        await asyncio.sleep(0.002)
        db_item.name = "t2"
    assert item.created_at == created
    async with get_session() as session:
        again = await session.get(MdlItem, item.id)
        assert again is not None
        assert again.created_at == created
        assert again.updated_at > created
        bumped = again.updated_at
    # an ORM-enabled bulk update() bumps it too
    await asyncio.sleep(0.002)
    async with get_session() as session:
        await session.execute(update(MdlItem).where(MdlItem.id == item.id).values(name="t3"))
    async with get_session() as session:
        row = (await session.execute(select(MdlItem.updated_at).where(MdlItem.id == item.id))).one()
        assert row.updated_at > bumped


async def test_explicit_timestamps_win_and_core_insert_gets_defaults(
    db: AsyncEngine, make_tables: Any
) -> None:
    await make_tables(MdlItem)
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with get_session() as session:
        item = MdlItem(name="x", created_at=when, updated_at=when)
        session.add(item)
    async with get_session() as session:
        got = await session.get(MdlItem, item.id)
        assert got is not None and got.created_at == when and got.updated_at == when
    new_id = uuid7()
    async with db.begin() as conn:
        await conn.execute(insert(MdlItem.__table__).values(id=new_id, name="core"))
        row = (
            await conn.execute(select(MdlItem.__table__).where(MdlItem.__table__.c.id == new_id))
        ).one()
    assert row.created_at.tzinfo is not None and row.created_at == row.updated_at


# -- AuditMixin ----------------------------------------------------------------------------
async def test_audit_columns_follow_acting_as(db: AsyncEngine, make_tables: Any) -> None:
    await make_tables(MdlItem)
    alice, bob, explicit = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with acting_as(alice):
        async with get_session() as session:
            item = MdlItem(name="a")
            session.add(item)
            await session.flush()
            assert (item.created_by, item.updated_by) == (alice, alice)
    with acting_as(str(bob)):  # string form accepted
        assert current_actor() == bob
        async with get_session() as session:
            got = await session.get(MdlItem, item.id)
            assert got is not None
            got.name = "b"
    async with get_session() as session:
        got = await session.get(MdlItem, item.id)
        assert got is not None
        assert (got.created_by, got.updated_by) == (alice, bob)
        got.name = "no actor"  # no acting_as: updated_by is left alone, not wiped
    async with get_session() as session:
        got = await session.get(MdlItem, item.id)
        assert got is not None and got.updated_by == bob
    with acting_as(alice):  # explicit values win, on insert and update
        async with get_session() as session:
            other = MdlItem(name="e", created_by=explicit, updated_by=explicit)
            session.add(other)
            got = await session.get(MdlItem, item.id)
            assert got is not None
            got.name = "c"
            got.updated_by = explicit
    async with get_session() as session:
        o = await session.get(MdlItem, other.id)
        g = await session.get(MdlItem, item.id)
        assert o is not None and (o.created_by, o.updated_by) == (explicit, explicit)
        assert g is not None and g.updated_by == explicit


async def test_acting_as_nests_and_is_task_local() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert current_actor() is None
    with acting_as(a):
        with acting_as(b):
            assert current_actor() == b
        with acting_as(None):
            assert current_actor() is None
        assert current_actor() == a

        async def other_task() -> uuid.UUID | None:
            with acting_as(b):
                await asyncio.sleep(0)
                return current_actor()

        assert await asyncio.create_task(other_task()) == b
        assert current_actor() == a
    assert current_actor() is None


@pytest.mark.parametrize("bad", ["not-a-uuid", 123, 1.5, object()])
def test_acting_as_rejects_non_uuid(bad: Any) -> None:
    with pytest.raises(InvalidArgument, match=r"acting_as\(user_id\) must be a UUID"):
        with acting_as(bad):
            pass  # pragma: no cover


# -- composition on a consumer's own base ---------------------------------------------------
async def test_mixins_compose_on_a_foreign_declarative_base(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await conn.run_sync(_OtherBase.metadata.create_all)
    org = MdlOrg()
    actor = uuid.uuid4()
    with acting_as(actor), unscoped():
        async with get_session() as session:
            session.add(org)
            await session.flush()
            row = MdlComposed(org_id=org.id)
            session.add(row)
    with tenant_scope(org.id):
        async with get_session() as session:
            got = await session.get(MdlComposed, row.id)
            assert got is not None
            assert got.org_id == org.id and got.created_by == actor
            assert got.created_at.tzinfo is not None
    with pytest.raises(Exception, match="foreign key"), unscoped():
        async with get_session() as session:
            session.add(MdlComposed(org_id=uuid.uuid4()))
    insp_cols = {c.key for c in inspect(MdlComposed).columns}
    assert {"id", "org_id", "created_at", "updated_at", "created_by", "updated_by"} <= insp_cols
