# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The current tenant: ``tenant_scope(org_id)`` / ``unscoped()`` backed by a contextvar."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ._errors import InvalidArgument
from ._ids import as_uuid

_current_org: ContextVar[uuid.UUID | None] = ContextVar("forktex_core_db_org", default=None)


@contextmanager
def tenant_scope(org_id: uuid.UUID | str) -> Iterator[uuid.UUID]:
    """Run a block as tenant ``org_id``: ORM reads/writes of ``OrgScopedMixin`` models are
    confined to that org.

    Inside the block, every ORM SELECT / UPDATE / DELETE on an ``OrgScopedMixin`` model made
    through a guarded session (``get_session()``, or one set up with
    ``install_tenant_guard``) gets ``org_id = :org`` added; new rows without ``org_id`` get
    it filled in, and writing a row of another org raises :class:`TenantViolation`.
    Scopes nest (the innermost wins) and follow asyncio tasks (contextvar).

    Example::

        with tenant_scope(request.org_id):
            async with get_session() as session:
                invoices = (await session.scalars(select(Invoice))).all()  # this org only
    """
    if org_id is None:
        raise InvalidArgument(
            "tenant_scope(None) is not allowed: pass the org's UUID; to bypass tenant "
            "isolation on purpose use 'with unscoped():'"
        )
    org = as_uuid(org_id, "tenant_scope(org_id)")
    token = _current_org.set(org)
    try:
        yield org
    finally:
        _current_org.reset(token)


@contextmanager
def unscoped() -> Iterator[None]:
    """Leave any enclosing ``tenant_scope`` for a block (admin jobs, cross-tenant reports).

    Example::

        with tenant_scope(org_a):
            with unscoped():
                total = await Repository(session, Invoice).count()  # every org
    """
    token = _current_org.set(None)
    try:
        yield
    finally:
        _current_org.reset(token)


def current_org() -> uuid.UUID | None:
    """The org of the innermost ``tenant_scope``, or ``None`` outside any scope.

    Example::

        with tenant_scope(org_id):
            assert current_org() == org_id
    """
    return _current_org.get()
