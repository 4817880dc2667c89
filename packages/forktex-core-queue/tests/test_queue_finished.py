# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``Queue.failed_jobs`` and ``Queue.job_counts``: failed jobs newest first with their
tracebacks, counts by status, foreign values skipped, the scan bound, bad input, and Redis
down."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis.asyncio
from queue_app import App
from queue_helpers import closed_port, drain

from forktex_core.queue import (
    FinishedJob,
    InvalidArgument,
    JobCounts,
    JobStatus,
    Queue,
    QueueUnavailable,
)


async def test_failed_jobs_newest_first_with_tracebacks(app: App) -> None:
    started = datetime.now(UTC)
    ok = await app.add.enqueue(1, 2)
    first = await app.doomed.enqueue("first reason")
    await drain(app.queue)
    second = await app.doomed.enqueue("second reason")
    waiting = await app.add.enqueue(5, _defer_by=3600)
    assert await waiting.abort() is True
    await drain(app.queue)
    assert await ok.result(timeout=10) == 3

    failed = await app.queue.failed_jobs()
    assert [j.job_id for j in failed] == [second.job_id, first.job_id]
    newest = failed[0]
    assert isinstance(newest, FinishedJob)
    assert (newest.task, newest.status, newest.tries) == ("doomed", JobStatus.failed, 2)
    assert (newest.error_type, newest.message) == ("RuntimeError", "second reason")
    assert "RuntimeError: second reason" in newest.traceback
    assert newest.started_at is not None and newest.finished_at is not None
    assert started <= newest.started_at <= newest.finished_at <= datetime.now(UTC)
    assert failed[1].finished_at is not None and failed[1].finished_at <= newest.finished_at

    assert [j.job_id for j in await app.queue.failed_jobs(limit=1)] == [second.job_id]


async def test_job_counts_by_status(app: App) -> None:
    await app.add.enqueue(1)
    await app.doomed.enqueue("x")
    aborted = await app.add.enqueue(2, _defer_by=3600)
    assert await aborted.abort() is True
    await drain(app.queue)
    await app.add.enqueue(3)  # queued
    await app.add.enqueue(4, _defer_by=3600)  # deferred

    counts = await app.queue.job_counts()
    assert counts == JobCounts(
        queued=1, deferred=1, in_progress=0, complete=1, failed=1, aborted=1, exact=True
    )
    assert counts.by_status() == {
        JobStatus.queued: 1,
        JobStatus.deferred: 1,
        JobStatus.in_progress: 0,
        JobStatus.complete: 1,
        JobStatus.failed: 1,
        JobStatus.aborted: 1,
    }


async def test_an_empty_queue(app: App) -> None:
    assert await app.queue.failed_jobs() == []
    assert await app.queue.job_counts() == JobCounts(0, 0, 0, 0, 0, 0, True)


async def test_values_that_are_not_results_are_skipped(
    app: App, raw: redis.asyncio.Redis, queue_name: str
) -> None:
    await app.doomed.enqueue("real")
    await drain(app.queue)
    await raw.set(f"{queue_name}:result:junk", b"not json")
    await raw.set(f"{queue_name}:result:other", b'{"s": "exploded", "t": 1}')
    await raw.rpush(f"{queue_name}:result:a-list", b"x")  # type: ignore[misc]
    (failed,) = await app.queue.failed_jobs()
    assert failed.message == "real"
    counts = await app.queue.job_counts()
    assert (counts.failed, counts.complete, counts.aborted) == (1, 0, 0)


async def test_the_scan_bound_is_reported(app: App) -> None:
    for i in range(3):
        await app.doomed.enqueue(f"r{i}")
    await drain(app.queue)
    assert len(await app.queue.failed_jobs(scan=1)) >= 1
    partial = await app.queue.job_counts(scan=1)
    assert partial.exact is False and 1 <= partial.failed < 3
    full = await app.queue.job_counts(scan=3)
    assert full.failed == 3


@pytest.mark.parametrize("limit", [0, 1001, -1, True, 2.5, "5", None])
async def test_failed_jobs_refuses_a_bad_limit(app: App, limit: object) -> None:
    with pytest.raises(InvalidArgument, match=r"limit=.*1 to 1000"):
        await app.queue.failed_jobs(limit=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize("scan", [0, 10_000_001, False, "all"])
async def test_a_bad_scan_bound_is_refused(app: App, scan: object) -> None:
    with pytest.raises(InvalidArgument, match=r"scan=.*1 to 10000000"):
        await app.queue.failed_jobs(scan=scan)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"scan=.*1 to 10000000"):
        await app.queue.job_counts(scan=scan)  # type: ignore[arg-type]


async def test_redis_down_is_queue_unavailable_naming_the_server() -> None:
    port = closed_port()
    queue = Queue(redis_url=f"redis://:pw-s3cret@127.0.0.1:{port}/0", name="down")
    try:
        for call in (queue.failed_jobs(), queue.job_counts()):
            with pytest.raises(QueueUnavailable) as caught:
                await call
            assert f"127.0.0.1:{port}" in str(caught.value)
            assert "pw-s3cret" not in str(caught.value)
    finally:
        await queue.close()
