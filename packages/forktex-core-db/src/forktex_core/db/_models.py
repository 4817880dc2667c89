# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``BaseDBModel``: the declarative base of consumer models (UUIDv7 key + timestamps)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, Uuid
from sqlalchemy.orm import DeclarativeBase

from ._mixins import TimestampMixin, UUIDPrimaryKeyMixin

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class _Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012 - read by SQLAlchemy
        uuid.UUID: Uuid,
        datetime: DateTime(timezone=True),
    }


class BaseDBModel(UUIDPrimaryKeyMixin, TimestampMixin, _Base):
    """Declarative base for your models: UUIDv7 ``id`` primary key + ``created_at`` /
    ``updated_at``. Combine with ``AuditMixin`` and ``OrgScopedMixin`` as needed.

    ``BaseDBModel.metadata`` (with an alembic-friendly constraint naming convention) holds
    every table declared on it: point alembic's ``target_metadata`` at it. ``Mapped[datetime]``
    columns are timezone-aware by default.

    Example::

        class Invoice(OrgScopedMixin, AuditMixin, BaseDBModel):
            __tablename__ = "invoice"
            status: Mapped[str]
            amount: Mapped[int]
    """

    __abstract__ = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.__dict__.get('id')}>"
