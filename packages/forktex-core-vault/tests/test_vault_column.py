# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""EncryptedJSON against real Postgres: async ORM, Core insert/update, NULLs, raw ciphertext."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from forktex_core.vault import EncryptedJSON, Vault, VaultDecryptError, VaultError

SECRET = "hetzner-token-0123456789abcdef"
KEY = Vault.generate_key()
VAULT = Vault.from_key(KEY)
_current: dict[str, Vault] = {"vault": VAULT}


class Base(DeclarativeBase):
    pass


class Credential(Base):
    __tablename__ = "vault_col_credential"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    payload: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON(VAULT), nullable=True)
    tracked: Mapped[dict[str, Any] | None] = mapped_column(
        MutableDict.as_mutable(EncryptedJSON(VAULT)), nullable=True
    )
    lazy: Mapped[Any] = mapped_column(EncryptedJSON(lambda: _current["vault"]), nullable=True)


CORE = sa.Table(
    "vault_col_core",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("blob", EncryptedJSON(VAULT)),
)


@pytest.fixture
async def engine(forktex_async_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with forktex_async_engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.run_sync(CORE.metadata.create_all)
    yield forktex_async_engine
    async with forktex_async_engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(CORE.metadata.drop_all)


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def _raw(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(sql), params)).scalar_one()


async def test_orm_round_trip_stores_opaque_ciphertext(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    payload = {"hetzner_token": SECRET, "ssh_key_id": 12345, "tags": ["a", None, 1.5]}
    async with sessions() as session:
        session.add(Credential(id=1, name="hetzner", payload=payload))
        await session.commit()
    raw = await _raw(engine, "select payload from vault_col_credential where id = 1")
    assert isinstance(raw, str) and raw.startswith("gAAAAA")  # a Fernet token
    assert SECRET not in raw and "ssh_key_id" not in raw and "12345" not in raw
    assert await _raw(engine, "select pg_typeof(payload)::text from vault_col_credential") == "text"
    assert VAULT.decrypt(raw) == payload
    import json

    assert json.loads(Fernet(KEY).decrypt(raw)) == payload  # plain Fernet opens the column
    async with sessions() as session:
        loaded = await session.get(Credential, 1)
        assert loaded is not None and loaded.payload == payload


async def test_none_is_null_both_ways(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session:
        session.add(Credential(id=2, name="empty", payload=None))
        await session.commit()
    assert await _raw(engine, "select payload is null from vault_col_credential where id=2")
    async with sessions() as session:
        row = await session.get(Credential, 2)
        assert row is not None and row.payload is None
        row.payload = {"now": "set"}
        await session.commit()
        row.payload = None
        await session.commit()
    assert await _raw(engine, "select payload is null from vault_col_credential where id=2")
    async with sessions() as session:
        found = await session.scalar(sa.select(sa.func.count()).where(Credential.payload.is_(None)))
        assert found == 1


async def test_core_insert_update_select(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        rows = [{"id": i, "blob": {"n": i, "s": SECRET}} for i in range(50)]
        await conn.execute(sa.insert(CORE), rows)
        await conn.execute(sa.insert(CORE).values(id=100, blob=None))
        await conn.execute(sa.update(CORE).where(CORE.c.id == 7).values(blob={"n": "seven"}))
        returned = (
            await conn.execute(
                sa.update(CORE).where(CORE.c.id == 8).values(blob=[8]).returning(CORE.c.blob)
            )
        ).scalar_one()
        assert returned == [8]
    async with engine.connect() as conn:
        rows = dict((await conn.execute(sa.select(CORE.c.id, CORE.c.blob))).all())
        raws = (await conn.execute(sa.text("select blob from vault_col_core"))).scalars().all()
    assert rows[3] == {"n": 3, "s": SECRET}
    assert rows[7] == {"n": "seven"} and rows[8] == [8] and rows[100] is None
    assert all(r is None or (r.startswith("gAAAAA") and SECRET not in r) for r in raws)


async def test_in_place_mutation_needs_mutabledict(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        session.add(Credential(id=3, name="m", payload={"a": 1}, tracked={"a": 1}))
        await session.commit()
    async with sessions() as session:
        row = await session.get(Credential, 3)
        assert row is not None and row.payload is not None and row.tracked is not None
        row.payload["a"] = 2  # plain EncryptedJSON: not tracked (documented)
        row.tracked["a"] = 2  # MutableDict.as_mutable(EncryptedJSON(...)): tracked
        await session.commit()
    async with sessions() as session:
        row = await session.get(Credential, 3)
        assert row is not None
        assert row.payload == {"a": 1}
        assert row.tracked == {"a": 2}
        row.payload = {**(row.payload or {}), "a": 3}  # reassignment is always tracked
        await session.commit()
    async with sessions() as session:
        row = await session.get(Credential, 3)
        assert row is not None and row.payload == {"a": 3}


async def test_callable_vault_is_resolved_at_use(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    new_key = Vault.generate_key()
    async with sessions() as session:
        session.add(Credential(id=4, name="lazy", lazy={"v": 1}))
        await session.commit()
    _current["vault"] = Vault.from_keys([new_key, KEY])  # rollout window
    try:
        async with sessions() as session:
            row = await session.get(Credential, 4)
            assert row is not None and row.lazy == {"v": 1}
            row.lazy = {"v": 2}
            await session.commit()
        raw = await _raw(engine, "select lazy from vault_col_credential where id = 4")
        assert Vault.from_key(new_key).decrypt(raw) == {"v": 2}
    finally:
        _current["vault"] = VAULT


async def test_read_with_wrong_key_explains(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    other = Vault.from_key(Vault.generate_key())
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("insert into vault_col_core (id, blob) values (1, :t)"),
            {"t": other.encrypt({"s": SECRET})},
        )
        await conn.execute(
            sa.text("insert into vault_col_core (id, blob) values (2, 'not-a-token')")
        )
    async with engine.connect() as conn:
        with pytest.raises(VaultDecryptError, match=VAULT.fingerprint) as info:
            (await conn.execute(sa.select(CORE.c.blob).where(CORE.c.id == 1))).scalar_one()
        assert SECRET not in str(info.value) and KEY not in str(info.value)
        with pytest.raises(VaultDecryptError, match="not a Fernet token"):
            (await conn.execute(sa.select(CORE.c.blob).where(CORE.c.id == 2))).scalar_one()


async def test_bad_payload_on_write_is_a_clear_error(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        session.add(Credential(id=5, name="bad", payload={"s": {1, 2}}))
        with pytest.raises(sa.exc.StatementError, match=r"payload\['s'\] is a builtins.set"):
            await session.commit()


def test_type_construction_and_repr() -> None:
    with pytest.raises(VaultError, match="needs a Vault"):
        EncryptedJSON("a key string")  # type: ignore[arg-type]
    bad = EncryptedJSON(lambda: "nope")  # type: ignore[arg-type, return-value]
    with pytest.raises(VaultError, match="returned str, not a Vault"):
        bad.process_bind_param({"a": 1}, sa.create_engine("sqlite://").dialect)
    column_type = EncryptedJSON(VAULT)
    assert VAULT.fingerprint in repr(column_type) and KEY not in repr(column_type)
    assert column_type.cache_ok is True
    # distinct vaults give distinct statement-cache keys; the same vault the same key
    assert EncryptedJSON(VAULT)._static_cache_key == column_type._static_cache_key
    other = EncryptedJSON(Vault.from_key(KEY))
    assert other._static_cache_key != column_type._static_cache_key
    dialect = sa.create_engine("sqlite://").dialect
    assert str(sa.Column("x", column_type).type.compile(dialect=dialect)) == "TEXT"
