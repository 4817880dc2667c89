# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The tenant guard on sessions: ``ForktexSession`` and ``install_tenant_guard``.

Every statement a guarded session executes (``session.execute`` / ``scalars`` / ``get`` /
relationship and column loads — ORM or Core, any form) passes through :func:`_guard`, which
checks what the statement writes (``_dmlguard``) and marks it so that SQLAlchemy's compiler
confines every org-scoped table it renders (``_sqlguard``). Identity-map hits, which send no
SQL, are checked by the session's ``_identity_lookup``; flushes by ``_flushguard``; the
legacy ``bulk_*`` methods, which skip both events and ``do_orm_execute``, are refused on
org-scoped models.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from ._dmlguard import check_params, check_writes
from ._errors import InvalidArgument, TenantViolation
from ._mixins import OrgScopedMixin
from ._sqlguard import GUARDED, hooks_intact
from ._tenant import UNSCOPED, tenant_state

_FLAG = "_forktex_tenant_guard"


def is_guarded(session: Any) -> bool:
    """Whether ``session`` (a sync ``Session`` or ``None``) has the tenant guard."""
    return session is not None and bool(getattr(session, _FLAG, False))


def _refuse_if_hooks_replaced() -> None:
    if not hooks_intact():
        raise TenantViolation(
            "the tenant guard's SQL compile hooks were replaced by another @compiles "
            "registration for Table/Column/Select/Update/Delete/text; refusing to run "
            "statements that could no longer be confined"
        )


def _mark(statement: Any) -> Any:
    """``statement`` compiled with the tenant guard (see ``_sqlguard``)."""
    return statement.options(GUARDED)


def _sync_by_fetch(state: ORMExecuteState) -> None:
    # "evaluate" would apply an ORM UPDATE/DELETE to matching objects of other orgs in the
    # identity map; "fetch" syncs exactly the rows the confined statement changed.
    # (ORM bulk UPDATE by primary key, an executemany, synchronizes nothing.)
    if (state.is_update or state.is_delete) and state.is_orm_statement and not state.is_executemany:
        if state.execution_options.get("synchronize_session", "auto") in ("auto", "evaluate"):
            state.update_execution_options(synchronize_session="fetch")


def _reraise_tenant_violation(exc: StatementError) -> None:
    # SQLAlchemy wraps errors raised while binding parameters (the org parameter refuses
    # to bind without a scope) in StatementError, whose text would show the SQL.
    if isinstance(exc.orig, TenantViolation):
        raise exc.orig from None


def _guard(state: ORMExecuteState) -> Any:
    scope = tenant_state()
    if scope is UNSCOPED:
        return None
    _refuse_if_hooks_replaced()
    org = scope if isinstance(scope, uuid.UUID) else None
    params = state.parameters
    check_params(params)
    statement, checked = check_writes(state.statement, params, org)
    state.statement = _mark(statement)
    if org is not None:
        _sync_by_fetch(state)
        if checked is params:
            return None  # the session runs the marked statement; nothing to unwrap in a scope
    try:
        if checked is not params:
            return state.invoke_statement(params=checked)
        return state.invoke_statement()
    except StatementError as exc:
        _reraise_tenant_violation(exc)
        raise


def _identity_hit(found: Any) -> Any:
    """An object found in the identity map (no SQL sent): only the scope's org's rows."""
    if not isinstance(found, OrgScopedMixin):
        return found
    scope = tenant_state()
    if scope is UNSCOPED:
        return found
    if scope is None:
        raise TenantViolation(
            f"no tenant scope is set: cannot return {type(found).__name__} "
            f"{found.__dict__.get('id', '')} from a guarded session; use 'with "
            "tenant_scope(org_id):' (or 'with unscoped():' for deliberate cross-tenant work)"
        )
    return found if found.__dict__.get("org_id") == scope else None


_LEGACY_BULK = ("bulk_save_objects", "bulk_insert_mappings", "bulk_update_mappings")


def _refuse_legacy_bulk(method: str, target: Any) -> None:
    """The legacy ``bulk_*`` methods write without events or ``do_orm_execute``: refuse them
    on org-scoped models unless ``unscoped()``."""
    if tenant_state() is UNSCOPED:
        return
    if method == "bulk_save_objects":
        touches = any(isinstance(obj, OrgScopedMixin) for obj in target)
    else:
        cls = getattr(target, "class_", target)
        touches = isinstance(cls, type) and issubclass(cls, OrgScopedMixin)
    if touches:
        raise TenantViolation(
            f"Session.{method}() bypasses the tenant guard and is refused for org-scoped "
            "models; use session.execute(insert(Model), rows) or update(Model) with a list of "
            "rows (checked by the guard), or run it inside 'with unscoped():'"
        )


def _guarded_bulk(method: str, original: Any) -> Any:
    def bulk(self: Session, target: Any, *args: Any, **kwargs: Any) -> Any:
        if method == "bulk_save_objects":
            target = list(target)
        _refuse_legacy_bulk(method, target)
        return original(self, target, *args, **kwargs)

    bulk.__name__ = method
    return bulk


class ForktexSession(Session):
    """A :class:`sqlalchemy.orm.Session` with the tenant guard installed (what
    ``get_session()`` uses). Use it as ``sync_session_class`` of your own factory.

    Example::

        maker = async_sessionmaker(engine, sync_session_class=ForktexSession,
                                   expire_on_commit=False)
    """

    _forktex_tenant_guard = True

    def _identity_lookup(self, *args: Any, **kwargs: Any) -> Any:
        return _identity_hit(super()._identity_lookup(*args, **kwargs))


for _method in _LEGACY_BULK:
    setattr(ForktexSession, _method, _guarded_bulk(_method, getattr(Session, _method)))


event.listen(ForktexSession, "do_orm_execute", _guard)


def _guard_session(target: type[Session] | Session) -> None:
    """Guard what ``do_orm_execute`` does not see: identity-map hits and legacy bulk writes."""
    if getattr(target, _FLAG, False):
        return
    if isinstance(target, type):
        original_method = target._identity_lookup

        def lookup_method(self: Session, *args: Any, **kwargs: Any) -> Any:
            return _identity_hit(original_method(self, *args, **kwargs))

        setattr(target, "_identity_lookup", lookup_method)  # noqa: B010 - patching the class
        for method in _LEGACY_BULK:
            setattr(target, method, _guarded_bulk(method, getattr(target, method)))
    else:
        original_bound = target._identity_lookup

        def lookup_bound(*args: Any, **kwargs: Any) -> Any:
            return _identity_hit(original_bound(*args, **kwargs))

        target.__dict__["_identity_lookup"] = lookup_bound
        for method in _LEGACY_BULK:
            unbound = getattr(type(target), method)
            target.__dict__[method] = _guarded_bulk(method, unbound).__get__(target)
    setattr(target, _FLAG, True)


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
    guard_on: type[Session] | Session
    if isinstance(target, async_sessionmaker):
        sync_class = target.kw.get("sync_session_class") or target.class_.sync_session_class
        if sync_class is Session:
            raise InvalidArgument(
                "this async_sessionmaker uses the global sqlalchemy Session class; create it "
                "with async_sessionmaker(engine, sync_session_class=ForktexSession) (or your "
                "own Session subclass) and pass it again"
            )
        listen_on = guard_on = sync_class
    elif isinstance(target, AsyncSession):
        listen_on = guard_on = target.sync_session
    elif isinstance(target, sessionmaker):
        listen_on, guard_on = target, target.class_
    elif isinstance(target, Session):
        listen_on = guard_on = target
    elif isinstance(target, type) and issubclass(target, Session):
        if target is Session:
            raise InvalidArgument(
                "refusing to guard the global sqlalchemy Session class; pass your own "
                "Session subclass, sessionmaker or session (or use ForktexSession)"
            )
        listen_on = guard_on = target
    else:
        raise InvalidArgument(
            "install_tenant_guard() takes a sessionmaker, async_sessionmaker, Session "
            f"subclass, Session or AsyncSession, got {target!r}"
        )
    if not event.contains(listen_on, "do_orm_execute", _guard):
        event.listen(listen_on, "do_orm_execute", _guard)
    _guard_session(guard_on)
