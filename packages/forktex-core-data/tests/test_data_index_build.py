# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A ``set_indexed`` that fails or is cancelled leaves no INVALID index behind (Postgres
keeps the half-built index of an interrupted ``CREATE INDEX CONCURRENTLY``) and leaves the
field's definition unchanged; building it later works."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from forktex_core.data import Field, IndexBuildFailed, Register, RowQuery, init_schema


async def _state(engine: AsyncEngine, name: str) -> bool | None:
    """True: a valid index; False: an INVALID one; None: no index of that name."""
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                text(
                    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE c.relname = :n"
                ),
                {"n": name},
            )
        ).scalar_one_or_none()
    return None if found is None else bool(found)


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 10  # bounds a hang, not a performance figure
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def blocker(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction holding a snapshot and a lock on the rows table: CREATE / DROP INDEX
    CONCURRENTLY wait for it to end."""
    await init_schema(engine)
    conn = await engine.connect()
    conn = await conn.execution_options(isolation_level="REPEATABLE READ")
    await conn.begin()
    await conn.execute(text("SELECT count(*) FROM forktex_data.rows"))
    try:
        yield conn
    finally:
        await conn.close()


async def _register(tenant: uuid.UUID, engine: AsyncEngine | None = None) -> Register:
    reg = await Register.create(
        "idx", tenant_id=tenant, fields=[Field("n", "integer")], engine=engine
    )
    await reg.insert_many([{"n": i} for i in range(50)])
    return reg


async def test_a_cancelled_build_leaves_no_index(
    engine: AsyncEngine, tenant: uuid.UUID, blocker: AsyncConnection
) -> None:
    reg = await _register(tenant)
    name = f"fdx_{reg.id.hex}_{reg.field('n').key}"
    task = asyncio.create_task(reg.set_indexed("n"))

    async def half_built() -> bool:
        return await _state(engine, name) is False

    await _until(half_built, "the build waits with an INVALID index")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await blocker.rollback()

    async def gone() -> bool:
        return await _state(engine, name) is None

    await _until(gone, "the half-built index is dropped")
    await reg.refresh()
    assert not reg.field("n").indexed
    await reg.set_indexed("n")
    assert await _state(engine, name) is True
    assert await RowQuery(reg).where(n__gte=40).count() == 10


async def test_a_failed_build_raises_index_build_failed_and_leaves_no_index(
    engine: AsyncEngine, data_db: Any, tenant: uuid.UUID, blocker: AsyncConnection
) -> None:
    impatient = create_async_engine(
        data_db.url, pool_size=2, connect_args={"server_settings": {"statement_timeout": "500"}}
    )
    try:
        reg = await _register(tenant, impatient)
        name = f"fdx_{reg.id.hex}_{reg.field('n').key}"
        task = asyncio.create_task(reg.set_indexed("n"))

        async def dropping() -> bool:
            async with engine.connect() as conn:
                return bool(
                    (
                        await conn.execute(
                            text(
                                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                                "'DROP INDEX CONCURRENTLY%' AND query LIKE :n"
                            ),
                            {"n": f"%{name}%"},
                        )
                    ).scalar_one()
                )

        # the build times out waiting for the blocker; the clean-up waits for it too
        await _until(dropping, "the failed build's index is being dropped")
        assert not task.done()
        await blocker.rollback()
        with pytest.raises(
            IndexBuildFailed, match=r"\(57014: canceling statement due to statement timeout\)"
        ) as caught:
            await asyncio.wait_for(task, 10)
        assert caught.value.field == "n" and "nothing changed" in str(caught.value)
        assert await _state(engine, name) is None  # removed before the error was raised
        await reg.refresh()
        assert not reg.field("n").indexed
    finally:
        await impatient.dispose()
