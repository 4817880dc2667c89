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
    DatabaseUnavailable,
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

from .conftest import _create_tables

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
    init_engine(bad, connect_timeout=2)
    try:
        with pytest.raises(DatabaseUnavailable) as failure:
            async with get_session() as session:
                await session.execute(text("select 1"))
        assert ":1 " in str(failure.value)
        assert SECRET not in "".join(traceback.format_exception(failure.value))
    finally:
        await close_engine()
    assert "engine initialised" in caplog.text
    assert SECRET not in caplog.text


# -- secrets anywhere in a URL ----------------------------------------------------------------
PW = "Pw-9xZq_7"  # stands for a password / token (no URL-escaped characters: must match)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        (f"postgresql+asyncpg://app:{PW}@db/app", "app:***@db/app"),
        (f"postgresql://:{PW}@db:5433/app", "//:***@db:5433/app"),
        (f"postgresql://app:{PW}@[::1]:5432/app", "@[::1]:5432/app"),
        (f"postgresql://app:{PW}@h1:5432,h2:5433/app", "@h1:5432,h2:5433/app"),
        (f"postgresql://app:{PW}@@db/app", "@db/app"),
        (f"postgresql://app:{PW}:more@db/app", "app:***@db/app"),
        (f"postgresql://app:{PW}%40x%2F@db/app", "app:***@db/app"),
        (f"postgresql://app:{PW}/with/slash@db/app", "app:***@db/app"),
        (f"postgresql://app@db/app?password={PW}", "?password=***"),
        (f"postgresql://app@db/app?sslmode=require&password={PW}&x=1", "sslmode=require"),
        (f"postgresql://app@db/app?PASSWORD={PW}", "?PASSWORD=***"),
        (f"postgresql://app@db/app?pass%77ord={PW}", "db/app"),
        (f"postgresql://app@db/app?sslpassword={PW}", "?sslpassword=***"),
        (f"postgresql://app@db/app?secret={PW}", "?secret=***"),
        (f"postgresql://app@db/app?token={PW}", "?token=***"),
        (f"postgresql://app@db/app?access_token={PW}", "?access_token=***"),
        (f"postgresql://app@db/app?api_key={PW}", "?api_key=***"),
        (f"postgresql://app@db/app?key={PW}", "?key=***"),
        (f"postgresql://app@db/app?auth={PW}", "?auth=***"),
        (f"postgresql://app@db/app?credentials={PW}", "?credentials=***"),
        (f"postgresql://app@db/app?password={PW}&password={PW}2", "db/app"),
        (f"postgresql://app@db/app;password={PW}", "db/app"),
        (f"postgresql://app@db/app?application_name=a@b&password={PW}", "postgresql://"),
        (f"postgresql://app@db/app#token={PW}", "#token=***"),
        (f"redis://:{PW}@cache:6379/0", "//:***@cache:6379/0"),
        (f"host=db user=app password={PW} dbname=app", "host=db user=app password=***"),
        (f"host=db password='{PW} with spaces' dbname=app", "dbname=app"),
        (f"not a url :{PW}@ password={PW}", "password=***"),
    ],
)
def test_mask_password_matrix(url: str, kept: str) -> None:
    masked = mask_password(url)
    assert PW not in masked and PW.lower() not in masked.lower()
    assert kept in masked
    try:
        parsed = make_url(url)
    except Exception:
        return
    assert PW not in mask_password(parsed)


def test_mask_password_keeps_what_is_not_secret() -> None:
    assert mask_password("postgresql+asyncpg://app:s3cret@db/app") == (
        "postgresql+asyncpg://app:***@db/app"
    )
    assert mask_password("postgresql://app@db/app?sslmode=require") == (
        "postgresql://app@db/app?sslmode=require"
    )
    url = make_url("postgresql+asyncpg://app:s3cret@db/app?password=q&sslmode=require")
    assert mask_password(url) == (
        "postgresql+asyncpg://app:***@db/app?password=***&sslmode=require"
    )


async def test_query_password_never_in_logs_reprs_or_errors(
    forktex_postgres: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    base = make_url(forktex_postgres.url)
    url = base.set(query={"password": PW, "sslpassword": PW}).render_as_string(hide_password=False)
    with pytest.raises(InvalidURL) as bad_driver:
        init_engine(url.replace("postgresql", "mysql", 1))
    assert PW not in "".join(traceback.format_exception(bad_driver.value))
    engine = init_engine(base.set(query={"password": PW}).render_as_string(hide_password=False))
    try:
        assert PW not in repr(engine) and PW not in str(engine.url)
        assert PW not in engine.url.render_as_string(hide_password=False)
        with pytest.raises(EngineAlreadyInitialised) as again:
            init_engine(url)
        assert PW not in str(again.value)
    finally:
        await close_engine()
    assert "engine initialised" in caplog.text and PW not in caplog.text


# -- parameters never printed by SQLAlchemy ---------------------------------------------------
async def test_statement_errors_hide_parameters_by_default(
    db: AsyncEngine, make_tables: Any
) -> None:
    await make_tables(LifeNote)
    with pytest.raises(Exception) as failure:
        async with get_session() as session:
            session.add(LifeNote(body=PW + "x" * 300))  # too long for varchar(200)
    rendered = "".join(traceback.format_exception(failure.value))
    assert "value too long" in rendered
    assert PW not in rendered
    assert "parameters hidden" in rendered


async def test_hide_parameters_can_be_turned_off(forktex_postgres: Any) -> None:
    with pytest.raises(InvalidArgument, match="hide_parameters must be True or False"):
        init_engine(forktex_postgres.url, hide_parameters="no")
    engine = init_engine(forktex_postgres.url, hide_parameters=False)
    try:
        await _create_tables(engine, LifeNote)
        with pytest.raises(Exception) as failure:
            async with get_session() as session:
                session.add(LifeNote(body="visible" + "x" * 300))
        assert "visible" in str(failure.value)  # debugging on purpose: values shown
    finally:
        await close_engine()
