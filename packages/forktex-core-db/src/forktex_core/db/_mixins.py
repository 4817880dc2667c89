# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Composable declarative mixins: UUIDv7 key, timestamps, audit columns, org scoping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, ForeignKey, Uuid, event, func, inspect
from sqlalchemy.orm import Mapped, Mapper, declared_attr, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from ._audit import current_actor
from ._errors import InvalidArgument, TenantViolation
from ._ids import as_uuid, uuid7
from ._tenant import current_org


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC ``datetime`` (what the timestamp columns store).

    Example::

        >>> utcnow().tzinfo is not None
        True
    """
    return datetime.now(UTC)


def _updated_at_default(context: Any) -> datetime:
    # On INSERT, updated_at equals created_at exactly (same statement parameters).
    created = context.get_current_parameters().get("created_at")
    return created if isinstance(created, datetime) else utcnow()


class UUIDPrimaryKeyMixin:
    """An ``id`` UUID primary key, a time-ordered UUIDv7 generated client side.

    The id is assigned as soon as the object is constructed, so it can be used (e.g. as a
    foreign key of children) before the first flush; an explicit ``id=`` wins.

    Example::

        class Event(UUIDPrimaryKeyMixin, MyBase):
            __tablename__ = "event"

        assert Event().id.version == 7
    """

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7, sort_order=-100)


@event.listens_for(UUIDPrimaryKeyMixin, "init", propagate=True)
def _assign_id(target: Any, args: Any, kwargs: dict[str, Any]) -> None:
    if kwargs.get("id") is None:
        kwargs["id"] = uuid7()  # the constructor assigns it


class TimestampMixin:
    """``created_at`` / ``updated_at``: timezone-aware, set on insert, ``updated_at`` bumped on
    every ORM update (and every ``update()`` statement). Explicit values win.

    Example::

        class Note(TimestampMixin, UUIDPrimaryKeyMixin, MyBase):
            __tablename__ = "note"
            body: Mapped[str]
    """

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        default=utcnow,
        server_default=func.now(),
        nullable=False,
        sort_order=100,
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        default=_updated_at_default,
        onupdate=utcnow,
        server_default=func.now(),
        nullable=False,
        sort_order=101,
    )


class AuditMixin:
    """``created_by`` / ``updated_by`` (nullable UUIDs) filled from ``acting_as(user_id)``.

    On insert both are set to the current actor; on every ORM update ``updated_by`` is set to
    the current actor. A value you assign explicitly wins; with no actor nothing is changed.
    Bulk ``update()`` statements bypass the ORM unit of work: set ``updated_by`` in their
    ``.values()`` yourself.

    Example::

        class Invoice(AuditMixin, BaseDBModel):
            __tablename__ = "invoice"

        with acting_as(user.id):
            session.add(Invoice())  # created_by == updated_by == user.id
    """

    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, default=current_actor, nullable=True, sort_order=102
    )
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, default=current_actor, nullable=True, sort_order=103
    )


@event.listens_for(AuditMixin, "before_update", propagate=True)
def _audit_before_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    actor = current_actor()
    if actor is None:
        return
    if not inspect(target).attrs.updated_by.history.has_changes():
        target.updated_by = actor


class OrgScopedMixin:
    """An ``org_id`` UUID column (indexed, not null) that makes a model tenant-scoped.

    Inside ``tenant_scope(org_id)`` guarded sessions only read/update/delete rows of that
    org, new rows get ``org_id`` filled in, and writing a row of another org raises
    :class:`TenantViolation`. Set ``__org_foreign_key__ = "org.id"`` on the model (or a base)
    to make the column a foreign key. :meth:`org_filter` builds the criterion by hand.

    Example::

        class Invoice(OrgScopedMixin, BaseDBModel):
            __tablename__ = "invoice"
            __org_foreign_key__ = "org.id"
            amount: Mapped[int]
    """

    __org_foreign_key__: ClassVar[str | None] = None

    @declared_attr
    def org_id(cls) -> Mapped[uuid.UUID]:
        """The owning organisation."""
        target = cls.__org_foreign_key__
        if target is None:
            return mapped_column(Uuid, nullable=False, index=True, sort_order=-90)
        return mapped_column(Uuid, ForeignKey(target), nullable=False, index=True, sort_order=-90)

    @classmethod
    def org_filter(cls, org_id: uuid.UUID | str) -> ColumnElement[bool]:
        """The criterion ``<model>.org_id = :org_id`` (for Core statements or explicit filters).

        Example::

            stmt = select(Invoice).where(Invoice.org_filter(org_id))
        """
        column: Any = cls.org_id
        expression: ColumnElement[bool] = column == as_uuid(org_id, "org_filter(org_id)")
        return expression


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


@event.listens_for(OrgScopedMixin, "before_insert", propagate=True)
def _org_before_insert(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    scope = current_org()
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


@event.listens_for(OrgScopedMixin, "before_update", propagate=True)
def _org_before_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    scope = current_org()
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


@event.listens_for(OrgScopedMixin, "before_delete", propagate=True)
def _org_before_delete(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    scope = current_org()
    if scope is not None and _org_of(target) != scope:
        raise TenantViolation(
            f"cannot delete {type(target).__name__} {getattr(target, 'id', '')} of org "
            f"{target.org_id} inside tenant_scope({scope})"
        )


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
