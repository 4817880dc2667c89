# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``get_session()``: one unit of work that commits on success and rolls back on error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from ._engine import get_sessionmaker


@asynccontextmanager
async def get_session() -> AsyncIterator[AsyncSession]:
    """An ``AsyncSession`` for one unit of work: commits when the block ends normally, rolls
    back and re-raises on any exception (including cancellation), then closes.

    Sessions have the tenant guard installed and ``expire_on_commit=False`` (objects stay
    readable after the commit without a lazy load). Raises :class:`EngineNotInitialised` if
    ``init_engine()`` has not been called.

    Example::

        async with get_session() as session:
            user = await session.get(User, user_id)
            user.name = "Ada"
        # committed here
    """
    maker = get_sessionmaker()
    async with maker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
