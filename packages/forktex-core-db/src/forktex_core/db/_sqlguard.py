# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The compile-time half of the tenant guard.

A statement sent through a guarded session carries the :data:`GUARDED` option (part of its
cache key, so guarded and unguarded compilations are cached apart). While compiling such a
statement, SQLAlchemy's renderer itself confines it:

* every occurrence of an org-scoped table in a FROM position — top level, join, subquery,
  CTE, ``exists``, lateral, eager-load alias, Core or ORM, ``Table`` or ``table()`` — is
  rendered as ``(SELECT * FROM t WHERE t.org_id = :org) AS t``;
* the target of UPDATE / DELETE and the conflicting row of ``ON CONFLICT DO UPDATE`` get
  ``AND t.org_id = :org``;
* raw SQL text (``text()``, ``literal_column``, statement hints) that names an org-scoped
  table is refused, and so is an INSERT into an org-scoped table (or an UPDATE setting its
  ``org_id``) nested in a CTE, whose values cannot be checked per execution.

``:org`` is one bound parameter whose value is read from the tenant scope each time the
statement runs (never baked into a cached compilation); with no scope it raises
:class:`TenantViolation`, which is how the fail-closed default works for reads and writes.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy import Column, Delete, Insert, Select, Table, Update, Uuid, and_, exists, select
from sqlalchemy import literal as sa_literal
from sqlalchemy.dialects.postgresql.dml import OnConflictDoUpdate
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.sql.elements import BindParameter, ColumnClause, ColumnElement, TextClause
from sqlalchemy.sql.selectable import TableClause

from . import _sa_internals as sa_internals
from ._errors import TenantViolation
from ._orgtables import ORG_COLUMN, OrgTable, mentions_org_table, org_table, org_table_names
from ._tenant import UNSCOPED, tenant_state


class _Guarded(ORMOption):
    """Statement option: compile this statement with the tenant guard."""

    _is_has_cache_key = True
    propagate_to_loaders = False

    def _gen_cache_key(self, anon_map: Any, bindparams: Any) -> tuple[str]:
        return ("forktex_core.db.tenant_guard",)

    def __repr__(self) -> str:
        return "GUARDED"


GUARDED = _Guarded()

# A per-process name: no statement or parameter written in advance can collide with it.
ORG_PARAM = f"forktex_tenant_org_{secrets.token_hex(4)}"


def _bound_org() -> uuid.UUID:
    state = tenant_state()
    if isinstance(state, uuid.UUID):
        return state
    if state is UNSCOPED:
        raise TenantViolation(
            "a statement prepared under a tenant scope ran inside unscoped(); build the "
            "statement again inside unscoped()"
        )
    raise TenantViolation(
        "no tenant scope is set: statements on org-scoped tables "
        f"({', '.join(org_table_names())}) need 'with tenant_scope(org_id):'; use "
        "'with unscoped():' for deliberate cross-tenant work (admin jobs, migrations)"
    )


class _OrgBind(BindParameter[uuid.UUID]):
    """The guard's own org parameter (a subclass, so a look-alike can be told apart)."""

    inherit_cache = True


def _org_value() -> uuid.UUID:
    return _bound_org()  # looked up at call time


def org_bind() -> BindParameter[uuid.UUID]:
    """A bound parameter holding the current scope's org, evaluated at execution time."""
    return _OrgBind(ORG_PARAM, type_=Uuid(), callable_=_org_value)


def _guarded(compiler: Any) -> bool:
    cached = compiler.__dict__.get("_forktex_guarded")
    if cached is None:
        options = sa_internals.with_options(compiler.statement)
        cached = compiler.__dict__["_forktex_guarded"] = any(o is GUARDED for o in options)
    return bool(cached)


def _refuse_text(sql: str, where: str) -> None:
    if mentions_org_table(sql):
        raise TenantViolation(
            f"{where} {sql[:120]!r} may refer to an org-scoped table "
            f"({', '.join(org_table_names())}); raw SQL cannot be confined to a tenant. Use "
            "SQLAlchemy constructs (select(Model) / Model.__table__), or run it inside "
            "'with unscoped():' with your own org filter"
        )


# -- FROM occurrences ---------------------------------------------------------------------
def _filtered_from(
    element: TableClause, entry: OrgTable, rendered: str, compiler: Any, kw: Any
) -> str:
    """``rendered`` (a table in a FROM position) as a subquery holding only the org's rows."""
    preparer = compiler.preparer
    ambiguous = kw.get("ambiguous_table_name_map") or {}
    if element.name in ambiguous and not preparer.schema_for_object(element):
        # SQLAlchemy aliases this table: a schema-qualified one of the same name is present.
        raise TenantViolation(
            f"cannot confine table {element.name!r} to the tenant: it appears under the same "
            "name from two schemas in one statement; alias one of them"
        )
    bind = compiler.process(org_bind())
    if entry.parent is None:
        condition = f"{rendered}.{preparer.quote(ORG_COLUMN)} = {bind}"
    else:
        parent = preparer.format_table(entry.parent)
        keys = " AND ".join(
            f"{parent}.{preparer.quote(theirs)} = {rendered}.{preparer.quote(own)}"
            for own, theirs in entry.key_pairs
        )
        condition = (
            f"EXISTS (SELECT 1 FROM {parent} WHERE {keys} AND "
            f"{parent}.{preparer.quote(ORG_COLUMN)} = {bind})"
        )
    inner = f"(SELECT * FROM {rendered} WHERE {condition})"
    enclosing = kw.get("enclosing_alias")
    if enclosing is not None and enclosing.element is element:
        return inner  # the alias appends its own "AS name"
    return f"{inner} AS {preparer.quote(element.name)}"


@compiles(Table)
@compiles(TableClause)
def _visit_table(element: TableClause, compiler: Any, **kw: Any) -> str:
    rendered: str = compiler.visit_table(element, **kw)
    if not kw.get("asfrom") or kw.get("iscrud") or kw.get("ashint") or not _guarded(compiler):
        return rendered
    entry = org_table(element)
    if entry is None:
        return rendered
    return _filtered_from(element, entry, rendered, compiler, kw)


# -- column references and literal SQL ----------------------------------------------------
@compiles(Column)
@compiles(ColumnClause)
def _visit_column(element: ColumnClause[Any], compiler: Any, **kw: Any) -> str:
    if not _guarded(compiler):
        plain: str = compiler.visit_column(element, **kw)
        return plain
    if element.is_literal:
        _refuse_text(str(element.name), "literal SQL column")
    table = element.table
    if (
        table is not None
        and kw.get("include_table", True)
        and compiler.preparer.schema_for_object(table)
        and org_table(table) is not None
    ):
        # A confined occurrence is aliased by the bare table name: refer to it by that name.
        kw["include_table"] = False
        name: str = compiler.visit_column(element, **kw)
        return f"{compiler.preparer.quote(getattr(table, 'name', ''))}.{name}"
    result: str = compiler.visit_column(element, **kw)
    return result


@compiles(TextClause)
def _visit_text(element: TextClause, compiler: Any, **kw: Any) -> str:
    if _guarded(compiler):
        _refuse_text(element.text, "raw SQL text")
    result: str = compiler.visit_textclause(element, **kw)
    return result


def _refuse_hints(statement: Any) -> None:
    hints = sa_internals.hints(statement)
    for hint in hints:
        _refuse_text(str(hint), "statement hint")


@compiles(Select)
def _visit_select(element: Select[Any], compiler: Any, **kw: Any) -> str:
    if _guarded(compiler):
        _refuse_hints(element)
    result: str = compiler.visit_select(element, **kw)
    return result


# -- UPDATE / DELETE targets and upserts --------------------------------------------------
def _row_predicate(target: Any, entry: OrgTable) -> ColumnElement[bool]:
    """``target``'s rows that belong to the scope's org (for a DML target)."""
    if entry.parent is None:
        column = target.c.get(ORG_COLUMN)
        if column is None:
            raise TenantViolation(
                f"table {target.name!r} is org-scoped but this reference to it has no "
                f"{ORG_COLUMN!r} column; use the mapped model or Model.__table__"
            )
        predicate: ColumnElement[bool] = column == org_bind()
        return predicate
    parent = entry.parent
    keys = [parent.c[theirs] == target.c[own] for own, theirs in entry.key_pairs]
    owned = select(sa_literal(1)).where(parent.c[ORG_COLUMN] == org_bind(), *keys)
    return exists(owned.correlate_except(parent))


def _dml_target_predicate(statement: Any) -> Any:
    """``statement`` (an UPDATE or DELETE) restricted to the org's rows of its target."""
    target = statement.table
    entry = org_table(target)
    if entry is None:
        for inner in sa_internals.from_objects(target):
            if org_table(getattr(inner, "element", inner)) is not None:
                raise TenantViolation(
                    f"cannot confine an UPDATE/DELETE whose target is {target!r}: name the "
                    "org-scoped table or model itself as the target"
                )
        return statement
    return statement.where(_row_predicate(target, entry))


def _refuse_nested_write(element: Any, compiler: Any) -> None:
    """An INSERT / UPDATE inside another statement (a CTE): its values cannot be checked
    per execution, so an INSERT into an org-scoped table, or an UPDATE that sets
    ``org_id``, is refused there."""
    if not compiler.stack or org_table(element.table) is None:
        return
    if isinstance(element, Insert):
        what = "an INSERT into"
    else:
        pairs = sa_internals.set_pairs(element)
        if not any(getattr(key, "key", key) == ORG_COLUMN for key, _ in pairs):
            return
        what = f"an UPDATE setting {ORG_COLUMN} of"
    raise TenantViolation(
        f"{what} org-scoped table {element.table.name!r} nested in another statement (a CTE) "
        "cannot be confined to the tenant; run it as a statement of its own"
    )


@compiles(Insert)
def _visit_insert(element: Insert, compiler: Any, **kw: Any) -> str:
    if _guarded(compiler):
        _refuse_nested_write(element, compiler)
    result: str = compiler.visit_insert(element, **kw)
    return result


def _refuse_lookalike_bind(element: BindParameter[Any]) -> None:
    if element.key == ORG_PARAM and not isinstance(element, _OrgBind):
        raise TenantViolation(f"bound parameter {ORG_PARAM!r} is reserved for the tenant guard")


@compiles(BindParameter)
def _visit_bindparam(element: BindParameter[Any], compiler: Any, **kw: Any) -> str:
    if _guarded(compiler):
        _refuse_lookalike_bind(element)
    result: str = compiler.visit_bindparam(element, **kw)
    return result


@compiles(Update)
def _visit_update(element: Update, compiler: Any, **kw: Any) -> str:
    if _guarded(compiler):
        _refuse_hints(element)
        _refuse_nested_write(element, compiler)
        element = _dml_target_predicate(element)
    result: str = compiler.visit_update(element, **kw)
    return result


@compiles(Delete)
def _visit_delete(element: Delete, compiler: Any, **kw: Any) -> str:
    if _guarded(compiler):
        _refuse_hints(element)
        element = _dml_target_predicate(element)
    result: str = compiler.visit_delete(element, **kw)
    return result


def _upsert_predicate(element: OnConflictDoUpdate, compiler: Any) -> OnConflictDoUpdate:
    """``ON CONFLICT DO UPDATE`` that only updates a conflicting row of the scope's org."""
    insert = compiler.stack[-1]["selectable"]
    entry = org_table(insert.table)
    if entry is None:
        return element
    if entry.parent is not None:
        raise TenantViolation(
            f"ON CONFLICT DO UPDATE on {insert.table.name!r} (a joined-inheritance table "
            f"without its own {ORG_COLUMN!r}) cannot be confined to the tenant"
        )
    clone: OnConflictDoUpdate = sa_internals.clone(element)
    predicate = _row_predicate(insert.table, entry)
    where = element.update_whereclause
    clone.update_whereclause = predicate if where is None else and_(where, predicate)
    return clone


@compiles(OnConflictDoUpdate)
def _visit_on_conflict_do_update(element: OnConflictDoUpdate, compiler: Any, **kw: Any) -> str:
    if _guarded(compiler):
        element = _upsert_predicate(element, compiler)
    result: str = compiler.visit_on_conflict_do_update(element, **kw)
    return result


_HOOKS: dict[type[Any], Any] = {
    Table: _visit_table,
    TableClause: _visit_table,
    Column: _visit_column,
    ColumnClause: _visit_column,
    TextClause: _visit_text,
    Select: _visit_select,
    Update: _visit_update,
    Insert: _visit_insert,
    BindParameter: _visit_bindparam,
    Delete: _visit_delete,
    OnConflictDoUpdate: _visit_on_conflict_do_update,
}


def hooks_intact() -> bool:
    """Whether every compile hook above is still the one SQLAlchemy uses, for every dialect
    (another ``@compiles`` registration for the same construct would silently replace it)."""
    for cls, hook in _HOOKS.items():
        dispatcher = cls.__dict__.get("_compiler_dispatcher")
        if dispatcher is None or any(spec is not hook for spec in dispatcher.specs.values()):
            return False
    return True
