# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Behaviour under faults, through the test plugin's fault proxy and a restartable server.

Every fault ends in :class:`DatabaseUnavailable` naming the server (never a raw driver or
socket error, never an empty ``TimeoutError``, never a hang), nothing half-written, and an
engine that works again once the fault is gone, without ``init_engine`` again.

Time bounds here only detect hangs: each call runs under ``asyncio.wait_for`` with a
generous bound, and a hang fails the test with ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import String, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.pool import NullPool

from forktex_core.db import (
    BaseDBModel,
    DatabaseUnavailable,
    DBError,
    InvalidArgument,
    Repository,
    SchemaMigrationError,
    close_engine,
    command_timeout,
    ensure_schema,
    get_engine,
    get_session,
    init_engine,
)
from forktex_core.db._engine import _state

from .conftest import _create_tables

SECRET = "Fault-S3cret-pw"  # put in every URL: trust auth ignores it, messages must too
HANG = 30.0  # a call that takes longer than this has hung


class FaultNote(BaseDBModel):
    __tablename__ = "fault_note"
    body: Mapped[str] = mapped_column(String(64))


@dataclass
class Faulty:
    """The session database behind a fault proxy, and a direct engine to check the truth."""

    proxy: Any
    url: str
    database: str
    direct: AsyncEngine

    def start(self, **options: Any) -> AsyncEngine:
        """``init_engine`` through the proxy (short timeouts unless given)."""
        options.setdefault("connect_timeout", 1)
        options.setdefault("command_timeout", 1)
        return init_engine(self.url, **options)

    async def rows(self, body: str) -> int:
        async with self.direct.connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(FaultNote).where(FaultNote.body == body)
            )
        return int(count or 0)


def _with_secret(url: str) -> str:
    return make_url(url).set(password=SECRET).render_as_string(hide_password=False)


@pytest.fixture
async def faulty(
    forktex_fault_proxy: Any, forktex_postgres: Any, forktex_async_engine: AsyncEngine
) -> AsyncIterator[Faulty]:
    assert _state.engine is None, "a previous test leaked an engine"
    await _create_tables(forktex_async_engine, FaultNote)
    proxy = forktex_fault_proxy(forktex_postgres)
    faulty = Faulty(
        proxy,
        _with_secret(proxy.url(forktex_postgres.url)),
        forktex_postgres.database,
        forktex_async_engine,
    )
    try:
        yield faulty
    finally:
        await asyncio.to_thread(proxy.heal)
        await close_engine()


async def _fails(call: Awaitable[Any], bound: float = HANG) -> tuple[DatabaseUnavailable, float]:
    """Await ``call``, expecting DatabaseUnavailable within ``bound`` seconds."""
    start = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as info:
        await asyncio.wait_for(call, bound)
    return info.value, time.monotonic() - start


def _check_report(error: DatabaseUnavailable, address: str, database: str) -> None:
    """Our own error, naming the server and database, with no secret anywhere in its chain."""
    assert isinstance(error, DBError) and isinstance(error, ConnectionError)
    message = str(error)
    assert message and address in message and repr(database) in message, message
    assert SECRET not in "".join(traceback.format_exception(error))
    assert SECRET not in repr(error)


async def _select_one() -> None:
    async with get_session() as session:
        assert (await session.execute(text("select 1"))).scalar_one() == 1


async def _works_again() -> None:
    await asyncio.wait_for(_select_one(), HANG)


# -- every call site x every fault ----------------------------------------------------------


async def _session_execute() -> None:
    await _select_one()


async def _repository_read() -> None:
    async with get_session() as session:
        await Repository(session, FaultNote).get_or_none(uuid.uuid4())


async def _repository_write() -> None:
    async with get_session() as session:
        await Repository(session, FaultNote).create(body="matrix")


async def _session_stream() -> None:
    async with get_session() as session:
        result = await session.stream(select(FaultNote))
        await result.all()


async def _engine_connect() -> None:
    async with get_engine().connect() as conn:
        await conn.execute(text("select 1"))


async def _ensure_schema() -> None:
    await ensure_schema(get_engine(), "fault_matrix", ["CREATE TABLE t (id int)"])


Call = Callable[[], Awaitable[None]]

CALLS: dict[str, Call] = {
    "session.execute": _session_execute,
    "Repository.get_or_none": _repository_read,
    "Repository.create+commit": _repository_write,
    "session.stream": _session_stream,
    "engine.connect": _engine_connect,
    "ensure_schema": _ensure_schema,
}


async def _black_hole_new(faulty: Faulty, call: Call) -> None:
    faulty.start()
    await asyncio.to_thread(faulty.proxy.black_hole)
    await call()


async def _black_hole_pooled(faulty: Faulty, call: Call) -> None:
    faulty.start(pool_size=1, max_overflow=0)
    await _select_one()  # one pooled connection, then the server goes silent
    await asyncio.to_thread(faulty.proxy.black_hole)
    await call()


async def _refused(faulty: Faulty, call: Call) -> None:
    faulty.start()
    await asyncio.to_thread(faulty.proxy.refuse)  # the server is down from the start
    await call()


async def _reset_in_flight(faulty: Faulty, call: Call) -> None:
    faulty.start(command_timeout=HANG)
    await _select_one()
    proxy = faulty.proxy
    proxy.set_latency(HANG)  # replies held back: the next request stays in flight
    task = asyncio.ensure_future(call())
    await asyncio.to_thread(proxy.wait_for_requests, proxy.requests_seen + 1)
    await asyncio.to_thread(proxy.reset_connections)
    proxy.set_latency(0)
    await task


# fault -> (how it is made, what the error says)
FAULTS: dict[
    str, tuple[Callable[[Faulty, Callable[[], Awaitable[None]]], Awaitable[None]], str]
] = {
    "black-holed (new connection)": (_black_hole_new, "within 1 s (connect_timeout)"),
    "black-holed (pooled connection)": (_black_hole_pooled, "within 1 s (command_timeout)"),
    "refused": (_refused, "connection refused: nothing listens on that port"),
    "reset in flight": (_reset_in_flight, "lost the connection"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("call", list(CALLS))
async def test_every_call_site_reports_every_fault_as_database_unavailable(
    faulty: Faulty, call: str, fault: str
) -> None:
    make_fault, says = FAULTS[fault]
    error, _ = await _fails(make_fault(faulty, CALLS[call]))
    _check_report(error, faulty.proxy.address, faulty.database)
    assert says in str(error), str(error)
    await asyncio.to_thread(faulty.proxy.heal)
    await _works_again()  # the same engine recovers: no init_engine again
    assert await faulty.rows("matrix") == 0  # the write was never committed


# -- silent servers -----------------------------------------------------------------------


async def test_a_silent_server_is_reported_within_10_seconds_with_the_default_timeouts(
    faulty: Faulty,
) -> None:
    init_engine(faulty.url)  # default timeouts
    await asyncio.to_thread(faulty.proxy.black_hole)
    error, elapsed = await _fails(_select_one())
    assert elapsed < 10, f"reported after {elapsed:.1f} s"
    assert "within 5 s (connect_timeout)" in str(error)
    _check_report(error, faulty.proxy.address, faulty.database)


async def _two_backend_pids() -> set[int]:
    async with get_session() as first, get_session() as second:
        pids = {
            await first.scalar(text("select pg_backend_pid()")),
            await second.scalar(text("select pg_backend_pid()")),
        }
    return {int(pid) for pid in pids}


async def test_a_command_timeout_discards_only_that_connection(faulty: Faulty) -> None:
    faulty.start(command_timeout=0.5, pool_size=2, max_overflow=0)
    before = await _two_backend_pids()
    with pytest.raises(DatabaseUnavailable, match=r"within 0\.5 s \(command_timeout\)"):
        async with get_session() as session:
            await asyncio.wait_for(session.execute(text("select pg_sleep(3)")), HANG)
    after = await _two_backend_pids()
    assert len(before & after) == 1  # a slow statement is not a dead server: one kept


async def test_cancelling_a_statement_raises_cancellation_not_a_database_fault(
    faulty: Faulty,
) -> None:
    """A task cancelled while its statement runs sees CancelledError (the database is fine),
    and the engine keeps working afterwards."""
    faulty.start(command_timeout=10)

    async def slow() -> None:
        async with get_session() as session:
            await session.execute(text("select pg_sleep(5)"))

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, HANG)
    async with get_session() as session:
        assert (await session.execute(text("select 1"))).scalar_one() == 1


async def test_pool_pre_ping_against_a_black_hole_reports_within_the_command_timeout(
    faulty: Faulty,
) -> None:
    faulty.start(pool_pre_ping=True, command_timeout=1)
    await _select_one()
    await asyncio.to_thread(faulty.proxy.black_hole)
    error, _ = await _fails(_select_one())
    assert "pool_pre_ping" in str(error) and "within 1 s (command_timeout)" in str(error)
    _check_report(error, faulty.proxy.address, faulty.database)
    await asyncio.to_thread(faulty.proxy.heal)
    await _works_again()


async def test_pool_pre_ping_replaces_a_connection_the_server_reset(faulty: Faulty) -> None:
    faulty.start(pool_pre_ping=True)
    await _select_one()
    faulty.proxy.reset_connections()  # the loop does not see it before the checkout
    await _works_again()  # the ping failed, the pool reconnected, nothing was raised


async def test_no_free_pooled_connection_within_pool_timeout(faulty: Faulty) -> None:
    faulty.start(pool_size=1, max_overflow=0, pool_timeout=0.5)
    async with get_session() as holder:
        await holder.execute(text("select 1"))  # holds the only connection
        error, _ = await _fails(_select_one())
    assert "within 0.5 s (pool_timeout, pool_size=1)" in str(error)
    _check_report(error, faulty.proxy.address, faulty.database)


# -- lost connections: nothing half-written --------------------------------------------------


async def test_connection_reset_mid_transaction_rolls_back_cleanly(faulty: Faulty) -> None:
    faulty.start()

    async def unit_of_work() -> None:
        async with get_session() as session:
            await Repository(session, FaultNote).create(body="half")  # flushed, not committed
            await asyncio.to_thread(faulty.proxy.reset_connections)
            await session.execute(text("select 1"))

    error, _ = await _fails(unit_of_work())
    assert "lost the connection" in str(error) and "not committed" in str(error)
    _check_report(error, faulty.proxy.address, faulty.database)
    assert await faulty.rows("half") == 0
    await _works_again()


async def test_connection_reset_mid_result(faulty: Faulty) -> None:
    faulty.start()

    async def read_all() -> None:
        async with get_session() as session:
            result = await session.stream(
                text("select g from generate_series(1, 200000) g"),
                execution_options={"max_row_buffer": 100},
            )
            async for chunk in result.partitions(100):
                assert chunk
                await asyncio.to_thread(faulty.proxy.reset_connections)

    error, _ = await _fails(read_all())
    assert "lost the connection" in str(error) and "while running a statement" in str(error)
    _check_report(error, faulty.proxy.address, faulty.database)
    await _works_again()


async def test_lost_commit_reply_is_reported_as_ambiguous(faulty: Faulty) -> None:
    faulty.start()
    await _select_one()
    faulty.proxy.drop_replies(match=b"COMMIT")

    async def write() -> None:
        async with get_session() as session:
            await Repository(session, FaultNote).create(body="committed?")

    error, _ = await _fails(write())
    assert "may or may not have been applied" in str(error), str(error)
    _check_report(error, faulty.proxy.address, faulty.database)
    # The server did commit: only the reply was lost. The caller cannot tell.
    assert await faulty.rows("committed?") == 1
    await _works_again()


async def test_an_idempotent_write_can_be_retried_after_a_lost_commit_reply(
    faulty: Faulty,
) -> None:
    faulty.start()
    await _select_one()
    note_id = uuid.uuid4()  # chosen by the client, once, before the first attempt

    async def write() -> None:
        async with get_session() as session:
            stmt = insert(FaultNote).values(id=note_id, body="once")
            await session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))

    faulty.proxy.drop_replies(match=b"COMMIT")
    for attempt in range(3):
        try:
            await asyncio.wait_for(write(), HANG)
            break
        except DatabaseUnavailable:
            assert attempt == 0
    assert await faulty.rows("once") == 1


# -- connection failures, by cause ---------------------------------------------------------


async def test_refused_connection(faulty: Faulty) -> None:
    faulty.start()
    await asyncio.to_thread(faulty.proxy.refuse)
    error, _ = await _fails(_select_one())
    assert "connection refused: nothing listens on that port" in str(error)
    _check_report(error, faulty.proxy.address, faulty.database)
    assert isinstance(error.__cause__, OSError)  # the original stays as the cause


async def test_unknown_host_is_named(forktex_postgres: Any) -> None:
    url = make_url(forktex_postgres.url).set(host="no-such-host.invalid", password=SECRET)
    init_engine(url.render_as_string(hide_password=False), connect_timeout=5)
    try:
        error, _ = await _fails(_select_one())
        assert "cannot resolve the host name of no-such-host.invalid:" in str(error)
        _check_report(error, "no-such-host.invalid", forktex_postgres.database)
    finally:
        await close_engine()


async def test_failed_login_names_the_user(forktex_postgres: Any) -> None:
    url = make_url(forktex_postgres.url).set(username="no_such_role", password=SECRET)
    init_engine(url.render_as_string(hide_password=False))
    try:
        error, _ = await _fails(_select_one())
        assert "login refused" in str(error) and "'no_such_role'" in str(error)
        _check_report(
            error, f"{forktex_postgres.host}:{forktex_postgres.port}", forktex_postgres.database
        )
    finally:
        await close_engine()


async def test_missing_database_is_named(forktex_postgres: Any) -> None:
    url = make_url(forktex_postgres.url).set(database="no_such_db_here", password=SECRET)
    init_engine(url.render_as_string(hide_password=False))
    try:
        error, _ = await _fails(_select_one())
        assert "database 'no_such_db_here' does not exist" in str(error)
        _check_report(error, f"{forktex_postgres.host}:{forktex_postgres.port}", "no_such_db_here")
    finally:
        await close_engine()


async def test_ensure_schema_migration_lost_mid_way_is_unavailable_and_applies_nothing(
    faulty: Faulty,
) -> None:
    faulty.start(command_timeout=0.5)
    slow_sql = ["CREATE TABLE a (id int)", "SELECT pg_sleep(3)"]
    error, _ = await _fails(ensure_schema(get_engine(), "fault_schema", slow_sql))
    assert "within 0.5 s (command_timeout)" in str(error)
    assert not isinstance(error, SchemaMigrationError)

    async def reset_then_query(conn: Any) -> None:
        await asyncio.to_thread(faulty.proxy.reset_connections)
        await conn.execute(text("select 1"))

    error, _ = await _fails(ensure_schema(get_engine(), "fault_schema", [reset_then_query]))
    assert "lost the connection" in str(error)
    async with faulty.direct.connect() as conn:
        assert await conn.scalar(text("select to_regclass('fault_schema.a')")) is None
    await _works_again()
    state = await ensure_schema(get_engine(), "fault_schema", ["CREATE TABLE a (id int)"])
    assert state.applied == (1,)
    async with faulty.direct.begin() as conn:
        await conn.execute(text("DROP SCHEMA fault_schema CASCADE"))


# -- a server that restarts ----------------------------------------------------------------


@pytest.fixture
async def restartable(forktex_restartable_postgres: Any) -> AsyncIterator[Any]:
    pg = forktex_restartable_postgres
    assert _state.engine is None, "a previous test leaked an engine"
    init_engine(_with_secret(pg.service.url), pool_size=3)
    try:
        async with get_engine().begin() as conn:
            await conn.run_sync(
                lambda sync: BaseDBModel.metadata.create_all(sync, tables=[FaultNote.__table__])
            )
        yield pg
    finally:
        await close_engine()


async def _pool_of_three() -> None:
    async with get_session() as a, get_session() as b, get_session() as c:
        for session in (a, b, c):
            await session.execute(text("select 1"))


@pytest.mark.parametrize("crash", [False, True], ids=["restart", "crash"])
async def test_next_session_after_a_restart_works(restartable: Any, crash: bool) -> None:
    await _pool_of_three()
    async with get_session() as session:
        await Repository(session, FaultNote).create(body="before")
    # The event loop keeps running while the server restarts, as in production.
    await asyncio.to_thread(restartable.restart, crash=crash)
    async with get_session() as session:  # stale pooled connections replaced at checkout
        count = await session.scalar(select(func.count()).select_from(FaultNote))
        assert count == 1
        await Repository(session, FaultNote).create(body="after")
    await _pool_of_three()


async def test_a_restart_unnoticed_by_the_pool_fails_once_with_our_error(
    restartable: Any,
) -> None:
    await _pool_of_three()
    restartable.restart()  # blocks the loop: the pool cannot notice the closed connections
    error, _ = await _fails(_select_one())
    assert "lost the connection" in str(error)
    _check_report(error, f":{restartable.service.port}", restartable.service.database)
    await _works_again()  # the whole pool was invalidated by that one failure
    await _pool_of_three()


async def test_server_down_then_up(restartable: Any) -> None:
    await _pool_of_three()
    await asyncio.to_thread(restartable.shutdown)
    error, _ = await _fails(_select_one())
    # refused, or — had the server's goodbye not been read yet — the pooled connection lost
    reasons = ("connection refused", "starting up or shutting down", "lost the connection")
    assert any(reason in str(error) for reason in reasons), str(error)
    _check_report(error, f":{restartable.service.port}", restartable.service.database)
    await asyncio.to_thread(restartable.start)
    await _works_again()


# -- raising the limit for a long statement ---------------------------------------------------


async def test_command_timeout_block_lifts_the_limit_for_a_long_statement(
    faulty: Faulty,
) -> None:
    faulty.start(command_timeout=0.5, pool_size=1, max_overflow=0)
    async with get_session() as session:
        async with command_timeout(session, HANG):
            await session.execute(text("select pg_sleep(1)"))
        await session.execute(text("select 1"))  # back to the default: fast is fine
    with pytest.raises(DatabaseUnavailable, match=r"within 0\.5 s \(command_timeout\)"):
        async with get_session() as session:
            async with command_timeout(session, HANG):
                await session.execute(text("select 1"))
            await asyncio.wait_for(session.execute(text("select pg_sleep(1)")), HANG)
    async with get_session() as session:
        async with command_timeout(session, None):  # no limit at all
            await session.execute(text("select pg_sleep(1)"))
    async with get_engine().connect() as conn, command_timeout(conn, HANG):
        await conn.execute(text("select pg_sleep(1)"))


async def test_get_session_command_timeout_covers_the_unit_of_work(faulty: Faulty) -> None:
    faulty.start(command_timeout=0.5, pool_size=1, max_overflow=0)
    async with get_session(command_timeout=HANG) as session:
        await session.execute(text("select pg_sleep(1)"))
        await Repository(session, FaultNote).create(body="slow")
    assert await faulty.rows("slow") == 1
    with pytest.raises(DatabaseUnavailable, match="command_timeout"):
        async with get_session() as session:  # the same pooled connection: default again
            await asyncio.wait_for(session.execute(text("select pg_sleep(1)")), HANG)


async def test_a_lifted_limit_never_leaks_to_the_next_checkout(faulty: Faulty) -> None:
    faulty.start(command_timeout=0.5, pool_size=1, max_overflow=0)
    seen: list[BaseException] = []
    async with get_session() as session:
        async with command_timeout(session, HANG):
            await session.execute(text("select 1"))
            await session.commit()  # returns the connection to the pool inside the block
            try:
                async with get_session() as other:  # the same connection, checked out again
                    await asyncio.wait_for(other.execute(text("select pg_sleep(1)")), HANG)
            except DatabaseUnavailable as exc:
                seen.append(exc)
    assert len(seen) == 1 and "within 0.5 s (command_timeout)" in str(seen[0])


async def test_a_lowered_limit_applies(faulty: Faulty) -> None:
    faulty.start(command_timeout=HANG)
    with pytest.raises(DatabaseUnavailable, match=r"within 0\.3 s"):
        async with get_session() as session:
            async with command_timeout(session, 0.3):
                await asyncio.wait_for(session.execute(text("select pg_sleep(2)")), HANG)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5", True, None])
def test_init_engine_refuses_a_bad_connect_timeout(bad: Any) -> None:
    with pytest.raises(InvalidArgument, match="connect_timeout must be a number of seconds > 0"):
        init_engine("postgresql+asyncpg://app@localhost/app", connect_timeout=bad)
    assert _state.engine is None


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "30", False])
def test_init_engine_refuses_a_bad_command_timeout(bad: Any) -> None:
    with pytest.raises(InvalidArgument, match=r"command_timeout must be .* or None"):
        init_engine("postgresql+asyncpg://app@localhost/app", command_timeout=bad)
    assert _state.engine is None


@pytest.mark.parametrize("name", ["timeout", "command_timeout"])
def test_init_engine_takes_timeouts_as_its_own_arguments_not_connect_args(name: str) -> None:
    with pytest.raises(InvalidArgument, match=rf"instead of connect_args\['{name}'\]"):
        init_engine("postgresql+asyncpg://app@localhost/app", connect_args={name: 3})
    assert _state.engine is None


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"pool": object()}, "does not take a ready-made pool"),
        ({"poolclass": int}, "poolclass must be a sqlalchemy Pool subclass"),
        ({"pool_timeout": 0}, "pool_timeout must be a number of seconds > 0"),
    ],
)
def test_init_engine_refuses_bad_pool_options(options: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        init_engine("postgresql+asyncpg://app@localhost/app", **options)
    assert _state.engine is None


async def test_timeouts_are_in_force_on_the_driver_connection(db: AsyncEngine) -> None:
    await close_engine()
    engine = init_engine(db.url, connect_timeout=2.5, command_timeout=7)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        assert driver._config.command_timeout == 7
        async with command_timeout(conn, None):
            assert driver._config.command_timeout is None
        assert driver._config.command_timeout == 7


async def test_null_pool_has_no_pool_timeout_and_still_reports(faulty: Faulty) -> None:
    faulty.start(poolclass=NullPool)
    await asyncio.to_thread(faulty.proxy.refuse)
    error, _ = await _fails(_select_one())
    _check_report(error, faulty.proxy.address, faulty.database)


async def test_command_timeout_refuses_bad_arguments(db: AsyncEngine) -> None:
    async with get_session() as session:
        for bad in (0, -2, float("nan"), "10", True):
            with pytest.raises(InvalidArgument, match="command_timeout must be"):
                async with command_timeout(session, bad):
                    pass  # pragma: no cover
        with pytest.raises(InvalidArgument, match="takes an AsyncSession or AsyncConnection"):
            async with command_timeout(db, 5):  # type: ignore[arg-type]
                pass  # pragma: no cover
    with pytest.raises(InvalidArgument, match="command_timeout must be"):
        async with get_session(command_timeout=-1):
            pass  # pragma: no cover


def test_database_unavailable_is_our_error_and_a_connection_error() -> None:
    assert issubclass(DatabaseUnavailable, DBError)
    assert issubclass(DatabaseUnavailable, ConnectionError)
