# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The shared classification of PostgreSQL connection faults (``connect_fault_reason``,
``is_lost_connection``, ``driver_error``) that db and flow build their errors from.

The errors come from real failures: a closed port, an unknown database on the test server,
a connection the server terminated, a statement error raised through SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from forktex_core.db import (
    TenantViolation,
    connect_fault_reason,
    driver_error,
    is_lost_connection,
)
from forktex_core.testing import PostgresService


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reason(exc: BaseException, database: str = "app") -> str | None:
    return connect_fault_reason(
        exc,
        address="127.0.0.1:1",
        database=database,
        connect_timeout=5.0,
        setting="init_engine(connect_timeout=...)",
    )


async def test_a_refused_port_is_named_as_such() -> None:
    with pytest.raises(OSError) as caught:
        await asyncpg.connect(host="127.0.0.1", port=_free_port(), user="postgres", timeout=5)
    reason = _reason(caught.value)
    assert reason is not None and reason.startswith("connection refused"), reason


async def test_an_unknown_database_is_named(forktex_postgres: PostgresService) -> None:
    with pytest.raises(asyncpg.InvalidCatalogNameError) as caught:
        await asyncpg.connect(
            host=forktex_postgres.host,
            port=forktex_postgres.port,
            user=forktex_postgres.user,
            database="forktex_no_such_database",
            timeout=5,
        )
    reason = _reason(caught.value, database="forktex_no_such_database")
    assert reason == (
        "database 'forktex_no_such_database' does not exist; create it or fix the database "
        "name in the URL"
    )


def test_a_silent_server_names_the_limit_and_the_setting() -> None:
    reason = _reason(TimeoutError())
    assert reason is not None
    assert "no answer within 5 s" in reason and "init_engine(connect_timeout=...)" in reason


def test_an_unresolvable_host_names_the_address() -> None:
    reason = _reason(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert reason is not None and "cannot resolve the host name of 127.0.0.1:1" in reason


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad argument"), KeyError("x"), asyncio.CancelledError(), KeyboardInterrupt()],
    ids=["ValueError", "KeyError", "CancelledError", "KeyboardInterrupt"],
)
def test_what_is_not_a_connection_fault_gets_no_reason(exc: BaseException) -> None:
    assert _reason(exc) is None
    assert not is_lost_connection(exc)


async def test_a_terminated_connection_is_lost(forktex_postgres: PostgresService) -> None:
    conn = await asyncpg.connect(forktex_postgres.url.replace("+asyncpg", ""))
    admin = await asyncpg.connect(forktex_postgres.url.replace("+asyncpg", ""))
    try:
        pid = conn.get_server_pid()
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(Exception) as caught:
            for _ in range(50):  # the termination reaches the client asynchronously
                await conn.fetchval("SELECT 1")
                await asyncio.sleep(0.05)
        assert is_lost_connection(caught.value), repr(caught.value)
        # a closed connection is lost too ("connection is closed")
        with pytest.raises(asyncpg.InterfaceError) as closed:
            await conn.fetchval("SELECT 1")
        assert is_lost_connection(closed.value), repr(closed.value)
    finally:
        conn.terminate()
        await admin.close()


def test_errors_that_are_oserrors_but_not_sockets_are_not_lost() -> None:
    # a PermissionError is an OSError, and so is the tenant guard's error
    assert not is_lost_connection(PermissionError("no access to a file"))
    assert not is_lost_connection(TenantViolation("another org's row"))
    assert is_lost_connection(ConnectionResetError(104, "Connection reset by peer"))


async def test_driver_error_unwraps_sqlalchemys_adapter(forktex_postgres: PostgresService) -> None:
    engine = create_async_engine(forktex_postgres.url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text("SELECT * FROM forktex_no_such_table"))
        inner = driver_error(caught.value.orig)
        assert isinstance(inner, asyncpg.UndefinedTableError), repr(inner)
        plain = ValueError("not wrapped")
        assert driver_error(plain) is plain
    finally:
        await engine.dispose()
