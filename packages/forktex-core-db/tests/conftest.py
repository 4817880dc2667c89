# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Fixtures of the forktex-core-db tests (real Postgres from forktex-core-testing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.db import close_engine, init_engine
from forktex_core.db._engine import _state


async def _create_tables(engine: AsyncEngine, *models: Any) -> None:
    tables: list[Table] = [m.__table__ for m in models]
    metadata = tables[0].metadata
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: metadata.create_all(sync, tables=tables))
        names = ", ".join(f'"{t.name}"' for t in tables)
        await conn.exec_driver_sql(f"TRUNCATE {names} CASCADE")


@pytest.fixture
async def db(forktex_postgres: Any) -> AsyncIterator[AsyncEngine]:
    """The process-wide engine initialised on this session's database, closed afterwards."""
    assert _state.engine is None, "a previous test leaked an engine"
    engine = init_engine(forktex_postgres.url, pool_size=5)
    try:
        yield engine
    finally:
        await close_engine()


@pytest.fixture
def make_tables(db: AsyncEngine) -> Any:
    """``await make_tables(Model, ...)``: create the models' tables (if needed) and empty them."""

    async def make(*models: Any) -> None:
        await _create_tables(db, *models)

    return make
