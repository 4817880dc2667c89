# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Which failures mean "the database is unavailable", and how they are reported.

Every function here turns a driver, socket or pool error into a :class:`DatabaseUnavailable`
whose message names the server (``host:port``, database, user) and what failed, or returns
``None`` when the error is something else (a constraint violation, a bad statement). No
message ever holds a password: the server is described from its address, never its URL.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from ._errors import DatabaseUnavailable, DBError

DEFAULT_PORT = 5432

# SQLSTATEs PostgreSQL sends when it ends a session on its side: shutdown (57P01, 57P02),
# start-up / recovery (57P03), the database was dropped (57P04), idle-session timeout (57P05).
_SERVER_ENDED = ("57P01", "57P02", "57P03", "57P04", "57P05")


@dataclass(frozen=True)
class Server:
    """The database an engine talks to and the limits it was given, for error messages."""

    address: str
    database: str
    user: str
    connect_timeout: float | None
    command_timeout: float | None
    pool_timeout: float | None

    def __str__(self) -> str:
        return f"PostgreSQL at {self.address} (database {self.database!r}, user {self.user!r})"


def _address(host: Any, port: Any) -> str:
    hosts: Sequence[Any] = host if isinstance(host, (list, tuple)) else [host]
    ports: Sequence[Any] = port if isinstance(port, (list, tuple)) else [port] * len(hosts)
    parts = []
    for index, name in enumerate(hosts):
        number = ports[index] if index < len(ports) else None
        name = str(name) if name else "localhost"
        if name.startswith("/"):  # a Unix-domain socket directory
            parts.append(name)
        else:
            shown = f"[{name}]" if ":" in name else name
            parts.append(f"{shown}:{number or DEFAULT_PORT}")
    return ",".join(parts)


def describe_server(
    url: URL,
    connect_params: Mapping[str, Any],
    *,
    connect_timeout: float | None,
    command_timeout: float | None,
    pool_timeout: float | None,
) -> Server:
    """The :class:`Server` behind ``url``; ``connect_params`` are the dialect's connect
    arguments for it (they resolve multi-host URLs and ``?host=`` socket paths)."""
    host = connect_params.get("host", url.host)
    port = connect_params.get("port", url.port)
    return Server(
        address=_address(host, port),
        database=str(connect_params.get("database") or url.database or url.username or ""),
        user=str(connect_params.get("user") or url.username or ""),
        connect_timeout=connect_timeout,
        command_timeout=command_timeout,
        pool_timeout=pool_timeout,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def driver_error(exc: BaseException) -> BaseException:
    """The asyncpg / socket error behind ``exc``: SQLAlchemy's asyncpg adapter re-raises
    driver errors as its own DB-API classes, with the original as ``__cause__``."""
    cause = exc.__cause__
    if cause is not None and type(exc).__module__.startswith("sqlalchemy.dialects"):
        return cause
    return exc


def _seconds(value: float | None) -> str:
    return "no limit" if value is None else f"{value:g} s"


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", "") or "")


def connect_failure(exc: BaseException, server: Server) -> DatabaseUnavailable | None:
    """``exc``, raised while opening a connection, as :class:`DatabaseUnavailable`."""
    cause = driver_error(exc)
    if isinstance(cause, DBError):
        return None
    if isinstance(cause, TimeoutError):
        reason = (
            f"no answer within {_seconds(server.connect_timeout)} (connect_timeout): the server or "
            "the network is silent; check the host, the port and firewalls, or raise "
            "init_engine(connect_timeout=...)"
        )
    elif isinstance(cause, socket.gaierror):
        reason = (
            f"cannot resolve the host name of {server.address} ({cause.strerror or cause}); "
            "check the host in the URL"
        )
    elif isinstance(cause, ConnectionRefusedError):
        reason = "connection refused: nothing listens on that port (is the server running?)"
    elif isinstance(cause, OSError):
        reason = f"{type(cause).__name__}: {cause.strerror or _first_line(cause)}"
    elif isinstance(cause, asyncpg.InvalidAuthorizationSpecificationError):
        reason = (
            f"login refused: {_first_line(cause)}; check the user name and password in the "
            "URL (and the server's pg_hba.conf)"
        )
    elif isinstance(cause, asyncpg.InvalidCatalogNameError):
        reason = (
            f"database {server.database!r} does not exist; create it or fix the database "
            "name in the URL"
        )
    elif isinstance(cause, asyncpg.TooManyConnectionsError):
        reason = (
            f"the server has no connection slot left ({_first_line(cause)}); lower "
            "pool_size / max_overflow or raise the server's max_connections"
        )
    elif _sqlstate(cause) in _SERVER_ENDED:
        reason = f"the server is starting up or shutting down ({_first_line(cause)})"
    elif isinstance(cause, asyncpg.PostgresConnectionError):
        reason = f"the connection was closed while logging in ({_first_line(cause)})"
    elif isinstance(cause, asyncpg.PostgresError):
        reason = (
            f"the server refused the connection: {_first_line(cause)} [SQLSTATE {_sqlstate(cause)}]"
        )
    elif isinstance(cause, asyncpg.InterfaceError) and not isinstance(cause, ValueError):
        reason = f"{type(cause).__name__}: {_first_line(cause)}"
    else:
        return None
    return DatabaseUnavailable(f"cannot connect to {server}: {reason}")


def is_lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` (raised while using a connection) means the connection is gone.

    Only socket-level errors count, not every ``OSError``: our own errors may be one
    (:class:`TenantViolation` is a ``PermissionError``), and so may errors of the caller's
    code that runs during a statement (a type's bind processor reading a file).
    """
    cause = driver_error(exc)
    if isinstance(cause, DBError):
        return False
    return (
        isinstance(cause, (ConnectionError, ssl.SSLError, asyncpg.PostgresConnectionError))
        or _sqlstate(cause) in _SERVER_ENDED
    )


_DURING = {
    "statement": (
        "while running a statement or reading its result",
        "the open transaction, if any, is not committed",
    ),
    "commit": (
        "while committing or rolling back",
        "if this was a COMMIT, it may or may not have been applied (make such writes "
        "idempotent and retry)",
    ),
    "ping": ("while checking a pooled connection (pool_pre_ping)", "nothing was sent"),
}


def command_failure(
    exc: BaseException,
    server: Server,
    *,
    disconnected: bool,
    during: str,
    waited: float | None,
) -> DatabaseUnavailable | None:
    """``exc``, raised while using a connection, as :class:`DatabaseUnavailable`.

    ``disconnected``: SQLAlchemy found the connection closed. ``during``: ``"statement"``,
    ``"commit"`` (committing or rolling back) or ``"ping"`` (``pool_pre_ping``).
    ``waited``: the command timeout that was in force on the connection.
    """
    cause = driver_error(exc)
    when, outcome = _DURING[during]
    if not isinstance(exc, Exception) or not isinstance(cause, Exception):
        return None  # cancellation, KeyboardInterrupt, SystemExit: never a database fault
    if isinstance(cause, DBError):
        return None
    if isinstance(cause, TimeoutError):
        return DatabaseUnavailable(
            f"{server} did not answer within {_seconds(waited)} "
            f"(command_timeout) {when}: the server or the network went silent, or the "
            "statement is legitimately slow. The connection was discarded; "
            f"{outcome}. For a long statement raise the limit: 'async with "
            "command_timeout(session, seconds):' or get_session(command_timeout=...)"
        )
    if disconnected or is_lost_connection(cause):
        return DatabaseUnavailable(
            f"lost the connection to {server} {when} ({type(cause).__name__}: "
            f"{_first_line(cause)}); {outcome}"
        )
    return None


def pool_failure(exc: BaseException, server: Server, pool_size: int | None) -> DatabaseUnavailable:
    """No pooled connection became free within ``pool_timeout``."""
    size = f", pool_size={pool_size}" if pool_size is not None else ""
    return DatabaseUnavailable(
        f"no free connection to {server} within {_seconds(server.pool_timeout)} "
        f"(pool_timeout{size}): every pooled connection is in use. Sessions are held open "
        "too long or the server is slow; release sessions sooner, or raise pool_size / "
        f"max_overflow / pool_timeout ({_first_line(exc).split(' (Background')[0]})"
    )
