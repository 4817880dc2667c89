# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Async Postgres for forktex-core: engine/session lifecycle, base models and mixins,
tenant isolation, a typed ``Repository[Model]`` and a schema-migration helper.

Example::

    from forktex_core.db import BaseDBModel, OrgScopedMixin, get_session, init_engine

    init_engine("postgresql+asyncpg://app:secret@localhost/app", pool_size=20)
    async with get_session() as session:
        user = await session.get(User, user_id)
"""

from __future__ import annotations

from . import _flushguard  # noqa: F401 - registers the flush-time tenant checks
from ._audit import acting_as, current_actor
from ._engine import close_engine, get_engine, get_sessionmaker, init_engine
from ._errors import (
    DatabaseUnavailable,
    DBError,
    EngineAlreadyInitialised,
    EngineNotInitialised,
    InvalidArgument,
    InvalidCursor,
    InvalidFilter,
    InvalidSort,
    InvalidURL,
    InvalidValue,
    NotFound,
    SchemaMigrationError,
    TenantViolation,
)
from ._faults import connect_fault_reason, driver_error, is_lost_connection
from ._filters import OPERATORS
from ._guard import ForktexSession, install_tenant_guard
from ._ids import uuid7, uuid7_many
from ._mixins import AuditMixin, OrgScopedMixin, TimestampMixin, UUIDPrimaryKeyMixin, utcnow
from ._models import NAMING_CONVENTION, BaseDBModel
from ._repository import CursorPage, Page, Repository
from ._schema import Migration, SchemaState, advisory_lock_key, ensure_schema
from ._session import get_session
from ._tenant import current_org, tenant_scope, unscoped
from ._timeouts import command_timeout
from ._urls import mask_password

__all__ = [
    "NAMING_CONVENTION",
    "OPERATORS",
    "AuditMixin",
    "BaseDBModel",
    "CursorPage",
    "DBError",
    "DatabaseUnavailable",
    "EngineAlreadyInitialised",
    "EngineNotInitialised",
    "ForktexSession",
    "InvalidArgument",
    "InvalidCursor",
    "InvalidFilter",
    "InvalidSort",
    "InvalidURL",
    "InvalidValue",
    "Migration",
    "NotFound",
    "OrgScopedMixin",
    "Page",
    "Repository",
    "SchemaMigrationError",
    "SchemaState",
    "TenantViolation",
    "TimestampMixin",
    "UUIDPrimaryKeyMixin",
    "acting_as",
    "advisory_lock_key",
    "close_engine",
    "command_timeout",
    "connect_fault_reason",
    "current_actor",
    "current_org",
    "driver_error",
    "ensure_schema",
    "get_engine",
    "get_session",
    "get_sessionmaker",
    "init_engine",
    "install_tenant_guard",
    "is_lost_connection",
    "mask_password",
    "tenant_scope",
    "unscoped",
    "utcnow",
    "uuid7",
    "uuid7_many",
]
