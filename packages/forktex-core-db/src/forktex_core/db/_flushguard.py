# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The unit-of-work half of the tenant guard: ``OrgScopedMixin`` objects being flushed.

``session.add()`` / attribute changes / ``session.delete()`` are written by the flush, which
does not pass through ``do_orm_execute``; these mapper events check each object instead:

* inside ``tenant_scope(org)``: new objects get ``org_id = org``; inserting, updating,
  moving (``org_id`` change) or deleting an object of another org raises;
* in a guarded session with no scope (and not ``unscoped()``): every flush of an
  org-scoped object raises (fail closed);
* outside guarded sessions / inside ``unscoped()``: ``org_id`` must be set explicitly.

A row of another org loaded inside a scope (only possible through a session without the
guard) raises instead of being returned.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Mapper, object_session

from ._errors import InvalidArgument, TenantViolation
from ._guard import is_guarded
from ._ids import as_uuid
from ._mixins import OrgScopedMixin
from ._tenant import current_org, tenant_state


def _org_of(target: Any) -> uuid.UUID | None:
    value = target.org_id
    if value is None:
        return None
    try:
        return as_uuid(value, f"{type(target).__name__}.org_id")
    except InvalidArgument:
        raise InvalidArgument(
            f"{type(target).__name__}.org_id must be a UUID, got {value!r}"
        ) from None


def _write_scope(target: Any, verb: str) -> uuid.UUID | None:
    """The org a flush of ``target`` is confined to; ``None``: unrestricted."""
    state = tenant_state()
    if isinstance(state, uuid.UUID):
        return state
    if state is None and is_guarded(object_session(target)):
        raise TenantViolation(
            f"no tenant scope is set: cannot {verb} {type(target).__name__} "
            f"{getattr(target, 'id', '')} through a guarded session; use 'with "
            "tenant_scope(org_id):' (or 'with unscoped():' for deliberate cross-tenant work)"
        )
    return None


def _check_flush_insert(target: Any) -> None:
    scope = _write_scope(target, "insert")
    org = _org_of(target)
    name = type(target).__name__
    if org is None:
        if scope is None:
            raise TenantViolation(
                f"{name}.org_id is required: set it explicitly, or create the row inside "
                "'with tenant_scope(org_id):'"
            )
        target.org_id = scope
    elif scope is not None and org != scope:
        raise TenantViolation(
            f"cannot insert {name} for org {org} inside tenant_scope({scope}): a tenant may "
            "only write its own rows (leave org_id unset to use the scope's org)"
        )


def _check_flush_update(target: Any) -> None:
    scope = _write_scope(target, "update")
    if scope is None:
        return
    history = inspect(target).attrs.org_id.history
    before = history.deleted[0] if history.deleted else None
    org = _org_of(target)
    name = type(target).__name__
    if org != scope or (before is not None and before != scope):
        raise TenantViolation(
            f"cannot update {name} {getattr(target, 'id', '')} of org {before or org} to org "
            f"{org} inside tenant_scope({scope}): rows cannot leave or enter another tenant"
        )


def _check_flush_delete(target: Any) -> None:
    scope = _write_scope(target, "delete")
    if scope is not None and _org_of(target) != scope:
        raise TenantViolation(
            f"cannot delete {type(target).__name__} {getattr(target, 'id', '')} of org "
            f"{target.org_id} inside tenant_scope({scope})"
        )


# The listeners look the checks up at call time (so each can be tested on its own).
@event.listens_for(OrgScopedMixin, "before_insert", propagate=True)
def _org_before_insert(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    _check_flush_insert(target)


@event.listens_for(OrgScopedMixin, "before_update", propagate=True)
def _org_before_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    _check_flush_update(target)


@event.listens_for(OrgScopedMixin, "before_delete", propagate=True)
def _org_before_delete(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    _check_flush_delete(target)


def _check_loaded(target: Any) -> None:
    scope = current_org()
    if scope is None:
        return
    org = target.__dict__.get("org_id")
    if org is not None and org != scope:
        raise TenantViolation(
            f"a {type(target).__name__} row of org {org} was loaded inside "
            f"tenant_scope({scope}): this session has no tenant guard; use get_session() or "
            "install_tenant_guard() on your sessionmaker"
        )


@event.listens_for(OrgScopedMixin, "load", propagate=True)
def _org_on_load(target: Any, context: Any) -> None:
    _check_loaded(target)


@event.listens_for(OrgScopedMixin, "refresh", propagate=True)
def _org_on_refresh(target: Any, context: Any, attrs: Any) -> None:
    _check_loaded(target)
