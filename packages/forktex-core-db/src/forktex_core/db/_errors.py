# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The one exception hierarchy of ``forktex_core.db``, rooted at :class:`DBError`."""

from __future__ import annotations


class DBError(Exception):
    """Base class of every error raised by ``forktex_core.db``.

    Example::

        try:
            await repo.get(invoice_id)
        except DBError as exc:
            log.warning("db problem: %s", exc)
    """


class EngineNotInitialised(DBError, RuntimeError):
    """``get_engine()`` / ``get_session()`` was called before ``init_engine()``.

    Example::

        init_engine("postgresql+asyncpg://app@db/app")  # do this at start-up
    """


class EngineAlreadyInitialised(DBError, RuntimeError):
    """``init_engine()`` was called while an engine is already set up.

    Call ``await close_engine()`` first, or pass ``replace=True`` deliberately.

    Example::

        init_engine(url, replace=True)
    """


class InvalidArgument(DBError, ValueError):
    """An argument has the wrong type or value; the message names it and what is allowed.

    Example::

        Repository(session, "Invoice")  # raises InvalidArgument: model must be a mapped class
    """


class InvalidURL(InvalidArgument):
    """The database URL cannot be parsed or does not use the ``postgresql+asyncpg`` driver.

    The message shows the URL with its password masked.

    Example::

        init_engine("mysql://app@db/app")  # raises InvalidURL
    """


class NotFound(DBError, LookupError):
    """No row with the given primary key exists (or it is outside the current tenant scope).

    Example::

        try:
            invoice = await repo.get(invoice_id)
        except NotFound:
            raise HTTPException(404)
    """


class InvalidFilter(InvalidArgument):
    """A ``filters=`` key names a field that is not filterable (unknown, or not declared in
    the allow-list) or an unknown operator, or its value does not fit the column.

    Example::

        await repo.list(filters={"amount__bigger": 1})  # raises InvalidFilter
    """


class InvalidValue(InvalidArgument):
    """A value given to ``create()`` / ``create_many()`` / ``update()`` (or an id) does not
    fit its column; the message names the field and the limit (integer width, text length,
    index row size, NUL / invalid UTF-8, datetime range, numeric digits).

    Nothing is sent to the database when it is raised before the statement; values that
    PostgreSQL itself rejects are reported with this class too.

    Example::

        await repo.create(number="x" * 10_000)  # raises InvalidValue: varchar(32)
    """


class InvalidSort(InvalidArgument):
    """A ``sort=`` entry names a field that cannot be sorted on (not declared sortable).

    Example::

        await repo.list(sort=["-nope"])  # raises InvalidSort
    """


class InvalidCursor(InvalidArgument):
    """A ``scroll()`` cursor is malformed, tampered with, or was made for another query.

    Example::

        await repo.scroll(cursor="garbage")  # raises InvalidCursor
    """


class TenantViolation(DBError, PermissionError):
    """A write would cross tenants, or a row of another org reached a tenant-scoped session.

    Example::

        with tenant_scope(org_a):
            session.add(Invoice(org_id=org_b))
            await session.flush()  # raises TenantViolation
    """


class DatabaseUnavailable(DBError, ConnectionError):
    """PostgreSQL could not be reached or stopped answering: a connect or command timeout, a
    refused or reset connection, an unknown host, a failed login, a database that does not
    exist, a server shutting down or restarting, or no free pooled connection in time.

    The message names the server (``host:port``), the database and what failed; it never
    holds a password. When a connection is lost inside a transaction, the transaction is
    rolled back by the server (nothing of it is written) — except when the reply of its
    ``COMMIT`` was lost: the commit may or may not have happened (make such writes
    idempotent, see "Behaviour under faults" in the README).

    Also a :class:`ConnectionError`, so generic "service unavailable" handlers catch it.

    Example::

        try:
            async with get_session() as session:
                invoice = await Invoices(session).get(invoice_id)
        except DatabaseUnavailable:
            raise HTTPException(503, "database unavailable, retry later")
    """


class SchemaMigrationError(DBError):
    """``ensure_schema()`` could not bring a schema to the expected version.

    Nothing was applied: all missing migrations run in one transaction.

    Example::

        try:
            await ensure_schema(engine, "forktex_flow", migrations=MIGRATIONS)
        except SchemaMigrationError as exc:
            log.error("cannot start: %s", exc)
    """
