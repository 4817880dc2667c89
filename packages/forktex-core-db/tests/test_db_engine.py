# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Engine + session lifecycle: init/close/get, commit/rollback, errors, no password leaks."""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

import pytest
from sqlalchemy import String, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from forktex_core.db import (
    BaseDBModel,
    DBError,
    EngineAlreadyInitialised,
    EngineNotInitialised,
    ForktexSession,
    InvalidArgument,
    InvalidURL,
    close_engine,
    get_engine,
    get_session,
    get_sessionmaker,
    init_engine,
    mask_password,
)

SECRET = "pa55-Wörd:with@chars"


class LifeNote(BaseDBModel):
    __tablename__ = "life_note"
    body: Mapped[str] = mapped_column(String(200))


def _url_with_password(base: str, password: str = SECRET) -> str:
    return make_url(base).set(password=password).render_as_string(hide_password=False)


async def test_get_engine_and_session_before_init_say_call_init_engine() -> None:
    with pytest.raises(EngineNotInitialised, match="call init_engine"):
        get_engine()
    with pytest.raises(EngineNotInitialised, match="call init_engine"):
        get_sessionmaker()
    with pytest.raises(EngineNotInitialised, match="init_engine"):
        async with get_session():
            pass  # pragma: no cover


async def test_init_get_close_round_trip(forktex_postgres: Any) -> None:
    engine = init_engine(forktex_postgres.url, pool_size=3, max_overflow=1)
    try:
        assert isinstance(engine, AsyncEngine)
        assert get_engine() is engine
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
        async with get_session() as session:
            assert isinstance(session, AsyncSession)
            assert isinstance(session.sync_session, ForktexSession)
            assert (await session.execute(text("select 41 + 1"))).scalar_one() == 42
    finally:
        await close_engine()
    with pytest.raises(EngineNotInitialised):
        get_engine()
    await close_engine()  # idempotent
    # init again after close works
    init_engine(forktex_postgres.url)
    try:
        async with get_session() as session:
            assert (await session.execute(text("select 1"))).scalar_one() == 1
    finally:
        await close_engine()


async def test_plain_postgresql_scheme_switches_to_asyncpg(forktex_postgres: Any) -> None:
    engine = init_engine(forktex_postgres.dsn)
    try:
        assert engine.url.drivername == "postgresql+asyncpg"
        async with get_session() as session:
            assert (await session.execute(text("select 1"))).scalar_one() == 1
    finally:
        await close_engine()


async def test_init_twice_raises_unless_replace(forktex_postgres: Any) -> None:
    first = init_engine(forktex_postgres.url)
    try:
        with pytest.raises(EngineAlreadyInitialised, match="close_engine") as info:
            init_engine(forktex_postgres.url)
        assert get_engine() is first
        assert "replace=True" in str(info.value)
        async with first.connect() as conn:  # open a pooled connection on the old engine
            await conn.execute(text("select 1"))
        second = init_engine(forktex_postgres.url, replace=True)
        assert second is not first
        assert get_engine() is second
        async with get_session() as session:
            assert (await session.execute(text("select 2"))).scalar_one() == 2
    finally:
        await close_engine()
    # the replaced engine's pool was disposed (checked-in connections closed)
    assert first.pool.checkedin() == 0  # type: ignore[attr-defined]


async def test_commit_on_success(db: AsyncEngine, make_tables: Any) -> None:
    await make_tables(LifeNote)
    async with get_session() as session:
        note = LifeNote(body="kept")
        session.add(note)
    async with get_session() as session:
        found = await session.get(LifeNote, note.id)
        assert found is not None and found.body == "kept"
        # expire_on_commit=False: the object is still readable after commit
    assert note.body == "kept"


async def test_rollback_on_exception_and_reraise(db: AsyncEngine, make_tables: Any) -> None:
    await make_tables(LifeNote)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with get_session() as session:
            session.add(LifeNote(body="lost"))
            await session.flush()  # the row reached the database ...
            raise Boom
    async with get_session() as session:  # ... and was rolled back
        rows = (await session.scalars(select(LifeNote).where(LifeNote.body == "lost"))).all()
        assert rows == []


async def test_rollback_on_cancellation(db: AsyncEngine, make_tables: Any) -> None:
    await make_tables(LifeNote)
    flushed = asyncio.Event()

    async def work() -> None:
        async with get_session() as session:
            session.add(LifeNote(body="cancelled"))
            await session.flush()
            flushed.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(work())
    await flushed.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with get_session() as session:
        rows = (await session.scalars(select(LifeNote).where(LifeNote.body == "cancelled"))).all()
        assert rows == []


async def test_failed_commit_raises(db: AsyncEngine, make_tables: Any) -> None:
    await make_tables(LifeNote)
    note = LifeNote(body="dup")
    async with get_session() as session:
        session.add(note)
    with pytest.raises(Exception, match="duplicate key"):
        async with get_session() as session:
            session.add(LifeNote(id=note.id, body="dup again"))
    async with get_session() as session:
        assert (await session.get(LifeNote, note.id)).body == "dup"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "url",
    [
        "mysql://app:" + SECRET + "@db/app",
        "sqlite+aiosqlite:///x.db",
        "postgresql+psycopg2://app:" + SECRET + "@db/app",
        "not a url at all :" + SECRET + "@",
        "",
    ],
)
def test_bad_url_is_rejected_without_leaking_password(url: str) -> None:
    with pytest.raises(InvalidURL) as info:
        init_engine(url)
    rendered = "".join(traceback.format_exception(info.value))
    assert SECRET not in rendered
    assert "postgresql+asyncpg" in str(info.value)


@pytest.mark.parametrize("url", [None, 42, b"postgresql://x"])
def test_url_of_wrong_type(url: Any) -> None:
    with pytest.raises(InvalidURL, match="must be a str"):
        init_engine(url)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"pool_size": 0}, "pool_size must be an int >= 1"),
        ({"pool_size": "20"}, "pool_size must be an int"),
        ({"max_overflow": -1}, "max_overflow must be an int >= 0"),
        ({"pool_timeout": 0}, "pool_timeout"),
        ({"replace": "yes"}, "replace must be True or False"),
        ({"no_such_option": 1}, "unsupported engine option"),
    ],
)
def test_bad_engine_options(forktex_postgres: Any, options: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        init_engine(forktex_postgres.url, **options)
    with pytest.raises(EngineNotInitialised):
        get_engine()  # nothing half-initialised


@pytest.mark.parametrize("bad", [None, 5, b"postgresql://a:b@c/d"])
def test_mask_password_bad_input(bad: Any) -> None:
    with pytest.raises(InvalidArgument, match="takes a URL string"):
        mask_password(bad)


def test_replace_without_a_running_loop(forktex_postgres: Any) -> None:
    first = init_engine(forktex_postgres.url)
    second = init_engine(forktex_postgres.url, replace=True)  # old pool dropped synchronously
    assert get_engine() is second is not first

    async def use_and_close() -> int:
        try:
            async with get_session() as session:
                return int((await session.execute(text("select 3"))).scalar_one())
        finally:
            await close_engine()

    assert asyncio.run(use_and_close()) == 3


def test_mask_password() -> None:
    assert mask_password("postgresql+asyncpg://app:s3cret@db/app") == (
        "postgresql+asyncpg://app:***@db/app"
    )
    assert mask_password("postgresql://app@db/app") == "postgresql://app@db/app"
    assert "x@y:z" not in mask_password("postgresql://app:x@y:z@db/app")
    assert "s3cret" not in mask_password(make_url("postgresql://app:s3cret@db/app"))


async def test_password_never_in_logs_reprs_or_errors(
    forktex_postgres: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = _url_with_password(forktex_postgres.url)
    engine = init_engine(url)
    try:
        assert SECRET not in repr(engine)
        assert SECRET not in str(engine.url)
        assert SECRET not in repr(get_sessionmaker())
        with pytest.raises(EngineAlreadyInitialised) as again:
            init_engine(url)
        assert SECRET not in str(again.value)
    finally:
        await close_engine()
    # a connection failure (nobody listens on port 1) must not show the password either
    bad = make_url(url).set(port=1).render_as_string(hide_password=False)
    init_engine(bad, connect_args={"timeout": 2})
    try:
        with pytest.raises(Exception) as failure:
            async with get_session() as session:
                await session.execute(text("select 1"))
        assert not isinstance(failure.value, DBError)
        assert SECRET not in "".join(traceback.format_exception(failure.value))
    finally:
        await close_engine()
    assert "engine initialised" in caplog.text
    assert SECRET not in caplog.text
