# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Timeouts: the defaults, their validation, and ``command_timeout()`` to lift or lower the
command timeout for one block of statements.

The command timeout is asyncpg's: the client stops waiting for a reply after that many
seconds (a silent server or network), discards the connection and raises
:class:`DatabaseUnavailable`. asyncpg reads it from the connection on every call, which is
how it can change for a while on one checked-out connection.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ._errors import DBError, InvalidArgument

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_COMMAND_TIMEOUT = 30.0
DEFAULT_POOL_TIMEOUT = 10.0


def check_seconds(name: str, value: object) -> float:
    """``value`` as a number of seconds: finite and > 0; else :class:`InvalidArgument`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidArgument(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


def check_optional_seconds(name: str, value: object) -> float | None:
    """Like :func:`check_seconds`, ``None`` (no limit) allowed."""
    if value is None:
        return None
    try:
        return check_seconds(name, value)
    except InvalidArgument:
        raise InvalidArgument(
            f"{name} must be a number of seconds > 0 or None (no limit), got {value!r}"
        ) from None


def driver_timeout(driver: Any) -> float | None:
    """The command timeout asyncpg applies on ``driver`` (an ``asyncpg.Connection``)."""
    try:
        value: float | None = driver._config.command_timeout  # third-party private: asyncpg
    except AttributeError:
        raise DBError(
            f"cannot read the command timeout of {type(driver).__name__}: this asyncpg "
            "version keeps it elsewhere; forktex-core-db needs an update"
        ) from None
    return value


def set_driver_timeout(driver: Any, seconds: float | None) -> None:
    """Make asyncpg wait at most ``seconds`` (``None``: no limit) for each reply on ``driver``.

    asyncpg takes a per-call ``timeout=`` that SQLAlchemy never passes, and otherwise reads
    the connection's configured ``command_timeout`` on every call: that setting is replaced.
    """
    driver_timeout(driver)  # fails clearly if asyncpg changed where it keeps it
    config = driver._config  # third-party private: asyncpg (no public setter)
    driver._config = config._replace(command_timeout=seconds)  # third-party private: asyncpg


@asynccontextmanager
async def command_timeout(
    bind: AsyncSession | AsyncConnection, seconds: float | None
) -> AsyncIterator[None]:
    """Within the block, statements on ``bind`` wait up to ``seconds`` for the server
    (``None``: no limit) instead of the engine's ``command_timeout``.

    For a statement that is legitimately long (a report, a bulk update, an index build). It
    applies to the connection ``bind`` holds for its current transaction: a session that
    commits inside the block continues on a connection with the engine's default again.
    When the block ends, or the connection returns to the pool, the default is restored.

    Example::

        async with get_session() as session:
            async with command_timeout(session, 600):
                await session.execute(text("REFRESH MATERIALIZED VIEW monthly_totals"))
    """
    limit = check_optional_seconds("command_timeout", seconds)
    if isinstance(bind, AsyncSession):
        connection = await bind.connection()
    elif isinstance(bind, AsyncConnection):
        connection = bind
    else:
        raise InvalidArgument(
            f"command_timeout() takes an AsyncSession or AsyncConnection, got {type(bind).__name__}"
        )
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    previous = driver_timeout(driver)
    set_driver_timeout(driver, limit)
    try:
        yield
    finally:
        # Only while the connection is still this block's: once returned to the pool (a
        # commit inside the block), the pool has restored the default and another task may
        # be using it.
        if not connection.closed and not connection.invalidated:
            if raw.driver_connection is driver:
                set_driver_timeout(driver, previous)
