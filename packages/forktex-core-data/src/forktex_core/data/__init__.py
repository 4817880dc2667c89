# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Tenant-defined virtual schemas: registers (logical tables), fields (logical columns) and
references, stored as JSONB in Postgres (schema ``forktex_data``) and read through
composable :class:`RowQuery` objects that return typed :class:`RowResult` / :class:`Page`
objects, over Postgres or in-memory sources alike.

Example::

    from datetime import date
    from forktex_core.data import Register, RowQuery
    from forktex_core.db import init_engine

    init_engine("postgresql+asyncpg://app@localhost/app")
    invoices = Register.load("invoices", tenant_id=org_id)
    result = await (
        RowQuery(invoices)
        .where(status="paid")
        .since(date(2026, 1, 1))
        .order_by("-issued_at")
        .scroll(page_size=50)
    )
"""

from __future__ import annotations

from ._aggregates import Aggregate, Avg, Count, Max, Min, Sum
from ._errors import (
    ConversionFailed,
    DataError,
    IndexBuildFailed,
    InvalidCursor,
    InvalidDefinition,
    InvalidQuery,
    InvalidValue,
    NotFound,
    ReferenceViolation,
    RegisterNotLoaded,
    SchemaConflict,
    UniqueViolation,
)
from ._export import export_csv, export_jsonl
from ._fields import OPERATORS, Field, FieldType
from ._formula import Formula
from ._logic import Q
from ._periods import Period
from ._plan import (
    AllOf,
    AnyOf,
    Condition,
    Not,
    QueryPlan,
    Referenced,
    RegisterInfo,
    Related,
    SortKey,
)
from ._query import RowQuery
from ._registers import Register
from ._results import (
    AggregateRow,
    FacetCount,
    ImportReport,
    Page,
    RowError,
    RowResult,
    TypeChange,
)
from ._schema import SCHEMA, init_schema
from ._search import SearchConfig
from ._sources import MemoryRegister, RegisterSource

__all__ = [
    "OPERATORS",
    "SCHEMA",
    "Aggregate",
    "AggregateRow",
    "AllOf",
    "AnyOf",
    "Avg",
    "Condition",
    "ConversionFailed",
    "Count",
    "DataError",
    "FacetCount",
    "Field",
    "FieldType",
    "Formula",
    "ImportReport",
    "IndexBuildFailed",
    "InvalidCursor",
    "InvalidDefinition",
    "InvalidQuery",
    "InvalidValue",
    "Max",
    "MemoryRegister",
    "Min",
    "Not",
    "NotFound",
    "Page",
    "Period",
    "Q",
    "QueryPlan",
    "ReferenceViolation",
    "Referenced",
    "Register",
    "RegisterInfo",
    "RegisterNotLoaded",
    "RegisterSource",
    "Related",
    "RowError",
    "RowQuery",
    "RowResult",
    "SchemaConflict",
    "SearchConfig",
    "SortKey",
    "Sum",
    "TypeChange",
    "UniqueViolation",
    "export_csv",
    "export_jsonl",
    "init_schema",
]
