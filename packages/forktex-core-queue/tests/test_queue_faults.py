# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Faults between the queue and Redis, injected for real: the plugin's fault proxy
(black-holed server, connections reset mid-operation, replies lost), a private Redis
restarted while a worker process runs, and servers that are not there or not Redis.
Every call must end in ``QueueUnavailable`` naming host:port/db within its deadline — the
tests bound each call and fail on a hang — and workers must carry on afterwards."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import queue_app
from queue_helpers import (
    Recorded,
    Workers,
    background_worker,
    closed_port,
    drain,
    not_redis_server,
    run_cli,
    wait_for,
)

from forktex_core.queue import InvalidArgument, JobStatus, Queue, QueueUnavailable
from forktex_core.queue._arq import CLAIM, CRON_CLAIM

HANG = 30.0  # a call still running after this long is hung: the test fails instead of waiting


async def _unavailable_within(call: Callable[[], Awaitable[Any]], bound: float) -> str:
    """Run ``call``; it must raise QueueUnavailable within ``bound`` seconds. Its message."""
    start = time.monotonic()
    try:
        await asyncio.wait_for(call(), HANG)
    except QueueUnavailable as exc:
        elapsed = time.monotonic() - start
        assert elapsed < bound, f"reported after {elapsed:.1f} s, expected within {bound} s"
        return str(exc)
    except TimeoutError:
        pytest.fail(f"hung: no answer after {HANG} s")
    pytest.fail("no QueueUnavailable raised")


# -- a server that accepts and never answers -------------------------------------------------


async def test_black_holed_redis_is_reported_within_the_default_timeout(
    forktex_fault_proxy: Any, forktex_redis: Any, queue_name: str
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    app = queue_app.build_app(proxy.url(forktex_redis.url), queue_name)  # default timeouts
    try:
        await app.add.enqueue(1)  # connected and working
        proxy.black_hole()
        message = await _unavailable_within(lambda: app.add.enqueue(2), 10)
        assert f"Redis at {proxy.host}:{proxy.port}/0 did not answer within 5 s" in message
        assert "while enqueueing" in message and queue_name in message
    finally:
        proxy.heal()
        await app.queue.close()


async def test_black_holed_redis_every_call_raises_within_command_timeout(
    forktex_fault_proxy: Any, forktex_redis: Any, queue_name: str
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    queue = Queue(proxy.url(forktex_redis.url), queue_name, command_timeout=1)

    @queue.task()
    async def add(a: int) -> int:
        return a

    job = await add.enqueue(1)
    proxy.black_hole()
    try:
        calls: list[Callable[[], Awaitable[Any]]] = [
            job.status,
            job.result,  # timeout=None: waits for the job, but not on a silent server
            job.abort,
            queue.health,
            lambda: add.enqueue(2),
        ]
        for call in calls:
            message = await _unavailable_within(call, 5)
            assert f"{proxy.host}:{proxy.port}/0 did not answer within 1 s" in message
        # a new connection is black-holed too (the open ones were dropped on the timeout)
        await queue.close()
        await _unavailable_within(job.status, 5)
    finally:
        proxy.heal()
        await queue.close()
    assert await job.status() is JobStatus.queued  # healed: the same queue works again
    await queue.close()


async def test_worker_gives_up_after_max_outage_with_queue_unavailable(
    forktex_fault_proxy: Any, forktex_redis: Any, queue_name: str
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    queue = Queue(proxy.url(forktex_redis.url), queue_name, command_timeout=0.5)

    @queue.task()
    async def add(a: int) -> int:
        return a

    job = await add.enqueue(3)
    worker = asyncio.create_task(
        queue.run_worker(max_outage=2, poll_interval=0.05, heartbeat=0.2, handle_signals=False)
    )
    try:
        assert await job.result(timeout=HANG) == 3
        proxy.black_hole()
        message = await _unavailable_within(lambda: worker, 15)
        assert "has been unusable for" in message and "max_outage is 2 s" in message
        assert f"{proxy.host}:{proxy.port}/0" in message
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        proxy.heal()
        await queue.close()


# -- connections reset, replies lost ---------------------------------------------------------


async def test_connection_reset_mid_operation_is_queue_unavailable(
    forktex_fault_proxy: Any, forktex_redis: Any, queue_name: str
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    app = queue_app.build_app(proxy.url(forktex_redis.url), queue_name)
    try:
        job = await app.add.enqueue(1)
        seen = proxy.requests_seen
        proxy.set_latency(30)  # the reply is held back: the status read stays in flight
        pending = asyncio.ensure_future(job.status())
        await asyncio.to_thread(proxy.wait_for_requests, seen + 1)
        proxy.reset_connections()
        message = await _unavailable_within(lambda: pending, 10)
        assert "could not be reached while reading a job" in message
        assert f"{proxy.host}:{proxy.port}/0" in message
        proxy.heal()
        assert await job.status() is JobStatus.queued  # reconnects by itself
    finally:
        proxy.heal()
        await app.queue.close()


async def test_enqueue_whose_reply_was_lost_is_safe_to_repeat_with_its_id(
    forktex_fault_proxy: Any, forktex_redis: Any, queue_name: str, raw: Any
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    app = queue_app.build_app(proxy.url(forktex_redis.url), queue_name)
    try:
        await app.add.enqueue(0)  # connection up, script loaded
        proxy.drop_replies(1, match=b"EVALSHA")
        message = await _unavailable_within(lambda: app.add.enqueue(5, _job_id="lost"), 10)
        assert "could not be reached while enqueueing" in message
        again = await app.add.enqueue(5, _job_id="lost")
        assert again.created is False  # the first call did store it: no duplicate
        await drain(app.queue)
        assert await again.result(timeout=HANG) == 5
    finally:
        await app.queue.close()


async def test_worker_process_rides_out_connection_resets(
    forktex_fault_proxy: Any, forktex_redis: Any, queue_name: str, app: Any, tmp_path: Path
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    workers = Workers(proxy.url(forktex_redis.url), queue_name, tmp_path)
    try:
        proc = workers.start("--lease", "1")  # a claim whose reply is lost runs after its lease

        async def polling() -> bool:  # (a worker that cannot reach Redis at start exits)
            return (await app.queue.health()).alive_workers == 1

        await wait_for(polling, HANG, "the worker to start")
        jobs = []
        for i in range(8):
            jobs.append(await app.add.enqueue(i, 100))
            await asyncio.to_thread(proxy.wait_for_requests, proxy.requests_seen + 1)
            proxy.reset_connections()  # whatever the worker was doing
        results = [await job.result(timeout=HANG) for job in jobs]
        assert results == [100 + i for i in range(8)]  # nothing lost
        assert proc.poll() is None  # the same worker process did it all
        assert "Traceback" not in workers.log(0)
    finally:
        workers.stop_all()


async def test_lost_claim_reply_redelivers_the_job(
    forktex_fault_proxy: Any, forktex_redis: Any, queue_name: str, app: Any, raw: Any
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    worker_queue = queue_app.build_app(proxy.url(forktex_redis.url), queue_name).queue
    job = await app.whoami.enqueue()
    await raw.script_load(CLAIM)  # so that the first claim runs (no NOSCRIPT round trip)
    claim = f" 6 {queue_name}:in-progress:".encode()  # the claim script's 6 keys, in-progress first
    proxy.drop_replies(1, match=lambda line: line.startswith(b"EVALSHA") and claim in line)
    try:
        async with background_worker(worker_queue, lease=1):
            result = await job.result(timeout=HANG)
        # the first claim happened but its reply was lost: the lease lapsed, then it ran
        assert result["try"] == 2
    finally:
        await worker_queue.close()


# -- a restarted server ----------------------------------------------------------------------


async def test_redis_restart_while_a_worker_process_runs(
    forktex_restartable_redis: Any, tmp_path: Path
) -> None:
    rd = forktex_restartable_redis
    url = rd.service.url
    name = f"{rd.service.prefix}q{secrets.token_hex(3)}"
    app = queue_app.build_app(url, name)
    workers = Workers(url, name, tmp_path)
    try:
        proc = workers.start()
        running = await app.nap.enqueue(4)  # in flight across the restart
        waiting = await app.add.enqueue(2, 3)  # enqueued before, run after

        async def started() -> bool:
            return await running.status() is JobStatus.in_progress

        await wait_for(started, HANG, "the job to start")
        await asyncio.to_thread(rd.restart, downtime=1.0)
        result = await running.result(timeout=60)
        # it finished during or after the outage and its result was stored once Redis was
        # back: the same worker, first try (not redelivered)
        assert result == {"pid": proc.pid, "try": 1}
        assert await waiting.result(timeout=60) == 5
        after = await app.add.enqueue(40, 2)
        assert await after.result(timeout=60) == 42  # the worker goes on polling
        assert proc.poll() is None  # no process restart
        health = await app.queue.health()
        assert [w.pid for w in health.workers] == [proc.pid]
        log = workers.log(0)
        assert "usable again" in log and "Traceback" not in log
    finally:
        workers.stop_all()
        await app.queue.close()


async def test_result_is_stored_once_redis_is_back(
    forktex_restartable_redis: Any, tmp_path: Path
) -> None:
    rd = forktex_restartable_redis
    name = f"{rd.service.prefix}q{secrets.token_hex(3)}"
    app = queue_app.build_app(rd.service.url, name)
    workers = Workers(rd.service.url, name, tmp_path)
    try:
        proc = workers.start()
        job = await app.nap.enqueue(0.5)

        async def started() -> bool:
            return await job.status() is JobStatus.in_progress

        await wait_for(started, HANG, "the job to start")
        await asyncio.to_thread(rd.shutdown)

        async def finished_in_the_dark() -> bool:  # its outcome waits for Redis
            return f"storing the outcome of job '{job.job_id}'" in workers.log(0)

        await wait_for(finished_in_the_dark, HANG, "the job to finish while Redis is down")
        await asyncio.to_thread(rd.start)
        assert await job.result(timeout=60) == {"pid": proc.pid, "try": 1}
        assert proc.poll() is None
    finally:
        workers.stop_all()
        await app.queue.close()


# -- servers that are not there, or not Redis ------------------------------------------------


def _bad_targets(forktex_redis: Any) -> dict[str, tuple[str, str]]:
    port = closed_port()
    return {
        "refused": (f"redis://127.0.0.1:{port}/0", f"127.0.0.1:{port}/0 could not be reached"),
        "unknown-host": (
            "redis://no-such-host.invalid:6379/0",
            "no-such-host.invalid:6379/0 could not be reached",
        ),
        "db-out-of-range": (
            f"redis://{forktex_redis.host}:{forktex_redis.port}/9999",
            "has no database 9999 (DB index is out of range)",
        ),
        "wrong-password": (
            f"redis://:hunter2secret@{forktex_redis.host}:{forktex_redis.port}/0",
            "refused the credentials",
        ),
    }


@pytest.mark.parametrize("target", ["refused", "unknown-host", "db-out-of-range", "wrong-password"])
async def test_raw_redis_errors_become_queue_unavailable(
    forktex_redis: Any, queue_name: str, target: str
) -> None:
    url, expected = _bad_targets(forktex_redis)[target]
    app = queue_app.build_app(url, queue_name)
    try:
        for call in (lambda: app.add.enqueue(1), app.queue.job("x").status, app.queue.health):
            message = await _unavailable_within(call, 10)
            assert expected in message and "hunter2secret" not in message
        worker = app.queue.run_worker(handle_signals=False)
        message = await _unavailable_within(lambda: worker, 10)  # at start: at once
        assert expected in message and "hunter2secret" not in message
    finally:
        await app.queue.close()


async def test_a_server_that_is_not_redis(queue_name: str) -> None:
    with not_redis_server() as port:
        app = queue_app.build_app(f"redis://127.0.0.1:{port}/0", queue_name)
        try:
            message = await _unavailable_within(lambda: app.add.enqueue(1), 10)
            assert f"127.0.0.1:{port}/0 did not answer in the Redis protocol" in message
            assert "is that address a Redis server?" in message
        finally:
            await app.queue.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("not-a-url", "'not-a-url'"),
        ("localhost:6379", "'localhost:6379'"),
        ("redis://localhost:abc/0", "'redis://localhost:abc/0'"),
        ("redis://:pw@localhost:99999/0", "'redis://***@localhost:99999/0'"),
        ("redis://:pw@localhost/zero", "'redis://***@localhost/zero'"),
    ],
)
def test_bad_urls_show_what_was_passed_masked(url: str, shown: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        Queue(url, "q")
    assert f"redis_url={shown}" in str(info.value)
    assert ":pw@" not in str(info.value)


@pytest.mark.parametrize("command", ["worker", "health"])
async def test_cli_prints_one_line_and_exits_2_when_redis_is_unusable(
    forktex_redis: Any, forktex_fault_proxy: Any, queue_name: str, command: str
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    proxy.black_hole()
    targets = {k: v for k, v in _bad_targets(forktex_redis).items() if k != "unknown-host"}
    targets["black-holed"] = (
        proxy.url(forktex_redis.url),
        f"{proxy.host}:{proxy.port}/0 did not answer within 5 s",
    )
    targets["malformed"] = ("redis://:hunter2secret@localhost:abc/0", "is not a valid Redis URL")
    for what, (url, expected) in targets.items():
        start = time.monotonic()
        done = await asyncio.to_thread(
            run_cli, command, "queue_app:make_queue", url=url, name=queue_name
        )
        assert time.monotonic() - start < HANG, what
        assert done.returncode == 2, (what, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("forktex-queue: "), (what, done.stderr)
        assert expected in lines[0] and "hunter2secret" not in lines[0], (what, lines[0])
        assert done.stdout == ""


async def test_cli_worker_exits_2_in_one_line_after_max_outage(
    forktex_fault_proxy: Any, forktex_redis: Any, queue_name: str, app: Any, tmp_path: Path
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    workers = Workers(proxy.url(forktex_redis.url), queue_name, tmp_path)
    proc = workers.start("--max-outage", "1")
    job = await app.add.enqueue(1, 1)
    assert await job.result(timeout=HANG) == 2  # it runs
    proxy.refuse()
    proxy.reset_connections()
    assert await workers.wait_exit(proc, within=HANG) == 2
    last = workers.log(0).strip().splitlines()[-1]
    assert last.startswith("forktex-queue: ") and "max_outage is 1 s" in last
    assert "Traceback" not in workers.log(0)


async def test_health_skips_worker_records_that_are_not_records(app: Any, raw: Any) -> None:
    await raw.hset(f"{app.queue.name}:workers", mapping={"junk": b"\xff", "also": b"[1]"})
    async with background_worker(app.queue):

        async def one_alive() -> bool:
            return (await app.queue.health()).alive_workers == 1

        await wait_for(one_alive, HANG, "the worker's heartbeat")
    assert len((await app.queue.health()).workers) == 0


async def test_a_cron_tick_whose_claim_reply_was_lost_still_runs(
    forktex_fault_proxy: Any, forktex_redis: Any, queue_name: str, tmp_path: Path, raw: Any
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    tick_keys = f"{queue_name}:cron:every_second:"
    await raw.script_load(CRON_CLAIM)  # so that the first claim runs (no NOSCRIPT round trip)
    proxy.drop_replies(1, match=lambda line: tick_keys.encode() in line)  # the first claim
    workers = Workers(proxy.url(forktex_redis.url), queue_name, tmp_path)
    recorded = Recorded(raw, queue_name)
    try:
        workers.start(cron=True)
        await recorded.wait_len("cron", 3, within=HANG)
    finally:
        workers.stop_all()
    assert proxy.replies_dropped == 1
    claimed = sorted([int(k.rsplit(b":", 1)[1]) async for k in raw.scan_iter(f"{tick_keys}*")])
    ran = await recorded.get("cron")
    assert len(ran) == len(set(ran))  # each tick once
    assert f"cron:every_second:{claimed[0]}" in ran  # the tick claimed in the dark ran too
