# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Tenant isolation: tenant_scope + the session guard, including negative tests."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import String, delete, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, sessionmaker

from forktex_core.db import (
    BaseDBModel,
    ForktexSession,
    InvalidArgument,
    OrgScopedMixin,
    Repository,
    TenantViolation,
    current_org,
    get_session,
    install_tenant_guard,
    tenant_scope,
    unscoped,
)


class TenDoc(OrgScopedMixin, BaseDBModel):
    __tablename__ = "ten_doc"
    title: Mapped[str] = mapped_column(String(100))


class TenPlain(BaseDBModel):
    __tablename__ = "ten_plain"
    title: Mapped[str] = mapped_column(String(100))


ORG_A = uuid.UUID("0190f5c4-0000-7000-8000-00000000000a")
ORG_B = uuid.UUID("0190f5c4-0000-7000-8000-00000000000b")


@pytest.fixture
async def seeded(db: AsyncEngine, make_tables: Any) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Three docs of org A and two of org B (written without any scope)."""
    await make_tables(TenDoc, TenPlain)
    ids: dict[uuid.UUID, list[uuid.UUID]] = {ORG_A: [], ORG_B: []}
    with unscoped():
        async with get_session() as session:
            for org, n in ((ORG_A, 3), (ORG_B, 2)):
                for i in range(n):
                    doc = TenDoc(org_id=org, title=f"{org.hex[-1]}{i}")
                    session.add(doc)
                    ids[org].append(doc.id)
            session.add(TenPlain(title="shared"))
    return ids


async def test_unfiltered_query_only_sees_own_tenant(seeded: dict[uuid.UUID, Any]) -> None:
    with tenant_scope(ORG_A):
        async with get_session() as session:
            docs = (await session.scalars(select(TenDoc))).all()
            assert {d.org_id for d in docs} == {ORG_A} and len(docs) == 3
            count = (await session.execute(select(func.count()).select_from(TenDoc))).scalar()
            assert count == 3
            titles = (await session.scalars(select(TenDoc.title))).all()
            assert sorted(titles) == ["a0", "a1", "a2"]
            other = aliased(TenDoc)
            assert len((await session.scalars(select(other))).all()) == 3
            joined = select(TenDoc.title).join(TenPlain, TenPlain.title != TenDoc.title)
            assert sorted((await session.scalars(joined)).all()) == ["a0", "a1", "a2"]
            # non-scoped models are untouched
            assert len((await session.scalars(select(TenPlain))).all()) == 1
    with tenant_scope(ORG_B):
        async with get_session() as session:
            assert len((await session.scalars(select(TenDoc))).all()) == 2
    with unscoped():  # deliberately every org
        async with get_session() as session:
            assert len((await session.scalars(select(TenDoc))).all()) == 5


async def test_get_of_another_tenants_row_is_none(seeded: dict[uuid.UUID, Any]) -> None:
    b_id = seeded[ORG_B][0]
    with tenant_scope(ORG_A):
        async with get_session() as session:
            assert await session.get(TenDoc, b_id) is None
            assert await Repository(session, TenDoc).get_or_none(b_id) is None
            assert not await Repository(session, TenDoc).exists(filters={"id": b_id})
            assert await Repository(session, TenDoc).count() == 3
            assert (await Repository(session, TenDoc).list()).total == 3


async def test_bulk_update_and_delete_cannot_touch_other_tenant(
    seeded: dict[uuid.UUID, Any],
) -> None:
    with tenant_scope(ORG_A):
        async with get_session() as session:
            result = await session.execute(update(TenDoc).values(title="hacked"))
            assert result.rowcount == 3  # type: ignore[attr-defined]
            result = await session.execute(delete(TenDoc).where(TenDoc.title == "hacked"))
            assert result.rowcount == 3  # type: ignore[attr-defined]
    with unscoped():
        async with get_session() as session:
            rest = (await session.scalars(select(TenDoc))).all()
    assert {d.org_id for d in rest} == {ORG_B}
    assert {d.title for d in rest} == {"b0", "b1"}


async def test_insert_fills_org_and_rejects_other_org(seeded: dict[uuid.UUID, Any]) -> None:
    with tenant_scope(ORG_A):
        async with get_session() as session:
            doc = TenDoc(title="auto")
            session.add(doc)
            await session.flush()
            assert doc.org_id == ORG_A
        with pytest.raises(TenantViolation, match="cannot insert TenDoc for org"):
            async with get_session() as session:
                session.add(TenDoc(title="sneaky", org_id=ORG_B))
        with pytest.raises(TenantViolation, match="cannot insert"):
            async with get_session() as session:
                await Repository(session, TenDoc).create(title="sneaky", org_id=str(ORG_B))
        # ORM bulk insert with parameters is checked (and filled) too
        with pytest.raises(TenantViolation, match="cannot insert ten_doc rows with org_id"):
            async with get_session() as session:
                row = {"id": uuid.uuid4(), "title": "x", "org_id": ORG_B}
                await session.execute(insert(TenDoc), [row])
        async with get_session() as session:
            await session.execute(insert(TenDoc), [{"id": uuid.uuid4(), "title": "bulk"}])
    with unscoped():
        async with get_session() as session:
            titles = ["auto", "bulk", "sneaky", "x"]
            rows = (await session.scalars(select(TenDoc).where(TenDoc.title.in_(titles)))).all()
    assert sorted((r.title, r.org_id) for r in rows) == [("auto", ORG_A), ("bulk", ORG_A)]


async def test_insert_without_org_outside_scope_is_a_clear_error(
    db: AsyncEngine, make_tables: Any
) -> None:
    await make_tables(TenDoc)
    with pytest.raises(TenantViolation, match=r"org_id is required.*tenant_scope"), unscoped():
        async with get_session() as session:
            session.add(TenDoc(title="orphan"))


async def test_moving_a_row_to_another_org_raises(seeded: dict[uuid.UUID, Any]) -> None:
    a_id = seeded[ORG_A][0]
    with tenant_scope(ORG_A):
        with pytest.raises(TenantViolation, match="cannot update"):
            async with get_session() as session:
                doc = await Repository(session, TenDoc).get(a_id)
                doc.org_id = ORG_B
        with pytest.raises(TenantViolation):
            async with get_session() as session:
                await Repository(session, TenDoc).update(a_id, org_id=ORG_B)
    with unscoped():
        async with get_session() as session:
            assert (await session.get(TenDoc, a_id)).org_id == ORG_A  # type: ignore[union-attr]


async def test_objects_loaded_outside_scope_cannot_be_written_inside(
    seeded: dict[uuid.UUID, Any],
) -> None:
    b_id = seeded[ORG_B][0]
    with pytest.raises(TenantViolation, match="cannot update"), unscoped():
        async with get_session() as session:
            doc = await session.get(TenDoc, b_id)  # loaded unscoped
            assert doc is not None
            with tenant_scope(ORG_A):
                doc.title = "changed under A"
                await session.flush()
    with pytest.raises(TenantViolation, match="cannot delete"), unscoped():
        async with get_session() as session:
            doc = await session.get(TenDoc, b_id)
            with tenant_scope(ORG_A):
                await session.delete(doc)
                await session.flush()
    with unscoped():
        async with get_session() as session:
            doc = await session.get(TenDoc, b_id)
            assert doc is not None and doc.title == "b0"


async def test_unguarded_session_fails_loudly_instead_of_leaking(
    seeded: dict[uuid.UUID, Any], db: AsyncEngine
) -> None:
    plain = async_sessionmaker(db)  # no tenant guard
    with tenant_scope(ORG_A):
        async with plain() as session:
            with pytest.raises(TenantViolation, match="no tenant guard"):
                (await session.scalars(select(TenDoc))).all()


async def test_install_tenant_guard_on_own_factories(
    seeded: dict[uuid.UUID, Any], db: AsyncEngine
) -> None:
    class AppSession(Session):
        pass

    maker = async_sessionmaker(db, sync_session_class=AppSession)
    install_tenant_guard(maker)
    install_tenant_guard(maker)  # idempotent
    with tenant_scope(ORG_B):
        async with maker() as session:
            assert len((await session.scalars(select(TenDoc))).all()) == 2
    # a single AsyncSession can be guarded too
    async with AsyncSession(db) as session:
        install_tenant_guard(session)
        with tenant_scope(ORG_B):
            assert len((await session.scalars(select(TenDoc))).all()) == 2
    # ForktexSession as sync_session_class needs no install at all
    guarded = async_sessionmaker(db, sync_session_class=ForktexSession)
    with tenant_scope(ORG_A):
        async with guarded() as session:
            assert len((await session.scalars(select(TenDoc))).all()) == 3


@pytest.mark.parametrize(
    ("target", "match"),
    [
        (lambda db: async_sessionmaker(db), "global sqlalchemy Session class"),
        (lambda db: Session, "refusing to guard the global"),
        (lambda db: "session", "takes a sessionmaker"),
        (lambda db: 42, "takes a sessionmaker"),
    ],
)
async def test_install_tenant_guard_bad_input(db: AsyncEngine, target: Any, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        install_tenant_guard(target(db))


def test_install_tenant_guard_on_sync_sessionmaker() -> None:
    maker: sessionmaker[Session] = sessionmaker()
    install_tenant_guard(maker)  # accepted (sync code paths)


async def test_unscoped_and_nesting_and_task_locality(seeded: dict[uuid.UUID, Any]) -> None:
    assert current_org() is None
    with tenant_scope(ORG_A) as org:
        assert org == ORG_A == current_org()
        with unscoped():
            assert current_org() is None
            async with get_session() as session:
                assert len((await session.scalars(select(TenDoc))).all()) == 5
        with tenant_scope(str(ORG_B)):
            assert current_org() == ORG_B

        async def in_task() -> int:
            async with get_session() as session:
                return len((await session.scalars(select(TenDoc))).all())

        assert await asyncio.create_task(in_task()) == 3  # the task inherits the scope
        assert current_org() == ORG_A
    assert current_org() is None


@pytest.mark.parametrize("bad", [None, "nope", 7, b"x"])
def test_tenant_scope_bad_input(bad: Any) -> None:
    with pytest.raises(InvalidArgument, match="tenant_scope"):
        with tenant_scope(bad):
            pass  # pragma: no cover


async def test_org_filter_helper(seeded: dict[uuid.UUID, Any], db: AsyncEngine) -> None:
    async with db.connect() as conn:  # Core: no guard, the helper filters explicitly
        rows = (await conn.execute(select(TenDoc.__table__).where(TenDoc.org_filter(ORG_B)))).all()
        assert len(rows) == 2
    with pytest.raises(InvalidArgument, match="org_filter"):
        TenDoc.org_filter("x")


# -- each form that used to reach another org's rows -----------------------------------------
async def _titles_of(org: uuid.UUID) -> list[str]:
    with unscoped():
        async with get_session() as session:
            rows = await session.scalars(select(TenDoc.title).where(TenDoc.org_id == org))
            return sorted(rows.all())


async def test_bulk_update_by_primary_key_cannot_reach_another_org(
    seeded: dict[uuid.UUID, Any],
) -> None:
    b_id, a_id = seeded[ORG_B][0], seeded[ORG_A][0]
    with tenant_scope(ORG_A):
        async with get_session() as session:
            await session.execute(
                update(TenDoc), [{"id": b_id, "title": "hacked"}, {"id": a_id, "title": "mine"}]
            )
    assert await _titles_of(ORG_B) == ["b0", "b1"]
    assert "mine" in await _titles_of(ORG_A)


async def test_single_row_insert_for_another_org_raises(seeded: dict[uuid.UUID, Any]) -> None:
    with tenant_scope(ORG_A):
        for stmt in (
            insert(TenDoc).values(org_id=ORG_B, title="planted"),
            insert(TenDoc.__table__).values(id=uuid.uuid4(), org_id=ORG_B, title="planted"),
        ):
            with pytest.raises(TenantViolation, match="cannot insert ten_doc rows with org_id"):
                async with get_session() as session:
                    await session.execute(stmt)
        async with get_session() as session:  # without org_id: the scope's org is filled in
            await session.execute(insert(TenDoc).values(title="filled"))
    assert await _titles_of(ORG_B) == ["b0", "b1"]
    assert "filled" in await _titles_of(ORG_A)


async def test_upsert_cannot_overwrite_another_orgs_row(seeded: dict[uuid.UUID, Any]) -> None:
    b_id = seeded[ORG_B][0]
    with tenant_scope(ORG_A):
        async with get_session() as session:
            stmt = pg_insert(TenDoc).values(id=b_id, org_id=ORG_A, title="overwritten")
            result = await session.execute(
                stmt.on_conflict_do_update(index_elements=["id"], set_={"title": "overwritten"})
            )
            assert result.rowcount == 0  # type: ignore[attr-defined]
        with pytest.raises(TenantViolation, match="cannot update"):
            async with get_session() as session:
                stmt = pg_insert(TenDoc).values(id=seeded[ORG_A][0], title="a")
                await session.execute(
                    stmt.on_conflict_do_update(index_elements=["id"], set_={"org_id": ORG_B})
                )
    assert await _titles_of(ORG_B) == ["b0", "b1"]


async def test_update_moving_rows_to_another_org_raises(seeded: dict[uuid.UUID, Any]) -> None:
    with tenant_scope(ORG_A):
        for stmt in (
            update(TenDoc).where(TenDoc.title == "a0").values(org_id=ORG_B),
            update(TenDoc.__table__).values(org_id=ORG_B),
        ):
            with pytest.raises(TenantViolation, match="rows cannot move between orgs"):
                async with get_session() as session:
                    await session.execute(stmt)
        async with get_session() as session:  # setting its own org is a no-op, allowed
            await session.execute(update(TenDoc).values(org_id=ORG_A))
    assert await _titles_of(ORG_A) == ["a0", "a1", "a2"]
    assert await _titles_of(ORG_B) == ["b0", "b1"]


async def test_core_statements_on_the_table_are_confined(seeded: dict[uuid.UUID, Any]) -> None:
    table = TenDoc.__table__
    with tenant_scope(ORG_A):
        async with get_session() as session:
            rows = (await session.execute(select(table))).all()
            assert sorted(r.title for r in rows) == ["a0", "a1", "a2"]
            updated = await session.execute(update(table).values(title="x"))
            assert updated.rowcount == 3  # type: ignore[attr-defined]
            deleted = await session.execute(delete(table))
            assert deleted.rowcount == 3  # type: ignore[attr-defined]
    assert await _titles_of(ORG_A) == []
    assert await _titles_of(ORG_B) == ["b0", "b1"]


async def test_exists_without_select_is_confined(seeded: dict[uuid.UUID, Any]) -> None:
    with tenant_scope(ORG_A):
        async with get_session() as session:
            assert not (
                await session.execute(select(exists().where(TenDoc.title == "b0")))
            ).scalar()
            assert (await session.execute(select(exists().where(TenDoc.title == "a0")))).scalar()


async def test_identity_map_does_not_cross_tenants(seeded: dict[uuid.UUID, Any]) -> None:
    b_id = seeded[ORG_B][0]
    async with get_session() as session:
        with unscoped():
            b_doc = await session.get(TenDoc, b_id)  # now in this session's identity map
        assert b_doc is not None
        with tenant_scope(ORG_A):
            assert await session.get(TenDoc, b_id) is None
            assert await Repository(session, TenDoc).get_or_none(b_id) is None
        with tenant_scope(ORG_B):
            assert await session.get(TenDoc, b_id) is b_doc
        with pytest.raises(TenantViolation, match="no tenant scope"):
            await session.get(TenDoc, b_id)


async def test_no_scope_fails_closed(seeded: dict[uuid.UUID, Any]) -> None:
    table = TenDoc.__table__
    statements: list[Any] = [
        select(TenDoc),
        select(table),
        select(func.count()).select_from(TenDoc),
        update(TenDoc).values(title="x"),
        delete(table),
        insert(TenDoc).values(org_id=ORG_A, title="x"),
    ]
    for stmt in statements:
        with pytest.raises(TenantViolation, match=r"no tenant scope is set.*unscoped\(\)"):
            async with get_session() as session:
                await session.execute(stmt)
    with pytest.raises(TenantViolation, match="no tenant scope is set"):
        async with get_session() as session:
            session.add(TenDoc(org_id=ORG_A, title="x"))
    with pytest.raises(TenantViolation, match="no tenant scope is set"):
        async with get_session() as session:
            await Repository(session, TenDoc).list()
    async with get_session() as session:  # tables that are not org-scoped are unaffected
        assert len((await session.scalars(select(TenPlain))).all()) == 1
    with unscoped():
        async with get_session() as session:
            assert len((await session.scalars(select(TenDoc))).all()) == 5


async def test_own_guarded_factories_check_identity_map_and_legacy_bulk(
    seeded: dict[uuid.UUID, Any], db: AsyncEngine
) -> None:
    class AppSession(Session):
        pass

    class OtherSession(Session):
        pass

    maker = async_sessionmaker(db, sync_session_class=AppSession)
    install_tenant_guard(maker)
    single = AsyncSession(db, sync_session_class=OtherSession)
    install_tenant_guard(single)
    b_id = seeded[ORG_B][0]
    for session in (maker(), single):
        async with session:
            with unscoped():
                assert await session.get(TenDoc, b_id) is not None  # in the identity map now
            with tenant_scope(ORG_A):
                assert await session.get(TenDoc, b_id) is None
                with pytest.raises(TenantViolation, match="bulk_update_mappings"):
                    await session.run_sync(
                        lambda s: s.bulk_update_mappings(TenDoc, [{"id": b_id, "title": "x"}])
                    )
                with pytest.raises(TenantViolation, match="bulk_save_objects"):
                    await session.run_sync(
                        lambda s: s.bulk_save_objects([TenDoc(org_id=ORG_B, title="x")])
                    )
    assert await _titles_of(ORG_B) == ["b0", "b1"]
    # untouched: other session classes, and non-org models through the legacy methods
    async with AsyncSession(db) as plain, plain.begin():
        await plain.run_sync(lambda s: s.bulk_insert_mappings(TenPlain, [{"title": "bulk"}]))
    with tenant_scope(ORG_A):
        async with get_session() as session:
            await session.run_sync(
                lambda s: s.bulk_insert_mappings(TenPlain, [{"id": uuid.uuid4(), "title": "x"}])
            )
