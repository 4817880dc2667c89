# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The execution-time half of the tenant guard: the ``org_id`` a statement writes.

Reads and the rows an UPDATE / DELETE / upsert may touch are confined at compile time
(``_sqlguard``); what a statement *writes* into ``org_id`` depends on its parameters, which
change from one execution to the next, so it is checked here, on every execution, before
anything is sent:

* INSERT: every row's ``org_id`` must be the scope's org (rows without one get it);
  ``INSERT ... SELECT`` into an org-scoped table is refused (its org cannot be proven);
* UPDATE and ``ON CONFLICT DO UPDATE``: ``org_id`` may only be set to the scope's org (a
  no-op) — rows cannot move between orgs;
* DDL naming an org-scoped table is refused;
* only the top-level statement is inspected (no walk of the tree on every execution):
  writes nested in CTEs are refused at compile time;
* a value that is not a plain bound value (a column, function or subquery) is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects.postgresql.dml import OnConflictDoUpdate
from sqlalchemy.sql import visitors
from sqlalchemy.sql.ddl import DDL, ExecutableDDLElement
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.elements import BindParameter, ColumnClause

from . import _sa_internals as sa_internals
from ._errors import InvalidArgument, TenantViolation
from ._ids import as_uuid
from ._orgtables import ORG_COLUMN, mentions_org_table, org_table, org_table_names
from ._sqlguard import ORG_PARAM

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None

_MISSING = object()


def _key_name(key: Any) -> str | None:
    if isinstance(key, str):
        return key
    name = getattr(key, "key", None)
    return name if isinstance(name, str) else None


def _param_sets(params: Params) -> list[Mapping[str, Any]]:
    if params is None:
        return [{}]
    if isinstance(params, Mapping):
        return [params]
    return list(params) or [{}]


def _refuse_value(table: str, value: Any, org: uuid.UUID, verb: str) -> None:
    raise TenantViolation(
        f"cannot {verb} {table} rows with {ORG_COLUMN} {value} inside tenant_scope({org}): "
        "a tenant may only write its own rows and rows cannot move between orgs (leave "
        f"{ORG_COLUMN} out to use the scope's org)"
    )


def _check_value(table: str, value: Any, params: Params, org: uuid.UUID, verb: str) -> None:
    """``value`` (what a statement writes into ``org_id``) must be ``org`` in every set."""
    if isinstance(value, BindParameter):
        if value.callable is not None:
            _refuse_value(table, value, org, verb)
        for values in _param_sets(params):
            raw = values[value.key] if value.key in values else value.value
            _check_value(table, raw, None, org, verb)
        return
    if hasattr(value, "__clause_element__") or isinstance(value, visitors.Visitable):
        raise TenantViolation(
            f"cannot {verb} {table}.{ORG_COLUMN} from the SQL expression {value!r} inside "
            f"tenant_scope({org}): its org cannot be checked; pass the value itself"
        )
    try:
        ok = as_uuid(value, f"{table}.{ORG_COLUMN}") == org
    except InvalidArgument:
        ok = False
    if not ok:
        _refuse_value(table, value, org, verb)


def _values_for(mapping: Mapping[Any, Any]) -> Any:
    for key, value in mapping.items():
        if _key_name(key) == ORG_COLUMN:
            return value
    return _MISSING


def _table_name(stmt: Any) -> str:
    return str(getattr(stmt.table, "name", stmt.table))


def _check_insert(stmt: Insert, params: Params, org: uuid.UUID) -> tuple[Insert, Params]:
    table = _table_name(stmt)
    if stmt.select is not None:
        raise TenantViolation(
            f"INSERT ... SELECT into org-scoped table {table!r} is refused inside "
            f"tenant_scope({org}): the org of the selected rows cannot be proven; insert "
            "the rows with values, or run it inside 'with unscoped():'"
        )
    given = False
    value = _values_for(sa_internals.insert_values(stmt))
    if value is not _MISSING:
        _check_value(table, value, params, org, "insert")
        given = True
    multi = sa_internals.multi_values(stmt)
    if multi:
        position = [c.key for c in stmt.table.c].index(ORG_COLUMN)
        for rows in multi:
            for row in rows:
                row_value = (
                    _values_for(row)
                    if isinstance(row, Mapping)
                    else (row[position] if position < len(row) else _MISSING)
                )
                if row_value is _MISSING:
                    raise TenantViolation(
                        f"a row of a multi-row INSERT into {table!r} has no {ORG_COLUMN}: "
                        "give it in every row, or pass the rows as parameters (executemany)"
                    )
                _check_value(table, row_value, params, org, "insert")
        given = True
    if params:
        filled: list[dict[str, Any]] = []
        for param_set in _param_sets(params):
            if ORG_COLUMN in param_set:
                _check_value(table, param_set[ORG_COLUMN], None, org, "insert")
                filled.append(dict(param_set))
            else:
                filled.append({**param_set, ORG_COLUMN: org})
        if given:
            return stmt, params
        return stmt, filled[0] if isinstance(params, Mapping) else filled
    if not given:
        stmt = stmt.values({ORG_COLUMN: org})
    return stmt, params


def _check_update_values(stmt: Update, params: Params, org: uuid.UUID) -> None:
    table = _table_name(stmt)
    pairs = sa_internals.set_pairs(stmt)
    for key, value in pairs:
        if _key_name(key) == ORG_COLUMN:
            _check_value(table, value, params, org, "update")
    for row in _param_sets(params):
        if ORG_COLUMN in row:
            _check_value(table, row[ORG_COLUMN], None, org, "update")


def _check_upsert(stmt: Insert, clause: OnConflictDoUpdate, params: Params, org: uuid.UUID) -> None:
    table = _table_name(stmt)
    for key, value in clause.update_values_to_set:
        if _key_name(key) != ORG_COLUMN:
            continue
        if (
            isinstance(value, ColumnClause)
            and value.name == ORG_COLUMN
            and getattr(value.table, "name", None) == "excluded"
        ):
            continue  # the inserted row's org_id, checked as part of the INSERT
        _check_value(table, value, params, org, "update (ON CONFLICT DO UPDATE)")


def _refuse_ddl(stmt: ExecutableDDLElement) -> None:
    if isinstance(stmt, DDL):
        touches = mentions_org_table(stmt.statement)
    else:
        element = getattr(stmt, "element", None)
        touches = (
            org_table(element) is not None or org_table(getattr(element, "table", None)) is not None
        )
    if touches:
        raise TenantViolation(
            f"DDL on an org-scoped table ({', '.join(org_table_names())}) is refused by the "
            "tenant guard; run schema changes inside 'with unscoped():'"
        )


def check_params(params: Params) -> None:
    """Refuse parameters that would set the guard's own org parameter."""
    for row in _param_sets(params):
        if ORG_PARAM in row:
            raise TenantViolation(f"parameter {ORG_PARAM!r} is reserved for the tenant guard")


def _refuse_unscoped_insert(stmt: Insert) -> None:
    raise TenantViolation(
        f"no tenant scope is set: cannot insert into org-scoped table {_table_name(stmt)!r}; "
        "use 'with tenant_scope(org_id):' (or 'with unscoped():' for deliberate cross-tenant "
        "work)"
    )


def check_writes(stmt: Any, params: Params, org: uuid.UUID | None) -> tuple[Any, Params]:
    """Check (and where needed fill) the ``org_id`` a top-level INSERT / UPDATE / upsert
    writes (nested ones are refused at compile time); refuse DDL on org-scoped tables.

    Returns the statement and parameters to execute. ``org`` is ``None`` when no tenant scope
    is set: an INSERT into an org-scoped table is then refused (UPDATE and DELETE are
    refused when they run: their row predicate needs an org).
    """
    if isinstance(stmt, ExecutableDDLElement):
        _refuse_ddl(stmt)
        return stmt, params
    if not isinstance(stmt, (Insert, Update)) or org_table(stmt.table) is None:
        return stmt, params
    if isinstance(stmt, Update):
        if org is not None:
            _check_update_values(stmt, params, org)
        return stmt, params
    if org is None:
        _refuse_unscoped_insert(stmt)
        return stmt, params
    checked, new_params = _check_insert(stmt, params, org)
    clause = sa_internals.post_values_clause(stmt)
    if isinstance(clause, OnConflictDoUpdate):
        _check_upsert(stmt, clause, params, org)
    return checked, new_params
