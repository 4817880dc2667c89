# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Fixtures of the forktex-core-data tests: a fresh database per test module (the
``forktex_data`` schema is global to a database) and the process-wide engine on it."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import Register, RowQuery
from forktex_core.data._compile import select_sql
from forktex_core.db import close_engine, init_engine

# Hypothesis caches (its character tables, source constants) go to a directory of this test
# session's own, removed when the session ends: nothing is left in the work tree or /tmp.
_HYPOTHESIS_HOME = tempfile.TemporaryDirectory(prefix="forktex-data-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME.name)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove this session's hypothesis directory."""
    _HYPOTHESIS_HOME.cleanup()


@pytest.fixture(scope="module")
def data_db(forktex_new_database: Callable[[], Any]) -> Any:
    """A database of this test module's own."""
    return forktex_new_database()


@pytest.fixture
async def engine(data_db: Any) -> AsyncIterator[AsyncEngine]:
    """forktex_core.db's process-wide engine on the module's database (what Register uses
    when no engine is passed), closed after the test."""
    engine = init_engine(data_db.url, pool_size=5)
    try:
        yield engine
    finally:
        await close_engine()


@pytest.fixture
def tenant() -> uuid.UUID:
    """A tenant id of this test's own."""
    return uuid.uuid4()


@pytest.fixture
def vacuum(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    """``await vacuum()``: VACUUM ANALYZE the rows until their pages are all-visible (what
    index-only scans need). VACUUM marks a page all-visible only once the commits on it
    are flushed, which the test server (synchronous_commit=off) does a little later."""

    async def run() -> None:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for _ in range(10):
                await conn.execute(text("VACUUM ANALYZE forktex_data.rows"))
                pages, visible = (
                    await conn.execute(
                        text(
                            "SELECT relpages, relallvisible FROM pg_class "
                            "WHERE oid = 'forktex_data.rows'::regclass"
                        )
                    )
                ).one()
                if visible >= pages - 1:
                    return
                await asyncio.sleep(0.2)

    return run


PlanNodes = Callable[[Register, RowQuery], Awaitable[list[dict[str, Any]]]]
ExplainNodes = Callable[..., Awaitable[list[dict[str, Any]]]]


@pytest.fixture
def explain_nodes(engine: AsyncEngine) -> ExplainNodes:
    """``await explain_nodes(statement, params, analyze=True, settings=())``: every node of
    the ``EXPLAIN`` tree of a statement, with ``SET LOCAL`` ``settings`` (e.g.
    ``"enable_seqscan = off"``) applied first in the same transaction."""

    async def explain(
        statement: str,
        params: dict[str, Any],
        *,
        analyze: bool = True,
        settings: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
        async with engine.connect() as conn:
            for setting in settings:
                await conn.execute(text(f"SET LOCAL {setting}"))
            raw = (
                await conn.execute(text(f"EXPLAIN ({options}) {statement}"), params)
            ).scalar_one()
        doc = json.loads(raw) if isinstance(raw, str) else raw
        return _nodes(dict(doc[0]["Plan"]))

    return explain


@pytest.fixture
def plan_nodes(explain_nodes: ExplainNodes) -> PlanNodes:
    """``await plan_nodes(register, query)``: every node of the ``EXPLAIN ANALYZE`` tree of
    one scroll page of ``query`` (``Node Type``, ``Index Name``, ``Plan Rows``, ...)."""

    async def explain(reg: Register, query: RowQuery) -> list[dict[str, Any]]:
        plan = await query.plan()
        sql = select_sql(plan, reg.id, reg.tenant_id, limit=51, offset=0, after=None)
        return await explain_nodes(sql.text, sql.params)

    return explain


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", ()) for n in _nodes(child))]
