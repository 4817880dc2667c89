# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``get_session()``: one unit of work that commits on success and rolls back on error."""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from ._engine import get_sessionmaker
from ._timeouts import check_optional_seconds
from ._timeouts import command_timeout as lift_command_timeout

logger = logging.getLogger("forktex_core.db")


class _EngineDefault(enum.Enum):
    ENGINE_DEFAULT = enum.auto()


@asynccontextmanager
async def get_session(
    *, command_timeout: float | _EngineDefault | None = _EngineDefault.ENGINE_DEFAULT
) -> AsyncIterator[AsyncSession]:
    """An ``AsyncSession`` for one unit of work: commits when the block ends normally, rolls
    back and re-raises on any exception (including cancellation), then closes.

    Sessions have the tenant guard installed and ``expire_on_commit=False`` (objects stay
    readable after the commit without a lazy load). Raises :class:`EngineNotInitialised` if
    ``init_engine()`` has not been called, :class:`DatabaseUnavailable` when the database
    cannot be reached or stops answering (nothing of the unit of work is committed then,
    unless the reply of the final COMMIT itself was lost).

    ``command_timeout`` replaces the engine's command timeout for this unit of work, commit
    included (seconds, or ``None`` for no limit): for work that is legitimately long.

    Example::

        async with get_session() as session:
            user = await session.get(User, user_id)
            user.name = "Ada"
        # committed here

        async with get_session(command_timeout=600) as session:  # a long report
            rows = await session.execute(report_query)
    """
    limit = (
        command_timeout
        if isinstance(command_timeout, _EngineDefault)
        else check_optional_seconds("command_timeout", command_timeout)
    )
    maker = get_sessionmaker()
    async with maker() as session, AsyncExitStack() as stack:
        try:
            if not isinstance(limit, _EngineDefault):
                await stack.enter_async_context(lift_command_timeout(session, limit))
            yield session
        except BaseException:
            try:
                await session.rollback()
            except Exception:
                # The original error says what went wrong; a rollback that fails too (the
                # connection is gone) must not replace it. The connection is discarded.
                logger.warning("forktex_core.db: rollback after an error failed", exc_info=True)
            raise
        await session.commit()
