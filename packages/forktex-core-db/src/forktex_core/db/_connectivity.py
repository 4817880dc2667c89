# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Connection failures, handled once per engine instead of at every call site.

Three hooks cover every path a session, a ``Repository``, ``ensure_schema`` or a plain
``engine.connect()`` takes to the server:

* opening a connection (``do_connect``): timeouts, refused / reset connections, unknown
  hosts, failed logins and missing databases raise :class:`DatabaseUnavailable`;
* taking one from the pool (the pool's ``connect()``): no free connection within
  ``pool_timeout``, or a failed ``pool_pre_ping``, raise it too; a pooled connection the
  server has closed (a restart, a terminated backend) is replaced before it is handed out,
  which is always safe because nothing has been sent on it yet;
* using one (``handle_error``): a command timeout or a lost connection raises it, and the
  connection is discarded — after a timeout its state is unknown, so it is never reused.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, Pool, PoolProxiedConnection

from ._errors import DatabaseUnavailable, DBError, InvalidArgument
from ._faults import driver_error
from ._timeouts import driver_timeout, set_driver_timeout
from ._unavailable import (
    Server,
    command_failure,
    connect_failure,
    describe_server,
    pool_failure,
)


class _ReportingPool(Pool):
    """Mixed in front of the engine's pool class: failures while handing out a connection
    become :class:`DatabaseUnavailable` naming ``_forktex_server``."""

    _forktex_server: Server

    def connect(self) -> PoolProxiedConnection:
        try:
            return super().connect()
        except DBError:
            raise
        except sa_exc.TimeoutError as exc:
            size = getattr(self, "size", None)  # QueuePool's
            pool_size = size() if callable(size) else None
            raise pool_failure(exc, self._forktex_server, pool_size) from None
        except Exception as exc:
            # A pre-ping that timed out or found the connection broken.
            server = self._forktex_server
            translated = command_failure(
                exc, server, disconnected=False, during="ping", waited=server.command_timeout
            )
            if translated is None:
                raise
            raise translated from exc


def reporting_pool_class(base: type[Pool]) -> type[Pool]:
    """A subclass of ``base`` (the pool class the engine would use), one per engine: the
    server it reports is set by :func:`install` once the engine exists."""
    # In the base's module, so SQLAlchemy's pool logging stays under "sqlalchemy.pool".
    return type(
        f"Reporting{base.__name__}", (_ReportingPool, base), {"__module__": base.__module__}
    )


def _driver_of(context: ExceptionContext) -> Any:
    """The asyncpg connection the failed operation used, while it is still there."""
    connection = context.connection
    if connection is None or connection.invalidated or connection.closed:
        return None
    return connection.connection.driver_connection


async def raw_statement_failure(
    connection: AsyncConnection, exc: BaseException
) -> DatabaseUnavailable | None:
    """For a statement run on the driver connection directly, past SQLAlchemy's error
    handling: the :class:`DatabaseUnavailable` that ``exc`` means (the connection is then
    invalidated, never reused), or ``None`` when it is not a connection failure."""
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    translated = command_failure(
        exc,
        server_for(connection.engine),
        disconnected=driver is None or driver.is_closed(),
        during="statement",
        waited=None if driver is None else driver_timeout(driver),
    )
    if translated is not None:
        await connection.invalidate(exc if isinstance(exc, Exception) else None)
    return translated


def server_for(engine: AsyncEngine) -> Server:
    """The :class:`Server` an engine reports: the one :func:`install` gave it, or, for an
    engine made elsewhere, one described from its URL (its timeouts unknown)."""
    pool_class = type(engine.sync_engine.pool)
    if issubclass(pool_class, _ReportingPool) and hasattr(pool_class, "_forktex_server"):
        return pool_class._forktex_server
    return describe_server(
        engine.url,
        engine.dialect.create_connect_args(engine.url)[1],
        connect_timeout=None,
        command_timeout=None,
        pool_timeout=None,
    )


def install(engine: AsyncEngine, server: Server) -> None:
    """Attach the connect, checkout and error hooks for ``server`` to ``engine``."""
    sync_engine = engine.sync_engine
    pool_class = type(sync_engine.pool)
    if not issubclass(pool_class, _ReportingPool):
        raise InvalidArgument(f"{engine!r} was not created with reporting_pool_class()")
    pool_class._forktex_server = server

    def do_connect(
        dialect: Dialect, record: ConnectionPoolEntry, cargs: Any, cparams: dict[str, Any]
    ) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except asyncpg.ClientConfigurationError as exc:
            raise InvalidArgument(
                f"asyncpg rejected the connection settings for {server}: {exc}"
            ) from None
        except Exception as exc:
            translated = connect_failure(exc, server)
            if translated is None:
                raise
            raise translated from exc

    def checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        driver = dbapi_connection.driver_connection
        if driver.is_closed():
            # Closed by the server while it sat in the pool: the pool replaces it.
            raise sa_exc.DisconnectionError("the server closed this pooled connection")
        if driver_timeout(driver) != server.command_timeout:
            # A command_timeout() block ended with its connection outside the block.
            set_driver_timeout(driver, server.command_timeout)

    def handle_error(context: ExceptionContext) -> BaseException | None:
        if context.is_pre_ping:
            return None  # SQLAlchemy replaces a connection that fails its pre-ping
        driver = _driver_of(context)
        translated = command_failure(
            context.original_exception,
            server,
            # asyncpg's own "connection is closed" errors are not always DB-API errors
            # (a server-side cursor's fetch), so SQLAlchemy may not have noticed.
            disconnected=context.is_disconnect or (driver is not None and driver.is_closed()),
            # Commit and rollback run without a statement or execution context; reading a
            # result (a server-side cursor's fetch) has a context but no statement.
            during="commit"
            if context.statement is None and context.execution_context is None
            else "statement",
            waited=server.command_timeout if driver is None else driver_timeout(driver),
        )
        if translated is None:
            return None
        context.is_disconnect = True  # the connection is discarded
        if isinstance(driver_error(context.original_exception), TimeoutError):
            # Silent mid-reply: this connection can never be trusted again, but the others
            # in the pool may be fine (a slow statement is not a dead server). asyncpg has
            # asked the server to cancel the statement; closing the connection waits for
            # that (at most 2 s), so a slow statement does not keep running server-side.
            context.invalidate_pool_on_disconnect = False
        # Otherwise the connection was lost: the server is gone or restarting, and so are
        # the other pooled connections; SQLAlchemy invalidates the whole pool.
        return translated

    event.listen(sync_engine, "do_connect", do_connect)
    event.listen(sync_engine, "handle_error", handle_error)
    event.listen(sync_engine.pool, "checkout", checkout)
