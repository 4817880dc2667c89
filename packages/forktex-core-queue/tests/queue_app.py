# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Tasks used by the tests, in the test process and in worker subprocesses.

Worker subprocesses load it with ``forktex-queue worker queue_app:make_queue``; the queue's
URL and name come from environment variables set by the test (test code, not the library).
Every task records what happened under keys derived from its queue name.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from types import SimpleNamespace

import redis.asyncio

from forktex_core.queue import FailedJob, Queue, Retry, Task, current_job

_URLS: dict[str, str] = {}


async def record(key: str, value: object) -> int:
    """RPUSH a JSON value onto ``<queue>:t:<key>``; return the list length."""
    job = current_job()
    async with redis.asyncio.Redis.from_url(_URLS[job.queue]) as r:
        return int(await r.rpush(f"{job.queue}:t:{key}", json.dumps(value)))  # type: ignore[misc]


class App(SimpleNamespace):
    """The queue and its tasks by short name: ``app.queue``, ``app.add``, ..."""

    queue: Queue


def build_app(url: str, name: str, *, cron: bool = False) -> App:
    queue = Queue(redis_url=url, name=name, keep_result=600)
    _URLS[name] = url

    @queue.task(name="add")
    async def add(a: int, b: int = 0) -> int:
        return a + b

    @queue.task(name="noop")
    async def noop() -> None:
        return None

    @queue.task(name="echo")
    async def echo(value: object) -> object:
        return value

    @queue.task(name="whoami")
    async def whoami() -> dict[str, object]:
        job = current_job()
        await record("whoami", job.job_id)
        return {"job_id": job.job_id, "try": job.try_number, "max": job.max_tries,
                "task": job.task, "pid": os.getpid(), "at": time.time()}  # fmt: skip

    @queue.task(name="flaky", retries=3, backoff=0.2, backoff_max=5)
    async def flaky(fail_times: int) -> int:
        n = await record("flaky", time.time())
        if n <= fail_times:
            raise ValueError(f"boom {n}")
        return n

    async def task_hook(failed: FailedJob) -> None:
        async with redis.asyncio.Redis.from_url(url) as r:
            await r.rpush(f"{name}:t:task_hook", json.dumps([failed.job_id, failed.error_type,  # type: ignore[misc]
                          failed.message, failed.tries, failed.args]))  # fmt: skip

    @queue.task(name="doomed", retries=1, backoff=0.05, on_failure=task_hook)
    async def doomed(reason: str) -> None:
        await record("doomed", reason)
        raise RuntimeError(reason)

    @queue.task(name="asks_retry", retries=2, backoff=0.05)
    async def asks_retry() -> int:
        n = await record("asks_retry", time.time())
        if n < 2:
            raise Retry(defer=0.3)
        return n

    @queue.task(name="too_slow", timeout=0.3, retries=1, backoff=0.05)
    async def too_slow() -> None:
        await record("too_slow", time.time())
        await asyncio.sleep(30)

    @queue.task(name="slow", retries=2, timeout=60)
    async def slow(seconds: float, tag: str = "slow") -> dict[str, object]:
        """Record start; sleep; record end. Only the first run sleeps when tag ends in '-once'."""
        n = await record(f"{tag}:started", os.getpid())
        if not (tag.endswith("-once") and n > 1):
            await asyncio.sleep(seconds)
        await record(f"{tag}:done", os.getpid())
        return {"pid": os.getpid(), "try": current_job().try_number, "runs": n}

    @queue.task(name="nap", retries=2, timeout=60)
    async def nap(seconds: float) -> dict[str, object]:
        """Sleep without touching Redis (it may be down meanwhile)."""
        await asyncio.sleep(seconds)
        return {"pid": os.getpid(), "try": current_job().try_number}

    @queue.task(name="blocks", timeout=60)
    async def blocks(seconds: float) -> str:
        time.sleep(seconds)  # noqa: ASYNC251 - blocking on purpose: what the watchdog reports
        return "woke"

    @queue.task(name="defers_long", retries=1)
    async def defers_long(defer: float) -> int:
        if current_job().try_number == 1:
            raise Retry(defer=defer)
        return current_job().try_number

    @queue.task(name="not_json")
    async def not_json() -> object:
        return {1, 2}

    @queue.on_failure
    async def queue_hook(failed: FailedJob) -> None:
        async with redis.asyncio.Redis.from_url(url) as r:
            await r.rpush(f"{name}:t:queue_hook", json.dumps([failed.task, failed.error_type]))  # type: ignore[misc]

    if cron:

        @queue.cron("* * * * * *", name="every_second")
        async def every_second() -> None:
            await record("cron", current_job().job_id)

    return App(queue=queue, **{k: v for k, v in locals().items() if isinstance(v, Task)})


def make_queue() -> Queue:
    """Factory for the worker CLI."""
    return build_app(
        os.environ["QUEUE_TEST_URL"],
        os.environ["QUEUE_TEST_NAME"],
        cron=os.environ.get("QUEUE_TEST_CRON") == "1",
    ).queue
