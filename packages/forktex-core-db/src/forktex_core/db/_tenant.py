# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The current tenant: ``tenant_scope(org_id)`` / ``unscoped()`` backed by a contextvar.

Three states: inside ``tenant_scope(org)`` (confined to ``org``), inside ``unscoped()`` (a
deliberate bypass), or neither (guarded sessions refuse org-scoped statements).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ._errors import InvalidArgument
from ._ids import as_uuid


class _Unscoped:
    """The state set by ``unscoped()``: tenant isolation bypassed on purpose."""

    def __repr__(self) -> str:
        return "UNSCOPED"


UNSCOPED = _Unscoped()

_current_org: ContextVar[uuid.UUID | _Unscoped | None] = ContextVar(
    "forktex_core_db_org", default=None
)


@contextmanager
def tenant_scope(org_id: uuid.UUID | str) -> Iterator[uuid.UUID]:
    """Run a block as tenant ``org_id``: statements on ``OrgScopedMixin`` tables are confined
    to that org.

    Inside the block, every statement a guarded session (``get_session()``, or one set up
    with ``install_tenant_guard``) sends reads only that org's rows, wherever the table
    appears (ORM or Core, joins, subqueries, CTEs, ``exists``, relationship loads); UPDATE,
    DELETE and upserts only touch that org's rows; new rows without ``org_id`` get it filled
    in, and writing or moving a row to another org raises :class:`TenantViolation`.
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
    """Bypass tenant isolation for a block, on purpose (admin jobs, migrations, cross-tenant
    reports, key rotation over every org's rows).

    Outside both ``tenant_scope`` and ``unscoped``, guarded sessions refuse every statement
    on an org-scoped table (fail closed): ``unscoped()`` is the explicit way to see all orgs.
    It also leaves an enclosing ``tenant_scope``.

    Example::

        with tenant_scope(org_a):
            with unscoped():
                total = await Repository(session, Invoice).count()  # every org
    """
    token = _current_org.set(UNSCOPED)
    try:
        yield
    finally:
        _current_org.reset(token)


def current_org() -> uuid.UUID | None:
    """The org of the innermost ``tenant_scope``, or ``None`` outside any scope (and inside
    ``unscoped()``).

    Example::

        with tenant_scope(org_id):
            assert current_org() == org_id
    """
    value = _current_org.get()
    return value if isinstance(value, uuid.UUID) else None


def tenant_state() -> uuid.UUID | _Unscoped | None:
    """The raw state: the scope's org, :data:`UNSCOPED`, or ``None`` (neither)."""
    return _current_org.get()
