# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Transactional start (outbox): ``flow.start(..., session=session)`` inserts the run in the
caller's SQLAlchemy transaction.

The statements go through SQLAlchemy (``exec_driver_sql``: the asyncpg dialect's parameter
style is flow's own ``$n``), so they run inside the transaction SQLAlchemy has begun; the
run exists if and only if the caller commits, and the ``pg_notify`` of the insert is
delivered at commit (Postgres queues notifications until then), which is when the workers
wake.

The caller's connection must be on flow's own database: on another one the run would land
in that database's ``forktex_flow`` tables (where no worker of this Flow looks) or fail
there on a missing table. It is compared once per connection (the answer is kept in the
connection's ``info``) and refused with :class:`InvalidArgument` naming both databases.
"""

from __future__ import annotations

from typing import Any

from . import _sql as sql
from ._errors import InvalidArgument
from ._store import Store

#: the key of a connection's ``info`` under which its database identity is kept
_IDENTITY_KEY = "forktex_core.flow.database_identity"


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
    outbox = OutboxConnection(connection)
    await _check_same_database(store, connection, outbox)
    return outbox


async def _check_same_database(store: Store, connection: Any, outbox: OutboxConnection) -> None:
    """Refuse a caller's connection that is not on flow's database (one query per
    connection, its answer kept in the connection's ``info`` for the next start)."""
    theirs = connection.info.get(_IDENTITY_KEY)
    if theirs is None:
        theirs = tuple(await outbox.fetchrow(sql.DATABASE_IDENTITY))
        connection.info[_IDENTITY_KEY] = theirs
    ours = await store.database_identity()
    if theirs != ours:
        ours = await store.database_identity(fresh=True)  # the server may have restarted
    if theirs == ours:
        return
    their_url = connection.engine.url.render_as_string(hide_password=True)
    raise InvalidArgument(
        f"session is connected to database {theirs[0]!r} ({their_url}), not to this Flow's "
        f"database {ours[0]!r} ({store.masked_url}): the run would be written into the other "
        "database's forktex_flow tables; pass a session on the flow database, or start the "
        "run without session="
    )
