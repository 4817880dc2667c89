# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Timeouts on every connection, and one translation of database faults into
:class:`FlowUnavailable`.

Every connection flow opens — the client and worker pools, the LISTEN, leader and heartbeat
connections, the SQLAlchemy engines of the schema and of transactional steps — is opened by
:meth:`Reporter.connect` with ``connect_timeout`` and ``command_timeout``, and is a
:class:`ReportingConnection`, whose statements report a lost or silent connection the same
way. The SQLAlchemy engines get the same translation from :meth:`Reporter.watch_engine`.
:class:`FlowUnavailable` is a ``ConnectionError``, so flow's own reconnect logic (the
worker, the listener, the heartbeat, retried reads) treats it like any lost connection.
Cancellation is never translated. No message holds a password: the server is described
from its address, never its URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from ._db import asyncpg_dsn, mask_url
from ._errors import FlowError, FlowUnavailable, InvalidArgument
from ._watchdog import StatementWatchdog

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_COMMAND_TIMEOUT = 30.0
DEFAULT_MAX_OUTAGE = 300.0
DEFAULT_PORT = 5432


@dataclass(frozen=True, slots=True)
class Target:
    """The server a Flow talks to and its limits, as error messages name them."""

    address: str
    database: str
    user: str
    connect_timeout: float
    command_timeout: float | None

    def __str__(self) -> str:
        return f"PostgreSQL at {self.address} (database {self.database!r}, user {self.user!r})"


def describe_target(url: str, connect_timeout: float, command_timeout: float | None) -> Target:
    """The :class:`Target` of the database URL ``url``; a port that is not a number raises
    :class:`InvalidArgument` naming the URL (password masked).

    Example::

        describe_target("postgresql://app:pw@db:5433/app", 5.0, 30.0).address  # 'db:5433'
    """
    parts = urlsplit(asyncpg_dsn(url))
    query = parse_qs(parts.query)
    netloc = parts.netloc.rpartition("@")
    userinfo, hostspec = netloc[0], netloc[2]
    user = unquote(userinfo.partition(":")[0]) or query.get("user", [""])[0]
    hosts = query.get("host", [""])[0].split(",") if "host" in query else []
    ports = query.get("port", [""])[0].split(",") if "port" in query else []
    if not hosts:
        for spec in unquote(hostspec).split(",") if hostspec else [""]:
            if spec.startswith("["):  # [IPv6]:port
                host, _, rest = spec[1:].partition("]")
                port = rest[1:] if rest.startswith(":") else ""
            else:
                host, _, port = spec.partition(":") if spec.count(":") <= 1 else (spec, "", "")
            hosts.append(host)
            ports.append(port)
    shown_parts = []
    for index, host in enumerate(hosts):
        port = ports[index] if index < len(ports) else (ports[-1] if ports else "")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise InvalidArgument(
                f"database_url port {port!r} is not a port number (1-65535) in {mask_url(url)!r}"
            )
        host = host or "localhost"
        if host.startswith("/"):  # a Unix-domain socket directory
            shown_parts.append(host)
        else:
            name = f"[{host}]" if ":" in host else host
            shown_parts.append(f"{name}:{port or DEFAULT_PORT}")
    database = unquote(parts.path.lstrip("/")) or query.get("dbname", [""])[0] or user
    return Target(",".join(shown_parts), database, user, connect_timeout, command_timeout)


def _seconds(value: float | None) -> str:
    return "no limit" if value is None else f"{value:g} s"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def connect_failure(exc: BaseException, target: Target) -> FlowUnavailable | None:
    """``exc``, raised while opening a connection, as :class:`FlowUnavailable` (or None
    when it is something else: cancellation, a bug, one of flow's own errors)."""
    # db classifies driver errors for every module; imported here, on a failure, so that
    # importing forktex_core.flow does not load SQLAlchemy
    from forktex_core.db import connect_fault_reason, driver_error

    if isinstance(driver_error(exc), FlowError):
        return None
    reason = connect_fault_reason(
        exc,
        address=target.address,
        database=target.database,
        connect_timeout=target.connect_timeout,
        setting="Flow(connect_timeout=...)",
    )
    if reason is None:
        return None
    return FlowUnavailable(f"cannot connect to {target}: {reason}", connecting=True)


def command_failure(
    exc: BaseException, target: Target, waited: float | None
) -> FlowUnavailable | None:
    """``exc``, raised while using an open connection, as :class:`FlowUnavailable` when it
    means the connection went silent (past ``waited`` s) or was lost; None otherwise."""
    from forktex_core.db import driver_error, is_lost_connection

    cause = driver_error(exc)
    if not isinstance(cause, Exception) or isinstance(cause, FlowError):
        return None
    if isinstance(cause, TimeoutError):
        return FlowUnavailable(
            f"{target} did not answer within {_seconds(waited)} (command_timeout): the server "
            "or the network went silent, or the statement is slow; raise "
            "Flow(command_timeout=...) for legitimately slow statements",
            silent=True,
        )
    if not is_lost_connection(cause):
        return None
    return FlowUnavailable(
        f"lost the connection to {target} ({type(cause).__name__}: {_first_line(cause)}); "
        "a write in flight may or may not have been applied"
    )


class ReportingConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """An asyncpg connection whose statements raise :class:`FlowUnavailable` when the
    connection is lost or silent (subclassed per :class:`Reporter` with its target).

    Example::

        await conn.fetchval("SELECT 1")  # FlowUnavailable naming the server, on a fault
    """

    _forktex_target: ClassVar[Target]
    _forktex_busy: float | None = None  # when the statement in flight started
    _forktex_overdue: float | None = None  # the timeout a watchdog stopped it for

    @property
    def busy_since(self) -> float | None:
        """``time.monotonic()`` when the statement in flight started (None: idle)."""
        return self._forktex_busy

    def overdue(self, timeout: float) -> None:
        """Stop the statement in flight, which ran past ``timeout`` s (a
        :class:`~._watchdog.StatementWatchdog`): it then fails as a command timeout."""
        self._forktex_overdue = timeout
        self.terminate()

    def _report(self, exc: Exception) -> None:
        """Raise the :class:`FlowUnavailable` that ``exc`` means, if any (the caller
        re-raises ``exc`` itself otherwise)."""
        target = self._forktex_target
        if self._forktex_overdue is not None:  # stopped by the watchdog: a command timeout
            silent = command_failure(TimeoutError(), target, self._forktex_overdue)
            if silent is not None:  # always, for a timeout
                raise silent from exc
        translated = command_failure(exc, target, target.command_timeout)
        if translated is None:
            return
        if isinstance(exc, TimeoutError):  # asyncpg's own error: nothing wraps it here
            # Silent mid-reply: the connection's state is unknown, so it is never reused;
            # closing it now also spares the caller asyncpg's wait (another timeout) for its
            # cancel request, which a silent server does not answer either.
            self.terminate()
        raise translated from exc

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._forktex_busy = monotonic()
        try:
            return await super().execute(*args, **kwargs)
        except Exception as exc:
            self._report(exc)
            raise
        finally:
            self._forktex_busy = None

    async def executemany(self, *args: Any, **kwargs: Any) -> Any:
        self._forktex_busy = monotonic()
        try:
            return await super().executemany(*args, **kwargs)
        except Exception as exc:
            self._report(exc)
            raise
        finally:
            self._forktex_busy = None

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        self._forktex_busy = monotonic()
        try:
            return await super().fetch(*args, **kwargs)
        except Exception as exc:
            self._report(exc)
            raise
        finally:
            self._forktex_busy = None

    async def fetchrow(self, *args: Any, **kwargs: Any) -> Any:
        self._forktex_busy = monotonic()
        try:
            return await super().fetchrow(*args, **kwargs)
        except Exception as exc:
            self._report(exc)
            raise
        finally:
            self._forktex_busy = None

    async def fetchval(self, *args: Any, **kwargs: Any) -> Any:
        self._forktex_busy = monotonic()
        try:
            return await super().fetchval(*args, **kwargs)
        except Exception as exc:
            self._report(exc)
            raise
        finally:
            self._forktex_busy = None

    async def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        self._forktex_busy = monotonic()
        try:
            return await super().fetchmany(*args, **kwargs)
        except Exception as exc:
            self._report(exc)
            raise
        finally:
            self._forktex_busy = None


class Reporter:
    """Opens flow's connections with its timeouts and reports their faults.

    Example::

        reporter = Reporter("postgresql://app:secret@db/app", 5.0, 30.0)
        conn = await reporter.connect(reporter.dsn)  # FlowUnavailable if unreachable
    """

    def __init__(self, url: str, connect_timeout: float, command_timeout: float | None) -> None:
        self.dsn = asyncpg_dsn(url)
        self.target = describe_target(url, connect_timeout, command_timeout)
        self.connection_class: type[ReportingConnection] = type(
            "ReportingConnection", (ReportingConnection,), {"_forktex_target": self.target}
        )

    @property
    def timeouts(self) -> dict[str, Any]:
        """asyncpg's connect arguments for the timeouts."""
        return {
            "timeout": self.target.connect_timeout,
            "command_timeout": self.target.command_timeout,
        }

    async def connect(
        self, *args: Any, watchdog: StatementWatchdog | None = None, **kwargs: Any
    ) -> asyncpg.Connection:
        """``asyncpg.connect`` with the timeouts and the reporting connection class (also
        the ``connect=`` of flow's pools, which pass their own ``connection_class``).

        With a ``watchdog``, the connection has no timer per statement; the watchdog
        enforces ``command_timeout`` on it instead."""
        kwargs = {**self.timeouts, "connection_class": self.connection_class, **kwargs}
        if watchdog is not None:
            kwargs["command_timeout"] = None
        try:
            conn: asyncpg.Connection = await asyncpg.connect(*(args or (self.dsn,)), **kwargs)
        except asyncpg.ClientConfigurationError as exc:
            raise InvalidArgument(
                f"asyncpg rejected the connection settings for {self.target}: {exc}"
            ) from None
        except Exception as exc:
            translated = connect_failure(exc, self.target)
            if translated is None:
                raise
            raise translated from exc
        if watchdog is not None:
            watchdog.watch(conn)
        return conn

    async def connect_for_engine(self) -> asyncpg.Connection:
        """:meth:`connect` for SQLAlchemy's ``async_creator``: a plain asyncpg connection,
        so that SQLAlchemy still recognises a broken one in ``pool_pre_ping`` and replaces
        it; the engine's ``handle_error`` hook reports its statements' faults instead."""
        return await self.connect(connection_class=asyncpg.Connection)

    def engine(self, url: str, **options: Any) -> AsyncEngine:
        """A SQLAlchemy engine on ``url`` whose connections come from :meth:`connect` and
        whose faults are reported as :class:`FlowUnavailable`."""
        from sqlalchemy import event
        from sqlalchemy.engine import ExceptionContext
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url, async_creator=self.connect_for_engine, **options)
        target = self.target

        def handle_error(context: ExceptionContext) -> BaseException | None:
            if context.is_pre_ping:
                return None  # SQLAlchemy replaces a connection that fails its pre-ping
            original = context.original_exception
            if isinstance(original, FlowUnavailable):
                translated: FlowUnavailable | None = original
            else:
                translated = command_failure(original, target, target.command_timeout)
            if translated is None:
                return None
            context.is_disconnect = True  # the connection is discarded, never reused
            return translated

        event.listen(engine.sync_engine, "handle_error", handle_error)
        return engine
