# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Values the driver or PostgreSQL rejected, as the repository's own errors.

The repository checks values before sending them (``_values``); this is the net under that
check: a data exception (SQLSTATE class 22), an exceeded program limit (class 54, e.g. the
B-tree index row size), asyncpg or SQLAlchemy refusing to encode an argument becomes
:class:`InvalidFilter` (reads) or :class:`InvalidValue` (writes). The message keeps
PostgreSQL's description and leaves out the value itself (it may be a secret). Constraint
violations (class 23) stay SQLAlchemy's ``IntegrityError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, StatementError

from ._errors import InvalidFilter, InvalidValue

_REJECTED_CLASSES = ("22", "54")
_CLIENT_SIDE = re.compile(r"^(invalid input for query argument \$\d+)(?:.*\(([^()]*)\))?", re.S)
_TOO_MANY_ARGUMENTS = "the number of query arguments cannot exceed"


def _description(exc: StatementError) -> str | None:
    if not isinstance(exc, DBAPIError):
        # Raised while SQLAlchemy encoded a parameter (e.g. a JSON value that is not JSON).
        if isinstance(exc.orig, (TypeError, ValueError, OverflowError, LookupError)):
            return (
                f"a value could not be encoded ({type(exc.orig).__name__}: {str(exc.orig)[:120]})"
            )
        return None
    cause = exc.orig.__cause__ if exc.orig is not None else None
    cause = cause if cause is not None else exc.orig
    sqlstate = str(getattr(cause, "sqlstate", "") or "")
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    client = _CLIENT_SIDE.match(text)
    if client is not None:  # asyncpg could not encode an argument; its text quotes the value
        reason = f": {client.group(2)}" if client.group(2) else ""
        return f"{client.group(1)}{reason}"
    if sqlstate[:2] in _REJECTED_CLASSES:
        column = getattr(cause, "column_name", None)
        where = f" (column {column!r})" if column else ""
        # PostgreSQL's own messages name types and limits, not the rejected value.
        return f"{text[:300]}{where} [SQLSTATE {sqlstate}]"
    if _TOO_MANY_ARGUMENTS in text:
        return "the statement needs more than 32767 bound parameters"
    return None


@contextmanager
def rejected_by_postgres(*, reading: bool) -> Iterator[None]:
    """Translate a rejected value into InvalidFilter (``reading``) or InvalidValue."""
    try:
        yield
    except (DBAPIError, StatementError) as exc:
        if isinstance(exc, DBAPIError) and exc.orig is None:
            raise
        description = _description(exc)
        if description is None:
            raise
        if reading:
            raise InvalidFilter(f"PostgreSQL rejected a filter value: {description}") from None
        raise InvalidValue(f"PostgreSQL rejected a value: {description}") from None
