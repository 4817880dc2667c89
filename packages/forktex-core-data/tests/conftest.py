# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Fixtures of the forktex-core-data tests: a fresh database per test module (the
``forktex_data`` schema is global to a database) and the process-wide engine on it."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.db import close_engine, init_engine

# Hypothesis caches (e.g. its character tables) go to the temp dir, not the work tree.
set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "forktex-data-hypothesis"))


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
