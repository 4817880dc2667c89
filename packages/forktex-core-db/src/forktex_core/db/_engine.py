# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The process-wide engine: ``init_engine`` / ``close_engine`` / ``get_engine``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool, QueuePool

from ._connectivity import install, reporting_pool_class
from ._errors import EngineAlreadyInitialised, EngineNotInitialised, InvalidArgument, InvalidURL
from ._guard import ForktexSession
from ._timeouts import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POOL_TIMEOUT,
    check_optional_seconds,
    check_seconds,
)
from ._unavailable import describe_server
from ._urls import mask_password, without_credentials

logger = logging.getLogger("forktex_core.db")

_ALLOWED_SCHEMES = ("postgresql+asyncpg", "postgresql", "postgres")
_INT_OPTIONS = {"pool_size": 1, "max_overflow": 0, "pool_recycle": -1}


class _State:
    def __init__(self) -> None:
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.disposing: set[asyncio.Task[None]] = set()


_state = _State()


def _parse_url(url: str | URL) -> URL:
    if not isinstance(url, (str, URL)):
        raise InvalidURL(
            f"url must be a str or sqlalchemy.URL such as 'postgresql+asyncpg://user@host/db', "
            f"got {type(url).__name__}"
        )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # ``from None``: the original message contains the raw URL, password included.
        # Not even the masked form is shown: where a password sits in garbage is unknowable.
        raise InvalidURL(
            f"cannot parse the database URL ({len(str(url))} characters, not shown as it may "
            "hold a password); expected 'postgresql+asyncpg://user:password@host:5432/database'"
        ) from None
    if parsed.drivername not in _ALLOWED_SCHEMES:
        raise InvalidURL(
            f"unsupported driver {parsed.drivername!r} in {mask_password(parsed)!r}; "
            "forktex_core.db talks to PostgreSQL through asyncpg: use 'postgresql+asyncpg://...' "
            "('postgresql://' and 'postgres://' are accepted and switched to asyncpg)"
        )
    return parsed.set(drivername="postgresql+asyncpg")


# asyncpg's names for the timeouts init_engine takes as its own keyword arguments.
_DRIVER_TIMEOUTS = {"timeout": "connect_timeout", "command_timeout": "command_timeout"}


def _check_options(options: dict[str, Any]) -> None:
    for name, minimum in _INT_OPTIONS.items():
        if name in options:
            value = options[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidArgument(f"{name} must be an int >= {minimum}, got {value!r}")
    hide = options.get("hide_parameters", True)
    if not isinstance(hide, bool):
        raise InvalidArgument(f"hide_parameters must be True or False, got {type(hide).__name__}")
    if "pool" in options:
        raise InvalidArgument(
            "init_engine() does not take a ready-made pool=: pass poolclass= and the pool "
            "options (pool_size, max_overflow, pool_timeout, ...) instead"
        )
    poolclass = options.get("poolclass")
    if poolclass is not None and not (isinstance(poolclass, type) and issubclass(poolclass, Pool)):
        raise InvalidArgument(f"poolclass must be a sqlalchemy Pool subclass, got {poolclass!r}")


def _connect_args(options: dict[str, Any], credentials: dict[str, str]) -> dict[str, Any]:
    connect_args = options.get("connect_args")
    if connect_args is None:
        connect_args = {}
    if not isinstance(connect_args, dict):
        raise InvalidArgument(f"connect_args must be a dict, got {type(connect_args).__name__}")
    for driver_name, own_name in _DRIVER_TIMEOUTS.items():
        if driver_name in connect_args:
            raise InvalidArgument(
                f"pass init_engine({own_name}=...) instead of connect_args[{driver_name!r}]: "
                "the engine reports and resets its timeouts from those arguments"
            )
    return {**credentials, **connect_args}


def init_engine(
    url: str | URL,
    *,
    replace: bool = False,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
    **engine_options: Any,
) -> AsyncEngine:
    """Create the process-wide async engine and session factory; returns the engine.

    ``engine_options`` go to :func:`sqlalchemy.ext.asyncio.create_async_engine`
    (``pool_size``, ``max_overflow``, ``pool_timeout``, ``pool_recycle``, ``pool_pre_ping``,
    ``echo``, ``connect_args``, ...). ``postgresql://`` and ``postgres://`` URLs are switched
    to the asyncpg driver; other drivers are rejected.

    Nothing waits forever (defaults in brackets):

    * ``connect_timeout`` [5 s]: opening a connection, login included;
    * ``command_timeout`` [30 s]: the longest wait for a reply to one statement, commit or
      rollback; ``None`` disables it. Lift it for a legitimately long statement with
      ``async with command_timeout(session, seconds):`` or ``get_session(command_timeout=...)``;
    * ``pool_timeout`` [10 s]: the longest wait for a free pooled connection.

    Past any of them, and on a refused or lost connection, an unknown host, a failed login or
    a missing database, calls raise :class:`DatabaseUnavailable` naming the server; a
    connection that timed out or broke is discarded, and a pooled connection the server
    closed (a restart) is replaced before use.

    ``hide_parameters`` defaults to ``True``: SQLAlchemy's errors and ``echo`` logs then show
    ``[parameters hidden]`` instead of the bound values (which may be secrets or personal
    data). Pass ``hide_parameters=False`` to see them while debugging.

    Credential query parameters (``?password=...``, ``?sslpassword=...``) are passed as
    connect arguments instead, so the engine's URL — and every repr or log of it — holds
    none; passwords are masked in everything this module logs or raises.

    Calling it again while an engine exists raises :class:`EngineAlreadyInitialised`: a second
    call is almost always a start-up bug (two apps, a test leaking state). Pass
    ``replace=True`` to swap engines deliberately; the old engine is then disposed (awaited by
    the next :func:`close_engine` when an event loop is running, dropped at once otherwise).

    Example::

        engine = init_engine("postgresql+asyncpg://app:secret@localhost/app", pool_size=20,
                             command_timeout=60)
    """
    if not isinstance(replace, bool):
        raise InvalidArgument(f"replace must be True or False, got {replace!r}")
    parsed, credentials = without_credentials(_parse_url(url))
    connect_seconds = check_seconds("connect_timeout", connect_timeout)
    command_seconds = check_optional_seconds("command_timeout", command_timeout)
    _check_options(engine_options)
    connect_args = _connect_args(engine_options, credentials)
    engine_options["connect_args"] = {
        **connect_args,
        "timeout": connect_seconds,
        "command_timeout": command_seconds,
    }
    engine_options.setdefault("hide_parameters", True)
    base_pool: type[Pool] = engine_options.get("poolclass") or AsyncAdaptedQueuePool
    pool_seconds: float | None = None
    if issubclass(base_pool, QueuePool):
        engine_options.setdefault("pool_timeout", DEFAULT_POOL_TIMEOUT)
        pool_seconds = check_seconds("pool_timeout", engine_options["pool_timeout"])
    engine_options["poolclass"] = reporting_pool_class(base_pool)
    if _state.engine is not None and not replace:
        raise EngineAlreadyInitialised(
            "init_engine() was already called (engine on "
            f"{mask_password(_state.engine.url)!r}); call 'await close_engine()' first, "
            "or pass replace=True to swap engines on purpose"
        )
    try:
        engine = create_async_engine(parsed, **engine_options)
    except TypeError as exc:
        raise InvalidArgument(
            f"unsupported engine option(s): {exc}; see sqlalchemy create_async_engine() "
            "for the accepted pool and engine options"
        ) from None
    install(
        engine,
        describe_server(
            engine.url,
            engine.dialect.create_connect_args(engine.url)[1],
            connect_timeout=connect_seconds,
            command_timeout=command_seconds,
            pool_timeout=pool_seconds,
        ),
    )
    old = _state.engine
    _state.engine = engine
    _state.sessionmaker = async_sessionmaker(
        engine, expire_on_commit=False, sync_session_class=ForktexSession
    )
    if old is not None:
        _dispose_later(old)
    logger.info("forktex_core.db engine initialised for %s", mask_password(parsed))
    return engine


def _dispose_later(engine: AsyncEngine) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        # No loop: its connections belong to a loop that is gone; just drop the pool.
        engine.sync_engine.dispose(close=False)
        return
    task = loop.create_task(engine.dispose())
    _state.disposing.add(task)
    task.add_done_callback(_state.disposing.discard)


def get_engine() -> AsyncEngine:
    """The engine created by :func:`init_engine`.

    Raises :class:`EngineNotInitialised` before ``init_engine()`` / after ``close_engine()``.

    Example::

        async with get_engine().connect() as conn:
            await conn.execute(text("select 1"))
    """
    if _state.engine is None:
        raise EngineNotInitialised(
            "no database engine: call init_engine('postgresql+asyncpg://...') at start-up "
            "before get_engine() / get_session()"
        )
    return _state.engine


def get_sessionmaker() -> async_sessionmaker[AsyncSession]:
    """The session factory behind :func:`get_session` (tenant guard installed).

    Example::

        async with get_sessionmaker()() as session, session.begin():
            ...
    """
    if _state.sessionmaker is None:
        raise EngineNotInitialised(
            "no database engine: call init_engine('postgresql+asyncpg://...') at start-up "
            "before get_session()"
        )
    return _state.sessionmaker


async def close_engine() -> None:
    """Dispose the engine and its pool. Safe to call twice; ``init_engine`` may follow.

    Example::

        await close_engine()  # at shutdown
    """
    engine, _state.engine, _state.sessionmaker = _state.engine, None, None
    pending = list(_state.disposing)
    if engine is not None:
        await engine.dispose()
        logger.info("forktex_core.db engine closed")
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
