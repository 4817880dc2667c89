# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The tenant guard: a ``do_orm_execute`` hook that confines ORM statements to the scope's org."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria

from ._errors import InvalidArgument, TenantViolation
from ._ids import as_uuid
from ._mixins import OrgScopedMixin
from ._tenant import current_org


def _criteria(org: uuid.UUID) -> Any:
    return with_loader_criteria(
        OrgScopedMixin,
        lambda cls: cls.org_id == org,
        include_aliases=True,
    )


def _is_org_scoped(state: ORMExecuteState) -> bool:
    mapper = state.bind_mapper
    return mapper is not None and issubclass(mapper.class_, OrgScopedMixin)


def _check_insert_params(state: ORMExecuteState, org: uuid.UUID) -> Any:
    params: Any = state.parameters
    if not params or not _is_org_scoped(state):
        return None
    rows: list[Any] = params if isinstance(params, list) else [params]
    filled: list[dict[str, Any]] = []
    for row in rows:
        value = row.get("org_id")
        if value is None:
            filled.append({**row, "org_id": org})
            continue
        if as_uuid(value, "org_id") != org:
            raise TenantViolation(
                f"cannot insert a row for org {value} inside tenant_scope({org}): a tenant may "
                "only write its own rows (leave org_id out to use the scope's org)"
            )
        filled.append(dict(row))
    return state.invoke_statement(params=filled if isinstance(params, list) else filled[0])


def _guard(state: ORMExecuteState) -> Any:
    org = current_org()
    if org is None:
        return None
    if state.is_select or state.is_update or state.is_delete:
        if not (state.is_column_load or state.is_relationship_load):
            state.statement = state.statement.options(_criteria(org))
        return None
    if state.is_insert:
        return _check_insert_params(state, org)
    return None


class ForktexSession(Session):
    """A :class:`sqlalchemy.orm.Session` with the tenant guard installed (what
    ``get_session()`` uses). Use it as ``sync_session_class`` of your own factory.

    Example::

        maker = async_sessionmaker(engine, sync_session_class=ForktexSession,
                                   expire_on_commit=False)
    """


event.listen(ForktexSession, "do_orm_execute", _guard)


def install_tenant_guard(
    target: sessionmaker[Any] | async_sessionmaker[Any] | type[Session] | Session | AsyncSession,
) -> None:
    """Install the tenant guard on your own session factory, ``Session`` subclass or session.

    Sessions from ``get_session()`` already have it. Idempotent. An ``async_sessionmaker``
    must have been created with a ``sync_session_class`` of its own (guarding the global
    ``Session`` class would silently affect every library in the process).

    Example::

        class AppSession(Session): ...
        maker = async_sessionmaker(engine, sync_session_class=AppSession)
        install_tenant_guard(maker)
    """
    listen_on: Any
    if isinstance(target, async_sessionmaker):
        sync_class = target.kw.get("sync_session_class") or target.class_.sync_session_class
        if sync_class is Session:
            raise InvalidArgument(
                "this async_sessionmaker uses the global sqlalchemy Session class; create it "
                "with async_sessionmaker(engine, sync_session_class=ForktexSession) (or your "
                "own Session subclass) and pass it again"
            )
        listen_on = sync_class
    elif isinstance(target, AsyncSession):
        listen_on = target.sync_session
    elif isinstance(target, (sessionmaker, Session)):
        listen_on = target
    elif isinstance(target, type) and issubclass(target, Session):
        if target is Session:
            raise InvalidArgument(
                "refusing to guard the global sqlalchemy Session class; pass your own "
                "Session subclass, sessionmaker or session (or use ForktexSession)"
            )
        listen_on = target
    else:
        raise InvalidArgument(
            "install_tenant_guard() takes a sessionmaker, async_sessionmaker, Session "
            f"subclass, Session or AsyncSession, got {target!r}"
        )
    if not event.contains(listen_on, "do_orm_execute", _guard):
        event.listen(listen_on, "do_orm_execute", _guard)
