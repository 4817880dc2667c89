# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Whatever a caller passes — job ids, defer values (inf, nan, negative, huge, year 1/9999),
timeouts, task options, Retry delays, cron specs and fields, entrypoints — the result is
success or a ``QueueError``, never a raw ``OverflowError`` / ``ValueError`` / ``TypeError``.
Hypothesis draws the values; explicit cases pin the ones that used to escape."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forktex_core.queue import (
    CronSchedule,
    InvalidArgument,
    Queue,
    QueueError,
    Retry,
    load_queue,
)

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**5000, -(10**5000), 2**63, 10**30, 10**400]),
    st.floats(),
    st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -0.0, 5e-324]),
    st.text(max_size=20),
    st.binary(max_size=10),
    st.just(object()),
)
_durations = st.one_of(
    _scalar,
    st.sampled_from([timedelta.max, timedelta.min, timedelta(days=-1), timedelta(days=4000)]),
    st.timedeltas(),
)
_moments = st.one_of(
    _scalar,
    st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))]
        )
    ),
    st.datetimes(),
    st.sampled_from(
        [
            datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
            datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(1969, 12, 31, tzinfo=UTC),
        ]
    ),
)
_job_ids = st.one_of(st.text(max_size=30), st.sampled_from(["cron:x:1", "a" * 201, "ok"]), _scalar)

FUZZ = settings(
    deadline=None,
    database=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _run(coro: Any) -> None:
    try:
        asyncio.run(coro)
    except QueueError:
        pass


@FUZZ
@given(job_id=_job_ids, defer_by=_durations, defer_until=_moments, value=_scalar)
def test_enqueue_inputs(
    forktex_redis: Any, queue_name: str, job_id: Any, defer_by: Any, defer_until: Any, value: Any
) -> None:
    async def go() -> None:
        queue = Queue(forktex_redis.url, queue_name)

        @queue.task(name="t")
        async def t(x: Any) -> None: ...

        try:
            for kwargs in (
                {"_job_id": job_id},
                {"_defer_by": defer_by},
                {"_defer_until": defer_until},
            ):
                try:
                    await t.enqueue(value, **kwargs)
                except QueueError:
                    pass
        finally:
            await queue.close()

    asyncio.run(go())


@FUZZ
@given(job_id=_job_ids, timeout=_durations, poll=_scalar)
def test_job_handle_inputs(
    forktex_redis: Any, queue_name: str, job_id: Any, timeout: Any, poll: Any
) -> None:
    async def go() -> None:
        queue = Queue(forktex_redis.url, queue_name)
        try:
            job = queue.job(job_id)
            for call in (
                lambda: job.result(timeout=timeout, poll_interval=poll),
                lambda: job.abort(timeout=timeout),
                job.status,
            ):
                try:
                    await asyncio.wait_for(call(), 5)
                except QueueError:
                    pass
        finally:
            await queue.close()

    _run(go())


@FUZZ
@given(
    retries=_scalar,
    timeout=_durations,
    backoff=_durations,
    backoff_max=_durations,
    keep_result=_durations,
    name=st.one_of(st.text(max_size=10), _scalar),
)
def test_task_option_inputs(
    retries: Any, timeout: Any, backoff: Any, backoff_max: Any, keep_result: Any, name: Any
) -> None:
    queue = Queue("redis://localhost/0", "q")
    try:
        queue.task(
            retries=retries,
            timeout=timeout,
            backoff=backoff,
            backoff_max=backoff_max,
            keep_result=keep_result,
            name=name,
        )(_noop)
    except QueueError:
        pass
    try:
        Queue("redis://localhost/0", name, keep_result=keep_result, timezone=backoff)
    except QueueError:
        pass


async def _noop() -> None: ...


@FUZZ
@given(
    defer=_scalar,
    options=st.dictionaries(
        st.sampled_from(["concurrency", "poll_interval", "grace_period", "lease", "heartbeat"]),
        _scalar,
        max_size=2,
    ),
)
def test_retry_and_worker_option_inputs(defer: Any, options: dict[str, Any]) -> None:
    try:
        retry = Retry(defer=defer)
        assert retry.defer is None or 0 <= retry.defer < float("inf")
    except QueueError:
        pass
    queue = Queue("redis://127.0.0.1:1/0", "q")
    queue.task(name="t")(_noop)
    if options:
        try:
            # invalid options are refused before the worker connects anywhere
            asyncio.run(queue.run_worker(handle_signals=False, **options))
        except QueueError:
            pass


_cron_text = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "*",
                    "*/5",
                    "1-5",
                    "²",
                    "١",
                    "9" * 5000,
                    "*/0",
                    "0",
                    "mon",
                    "jan",
                    "5-1",
                    "*/" + "9" * 30,
                    "-1",
                    "1,2",
                ]
            ),
            st.text(max_size=5),
        ),
        min_size=1,
        max_size=7,
    ).map(" ".join),
)


@FUZZ
@given(spec=st.one_of(_cron_text, _scalar), moment=_moments, tz=st.one_of(st.just(UTC), _scalar))
def test_cron_spec_inputs(spec: Any, moment: Any, tz: Any) -> None:
    try:
        schedule = CronSchedule.parse(spec, tz=tz)
        schedule.next_after(moment)
    except QueueError:
        pass


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(["month", "day", "weekday", "hour", "minute", "second"]),
        st.one_of(_scalar, st.lists(_scalar, max_size=3), st.sets(st.integers(-5, 70), max_size=3)),
        max_size=3,
    ),
    moment=_moments,
)
def test_cron_field_inputs(fields: dict[str, Any], moment: Any) -> None:
    try:
        CronSchedule.from_fields(**fields).next_after(moment)
    except QueueError:
        pass


@FUZZ
@given(
    entrypoint=st.one_of(
        st.text(max_size=30), _scalar, st.sampled_from(["a\x00b.py:q", "..:q", ".x:q", "os:a-b"])
    )
)
def test_entrypoint_inputs(entrypoint: Any) -> None:
    try:
        load_queue(entrypoint)
    except QueueError:
        pass


@pytest.mark.parametrize(
    "kwargs",
    [
        {"_defer_by": float("inf")},
        {"_defer_by": 1e300},
        {"_defer_by": timedelta.max},
        {"_defer_by": 10**400},
        {"_defer_until": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))},
        {"_defer_until": datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))},
        {"_defer_until": datetime(9999, 1, 1, tzinfo=UTC)},
        {"_job_id": 10**5000},
    ],
    ids=[
        "inf",
        "1e300",
        "timedelta-max",
        "int-400-digits",
        "year-1",
        "year-9999-offset",
        "year-9999",
        "huge-int-id",
    ],
)
async def test_defer_values_that_used_to_escape(app: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        await app.add.enqueue(1, **kwargs)
    assert (await app.queue.health()).deferred == 0


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), 10**5000], ids=["nan", "inf", "int-5000-digits"]
)
async def test_timeouts_that_used_to_escape_or_hang(app: Any, value: Any) -> None:
    job = app.queue.job("nope")
    with pytest.raises(InvalidArgument):
        await asyncio.wait_for(job.result(timeout=value), 10)
    with pytest.raises(InvalidArgument):
        await asyncio.wait_for(job.abort(timeout=value), 10)
    with pytest.raises(InvalidArgument):
        Retry(defer=value)
    with pytest.raises(InvalidArgument):
        Queue("redis://localhost/0", "q", keep_result=value)


@pytest.mark.parametrize(
    "spec", ["² * * * *", "١ * * * *", "9" * 5000 + " * * * *", "*/²  * * * *", "0 0 * * ３"]
)
def test_cron_specs_that_used_to_escape(spec: str) -> None:
    with pytest.raises(InvalidArgument):
        CronSchedule.parse(spec)


def test_backoff_never_overflows() -> None:
    queue = Queue("redis://localhost/0", "q")
    task = queue.task(retries=10_000, backoff=1, backoff_max=60)(_noop)
    assert task.spec.backoff_delay(5_000) <= 66
