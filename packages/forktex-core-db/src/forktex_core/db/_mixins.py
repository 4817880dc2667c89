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
from ._ids import as_uuid, uuid7


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
    :class:`TenantViolation`; outside any scope they refuse the table unless
    ``unscoped()`` is active. Set ``__org_foreign_key__ = "org.id"`` on the model (or a base)
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
