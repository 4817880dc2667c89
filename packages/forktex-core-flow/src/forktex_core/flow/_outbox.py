# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Transactional start (outbox): ``flow.start(..., session=session)`` inserts the run in the
caller's SQLAlchemy transaction.

The statements go through SQLAlchemy (``exec_driver_sql``: the asyncpg dialect's parameter
style is flow's own ``$n``), so they run inside the transaction SQLAlchemy has begun; the
run exists if and only if the caller commits, and the ``pg_notify`` of the insert is
delivered at commit (Postgres queues notifications until then), which is when the workers
wake.
"""

from __future__ import annotations

from typing import Any

from ._errors import InvalidArgument
from ._store import Store


class OutboxConnection:
    """The caller's SQLAlchemy connection, spoken to like an asyncpg one (``fetchrow``,
    ``fetchval``) by :meth:`Store.insert_run`.

    Example::

        conn = await outbox_connection(store, session)
        row = await conn.fetchrow("SELECT 1 AS one")
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def fetchrow(self, statement: str, *args: Any) -> Any:
        result = await self._connection.exec_driver_sql(statement, args)
        return result.first()

    async def fetchval(self, statement: str, *args: Any) -> Any:
        result = await self._connection.exec_driver_sql(statement, args)
        row = result.first()
        return None if row is None else row[0]


async def outbox_connection(store: Store, session: object) -> OutboxConnection:
    """The :class:`OutboxConnection` of an ``AsyncSession`` or ``AsyncConnection``.

    The schema is created first (on flow's own connection), so the caller's transaction
    only inserts. Anything else is refused with :class:`InvalidArgument`.

    Example::

        async with AsyncSession(engine) as session, session.begin():
            conn = await outbox_connection(store, session)
    """
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    if isinstance(session, AsyncSession):
        connection = await session.connection()
    elif isinstance(session, AsyncConnection):
        connection = session
    else:
        raise InvalidArgument(
            "session must be a SQLAlchemy AsyncSession or AsyncConnection on the flow "
            f"database, got {session!r}"
        )
    if connection.dialect.driver != "asyncpg":
        raise InvalidArgument(
            f"session must use the asyncpg driver, got {connection.dialect.driver!r}"
        )
    await store.connect()
    return OutboxConnection(connection)
