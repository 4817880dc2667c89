# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The tenant-guard matrix (see ``tenant_matrix.py``), and proof that every check of the
guard is load-bearing: with any single one disabled, the matrix fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles

from forktex_core.db import (
    TenantViolation,
    _dmlguard,
    _flushguard,
    _guard,
    _sqlguard,
    current_org,
    get_session,
    tenant_scope,
)

from .tenant_matrix import CELLS, ORG_A, MxInvoice, create_tables, run_matrix


def _none(*args: Any) -> None:
    return None


def _first(first: Any, *rest: Any) -> Any:
    return first


# (module, private function, replacement that disables that one check)
MUTATIONS: dict[str, tuple[ModuleType, str, Callable[..., Any]]] = {
    "FROM occurrences confined": (
        _sqlguard,
        "_filtered_from",
        lambda element, entry, rendered, compiler, kw: rendered,
    ),
    "UPDATE/DELETE target predicate": (_sqlguard, "_dml_target_predicate", _first),
    "upsert conflict predicate": (_sqlguard, "_upsert_predicate", _first),
    "raw SQL text refused": (_sqlguard, "_refuse_text", _none),
    "statement hints refused": (_sqlguard, "_refuse_hints", _none),
    "org parameter refuses to bind without a scope": (_sqlguard, "_bound_org", current_org),
    "INSERT org_id checked": (
        _dmlguard,
        "_check_insert",
        lambda stmt, params, org, top: (stmt, params),
    ),
    "UPDATE cannot set org_id": (_dmlguard, "_check_update_values", _none),
    "upsert cannot set org_id": (_dmlguard, "_check_upsert", _none),
    "DDL on org tables refused": (_dmlguard, "_refuse_ddl", _none),
    "INSERT without a scope refused": (_dmlguard, "_refuse_unscoped_insert", _none),
    "reserved bind name refused": (_sqlguard, "_refuse_lookalike_bind", _none),
    "nested INSERT/UPDATE refused": (_sqlguard, "_refuse_nested_write", _none),
    "reserved parameter refused": (_guard, "check_params", _none),
    "statements marked for the guard": (_guard, "_mark", _first),
    "identity-map hits checked": (_guard, "_identity_hit", _first),
    "legacy bulk methods refused": (_guard, "_refuse_legacy_bulk", _none),
    "ORM UPDATE syncs by fetch": (_guard, "_sync_by_fetch", _none),
    "TenantViolation unwrapped": (_guard, "_reraise_tenant_violation", _none),
    "flush without a scope refused": (
        _flushguard,
        "_write_scope",
        lambda target, verb: current_org(),
    ),
    "flush insert checked": (_flushguard, "_check_flush_insert", _none),
    "flush update checked": (_flushguard, "_check_flush_update", _none),
    "flush delete checked": (_flushguard, "_check_flush_delete", _none),
}


@pytest.fixture
async def fresh_engine(db: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """An engine of its own: an empty compiled-statement cache, so a disabled compile-time
    check cannot hide behind statements compiled before it was disabled."""
    engine = create_async_engine(db.url, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_every_cell_is_filtered_or_refused(db: AsyncEngine) -> None:
    failures = await run_matrix(db)
    assert not failures, "\n".join(str(f) for f in failures)
    assert len(CELLS) >= 90


@pytest.mark.parametrize("check", sorted(MUTATIONS))
async def test_matrix_fails_without_any_single_check(
    fresh_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, check: str
) -> None:
    module, name, replacement = MUTATIONS[check]
    assert callable(getattr(module, name))
    monkeypatch.setattr(module, name, replacement)
    failures = await run_matrix(fresh_engine, stop_at_first=True)
    assert failures, f"the matrix still passes with {module.__name__}.{name} disabled"


async def test_guard_refuses_when_its_compile_hooks_are_replaced(db: AsyncEngine) -> None:
    await create_tables(db)
    dispatcher = Table.__dict__["_compiler_dispatcher"]
    saved = dict(dispatcher.specs)

    @compiles(Table, "postgresql")
    def rogue(element: Any, compiler: Any, **kw: Any) -> str:
        return compiler.visit_table(element, **kw)

    try:
        with tenant_scope(ORG_A), pytest.raises(TenantViolation, match="compile hooks"):
            async with get_session() as session:
                await session.execute(select(MxInvoice))
    finally:
        dispatcher.specs.clear()
        dispatcher.specs.update(saved)
    with tenant_scope(ORG_A):
        async with get_session() as session:
            assert (await session.execute(select(MxInvoice))).all() == []
