# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""rotate_blobs against real Postgres: batches, resumability after crashes, live writers."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from forktex_core.vault import (
    EncryptedJSON,
    RotationError,
    RotationInterrupted,
    RotationReport,
    Vault,
    rotate_blobs,
)

SECRET = "smtp-password-do-not-leak"
# The column's own vault does not matter to rotate_blobs (it reads and writes raw tokens);
# writers in these tests build tokens with the vault they are given.
COLUMN_VAULT = Vault.from_key(Vault.generate_key())
READER = {"vault": COLUMN_VAULT}
metadata = sa.MetaData()
BLOBS = sa.Table(
    "vault_rot_blob",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("payload", EncryptedJSON(COLUMN_VAULT), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
)
PAIRS = sa.Table(
    "vault_rot_pair",
    metadata,
    sa.Column("org", sa.String(20), primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("secret", EncryptedJSON(COLUMN_VAULT)),
)


class Base(DeclarativeBase):
    pass


class OrgProviderCredential(Base):
    __tablename__ = "vault_rot_org_credential"

    id: Mapped[int] = mapped_column(primary_key=True)
    creds: Mapped[dict[str, Any] | None] = mapped_column(
        "payload_col", EncryptedJSON(lambda: READER["vault"]), nullable=True
    )


class NoPk(Base):
    __table__ = sa.Table(
        "vault_rot_nopk",
        Base.metadata,
        sa.Column("a", sa.Integer),
        sa.Column("payload", EncryptedJSON(COLUMN_VAULT)),
    )
    __mapper_args__ = {"primary_key": [__table__.c.a]}  # noqa: RUF012


@pytest.fixture
async def engine(forktex_async_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with forktex_async_engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.run_sync(Base.metadata.create_all)
    yield forktex_async_engine
    async with forktex_async_engine.begin() as conn:
        await conn.execute(sa.text("drop trigger if exists vault_rot_crash on vault_rot_blob"))
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(Base.metadata.drop_all)


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _payload(i: int) -> dict[str, Any]:
    return {"i": i, "password": SECRET, "port": 587}


async def _fill(engine: AsyncEngine, vault: Vault, count: int, *, nulls_every: int = 0) -> None:
    """Insert ``count`` rows whose payload is encrypted by ``vault`` (raw tokens)."""
    rows = []
    for i in range(1, count + 1):
        token = None if nulls_every and i % nulls_every == 0 else vault.encrypt(_payload(i))
        rows.append({"id": i, "payload": token})
    raw = sa.table("vault_rot_blob", sa.column("id"), sa.column("payload"))
    async with engine.begin() as conn:
        for start in range(0, len(rows), 10_000):
            await conn.execute(sa.insert(raw), rows[start : start + 10_000])


async def _raw_tokens(engine: AsyncEngine) -> dict[int, str | None]:
    async with engine.connect() as conn:
        result = await conn.execute(sa.text("select id, payload from vault_rot_blob order by id"))
        return {row[0]: row[1] for row in result}


def _assert_all_on(tokens: dict[int, str | None], only_new: Vault) -> None:
    for i, token in tokens.items():
        if token is not None:
            assert only_new.decrypt(token)["i"] == i


async def test_rotates_every_row_in_batches(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], old_vault: Vault, new_key: str
) -> None:
    new = Vault.from_key(new_key)
    await _fill(engine, old_vault, 3000, nulls_every=10)
    seen: list[RotationReport] = []
    async with sessions() as session:
        report = await rotate_blobs(
            session,
            table=BLOBS,
            column="payload",
            old=old_vault,
            new=new,
            batch_size=250,
            progress=seen.append,
        )
    assert report.complete and report.failed == () and report.failed_pks == []
    assert report.scanned == report.rotated == 2700 and report.skipped_already_new == 0
    assert report.batches == len(seen) == 11 and report.last_pk == 2999
    assert [r.scanned for r in seen] == sorted(r.scanned for r in seen)
    tokens = await _raw_tokens(engine)
    assert sum(t is None for t in tokens.values()) == 300  # NULL stays NULL
    _assert_all_on(tokens, new)
    # a second run finds nothing to do
    async with sessions() as session:
        again = await rotate_blobs(session, table=BLOBS, column="payload", old=old_vault, new=new)
    assert (again.rotated, again.skipped_already_new, again.complete) == (0, 2700, True)
    # the rotation window vault reads both, the old vault alone can no longer read anything
    assert Vault.from_keys([new_key, Vault.generate_key()]).decrypt(tokens[1]) == _payload(1)


async def test_orm_class_with_renamed_attribute_and_async_progress(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    new_vault: Vault,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("insert into vault_rot_org_credential (id, payload_col) values (:i, :t)"),
            [{"i": i, "t": old_vault.encrypt({"n": i})} for i in range(1, 101)],
        )
    calls: list[int] = []

    async def progress(report: RotationReport) -> None:
        await asyncio.sleep(0)
        calls.append(report.rotated)

    async with sessions() as session:
        report = await rotate_blobs(
            session,
            table=OrgProviderCredential,
            column="creds",
            old=old_vault,
            new=new_vault,
            batch_size=30,
            progress=progress,
        )
    assert report.rotated == 100 and calls == [30, 60, 90, 100]
    reader = async_sessionmaker(engine)
    READER["vault"] = new_vault
    try:
        async with reader() as session:
            rows = (await session.scalars(sa.select(OrgProviderCredential))).all()
            assert sorted(r.creds["n"] for r in rows if r.creds) == list(range(1, 101))
    finally:
        READER["vault"] = COLUMN_VAULT
    async with sessions() as session:  # the column name works as well as the attribute name
        again = await rotate_blobs(
            session,
            table=OrgProviderCredential,
            column="payload_col",
            old=old_vault,
            new=new_vault,
        )
    assert again.skipped_already_new == 100


async def test_composite_primary_key_keyset(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    new_vault: Vault,
) -> None:
    rows = [
        {"org": f"org{o}", "n": n, "secret": old_vault.encrypt([o, n])}
        for o in range(7)
        for n in range(13)
    ]
    raw = sa.table("vault_rot_pair", sa.column("org"), sa.column("n"), sa.column("secret"))
    async with engine.begin() as conn:
        await conn.execute(sa.insert(raw), rows)
    async with sessions() as session:
        report = await rotate_blobs(
            session, table=PAIRS, column="secret", old=old_vault, new=new_vault, batch_size=10
        )
    assert report.rotated == 91 and report.batches == 10 and report.last_pk == ("org6", 12)
    async with engine.connect() as conn:
        tokens = (await conn.execute(sa.text("select org, n, secret from vault_rot_pair"))).all()
    assert all(new_vault.decrypt(t) == [int(o[3:]), n] for o, n, t in tokens)


async def test_unopenable_rows_are_reported_not_dropped(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    new_vault: Vault,
) -> None:
    stranger = Vault.from_key(Vault.generate_key())
    await _fill(engine, old_vault, 200)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("update vault_rot_blob set payload = :t where id = 50"),
            {"t": stranger.encrypt({"i": 50})},
        )
        await conn.execute(sa.text("update vault_rot_blob set payload = 'garbage' where id = 60"))
        await conn.execute(
            sa.text("update vault_rot_blob set payload = :t where id = 70"),
            {"t": stranger.encrypt({"i": 70})},
        )
    before = await _raw_tokens(engine)
    async with sessions() as session:
        report = await rotate_blobs(
            session, table=BLOBS, column="payload", old=old_vault, new=new_vault, batch_size=64
        )
    assert report.complete and report.rotated == 197
    assert report.failed_pks == [50, 60, 70]
    assert new_vault.fingerprint in report.failed[0].reason
    after = await _raw_tokens(engine)
    assert after[50] == before[50] and after[60] == "garbage" and after[70] == before[70]
    assert SECRET not in repr(report)


async def test_rows_on_a_secondary_key_of_new_are_moved_to_its_primary(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    new_key: str,
) -> None:
    middle_key = Vault.generate_key()
    await _fill(engine, Vault.from_key(middle_key), 10)
    new = Vault.from_keys([new_key, middle_key])
    async with sessions() as session:
        report = await rotate_blobs(session, table=BLOBS, column="payload", old=old_vault, new=new)
    assert report.rotated == 10
    _assert_all_on(await _raw_tokens(engine), Vault.from_key(new_key))


async def test_max_failures_stops_a_rotation_with_the_wrong_old_key(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    new_vault: Vault,
) -> None:
    await _fill(engine, old_vault, 500)
    wrong = Vault.from_key(Vault.generate_key())
    async with sessions() as session:
        with pytest.raises(RotationInterrupted, match="max_failures=100") as info:
            await rotate_blobs(
                session,
                table=BLOBS,
                column="payload",
                old=wrong,
                new=new_vault,
                batch_size=60,
                max_failures=100,
            )
    assert info.value.report.rotated == 0 and len(info.value.report.failed) == 120
    assert wrong.fingerprint in str(info.value)


async def test_interrupted_rotation_resumes(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    new_key: str,
) -> None:
    """50,000 rows; a database error kills one batch mid-way (it rolls back whole), an
    exception between batches stops another run; re-running finishes the job."""
    new = Vault.from_key(new_key)
    await _fill(engine, old_vault, 50_000)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                """
                create or replace function vault_rot_crash() returns trigger as $$
                begin
                  if new.id = 20777 then raise exception 'injected crash'; end if;
                  return new;
                end $$ language plpgsql
                """
            )
        )
        await conn.execute(
            sa.text(
                "create trigger vault_rot_crash before update on vault_rot_blob "
                "for each row execute function vault_rot_crash()"
            )
        )
    async with sessions() as session:
        with pytest.raises(RotationInterrupted, match="rolled back") as info:
            await rotate_blobs(
                session,
                table=BLOBS,
                column="payload",
                old=old_vault,
                new=new,
                batch_size=1000,
            )
    first = info.value.report
    assert first.rotated == 20_000 and first.batches == 20 and not first.complete
    assert "injected crash" in str(info.value.__cause__)
    tokens = await _raw_tokens(engine)
    on_new = sum(new.key_for(t) is not None for t in tokens.values() if t)
    assert on_new == 20_000  # the failing batch left nothing half-written
    async with engine.begin() as conn:
        await conn.execute(sa.text("drop trigger vault_rot_crash on vault_rot_blob"))

    class Stop(Exception):
        pass

    def stop_after_ten(report: RotationReport) -> None:
        if report.batches == 10:
            raise Stop

    async with sessions() as session:
        with pytest.raises(Stop):
            await rotate_blobs(
                session,
                table=BLOBS,
                column="payload",
                old=old_vault,
                new=new,
                batch_size=2500,
                progress=stop_after_ten,
            )
    async with sessions() as session:
        final = await rotate_blobs(
            session, table=BLOBS, column="payload", old=old_vault, new=new, batch_size=5000
        )
    assert final.complete and not final.failed
    assert final.rotated == 50_000 - 25_000 and final.skipped_already_new == 25_000
    _assert_all_on(await _raw_tokens(engine), Vault.from_key(new_key))


CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from forktex_core.vault import EncryptedJSON, Vault, rotate_blobs

    url, old_key, new_key = sys.argv[1:4]
    old, new = Vault.from_key(old_key), Vault.from_key(new_key)
    table = sa.Table("vault_rot_blob", sa.MetaData(),
                     sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("payload", EncryptedJSON(new)))

    def die(report):
        if report.batches == 3:
            print("batches", report.batches, "rotated", report.rotated, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    async def main():
        engine = create_async_engine(url)
        async with async_sessionmaker(engine)() as session:
            await rotate_blobs(session, table=table, column="payload", old=old, new=new,
                               batch_size=700, progress=die)

    asyncio.run(main())
    """
)


async def test_rotation_survives_a_killed_process(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    forktex_postgres: Any,
    old_key: str,
    new_key: str,
    tmp_path: Path,
) -> None:
    old, new = Vault.from_key(old_key), Vault.from_key(new_key)
    await _fill(engine, old, 5000)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(script), forktex_postgres.url, old_key, new_key],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    assert "batches 3 rotated 2100" in proc.stdout
    async with sessions() as session:
        report = await rotate_blobs(session, table=BLOBS, column="payload", old=old, new=new)
    assert report.complete and report.skipped_already_new == 2100 and report.rotated == 2900
    _assert_all_on(await _raw_tokens(engine), new)


async def test_resume_after_skips_ahead(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    new_vault: Vault,
) -> None:
    await _fill(engine, old_vault, 100)
    async with sessions() as session:
        report = await rotate_blobs(
            session,
            table=BLOBS,
            column="payload",
            old=old_vault,
            new=new_vault,
            resume_after=60,
        )
    assert report.scanned == report.rotated == 40
    tokens = await _raw_tokens(engine)
    assert new_vault.key_for(tokens[60] or "") is None and new_vault.key_for(tokens[61] or "")


async def test_concurrent_writer_loses_nothing(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_key: str,
    new_key: str,
) -> None:
    """A live writer (already on the rollout vault) keeps updating rows while rotation runs:
    every row ends with the writer's last value, and every row is on the new key."""
    old, new = Vault.from_key(old_key), Vault.from_key(new_key)
    app_vault = Vault.from_keys([new_key, old_key])
    count = 4000
    await _fill(engine, old, count)
    expected: dict[int, dict[str, Any]] = {i: _payload(i) for i in range(1, count + 1)}
    done = asyncio.Event()
    writes = 0
    rng = random.Random(7)

    async def writer(lane: int) -> None:
        nonlocal writes
        while not done.is_set():
            i = rng.randrange(1 + lane, count + 1, 3)  # lanes never share a row
            value = {"i": i, "password": SECRET, "version": writes}
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text("update vault_rot_blob set payload = :t where id = :i"),
                    {"t": app_vault.encrypt(value), "i": i},
                )
                await asyncio.sleep(0.001)  # hold the row lock a moment
            expected[i] = value
            writes += 1

    async def slow(report: RotationReport) -> None:
        await asyncio.sleep(0.002)

    tasks = [asyncio.create_task(writer(lane)) for lane in range(3)]
    try:
        async with sessions() as session:
            report = await rotate_blobs(
                session,
                table=BLOBS,
                column="payload",
                old=old,
                new=new,
                batch_size=50,
                progress=slow,
            )
    finally:
        done.set()
        await asyncio.gather(*tasks)
    assert writes > 50, "the writer did not overlap the rotation"
    assert report.complete and not report.failed
    assert report.rotated + report.skipped_already_new == count
    assert report.skipped_already_new > 0  # some rows were already rewritten by the writer
    tokens = await _raw_tokens(engine)
    for i, token in tokens.items():
        assert token is not None and new.decrypt(token) == expected[i]


# -- bad input ---------------------------------------------------------------------------------


async def test_bad_arguments_are_refused_before_touching_data(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    old_vault: Vault,
    new_vault: Vault,
    old_key: str,
) -> None:
    async with sessions() as session:
        ok = {"table": BLOBS, "column": "payload", "old": old_vault, "new": new_vault}
        cases: list[tuple[dict[str, Any], str]] = [
            ({"column": "nope"}, r"vault_rot_blob has no column 'nope'; its columns are"),
            ({"column": "note"}, "not EncryptedJSON"),
            ({"column": 3}, "column must be the column's name"),
            ({"table": "vault_rot_blob"}, "mapped ORM class or a sqlalchemy Table"),
            ({"table": object}, "mapped ORM class or a sqlalchemy Table"),
            ({"table": OrgProviderCredential, "column": "nope"}, "its columns are"),
            ({"table": NoPk}, "has no primary key"),
            ({"new": Vault.from_key(old_key)}, "same key"),
            ({"new": Vault.from_keys([old_key, Vault.generate_key()])}, "same key"),
            ({"old": old_key}, "old must be a Vault"),
            ({"new": None}, "new must be a Vault"),
            ({"batch_size": 0}, "batch_size must be a positive int"),
            ({"batch_size": True}, "batch_size must be a positive int"),
            ({"batch_size": 1.5}, "batch_size must be a positive int"),
            ({"max_failures": -1}, "max_failures must be an int"),
        ]
        for override, message in cases:
            with pytest.raises(RotationError, match=message) as info:
                await rotate_blobs(session, **{**ok, **override})
            assert old_key not in str(info.value)
        with pytest.raises(RotationError, match="AsyncSession"):
            await rotate_blobs(object(), **ok)  # type: ignore[arg-type]
        await session.execute(sa.text("select 1"))  # opens a transaction
        with pytest.raises(RotationError, match="already has a transaction open"):
            await rotate_blobs(session, **ok)
        await session.rollback()
        report = await rotate_blobs(session, **ok)  # empty table: complete, nothing done
        assert report.complete and report.scanned == 0
