# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Arguments and results the JSON encoder cannot take — nested too deeply, cyclic, ints past
Python's int-to-str digit limit, too large — are the queue's ``SerializationError`` naming the
argument and where the bad value sits, before anything is written; a task that returns one
fails cleanly instead of wedging the worker."""

from __future__ import annotations

from typing import Any

import pytest
from queue_helpers import background_worker, drain

from forktex_core.queue import JobFailed, Queue, SerializationError


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def cyclic_list() -> list[Any]:
    value: list[Any] = [1]
    value.append(value)
    return value


def cyclic_dict() -> dict[str, Any]:
    value: dict[str, Any] = {"a": {}}
    value["a"]["back"] = value
    return value


BAD_ARGUMENTS = [
    pytest.param(nested(100_000), "deeper than 64", id="nested-100000"),
    pytest.param(nested(65), "deeper than 64", id="nested-65"),
    pytest.param({"k": nested(2000)}, r"at \['k'\]", id="nested-in-dict"),
    pytest.param(cyclic_list(), "contains itself", id="cyclic-list"),
    pytest.param(cyclic_dict(), "contains itself", id="cyclic-dict"),
    pytest.param(10**5000, "4300 digits", id="int-5000-digits"),
    pytest.param(-(10**4300), "4300 digits", id="int-4301-digits-negative"),
    pytest.param([1, [2, {"x": 10**4300}]], r"at \[1\]\[1\]\['x'\]", id="deep-big-int"),
    pytest.param("x" * (16 * 1024 * 1024 + 1), "at most 16777216", id="payload-over-16MiB"),
]


@pytest.mark.parametrize(("value", "match"), BAD_ARGUMENTS)
async def test_unstorable_arguments_are_serialization_errors(
    app: Any, value: Any, match: str
) -> None:
    with pytest.raises(SerializationError, match=match) as info:
        await app.echo.enqueue(value)
    assert "echo" in str(info.value)
    assert len(str(info.value)) < 1000  # the message names the problem, it does not dump it
    assert (await app.queue.health()).queued == 0  # nothing half-written


async def test_limits_are_inclusive(app: Any) -> None:
    ok = [nested(64), 10**4299, -(10**4299), {"a": [[1.5, None, True, "s"]]}]
    jobs = [await app.echo.enqueue(v) for v in ok]
    await drain(app.queue)
    for job, value in zip(jobs, ok, strict=True):
        assert await job.result(timeout=10) == value


async def test_shared_but_acyclic_values_are_fine(app: Any) -> None:
    shared = [1, 2]
    job = await app.echo.enqueue({"a": shared, "b": shared, "c": [shared, shared]})
    await drain(app.queue)
    assert await job.result(timeout=10) == {"a": [1, 2], "b": [1, 2], "c": [[1, 2], [1, 2]]}


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: nested(500), "deeper than 64"),
        (cyclic_list, "contains itself"),
        (lambda: 10**5000, "4300 digits"),
        (lambda: "x" * (16 * 1024 * 1024 + 1), "at most 16777216"),
    ],
    ids=["nested", "cyclic", "big-int", "too-large"],
)
async def test_unstorable_results_fail_the_job_cleanly(
    forktex_redis: Any, queue_name: str, make: Any, match: str
) -> None:
    queue = Queue(forktex_redis.url, queue_name)

    @queue.task(name="returns_bad", retries=0)
    async def returns_bad() -> Any:
        return make()

    @queue.task(name="fine")
    async def fine() -> int:
        return 7

    try:
        bad = await returns_bad.enqueue()
        good = await fine.enqueue()
        async with background_worker(queue):
            with pytest.raises(JobFailed, match=match) as info:
                await bad.result(timeout=30)  # bounds a wedged worker
            assert info.value.error_type == "SerializationError"
            assert await good.result(timeout=30) == 7  # the worker carried on
    finally:
        await queue.close()
