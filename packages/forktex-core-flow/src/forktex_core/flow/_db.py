# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Connection plumbing: URL handling, transient-error detection, reconnect backoff."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from ._errors import FlowUnavailable, InvalidArgument

log = logging.getLogger("forktex_core.flow")

T = TypeVar("T")

READ_RETRY = 5.0  # client reads retry on a dropped connection for this long

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    # asyncpg's protocol can be left mid-operation when Postgres terminates the backend
    # (pg_terminate_backend, restart); the pool then discards that connection.
    asyncpg.InternalClientError,
)

_SCHEMES = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "postgresql+asyncpg": "postgresql",
}


async def keep_session(conn: asyncpg.Connection) -> None:
    """Pool ``reset`` hook that leaves the session as it is.

    asyncpg has already rolled back any open transaction when it calls this. Flow's pool
    connections never LISTEN, SET or take session-level locks (those have connections of
    their own), so the default reset (``RESET ALL; UNLISTEN *; ...``) would only add a
    round trip and a transaction to every checkpoint.
    """


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for logs and errors).

    This is ``forktex_core.db.mask_password``, imported on first use so that importing
    ``forktex_core.flow`` does not load SQLAlchemy.

    Example::

        >>> mask_url("postgresql://app:s3cret@db/app")
        'postgresql://app:***@db/app'
    """
    from forktex_core.db import mask_password

    return mask_password(url)


def asyncpg_dsn(url: object) -> str:
    """Turn ``postgresql+asyncpg://`` / ``postgresql://`` into the libpq DSN asyncpg takes."""
    if not isinstance(url, str) or "://" not in url:
        shown = mask_url(url) if isinstance(url, str) else type(url).__name__
        raise InvalidArgument(
            f"database_url must be a URL like 'postgresql+asyncpg://user:pass@host/db', "
            f"got {shown!r}"
        )
    scheme, rest = url.split("://", 1)
    target = _SCHEMES.get(scheme.lower())
    if target is None:
        raise InvalidArgument(
            f"database_url scheme {scheme!r} is not supported; use postgresql+asyncpg:// "
            f"or postgresql:// (got {mask_url(url)!r})"
        )
    return f"{target}://{rest}"


def sqlalchemy_url(url: str) -> str:
    """The same database as a SQLAlchemy async URL (``postgresql+asyncpg://``)."""
    return "postgresql+asyncpg://" + asyncpg_dsn(url).split("://", 1)[1]


async def retry_transient(
    op: Callable[[], Awaitable[T]], *, within: float, what: str, retry_silent: bool = True
) -> T:
    """Run ``op``; on a connection-level error retry with backoff for up to ``within`` s.

    ``retry_silent=False`` gives up at once on a connection that went silent past
    ``command_timeout`` (:attr:`FlowUnavailable.silent`): retried, it would wait a command
    timeout again, and usually end up as silent.
    """
    deadline = time.monotonic() + within
    delay = 0.05
    while True:
        try:
            return await op()
        except TRANSIENT as exc:
            # asyncpg's client-side argument and configuration errors are InterfaceErrors
            # too, but retrying cannot fix them.
            if isinstance(exc, ValueError) or time.monotonic() + delay > deadline:
                raise
            if not retry_silent and isinstance(exc, FlowUnavailable) and exc.silent:
                raise
            log.warning("flow: %s failed (%s); retrying in %.2fs", what, type(exc).__name__, delay)
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, 1.0)


async def retry_read(op: Callable[[], Awaitable[T]], *, what: str) -> T:
    """A client read: retried on a lost connection for :data:`READ_RETRY` s, but not when
    the server went silent, so the caller hears of it after one ``command_timeout``.

    Example::

        row = await retry_read(lambda: pool.fetchrow(statement, run_id), what="get_run")
    """
    return await retry_transient(op, within=READ_RETRY, what=what, retry_silent=False)


def connection_lost(exc: BaseException) -> bool:
    """True when ``exc`` means the database connection went away (asyncpg or SQLAlchemy).

    Example::

        except Exception as exc:
            if connection_lost(exc): ...  # retry on a new connection
    """
    if isinstance(exc, TRANSIENT):
        return not isinstance(exc, ValueError)
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return False
    return bool(exc.connection_invalidated) or isinstance(
        exc.orig.__cause__ if exc.orig is not None else None, TRANSIENT
    )
