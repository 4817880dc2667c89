# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Which failures mean "the database is unavailable", and how they are reported.

Every function here turns a driver, socket or pool error into a :class:`DatabaseUnavailable`
whose message names the server (``host:port``, database, user) and what failed, or returns
``None`` when the error is something else (a constraint violation, a bad statement). No
message ever holds a password: the server is described from its address, never its URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL

from ._errors import DatabaseUnavailable, DBError
from ._faults import connect_fault_reason, driver_error, first_line, seconds_text
from ._faults import is_lost_connection as lost_connection

DEFAULT_PORT = 5432


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


def connect_failure(exc: BaseException, server: Server) -> DatabaseUnavailable | None:
    """``exc``, raised while opening a connection, as :class:`DatabaseUnavailable`."""
    if isinstance(driver_error(exc), DBError):
        return None
    reason = connect_fault_reason(
        exc,
        address=server.address,
        database=server.database,
        connect_timeout=server.connect_timeout,
        setting="init_engine(connect_timeout=...)",
    )
    if reason is None:
        return None
    return DatabaseUnavailable(f"cannot connect to {server}: {reason}")


def is_lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` (raised while using a connection) means the connection is gone; db's
    own errors never do."""
    return not isinstance(driver_error(exc), DBError) and lost_connection(exc)


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
            f"{server} did not answer within {seconds_text(waited)} "
            f"(command_timeout) {when}: the server or the network went silent, or the "
            "statement is legitimately slow. The connection was discarded; "
            f"{outcome}. For a long statement raise the limit: 'async with "
            "command_timeout(session, seconds):' or get_session(command_timeout=...)"
        )
    if disconnected or is_lost_connection(cause):
        return DatabaseUnavailable(
            f"lost the connection to {server} {when} ({type(cause).__name__}: "
            f"{first_line(cause)}); {outcome}"
        )
    return None


def pool_failure(exc: BaseException, server: Server, pool_size: int | None) -> DatabaseUnavailable:
    """No pooled connection became free within ``pool_timeout``."""
    size = f", pool_size={pool_size}" if pool_size is not None else ""
    return DatabaseUnavailable(
        f"no free connection to {server} within {seconds_text(server.pool_timeout)} "
        f"(pool_timeout{size}): every pooled connection is in use. Sessions are held open "
        "too long or the server is slow; release sessions sooner, or raise pool_size / "
        f"max_overflow / pool_timeout ({first_line(exc).split(' (Background')[0]})"
    )
