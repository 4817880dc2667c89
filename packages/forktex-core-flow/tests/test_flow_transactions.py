# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Transactional steps: isolation levels, and serialisation failures / deadlocks retried."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from forktex_core.flow import Flow, FlowContext, InvalidArgument, RunFailed


async def test_serialisation_failures_are_retried_in_a_new_transaction(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()
    conn = await asyncpg.connect(pg.dsn)
    await conn.execute("CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)")
    await conn.execute("INSERT INTO counter VALUES (1, 0)")
    both_read = asyncio.Barrier(2)
    attempts: list[int] = []

    @flow.transaction(isolation_level="serializable")
    async def bump(ctx: FlowContext, session: Any) -> int:
        n = (await session.execute(text("SELECT n FROM counter WHERE id = 1"))).scalar_one()
        attempts.append(n)
        if len(attempts) <= 2:
            await both_read.wait()  # both transactions read before either writes
        await session.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})
        return int(n) + 1

    @flow.workflow(name="tx.bump", version=1)
    async def wf(ctx: FlowContext) -> int:
        return await bump(ctx)

    try:
        async with h.running(flow):
            runs = [await flow.start("tx.bump"), await flow.start("tx.bump")]
            results = [await flow.result(r, timeout=30) for r in runs]
        assert sorted(results) == [1, 2]
        assert await conn.fetchval("SELECT n FROM counter WHERE id = 1") == 2
        assert sorted(attempts) == [0, 0, 1]  # the loser ran again and saw the winner's write
        for r in runs:
            (step,) = await flow.history(r)
            assert step.status == "completed" and step.attempt == 1
    finally:
        await conn.close()


async def test_deadlocks_are_retried_in_a_new_transaction(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()
    conn = await asyncpg.connect(pg.dsn)
    await conn.execute("CREATE TABLE pair (id int PRIMARY KEY, n int NOT NULL)")
    await conn.execute("INSERT INTO pair VALUES (1, 0), (2, 0)")
    both_locked = asyncio.Barrier(2)
    attempts: list[int] = []

    @flow.transaction
    async def lock_both(ctx: FlowContext, session: Any, first: int, second: int) -> str:
        update = text("UPDATE pair SET n = n + 1 WHERE id = :id")
        await session.execute(update, {"id": first})
        attempts.append(first)
        if len(attempts) <= 2:
            await both_locked.wait()  # each holds one row and wants the other's
        await session.execute(update, {"id": second})
        return "locked"

    @flow.workflow(name="tx.deadlock", version=1)
    async def wf(ctx: FlowContext, order: list[int]) -> str:
        return await lock_both(ctx, order[0], order[1])

    try:
        async with h.running(flow):
            runs = [
                await flow.start("tx.deadlock", [1, 2]),
                await flow.start("tx.deadlock", [2, 1]),
            ]
            assert [await flow.result(r, timeout=30) for r in runs] == ["locked", "locked"]
        assert len(attempts) == 3
        assert await conn.fetchval("SELECT sum(n) FROM pair") == 4  # each committed once
    finally:
        await conn.close()


async def test_retries_of_serialisation_failures_are_bounded(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    from forktex_core.flow._transaction import SERIALISATION_ATTEMPTS

    flow = make_flow()
    attempts: list[int] = []

    @flow.transaction(isolation_level="repeatable read")
    async def always_conflicts(ctx: FlowContext, session: Any) -> None:
        attempts.append(1)
        await session.execute(
            text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
        )

    @flow.workflow(name="tx.hopeless", version=1)
    async def wf(ctx: FlowContext) -> None:
        await always_conflicts(ctx)

    async with h.running(flow):
        run_id = await flow.start("tx.hopeless")
        with pytest.raises(RunFailed) as err:
            await flow.result(run_id, timeout=30)
    assert len(attempts) == SERIALISATION_ATTEMPTS
    assert "conflict" in err.value.error["message"]
    (step,) = await flow.history(run_id)
    assert step.status == "failed" and step.attempt == 1


def test_isolation_level_is_validated() -> None:
    flow = Flow(database_url="postgresql://app:secret@127.0.0.1:1/none")
    with pytest.raises(InvalidArgument, match="isolation_level"):
        flow.transaction(isolation_level="bogus")
    with pytest.raises(InvalidArgument, match="isolation_level"):
        flow.transaction(isolation_level=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="transactional"):
        flow.step(isolation_level="serializable")
    for level in ("read committed", "REPEATABLE READ", "Serializable"):
        flow.transaction(isolation_level=level)
