# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Transactional start (``flow.start(..., session=...)``) only on flow's own database: a
session on the same database by another address is taken (its database checked once per
connection), a session on another database is refused naming both, with nothing written."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from forktex_core.flow import Flow, FlowContext, InvalidArgument

from .conftest import FAST

SECRET = "Outbox-S3cret"  # in every URL: trust auth ignores it, messages must not show it


def _with_secret(url: str) -> str:
    scheme, rest = url.split("://", 1)
    user, _, host = rest.partition("@")
    return f"{scheme}://{user.split(':', 1)[0]}:{SECRET}@{host}"


def _flow(url: str) -> Flow:
    flow = Flow(_with_secret(url), **FAST)

    @flow.workflow(name="tx.job")
    async def job(ctx: FlowContext, params: dict[str, Any]) -> int:
        return int(params["n"])

    return flow


async def _runs(dsn: str) -> int | None:
    """How many runs a database holds (None: it has no flow tables)."""
    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT to_regclass('forktex_flow.runs')") is None:
            return None
        count: int = await conn.fetchval("SELECT count(*) FROM forktex_flow.runs")
        return count
    finally:
        await conn.close()


async def test_a_session_on_the_flow_database_by_another_address_is_taken_checked_once(
    forktex_fault_proxy: Any, pg: Any
) -> None:
    flow = _flow(pg.url)
    proxy = forktex_fault_proxy(pg)  # the same server and database, by another port
    engine = create_async_engine(_with_secret(proxy.url(pg.url)))
    statements: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )
    try:
        async with engine.connect() as conn:
            first = await flow.start("tx.job", {"n": 1}, session=conn)
            second = await flow.start("tx.job", {"n": 2}, session=conn)
            await conn.commit()
        async with AsyncSession(engine) as session, session.begin():
            third = await flow.start("tx.job", {"n": 3}, session=session)
        for run_id in (first, second, third):
            assert (await flow.get_run(run_id)).status.value == "pending"
        # one check for the one pooled connection, whichever session or start used it
        assert sum("pg_postmaster_start_time" in s for s in statements) == 1, statements
    finally:
        await engine.dispose()
        await flow.close()


@pytest.mark.parametrize("other_has_flow", [False, True], ids=["plain", "another-flows"])
async def test_a_session_on_another_database_is_refused_naming_both(
    forktex_new_database: Callable[[], Any], pg: Any, other_has_flow: bool
) -> None:
    flow = _flow(pg.url)
    other = forktex_new_database()  # the same server, another database
    other_flow = _flow(other.url)
    engine = create_async_engine(_with_secret(other.url))
    try:
        await flow.connect()
        if other_has_flow:  # the wrong database even has forktex_flow tables to write into
            await other_flow.connect()
        for attempt in range(2):  # refused again on the same connection (the kept answer)
            async with AsyncSession(engine) as session, session.begin():
                with pytest.raises(InvalidArgument) as info:
                    await flow.start("tx.job", {"n": attempt}, session=session)
        message = str(info.value)
        assert f"session is connected to database {other.database!r}" in message, message
        assert f"not to this Flow's database {pg.database!r}" in message, message
        assert f"127.0.0.1:{other.port}/{other.database}" in message, message
        assert message.count(":***@") == 2 and SECRET not in message, message
        assert await _runs(other.dsn) == (0 if other_has_flow else None)
        assert await _runs(pg.dsn) == 0
    finally:
        await engine.dispose()
        await other_flow.close()
        await flow.close()


async def test_a_session_is_still_taken_after_the_server_restarted(
    forktex_restartable_postgres: Any,
) -> None:
    """The server's start time is part of what is compared: after a restart flow reads its
    own database's again instead of refusing every session with the one it kept."""
    pg = forktex_restartable_postgres
    flow = _flow(pg.service.url)
    engine = create_async_engine(pg.service.url)
    try:
        async with AsyncSession(engine) as session, session.begin():
            before = await flow.start("tx.job", {"n": 1}, session=session)
        await asyncio.to_thread(pg.restart)
        await engine.dispose()  # the pooled connections died with the server
        async with AsyncSession(engine) as session, session.begin():
            after = await flow.start("tx.job", {"n": 2}, session=session)
        assert {(await flow.get_run(r)).status.value for r in (before, after)} == {"pending"}
    finally:
        await engine.dispose()
        await flow.close()
