# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Define, enqueue, process: results, idempotent ids, deferral, retries, timeouts, hooks."""

from __future__ import annotations

import inspect
import time
from datetime import UTC, datetime, timedelta

import pytest
from queue_helpers import Recorded, Workers, background_worker, drain

from forktex_core.queue import (
    InvalidArgument,
    JobFailed,
    JobNotFound,
    JobStatus,
    ResultTimeout,
    Task,
    current_job,
)


async def test_task_keeps_its_signature_and_runs_directly(app) -> None:
    assert isinstance(app.add, Task)
    assert list(inspect.signature(app.add).parameters) == ["a", "b"]  # not (*args, **kwargs)
    assert app.add.__name__ == "add"
    assert await app.add(2, b=3) == 5  # a direct call runs here, no queue involved
    assert await app.queue.job("never").status() is JobStatus.not_found


async def test_enqueue_process_result_in_a_worker_process(app, workers: Workers) -> None:
    job = await app.add.enqueue(20, b=22)
    assert job.created and await job.status() is JobStatus.queued
    workers.start()
    assert await job.result(timeout=30) == 42
    assert await job.status() is JobStatus.complete
    who = await (await app.whoami.enqueue()).result(timeout=30)
    assert who["task"] == "whoami" and who["try"] == 1 and who["max"] == 4
    assert who["pid"] != __import__("os").getpid()


async def test_json_values_round_trip(app) -> None:
    value = {"s": "ü", "n": [1, 2.5, None, True], "t": (1, 2)}
    job = await app.echo.enqueue(value)
    await drain(app.queue)
    assert await job.result(timeout=5) == {"s": "ü", "n": [1, 2.5, None, True], "t": [1, 2]}


async def test_job_id_is_idempotent_while_live_and_reusable_after(app, recorded: Recorded) -> None:
    first = await app.whoami.enqueue(_job_id="report:7")
    second = await app.whoami.enqueue(_job_id="report:7")
    assert first.created and not second.created and first == second
    assert await app.queue.health() is not None
    assert (await app.queue.health()).queued == 1  # no duplicate
    await drain(app.queue)
    assert (await first.result(timeout=5))["job_id"] == "report:7"
    assert await recorded.get("whoami") == ["report:7"]
    # finished: the same id can be enqueued again at once (arq blocks it until the result expires)
    third = await app.whoami.enqueue(_job_id="report:7")
    assert third.created and await third.status() is JobStatus.queued
    await drain(app.queue)
    assert await recorded.get("whoami") == ["report:7", "report:7"]
    assert await third.status() is JobStatus.complete


async def test_deferred_jobs_wait_for_their_time(app) -> None:
    t0 = time.time()
    by = await app.whoami.enqueue(_defer_by=1.0)
    until = await app.whoami.enqueue(_defer_until=datetime.now(UTC) + timedelta(seconds=1.2))
    now = await app.whoami.enqueue()
    assert await by.status() is JobStatus.deferred
    assert await until.status() is JobStatus.deferred
    health = await app.queue.health()
    assert (health.queued, health.deferred) == (1, 2)
    await drain(app.queue)  # burst mode waits for deferred jobs
    assert (await now.result(timeout=5))["at"] < t0 + 1.0
    assert (await by.result(timeout=5))["at"] >= t0 + 1.0
    assert (await until.result(timeout=5))["at"] >= t0 + 1.2


async def test_ordinary_exceptions_are_retried_with_backoff(app, recorded: Recorded) -> None:
    job = await app.flaky.enqueue(2)  # fails twice, succeeds on try 3; backoff 0.2 s doubling
    await drain(app.queue)
    assert await job.result(timeout=5) == 3
    t = await recorded.get("flaky")
    assert len(t) == 3
    assert t[1] - t[0] >= 0.2 and t[2] - t[1] >= 0.4  # exponential
    assert t[2] - t[1] < 5


async def test_retry_exception_sets_its_own_delay(app, recorded: Recorded) -> None:
    job = await app.asks_retry.enqueue()
    await drain(app.queue)
    assert await job.result(timeout=5) == 2
    t = await recorded.get("asks_retry")
    assert t[1] - t[0] >= 0.3


async def test_final_failure_raises_and_calls_hooks_once(app, recorded: Recorded) -> None:
    job = await app.doomed.enqueue("disk full", _job_id="d1")
    await drain(app.queue)
    with pytest.raises(JobFailed) as info:
        await job.result(timeout=5)
    assert info.value.error_type == "RuntimeError"
    assert info.value.message == "disk full" and info.value.tries == 2
    assert await job.status() is JobStatus.failed
    assert await recorded.get("doomed") == ["disk full", "disk full"]  # retries=1: two tries
    hooked = [["d1", "RuntimeError", "disk full", 2, ["disk full"]]]
    assert await recorded.get("task_hook") == hooked
    assert await recorded.get("queue_hook") == [["doomed", "RuntimeError"]]


async def test_timeout_cancels_then_retries_then_fails(app, recorded: Recorded) -> None:
    job = await app.too_slow.enqueue()
    t0 = time.monotonic()
    await drain(app.queue)
    assert time.monotonic() - t0 < 10  # the 30 s sleep was cut short twice
    with pytest.raises(JobFailed) as info:
        await job.result(timeout=5)
    assert info.value.error_type == "TaskTimeout" and info.value.tries == 2
    assert len(await recorded.get("too_slow")) == 2
    assert await recorded.get("queue_hook") == [["too_slow", "TaskTimeout"]]


async def test_result_that_is_not_json_fails_the_job(app) -> None:
    job = await app.not_json.enqueue()
    await drain(app.queue)
    with pytest.raises(JobFailed, match="not JSON") as info:
        await job.result(timeout=5)
    assert info.value.error_type == "SerializationError"


async def test_result_timeout_and_not_found(app) -> None:
    job = await app.add.enqueue(1)
    with pytest.raises(ResultTimeout, match="still waiting"):
        await job.result(timeout=0.05)
    with pytest.raises(JobNotFound, match="never enqueued"):
        await app.queue.job("ghost").result(timeout=1)


async def test_unknown_task_in_worker_fails_clearly(app, forktex_redis, queue_name) -> None:
    import queue_app

    other = queue_app.build_app(forktex_redis.url, queue_name)
    other.queue.registry.tasks.pop("add")  # a worker deployed without this task
    job = await app.add.enqueue(1)
    try:
        await drain(other.queue)
    finally:
        await other.queue.close()
    with pytest.raises(JobFailed, match="no task named 'add'"):
        await job.result(timeout=5)


async def test_current_job_outside_a_worker() -> None:
    with pytest.raises(InvalidArgument, match="only available inside a task"):
        current_job()


async def test_in_process_worker_stops_on_cancel_and_requeues(app, recorded: Recorded) -> None:
    job = await app.slow.enqueue(30, "cancel-once")
    async with background_worker(app.queue):
        await recorded.wait_len("cancel-once:started", 1)
    # cancelled mid-job: back in the queue, the try not counted
    assert await job.status() is JobStatus.queued
    await drain(app.queue)
    result = await job.result(timeout=5)
    assert result["try"] == 1 and result["runs"] == 2
    assert (await app.queue.health()).workers == []  # both workers removed their records
