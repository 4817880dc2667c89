# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Behaviour under faults, through the test plugin's fault proxy and a restartable server.

Every fault a caller can see ends in :class:`FlowUnavailable` naming the server (never a raw
asyncpg, socket or SQLAlchemy error, never an empty ``TimeoutError``, never a hang), and a
worker rides out resets and restarts with nothing lost and nothing run twice.

Time bounds here only detect hangs (each call runs under ``asyncio.wait_for`` with a generous
bound), except the one the library promises: a silent server is reported within 10 s with
the default timeouts.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from forktex_core.flow import (
    Flow,
    FlowContext,
    FlowError,
    FlowUnavailable,
    InvalidArgument,
    ResultTimeout,
    RunFailed,
)

from .conftest import FAST, running, wait_until

SECRET = "Flow-Fault-S3cret"  # in every URL: trust auth ignores it, messages must not show it
HANG = 60.0  # a call that takes longer than this has hung


def _with_secret(url: str) -> str:
    scheme, rest = url.split("://", 1)
    user, _, host = rest.partition("@")
    return f"{scheme}://{user.split(':', 1)[0]}:{SECRET}@{host}"


async def _fails(call: Awaitable[Any], bound: float = HANG) -> tuple[FlowUnavailable, float]:
    """Await ``call``, expecting FlowUnavailable within ``bound`` seconds (else: a hang)."""
    start = time.monotonic()
    with pytest.raises(FlowUnavailable) as info:
        await asyncio.wait_for(call, bound)
    return info.value, time.monotonic() - start


def _check_report(error: BaseException, address: str, database: str) -> None:
    """Our own error, naming the server and the database, with no secret in its chain."""
    assert isinstance(error, FlowUnavailable)
    assert isinstance(error, FlowError) and isinstance(error, ConnectionError)
    message = str(error)
    assert address in message and repr(database) in message, message
    assert SECRET not in "".join(traceback.format_exception(error))
    assert SECRET not in repr(error)


def _register(flow: Flow) -> None:
    @flow.step
    async def double(ctx: FlowContext, x: int) -> int:
        return x * 2

    @flow.workflow(name="faults.double", version=1)
    async def wf(ctx: FlowContext, x: int) -> int:
        return await double(ctx, x)


# -- a silent (black-holed) server -----------------------------------------------------------


async def test_black_holed_server_is_reported_within_10_seconds_with_the_default_timeouts(
    forktex_fault_proxy: Any, pg: Any
) -> None:
    proxy = forktex_fault_proxy(pg)
    flow = Flow(_with_secret(proxy.url(pg.url)))  # the default timeouts
    _register(flow)
    await asyncio.to_thread(proxy.black_hole)
    try:
        error, took = await _fails(flow.start("faults.double", input=1))
        _check_report(error, f"127.0.0.1:{proxy.port}", pg.database)
        assert error.connecting and "connect_timeout" in str(error)
        print(f"black-holed server reported after {took:.2f} s (connect_timeout 5 s)")
        assert took < 10.0, took  # the promise: within 10 s of connecting, with the defaults
    finally:
        await flow.close()


async def test_server_going_silent_mid_use_is_reported_within_the_command_timeout(
    forktex_fault_proxy: Any, pg: Any
) -> None:
    proxy = forktex_fault_proxy(pg)
    flow = Flow(_with_secret(proxy.url(pg.url)), command_timeout=1, **FAST)
    _register(flow)
    try:
        await flow.connect()
        run_id = await flow.start("faults.double", input=1)
        await asyncio.to_thread(proxy.black_hole)
        error, took = await _fails(flow.start("faults.double", input=2))
        _check_report(error, f"127.0.0.1:{proxy.port}", pg.database)
        assert not error.connecting and "command_timeout" in str(error)
        print(f"silent server mid-use reported after {took:.2f} s (command_timeout 1 s)")
        error, _ = await _fails(flow.get_run(run_id))
        _check_report(error, f"127.0.0.1:{proxy.port}", pg.database)
        await asyncio.to_thread(proxy.heal)
        # the same Flow works again once the network is back
        info = await asyncio.wait_for(flow.get_run(run_id), HANG)
        assert info.status.value == "pending"
    finally:
        await asyncio.to_thread(proxy.heal)
        await flow.close()


@pytest.mark.parametrize("read", ["get_run", "history", "list_runs", "result"])
async def test_a_read_on_a_silent_server_fails_after_one_command_timeout_without_retrying(
    forktex_fault_proxy: Any, pg: Any, read: str
) -> None:
    """Reads retry a *lost* connection (tests below), but not one that went silent: retried,
    a read would open a new connection to the same silent server and wait out its
    connect_timeout too (and up to READ_RETRY, 5 s, in all). It fails with the command
    timeout of its first try instead."""
    proxy = forktex_fault_proxy(pg)
    flow = Flow(_with_secret(proxy.url(pg.url)), command_timeout=1, **FAST)
    _register(flow)
    reads = {
        "get_run": flow.get_run,
        "history": flow.history,
        "list_runs": lambda _: flow.list_runs(),
        "result": lambda run_id: flow.result(run_id, timeout=HANG),
    }
    try:
        run_id = await flow.start("faults.double", input=1)  # the client pool's connection
        if read == "result":  # its LISTEN connection, open before the server goes silent
            with pytest.raises(ResultTimeout):
                await flow.result(run_id, timeout=0.1)
        await asyncio.to_thread(proxy.black_hole)
        error, took = await _fails(reads[read](run_id))
        _check_report(error, f"127.0.0.1:{proxy.port}", pg.database)
        # the first try's own error: not a reconnect's (connecting, connect_timeout)
        assert error.silent and not error.connecting, str(error)
        assert "did not answer within 1 s (command_timeout)" in str(error), str(error)
        print(f"{read} on a silent server failed after {took:.2f} s (command_timeout 1 s)")
        assert took < 3.0, took  # about one command timeout, not the 5 s retry window
        await asyncio.to_thread(proxy.heal)
        info = await asyncio.wait_for(flow.get_run(run_id), HANG)
        assert info.status.value == "pending"
    finally:
        await asyncio.to_thread(proxy.heal)
        await flow.close()


async def test_the_worker_pool_stops_a_statement_past_the_command_timeout(pg: Any) -> None:
    """The worker's pool has no asyncpg timer per statement: its watchdog stops a statement
    that runs past command_timeout (reported like a timeout), leaves shorter ones alone, and
    the pool goes on with a fresh connection."""
    from forktex_core.flow._connections import Connections

    connections = Connections(_with_secret(pg.url), 5.0, 0.5)
    try:
        await connections.open_workers(2)
        pool = connections.workers
        assert await pool.fetchval("SELECT pg_sleep(0.2)::text") == ""  # below the timeout
        error, took = await _fails(pool.fetchval("SELECT pg_sleep(5)"), bound=10.0)
        _check_report(error, f"{pg.host}:{pg.port}", pg.database)
        assert "command_timeout" in str(error) and "0.5" in str(error), str(error)
        assert took >= 0.5, took  # never before the timeout; the sleep itself would end at 5 s
        assert await pool.fetchval("SELECT 1") == 1
    finally:
        await connections.close_workers()
        await connections.close()


async def test_cancelling_a_call_to_a_silent_server_raises_cancellation(
    forktex_fault_proxy: Any, pg: Any
) -> None:
    proxy = forktex_fault_proxy(pg)
    flow = Flow(_with_secret(proxy.url(pg.url)), **FAST)
    _register(flow)
    try:
        await flow.connect()
        await asyncio.to_thread(proxy.black_hole)
        call = asyncio.ensure_future(flow.start("faults.double", input=1))
        await asyncio.sleep(0.3)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(call, HANG)
    finally:
        await asyncio.to_thread(proxy.heal)
        await flow.close()


async def test_errors_that_are_not_faults_keep_their_type(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    conn = await flow._store.dedicated()  # a connection as flow opens them
    try:
        with pytest.raises(asyncpg.DivisionByZeroError) as info:
            await conn.fetchval("SELECT 1 / 0")
        assert info.value.__cause__ is None
    finally:
        await conn.close()

    @flow.transaction
    async def broken(ctx: FlowContext, session: AsyncSession) -> None:
        await session.execute(text("SELECT * FROM no_such_table"))

    @flow.workflow(name="faults.broken", version=1)
    async def wf(ctx: FlowContext) -> None:
        await broken(ctx)

    async with h.running(flow):
        run_id = await flow.start("faults.broken")
        with pytest.raises(RunFailed) as failed:
            await flow.result(run_id, timeout=30)
    assert "no_such_table" in str(failed.value) and "FlowUnavailable" not in str(failed.value)


# -- refused, unknown, malformed ----------------------------------------------------------


async def test_refused_port_is_reported_naming_the_server(
    forktex_fault_proxy: Any, pg: Any
) -> None:
    proxy = forktex_fault_proxy(pg)
    flow = Flow(_with_secret(proxy.url(pg.url)), **FAST)
    _register(flow)
    await asyncio.to_thread(proxy.refuse)
    try:
        error, _ = await _fails(flow.start("faults.double", input=1))
        _check_report(error, f"127.0.0.1:{proxy.port}", pg.database)
        assert error.connecting and "connection refused" in str(error)
    finally:
        await flow.close()


async def test_unknown_host_is_named() -> None:
    flow = Flow(f"postgresql://app:{SECRET}@no-such-host.invalid:5432/appdb")
    try:
        error, _ = await _fails(flow.connect())
        _check_report(error, "no-such-host.invalid:5432", "appdb")
        assert "cannot resolve the host name" in str(error)
    finally:
        await flow.close()


async def test_missing_database_is_named(pg: Any) -> None:
    url = _with_secret(pg.url).rsplit("/", 1)[0] + "/no_such_flow_database"
    flow = Flow(url)
    try:
        error, _ = await _fails(flow.connect())
        _check_report(error, f"{pg.host}:{pg.port}", "no_such_flow_database")
        assert error.connecting and "does not exist" in str(error)
    finally:
        await flow.close()


@pytest.mark.parametrize("port", ["abc", "99999", "0"])
def test_a_port_that_is_not_a_number_is_refused_naming_the_url(port: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        Flow(f"postgresql://app:{SECRET}@127.0.0.1:{port}/appdb")
    message = str(info.value)
    assert f"port {port!r}" in message and "postgresql://app:***@127.0.0.1" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"connect_timeout": None}, "connect_timeout"),
        ({"command_timeout": -1}, "command_timeout"),
        ({"command_timeout": "30"}, "command_timeout"),
        ({"max_outage": 0}, "max_outage"),
    ],
)
def test_bad_timeouts_are_refused(options: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        Flow("postgresql://app@127.0.0.1:5432/appdb", **options)


def test_timeouts_have_defaults_and_are_configurable() -> None:
    flow = Flow("postgresql://app@127.0.0.1:5432/appdb")
    assert (flow.connect_timeout, flow.command_timeout, flow.max_outage) == (5.0, 30.0, 300.0)
    flow = Flow(
        "postgresql://app@127.0.0.1:5432/appdb",
        connect_timeout=2,
        command_timeout=None,
        max_outage=60,
    )
    assert (flow.connect_timeout, flow.command_timeout, flow.max_outage) == (2.0, None, 60.0)


# -- connections reset mid-operation ----------------------------------------------------------


async def test_start_whose_connection_is_reset_reports_unavailable_and_can_be_retried(
    forktex_fault_proxy: Any, pg: Any
) -> None:
    proxy = forktex_fault_proxy(pg)
    flow = Flow(_with_secret(proxy.url(pg.url)), **FAST)
    _register(flow)
    try:
        await flow.connect()
        await asyncio.to_thread(proxy.drop_replies, 1, match=b"INSERT INTO forktex_flow.runs")
        error, _ = await _fails(flow.start("faults.double", input=4, idempotency_key="k"))
        _check_report(error, f"127.0.0.1:{proxy.port}", pg.database)
        assert "lost the connection" in str(error)
        assert proxy.replies_dropped == 1
        # the insert happened; retrying with the same key finds that run instead of a second
        run_id = await asyncio.wait_for(
            flow.start("faults.double", input=4, idempotency_key="k"), HANG
        )
        async with running(flow):
            assert await flow.result(run_id, timeout=30) == 8
        conn = await asyncpg.connect(pg.dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM forktex_flow.runs") == 1
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(proxy.heal)
        await flow.close()


async def test_an_eager_start_whose_reply_is_lost_after_its_commit_is_recovered_once(
    forktex_fault_proxy: Any, pg: Any
) -> None:
    """The eager call (insert and claim for this process's worker) commits, then its reply
    is lost: the caller hears the connection was lost, the worker never drives the run it
    does not know it holds, so its lease lapses and the run is recovered -- and runs once.
    The slot lent to the call comes back: the next start is eager again."""
    proxy = forktex_fault_proxy(pg)
    flow = Flow(_with_secret(proxy.url(pg.url)), **FAST)
    _register(flow)
    try:
        async with running(flow, concurrency=1):
            await asyncio.to_thread(proxy.drop_replies, 1, match=b"start_claimed")
            error, _ = await _fails(flow.start("faults.double", input=4))
            assert "lost the connection" in str(error) and proxy.replies_dropped == 1
            conn = await asyncpg.connect(pg.dsn)
            try:
                lost = await conn.fetchval("SELECT id FROM forktex_flow.runs")
                assert await flow.result(lost, timeout=30) == 8
                info = await flow.get_run(lost)
                assert info.recovery_attempts == 1
                again = await asyncio.wait_for(flow.start("faults.double", input=5), HANG)
                assert await flow.result(again, timeout=30) == 10
                again_info = await flow.get_run(again)
                assert again_info.started_at == again_info.created_at  # eager once more
                assert await conn.fetchval("SELECT count(*) FROM forktex_flow.runs") == 2
            finally:
                await conn.close()
    finally:
        await asyncio.to_thread(proxy.heal)
        await flow.close()


async def test_result_rides_out_a_reset_of_its_connections(
    forktex_fault_proxy: Any, pg: Any
) -> None:
    proxy = forktex_fault_proxy(pg)
    client = Flow(_with_secret(proxy.url(pg.url)), **FAST)
    worker = Flow(pg.url, **FAST)
    for flow in (client, worker):
        _register(flow)
    try:
        run_id = await client.start("faults.double", input=21)
        waiting = asyncio.ensure_future(client.result(run_id, timeout=HANG))
        await asyncio.sleep(0.5)  # result() is LISTENing and has read the run once
        await asyncio.to_thread(proxy.reset_connections)
        async with running(worker):
            assert await asyncio.wait_for(waiting, HANG) == 42
    finally:
        await client.close()
        await worker.close()


async def test_worker_rides_out_resets_of_all_its_connections(
    forktex_fault_proxy: Any, pg: Any
) -> None:
    proxy = forktex_fault_proxy(pg)
    flow = Flow(_with_secret(proxy.url(pg.url)), **{**FAST, "lease": 5.0, "heartbeat": 1.0})
    client = Flow(pg.url, **FAST)
    calls: dict[tuple[int, int], int] = {}

    def register(target: Flow) -> None:
        @target.step
        async def work(ctx: FlowContext, run: int, n: int) -> int:
            calls[(run, n)] = calls.get((run, n), 0) + 1
            await asyncio.sleep(0.1)
            return run * 100 + n

        @target.workflow(name="faults.steps", version=1)
        async def wf(ctx: FlowContext, run: int) -> list[int]:
            return [await work(ctx, run, n) for n in range(6)]

    register(flow)
    register(client)
    try:
        async with running(flow):
            ids = [await client.start("faults.steps", input=r) for r in range(5)]
            for _ in range(3):
                await asyncio.sleep(0.25)
                await asyncio.to_thread(proxy.reset_connections)
            results = [await client.result(i, timeout=HANG) for i in ids]
        assert results == [[r * 100 + n for n in range(6)] for r in range(5)]
        assert proxy.accepted > 5  # the worker did reconnect
    finally:
        await client.close()
        await flow.close()


# -- a server restarted while a worker runs -----------------------------------------------


EFFECTS = "CREATE TABLE effects (run int, step int, PRIMARY KEY (run, step))"


def _register_effects(flow: Flow, steps: int) -> None:
    @flow.transaction()
    async def record(ctx: FlowContext, session: AsyncSession, run: int, n: int) -> int:
        # the effect commits with the step's checkpoint: recorded exactly once or not at all
        await session.execute(text("INSERT INTO effects VALUES (:r, :n)"), {"r": run, "n": n})
        return run * 100 + n

    @flow.step
    async def pause(ctx: FlowContext) -> None:
        await asyncio.sleep(0.15)

    @flow.workflow(name="faults.effects", version=1)
    async def wf(ctx: FlowContext, run: int) -> list[int]:
        out = []
        for n in range(steps):
            out.append(await record(ctx, run, n))
            await pause(ctx)
        return out


async def _restart(pg: Any, how: str) -> None:
    if how == "down-3s":  # an outage longer than a restart: new connections refused for 3 s
        await asyncio.to_thread(pg.shutdown)
        await asyncio.sleep(3.0)
        await asyncio.to_thread(pg.start)
    else:
        await asyncio.to_thread(pg.restart, crash=how == "crash")


@pytest.mark.parametrize("how", ["restart", "crash", "down-3s"])
async def test_worker_rides_out_a_postgres_restart_with_every_effect_recorded_once(
    forktex_restartable_postgres: Any, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="forktex_core.flow")
    pg = forktex_restartable_postgres
    url = _with_secret(pg.service.url)
    flow = Flow(url, lease=5.0, heartbeat=1.0, reaper_interval=0.2, poll_interval=0.5)
    runs, steps = 8, 6
    _register_effects(flow, steps)
    conn = await asyncpg.connect(pg.service.dsn)
    try:
        await conn.execute(EFFECTS)
    finally:
        await conn.close()
    worker = asyncio.ensure_future(flow.run_worker(concurrency=8))
    try:
        await flow.wait_worker_started()
        ids = [await flow.start("faults.effects", input=r) for r in range(runs)]
        await asyncio.sleep(0.4)  # mid-run: some steps done, most not
        started = time.monotonic()
        await _restart(pg, how)
        down = time.monotonic() - started
        results = [await asyncio.wait_for(flow.result(i, timeout=HANG), HANG) for i in ids]
        print(f"postgres {how}: server back after {down:.2f} s; all runs done")
        assert results == [[r * 100 + n for n in range(steps)] for r in range(runs)]
        assert not worker.done()  # no process (or worker) restart
        # the LISTEN connections came back, and so did the heartbeat thread's
        # (the runs may finish first: the worker also polls)
        await wait_until(
            lambda: any(
                r.getMessage() == "flow: LISTEN connection re-established" for r in caplog.records
            ),
            timeout=HANG,
        )
        since = await _query(pg, "SELECT now()")
        await wait_until(
            lambda: _query(pg, "SELECT bool_and(heartbeat > $1) FROM forktex_flow.workers", since),
            timeout=HANG,
        )
    finally:
        flow.stop()
        await asyncio.wait_for(worker, HANG)
        await flow.close()
    conn = await asyncpg.connect(pg.service.dsn)
    try:
        rows = await conn.fetch("SELECT run, step FROM effects ORDER BY run, step")
        recorded = await conn.fetchval(
            "SELECT count(*) FROM forktex_flow.steps WHERE status = 'completed'"
        )
    finally:
        await conn.close()
    assert [(r["run"], r["step"]) for r in rows] == [
        (r, n) for r in range(runs) for n in range(steps)
    ]
    assert recorded == runs * steps * 2  # each record and pause checkpointed once


async def _query(pg: Any, statement: str, *args: Any) -> Any:
    """One value read on a connection of the test's own."""
    conn = await asyncpg.connect(pg.service.dsn)
    try:
        return await conn.fetchval(statement, *args)
    finally:
        await conn.close()


async def test_worker_gives_up_after_max_outage_with_flow_unavailable(
    forktex_restartable_postgres: Any,
) -> None:
    pg = forktex_restartable_postgres
    flow = Flow(_with_secret(pg.service.url), max_outage=3, **FAST)
    _register(flow)
    worker = asyncio.ensure_future(flow.run_worker(concurrency=2))
    try:
        await flow.wait_worker_started()
        # the outage starts when the shutdown does (the worker may see it before it returns)
        started = time.monotonic()
        await asyncio.to_thread(pg.shutdown)
        error, _ = await _fails(worker)
        took = time.monotonic() - started
        print(f"worker gave up {took:.2f} s into the outage (max_outage 3 s)")
        _check_report(error, f":{pg.service.port}", pg.service.database)
        assert "max_outage" in str(error)
        assert took >= 3.0
    finally:
        await asyncio.to_thread(pg.start)
        flow.stop()
        await asyncio.gather(worker, return_exceptions=True)
        await flow.close()


async def test_worker_on_a_server_gone_silent_gives_up_after_max_outage(
    forktex_fault_proxy: Any, pg: Any
) -> None:
    """No part of a worker (claims, heartbeat thread, listener, leader) waits forever on a
    black-holed server: the heartbeat's timeouts start the outage clock, and the worker
    stops with FlowUnavailable once it exceeds max_outage."""
    proxy = forktex_fault_proxy(pg)
    flow = Flow(
        _with_secret(proxy.url(pg.url)),
        connect_timeout=1,
        command_timeout=1,
        max_outage=2,
        **FAST,
    )
    _register(flow)
    worker = asyncio.ensure_future(flow.run_worker(concurrency=2))
    try:
        await flow.wait_worker_started()
        await asyncio.to_thread(proxy.black_hole)
        error, took = await _fails(worker)
        print(f"worker on a silent server gave up after {took:.2f} s (max_outage 2 s)")
        _check_report(error, f"127.0.0.1:{proxy.port}", pg.database)
        assert "max_outage" in str(error)
    finally:
        await asyncio.to_thread(proxy.heal)
        flow.stop()
        await asyncio.gather(worker, return_exceptions=True)
        await flow.close()


# -- the command line -----------------------------------------------------------------------


def _cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forktex_core.flow._cli", *argv],
        capture_output=True,
        text=True,
        timeout=HANG,
        cwd=tmp_path,
    )


def _app(tmp_path: Path, url: str) -> str:
    (tmp_path / "unreachable_app.py").write_text(
        "from forktex_core.flow import Flow\n\n"
        f"flow = Flow({url!r})\n\n\n"
        "@flow.workflow(name='noop', version=1)\n"
        "async def noop(ctx):\n"
        "    return None\n"
    )
    return f"{tmp_path / 'unreachable_app.py'}:flow"


@pytest.mark.parametrize("fault", ["refuse", "black_hole"])
async def test_cli_reports_an_unreachable_database_in_one_line_and_exits_2(
    tmp_path: Path, forktex_fault_proxy: Any, pg: Any, fault: str
) -> None:
    proxy = forktex_fault_proxy(pg)
    url = _with_secret(proxy.url(pg.url))
    await asyncio.to_thread(getattr(proxy, fault))
    for argv in (
        ["worker", _app(tmp_path, url)],
        ["runs", "list", "--database-url", url],
    ):
        started = time.monotonic()
        proc = await asyncio.to_thread(_cli, tmp_path, *argv)
        took = time.monotonic() - started
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (argv, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("forktex-flow: error: "), proc.stderr
        assert f"127.0.0.1:{proxy.port}" in lines[0] and repr(pg.database) in lines[0]
        assert SECRET not in proc.stderr + proc.stdout
        print(f"{fault}: {argv[0]} exited 2 after {took:.2f} s: {lines[0]}")
