# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What a driver or socket error means for a PostgreSQL connection, said once.

db's :class:`DatabaseUnavailable` and flow's ``FlowUnavailable`` are both built from these
answers, so every module that talks to PostgreSQL through asyncpg classifies a refused
port, a silent server, a failed login or a lost connection the same way. Each caller checks
its own error types first (they are never faults) and words the hint for its own settings.
Driver messages never hold the password, so the reasons may quote them.
"""

from __future__ import annotations

import socket
import ssl

import asyncpg

# SQLSTATEs PostgreSQL sends when it ends a session on its side: shutdown (57P01, 57P02),
# start-up / recovery (57P03), the database was dropped (57P04), idle-session timeout (57P05).
_SERVER_ENDED = ("57P01", "57P02", "57P03", "57P04", "57P05")


def driver_error(exc: BaseException) -> BaseException:
    """The asyncpg / socket error behind ``exc``: SQLAlchemy's asyncpg adapter re-raises
    driver errors as its own DB-API classes, with the original as ``__cause__``.

    Example::

        driver_error(sqlalchemy_error)  # the asyncpg.PostgresError it wraps
    """
    cause = exc.__cause__
    if cause is not None and type(exc).__module__.startswith("sqlalchemy.dialects"):
        return cause
    return exc


def seconds_text(value: float | None) -> str:
    """``"5 s"``, or ``"no limit"`` for ``None`` (how limits are named in messages)."""
    return "no limit" if value is None else f"{value:g} s"


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (at most 300 characters), or its class name."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", "") or "")


def connect_fault_reason(
    exc: BaseException,
    *,
    address: str,
    database: str,
    connect_timeout: float | None,
    setting: str,
) -> str | None:
    """Why a connection to PostgreSQL at ``address`` could not be opened, from ``exc``; or
    ``None`` when ``exc`` is not a connection fault (cancellation, a bug, a bad argument).

    ``setting`` names where the caller raises the connect timeout (``"init_engine(
    connect_timeout=...)"``), for the hint of a silent server.

    Example::

        reason = connect_fault_reason(exc, address="db:5432", database="app",
                                      connect_timeout=5.0, setting="Flow(connect_timeout=...)")
        # 'connection refused: nothing listens on that port (is the server running?)'
    """
    cause = driver_error(exc)
    if not isinstance(cause, Exception):
        return None
    if isinstance(cause, TimeoutError):
        return (
            f"no answer within {seconds_text(connect_timeout)} (connect_timeout): the server or "
            f"the network is silent; check the host, the port and firewalls, or raise {setting}"
        )
    if isinstance(cause, socket.gaierror):
        return (
            f"cannot resolve the host name of {address} ({cause.strerror or cause}); "
            "check the host in the URL"
        )
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused: nothing listens on that port (is the server running?)"
    if isinstance(cause, OSError):
        return f"{type(cause).__name__}: {cause.strerror or first_line(cause)}"
    if isinstance(cause, asyncpg.InvalidAuthorizationSpecificationError):
        return (
            f"login refused: {first_line(cause)}; check the user name and password in the "
            "URL (and the server's pg_hba.conf)"
        )
    if isinstance(cause, asyncpg.InvalidCatalogNameError):
        return (
            f"database {database!r} does not exist; create it or fix the database name in the URL"
        )
    if isinstance(cause, asyncpg.TooManyConnectionsError):
        return (
            f"the server has no connection slot left ({first_line(cause)}); lower "
            "pool_size / max_overflow or raise the server's max_connections"
        )
    if _sqlstate(cause) in _SERVER_ENDED:
        return f"the server is starting up or shutting down ({first_line(cause)})"
    if isinstance(cause, asyncpg.PostgresConnectionError):
        return f"the connection was closed while logging in ({first_line(cause)})"
    if isinstance(cause, asyncpg.PostgresError):
        return (
            f"the server refused the connection: {first_line(cause)} [SQLSTATE {_sqlstate(cause)}]"
        )
    if isinstance(cause, asyncpg.InterfaceError) and not isinstance(cause, ValueError):
        return f"{type(cause).__name__}: {first_line(cause)}"
    return None


def is_lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` (raised while using a connection) means the connection is gone.

    Only socket-level errors count, not every ``OSError``: a module's own errors may be one
    (db's ``TenantViolation`` is a ``PermissionError``), and so may errors of the caller's
    code that runs during a statement (a type's bind processor reading a file).

    Example::

        if is_lost_connection(exc):
            raise DatabaseUnavailable(...) from exc
    """
    cause = driver_error(exc)
    if isinstance(cause, (ConnectionError, ssl.SSLError, asyncpg.PostgresConnectionError)):
        return True
    if isinstance(cause, asyncpg.InternalClientError):
        # the protocol's state is broken (seen when the server ends a session between two
        # statements): the connection cannot be used again
        return True
    if _sqlstate(cause) in _SERVER_ENDED:
        return True
    # asyncpg's "connection is closed" / "the underlying connection is closed"
    return (
        isinstance(cause, asyncpg.InterfaceError)
        and not isinstance(cause, ValueError)
        and "closed" in str(cause)
    )
