# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The one exception hierarchy of ``forktex_core.data``, rooted at :class:`DataError`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def show(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages. Never raises: a
    value whose repr fails (an int past Python's digit limit, a deeply nested list, a broken
    ``__repr__``) is described by its type, and long strings are cut before ``repr``."""
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit]
    try:
        text = repr(value)
    except Exception:  # ValueError (int digit limit), RecursionError, a broken __repr__
        text = f"<{type(value).__name__} that cannot be shown>"
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


class DataError(Exception):
    """Base class of every error raised on purpose by ``forktex_core.data``.

    Example::

        try:
            await invoices.insert({"amount": "lots"})
        except DataError as exc:
            return {"error": str(exc)}
    """


class InvalidDefinition(DataError, ValueError):
    """A register or field definition is malformed (bad name, type, option or combination).

    Example::

        Field("amount", "money")  # raises InvalidDefinition listing the field types
    """


class InvalidValue(DataError, ValueError):
    """A value does not fit its field's type; ``field`` and ``value`` say which.

    Example::

        await invoices.insert({"amount": "lots"})  # field 'amount' (integer) ...
    """

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class InvalidQuery(DataError, ValueError):
    """A query names an unknown field or operator, or uses one that does not fit the type.

    Example::

        await RowQuery(invoices).where(amount__contains=3).scroll()  # raises InvalidQuery
    """


class InvalidCursor(InvalidQuery):
    """A ``scroll()`` cursor is malformed, edited, or was made for another query.

    Example::

        await RowQuery(invoices).scroll(cursor="garbage")  # raises InvalidCursor
    """


class NotFound(DataError, LookupError):
    """No register or row with that name / id exists for this tenant.

    Another tenant's registers and rows are reported exactly like missing ones.

    Example::

        await Register.load("nope", tenant_id=org)  # raises NotFound
    """


class UniqueViolation(DataError):
    """A write would give a unique field a value another row of the register already has.

    Example::

        await users.insert({"email": "ada@example.com"})  # second time: UniqueViolation
    """

    def __init__(self, message: str, *, field: str, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class ReferenceViolation(DataError):
    """A reference points to a row that does not exist in the target register (for this
    tenant), or a row that is still referenced would be hard-deleted.

    Example::

        await invoices.delete(customer_row_id)  # referenced by invoices.customer
    """


class ConversionFailed(DataError):
    """Changing a field's type would leave rows that cannot convert; nothing was changed.

    ``failures`` holds ``(row_id, value, reason)`` for the rows that could not convert
    (at most 100 are listed; ``failed`` has the total).

    Example::

        try:
            await invoices.change_field_type("amount", "integer")
        except ConversionFailed as exc:
            for row_id, value, reason in exc.failures: ...
    """

    def __init__(
        self, message: str, *, field: str, failures: Sequence[tuple[Any, Any, str]], failed: int
    ) -> None:
        super().__init__(message)
        self.field = field
        self.failures = tuple(failures)
        self.failed = failed


class IndexBuildFailed(DataError):
    """Building a field's index failed (e.g. a statement timeout, a deadlock with another
    index build, or the call was cancelled). The half-built index was removed and the
    field's definition is unchanged; retry.

    Example::

        try:
            await invoices.set_indexed("issued_at")
        except IndexBuildFailed as exc:
            log.warning("retry later: %s", exc)
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class RegisterNotLoaded(DataError, RuntimeError):
    """A register handle from ``Register.load(...)`` was used synchronously before its
    definition was fetched: ``await`` it (or run a query with it) first.

    Example::

        invoices = await Register.load("invoices", tenant_id=org)
        invoices.fields  # fine once awaited
    """


class SchemaConflict(DataError):
    """The register changed (another process evolved it) while this write was prepared and
    the retry with the fresh definition failed too.

    Example::

        await invoices.refresh()
    """
