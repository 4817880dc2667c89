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

from ._errors import EngineAlreadyInitialised, EngineNotInitialised, InvalidArgument, InvalidURL
from ._guard import ForktexSession
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


def _check_options(options: dict[str, Any]) -> None:
    for name, minimum in _INT_OPTIONS.items():
        if name in options:
            value = options[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidArgument(f"{name} must be an int >= {minimum}, got {value!r}")
    hide = options.get("hide_parameters", True)
    if not isinstance(hide, bool):
        raise InvalidArgument(f"hide_parameters must be True or False, got {type(hide).__name__}")
    if "pool_timeout" in options:
        value = options["pool_timeout"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise InvalidArgument(f"pool_timeout must be a number of seconds > 0, got {value!r}")


def init_engine(url: str | URL, *, replace: bool = False, **engine_options: Any) -> AsyncEngine:
    """Create the process-wide async engine and session factory; returns the engine.

    ``engine_options`` go to :func:`sqlalchemy.ext.asyncio.create_async_engine`
    (``pool_size``, ``max_overflow``, ``pool_timeout``, ``pool_recycle``, ``pool_pre_ping``,
    ``echo``, ``connect_args``, ...). ``postgresql://`` and ``postgres://`` URLs are switched
    to the asyncpg driver; other drivers are rejected.

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

        engine = init_engine("postgresql+asyncpg://app:secret@localhost/app", pool_size=20)
    """
    if not isinstance(replace, bool):
        raise InvalidArgument(f"replace must be True or False, got {replace!r}")
    parsed, credentials = without_credentials(_parse_url(url))
    _check_options(engine_options)
    engine_options.setdefault("hide_parameters", True)
    if credentials:
        connect_args = engine_options.get("connect_args") or {}
        if not isinstance(connect_args, dict):
            raise InvalidArgument(f"connect_args must be a dict, got {type(connect_args).__name__}")
        engine_options["connect_args"] = {**credentials, **connect_args}
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
