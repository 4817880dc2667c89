# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The current actor: ``acting_as(user_id)`` backed by a contextvar, read by ``AuditMixin``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ._ids import as_uuid

_current_actor: ContextVar[uuid.UUID | None] = ContextVar("forktex_core_db_actor", default=None)


@contextmanager
def acting_as(user_id: uuid.UUID | str | None) -> Iterator[uuid.UUID | None]:
    """Attribute writes in this block to ``user_id`` (``None``: no actor, e.g. a system job).

    ``AuditMixin`` rows inserted inside the block get ``created_by`` and ``updated_by`` set to
    the actor, and rows updated inside it get ``updated_by``; values you set explicitly win.
    Follows asyncio tasks (contextvar); nests (the innermost wins).

    Example::

        with acting_as(current_user.id):
            async with get_session() as session:
                session.add(Invoice(amount=100))  # created_by = current_user.id
    """
    actor = None if user_id is None else as_uuid(user_id, "acting_as(user_id)")
    token = _current_actor.set(actor)
    try:
        yield actor
    finally:
        _current_actor.reset(token)


def current_actor() -> uuid.UUID | None:
    """The user of the innermost ``acting_as``, or ``None``.

    Example::

        with acting_as(user_id):
            assert current_actor() == user_id
    """
    return _current_actor.get()
