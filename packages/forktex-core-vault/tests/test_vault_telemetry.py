# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Tracing of key rotations: the rotation and batch spans as the SDK (in memory) receives
them, interrupted rotations, nothing secret recorded, and nothing at all without an SDK."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from forktex_core.testing import PostgresService, Telemetry, run_python
from forktex_core.vault import (
    EncryptedJSON,
    RotationError,
    RotationInterrupted,
    Vault,
    rotate_blobs,
)

test_tracer = trace.get_tracer("forktex_core.vault.tests")
COLUMN_VAULT = Vault.from_key(Vault.generate_key())
BLOBS = sa.Table(
    "vault_otel_blob",
    sa.MetaData(),
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("payload", EncryptedJSON(COLUMN_VAULT), nullable=True),
)
NAME = "vault.rotate_blobs vault_otel_blob.payload"


@pytest.fixture
async def engine(forktex_async_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with forktex_async_engine.begin() as conn:
        await conn.run_sync(BLOBS.metadata.drop_all)
        await conn.run_sync(BLOBS.metadata.create_all)
    yield forktex_async_engine
    async with forktex_async_engine.begin() as conn:
        await conn.run_sync(BLOBS.metadata.drop_all)


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def _fill(engine: AsyncEngine, rows: dict[str, str]) -> None:
    """Insert raw tokens by primary key."""
    raw = sa.table("vault_otel_blob", sa.column("id"), sa.column("payload"))
    async with engine.begin() as conn:
        await conn.execute(sa.insert(raw), [{"id": k, "payload": t} for k, t in rows.items()])


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_a_rotation_has_a_span_with_its_counts_and_one_per_batch(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    new_vault: Vault,
    forktex_otel: Telemetry,
) -> None:
    stranger = Vault.from_key(Vault.generate_key())
    rows = {f"r{i}": old_vault.encrypt({"n": i}) for i in range(4)}
    rows["r4"] = new_vault.encrypt({"n": 4})  # already rotated
    rows["r5"] = stranger.encrypt({"n": 5})  # opens with neither key
    await _fill(engine, rows)

    with test_tracer.start_as_current_span("maintenance") as outer:
        async with sessions() as session:
            report = await rotate_blobs(
                session, table=BLOBS, column="payload", old=old_vault, new=new_vault, batch_size=2
            )
    assert report.complete and report.rotated == 4 and len(report.failed) == 1

    rotation = forktex_otel.span(NAME)
    common = {
        "db.system.name": "postgresql",
        "db.collection.name": "vault_otel_blob",
        "forktex.vault.column": "payload",
        "forktex.vault.batch_size": 2,
        "forktex.vault.resumed": False,
        "forktex.vault.old.fingerprints": (old_vault.fingerprint,),
        "forktex.vault.new.fingerprint": new_vault.fingerprint,
    }
    assert _attrs(rotation) == {
        **common,
        "forktex.vault.rows.scanned": 6,
        "forktex.vault.rows.rotated": 4,
        "forktex.vault.rows.skipped": 1,
        "forktex.vault.rows.failed": 1,
        "forktex.vault.batches": 3,
        "forktex.vault.complete": True,
    }
    assert rotation.kind == SpanKind.INTERNAL
    assert rotation.status.status_code == StatusCode.UNSET
    assert Telemetry.is_child(rotation, outer)

    batches = forktex_otel.spans("vault.rotate_blobs.batch ")
    assert len(batches) == 4  # three with rows, then the empty read that ends the scan
    assert all(Telemetry.is_child(b, rotation) for b in batches)
    counts = [
        tuple(_attrs(b)[f"forktex.vault.rows.{k}"] for k in ("scanned", "rotated", "skipped"))
        for b in batches
    ]
    assert counts == [(2, 2, 0), (2, 2, 0), (2, 0, 1), (0, 0, 0)]
    assert [_attrs(b)["forktex.vault.rows.failed"] for b in batches] == [0, 0, 1, 0]
    (event,) = batches[2].events
    assert event.name == "forktex.vault.unopenable_rows"
    assert dict(event.attributes or {}) == {"forktex.vault.rows.failed": 1}
    assert not any(b.events for b in batches[:2])


async def test_an_interrupted_batch_records_the_error_class_and_the_progress(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    new_vault: Vault,
    forktex_otel: Telemetry,
) -> None:
    secret = "crash-" + secrets.token_hex(8)
    await _fill(engine, {f"r{i}": old_vault.encrypt({"n": i}) for i in range(6)})
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                f"""
                create or replace function vault_otel_crash() returns trigger as $$
                begin
                  if new.id = 'r3' then raise exception '{secret} %', new.payload; end if;
                  return new;
                end $$ language plpgsql
                """
            )
        )
        await conn.execute(
            sa.text(
                "create trigger vault_otel_crash before update on vault_otel_blob "
                "for each row execute function vault_otel_crash()"
            )
        )
    async with sessions() as session:
        with pytest.raises(RotationInterrupted) as info:
            await rotate_blobs(
                session, table=BLOBS, column="payload", old=old_vault, new=new_vault, batch_size=2
            )
    assert secret in str(info.value.__cause__)

    rotation = forktex_otel.span(NAME)
    first, failed = forktex_otel.spans("vault.rotate_blobs.batch ")
    for span in (rotation, failed):
        assert span.status.status_code == StatusCode.ERROR
        assert span.status.description is None
        assert _attrs(span)["error.type"] == "asyncpg.exceptions.RaiseError"
        assert not span.events
    assert first.status.status_code == StatusCode.UNSET
    assert _attrs(rotation)["forktex.vault.rows.rotated"] == 2
    assert _attrs(rotation)["forktex.vault.batches"] == 1
    assert _attrs(rotation)["forktex.vault.complete"] is False
    assert secret not in forktex_otel.dump()


async def test_too_many_unopenable_rows_end_the_rotation_span_in_error(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    new_vault: Vault,
    forktex_otel: Telemetry,
) -> None:
    stranger = Vault.from_key(Vault.generate_key())
    await _fill(engine, {f"r{i}": stranger.encrypt({"n": i}) for i in range(3)})
    async with sessions() as session:
        with pytest.raises(RotationInterrupted):
            await rotate_blobs(
                session,
                table=BLOBS,
                column="payload",
                old=old_vault,
                new=new_vault,
                max_failures=1,
            )
    rotation = forktex_otel.span(NAME)
    assert rotation.status.status_code == StatusCode.ERROR
    assert _attrs(rotation)["error.type"] == "forktex_core.vault.RotationInterrupted"
    assert _attrs(rotation)["forktex.vault.rows.failed"] == 3
    (batch,) = forktex_otel.spans("vault.rotate_blobs.batch ")
    assert batch.status.status_code == StatusCode.UNSET


async def test_no_payload_key_or_primary_key_is_recorded(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_key: str,
    new_key: str,
    forktex_otel: Telemetry,
) -> None:
    old, new = Vault.from_key(old_key), Vault.from_key(new_key)
    secret = "pw-" + secrets.token_hex(8)
    stranger = Vault.from_key(Vault.generate_key())
    tokens = {f"user-{secret}": old.encrypt({"smtp_password": secret}), "x": stranger.encrypt(1)}
    await _fill(engine, tokens)
    async with sessions() as session:
        first = await rotate_blobs(
            session, table=BLOBS, column="payload", old=old, new=new, resume_after="a"
        )
    assert first.rotated == 1 and first.failed_pks == ["x"]
    async with sessions() as session:
        with pytest.raises(RotationInterrupted):
            await rotate_blobs(
                session,
                table=BLOBS,
                column="payload",
                old=Vault.from_key(Vault.generate_key()),
                new=old,
                max_failures=0,
            )
    assert _attrs(forktex_otel.spans(NAME)[0])["forktex.vault.resumed"] is True
    dump = forktex_otel.dump()
    rotated = (await _raw(engine))[f"user-{secret}"]
    for value in (secret, old_key, new_key, tokens[f"user-{secret}"], rotated):
        assert value not in dump


async def _raw(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("select id, payload from vault_otel_blob"))
        return {r[0]: r[1] for r in rows}


async def test_bad_arguments_start_no_span(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    forktex_otel: Telemetry,
) -> None:
    async with sessions() as session:
        with pytest.raises(RotationError):
            await rotate_blobs(session, table=BLOBS, column="payload", old=old_vault, new=old_vault)
        with pytest.raises(RotationError):
            await rotate_blobs(session, table=BLOBS, column="nope", old=old_vault, new=old_vault)
    assert forktex_otel.spans() == []


def test_encrypt_and_decrypt_have_no_spans(old_vault: Vault, forktex_otel: Telemetry) -> None:
    assert old_vault.decrypt(old_vault.encrypt({"a": 1})) == {"a": 1}
    assert forktex_otel.spans() == []


# -- nothing without an SDK --------------------------------------------------------------------

#: Encrypt, decrypt and a rotation in a fresh interpreter (URL defined before).
_OPERATIONS = """
import asyncio
import sqlalchemy as sa
from opentelemetry import trace
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from forktex_core.vault import EncryptedJSON, Vault, rotate_blobs

old, new = Vault.from_key(Vault.generate_key()), Vault.from_key(Vault.generate_key())
table = sa.Table("vault_otel_nosdk", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("payload", EncryptedJSON(old)))
seen = []

def progress(report):
    seen.append(trace.get_current_span())

async def main():
    engine = create_async_engine(URL)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.drop_all)
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(table.insert(), [{"id": i, "payload": {"n": i}} for i in range(5)])
        async with async_sessionmaker(engine)() as session:
            report = await rotate_blobs(session, table=table, column="payload", old=old, new=new,
                                        progress=progress)
        assert report.complete and report.rotated == 5
        assert new.decrypt(new.encrypt({"a": 1})) == {"a": 1}
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.drop_all)
    finally:
        await engine.dispose()

asyncio.run(main())
"""


def test_without_an_sdk_a_rotation_records_nothing(
    forktex_postgres: PostgresService, tmp_path: Path
) -> None:
    result = run_python(
        f"""
        import json
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        URL = {forktex_postgres.url!r}
        # An SDK that is installed but not the global provider must see nothing.
        exporter = InMemorySpanExporter()
        TracerProvider().add_span_processor(SimpleSpanProcessor(exporter))
        """,
        _OPERATIONS,
        """
        from forktex_core.vault import _telemetry

        print(json.dumps({
            "provider": type(trace.get_tracer_provider()).__name__,
            "recording": _telemetry.tracer.start_span("probe").is_recording(),
            "current": [span is trace.INVALID_SPAN for span in seen],
            "exported": len(exporter.get_finished_spans()),
        }))
        """,
        cwd=tmp_path,
    )
    assert result == {
        "provider": "ProxyTracerProvider",
        "recording": False,
        "current": [True],  # one batch: nothing was made current around the callback
        "exported": 0,
    }


def test_works_without_the_sdk_installed(forktex_postgres: PostgresService, tmp_path: Path) -> None:
    result = run_python(
        f"""
        import json
        import sys
        URL = {forktex_postgres.url!r}
        """,
        _OPERATIONS,
        """
        try:
            import opentelemetry.sdk.trace
            hidden = False
        except ModuleNotFoundError:
            hidden = True
        print(json.dumps({
            "hidden": hidden,
            "sdk_loaded": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")),
            "batches": len(seen),
        }))
        """,
        cwd=tmp_path,
        hide_sdk=True,
    )
    assert result == {"hidden": True, "sdk_loaded": [], "batches": 1}
