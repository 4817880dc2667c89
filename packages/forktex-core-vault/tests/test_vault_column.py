# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""EncryptedJSON against real Postgres: async ORM, Core insert/update, NULLs, raw ciphertext."""

from __future__ import annotations

import datetime
import logging
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from forktex_core.vault import (
    EncryptedJSON,
    PayloadEncodeError,
    Vault,
    VaultDecryptError,
    VaultError,
)

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


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception reachable through __cause__ / __context__ (cycle-safe)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return seen


def _everything_printed(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """What a service could ever show of ``exc``: str/repr/args of the whole chain, attributes
    SQLAlchemy puts parameters in, the formatted traceback and a logged exception."""
    parts = ["".join(traceback.format_exception(exc))]
    for item in _chain(exc):
        parts += [str(item), repr(item), repr(item.args)]
        parts += [repr(getattr(item, name, None)) for name in ("params", "statement", "object")]
    caplog.clear()
    logging.getLogger("app").error("write failed", exc_info=exc)
    parts.append(caplog.text)
    return "\n".join(parts)


@pytest.fixture
async def chatty_engine(engine: AsyncEngine, forktex_postgres: Any) -> AsyncIterator[AsyncEngine]:
    """An engine that prints statement parameters in its errors (hide_parameters=False)."""
    chatty = create_async_engine(forktex_postgres.url, hide_parameters=False)
    try:
        yield chatty
    finally:
        await chatty.dispose()


async def _no_rows(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        for table in ("vault_col_credential", "vault_col_core"):
            count = (await conn.execute(sa.text(f"select count(*) from {table}"))).scalar_one()
            assert count == 0, f"{table} was half-written"


async def test_unencodable_value_fails_the_write_with_a_vault_error_holding_no_plaintext(
    chatty_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """A value EncryptedJSON cannot encrypt fails the flush/execute with PayloadEncodeError
    itself - not SQLAlchemy's StatementError, whose "[parameters: ...]" would print the
    plaintext - on an engine that does not hide parameters, through every write path."""
    caplog.set_level(logging.DEBUG)
    sessions = async_sessionmaker(chatty_engine, expire_on_commit=False)
    bad = {"token": SECRET, "at": datetime.datetime.now()}

    async def orm_insert() -> None:
        async with sessions() as session:
            session.add(Credential(id=5, name="bad", payload=bad))
            await session.commit()

    async def orm_update() -> None:
        async with sessions() as session:
            session.add(Credential(id=6, name="ok", payload={"fine": 1}))
            await session.commit()
            row = await session.get(Credential, 6)
            assert row is not None
            row.payload = bad
            await session.commit()

    async def orm_bulk() -> None:
        async with sessions() as session:
            session.add_all(
                [Credential(id=i, name="n", payload={"i": i, "token": SECRET}) for i in range(7, 9)]
                + [Credential(id=9, name="bad", payload=bad)]
            )
            await session.commit()

    async def core_insert() -> None:
        async with chatty_engine.begin() as conn:
            await conn.execute(sa.insert(CORE).values(id=1, blob=bad))

    async def core_executemany() -> None:
        async with chatty_engine.begin() as conn:
            rows = [{"id": i, "blob": {"token": SECRET}} for i in range(10, 13)]
            await conn.execute(sa.insert(CORE), [*rows, {"id": 13, "blob": bad}])

    async def core_where() -> None:
        async with chatty_engine.connect() as conn:
            await conn.execute(sa.select(CORE.c.id).where(CORE.c.blob == bad))

    for write in (orm_insert, orm_update, orm_bulk, core_insert, core_executemany, core_where):
        with pytest.raises(PayloadEncodeError, match=r"payload\['at'\] is a datetime") as info:
            await write()
        assert not any(isinstance(e, sa.exc.StatementError) for e in _chain(info.value))
        assert isinstance(info.value, VaultError)
        assert SECRET not in _everything_printed(info.value, caplog), write.__name__
        async with chatty_engine.begin() as conn:  # the update test's good row goes away
            await conn.execute(sa.text("delete from vault_col_credential where id = 6"))
        await _no_rows(chatty_engine)


async def test_a_database_error_on_an_encrypted_write_shows_only_ciphertext(
    chatty_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = async_sessionmaker(chatty_engine, expire_on_commit=False)
    async with sessions() as session:
        session.add(Credential(id=1, name="first", payload={"token": SECRET}))
        await session.commit()
    async with sessions() as session:
        session.add(Credential(id=1, name="duplicate", payload={"token": SECRET}))
        with pytest.raises(sa.exc.IntegrityError) as info:
            await session.commit()
    printed = _everything_printed(info.value, caplog)
    assert "[parameters:" in printed and "gAAAAA" in printed  # the engine does print them
    assert SECRET not in printed


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
