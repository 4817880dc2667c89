# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""No job stops a worker: whatever Redis holds for a job — a payload that is not a job,
arguments that do not fit the task, a queue member that is not UTF-8, a result that cannot
be stored — the job fails once with its error recorded and the worker goes on. Hypothesis
writes arbitrary garbage into the stored payload and the queue member while a real worker
process runs."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from queue_helpers import Workers, background_worker, wait_for

from forktex_core.queue import InvalidArgument, InvalidJob, JobFailed, JobStatus, Queue

HANG = 30.0
NOW_MS = int(time.time() * 1000)
VALID = {"f": "add", "a": [1, 2], "k": {}, "et": NOW_MS}


async def _plant(raw: Any, queue: str, member: bytes | str, payload: Any) -> None:
    """Put a due job straight into Redis: ``payload`` under its job key, ``member`` in the
    queue (``None`` payload: no job key at all)."""
    prefix = f"{queue}:job:".encode()
    key = prefix + (member if isinstance(member, bytes) else member.encode())
    if isinstance(payload, dict):
        await raw.hset(key, mapping=payload)
    elif payload is not None:
        await raw.set(key, payload, px=3_600_000)
    await raw.zadd(f"{queue}:queue", {member: 0})


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


BAD_PAYLOADS: dict[str, Any] = {
    "not-utf8": b"\xff\xfe\x00garbage",
    "truncated": _dumps(VALID)[:-7],
    "garbage": b"}{ not json",
    "empty": b"",
    "a-list": _dumps([VALID]),
    "args-not-a-list": _dumps({**VALID, "a": {"x": 1}}),
    "args-a-string": _dumps({**VALID, "a": "12"}),
    "kwargs-not-a-dict": _dumps({**VALID, "k": [1]}),
    "kwargs-null": _dumps({**VALID, "k": None}),
    "task-not-a-string": _dumps({**VALID, "f": 7}),
    "timestamp-a-string": _dumps({**VALID, "et": "yesterday"}),
    "timestamp-negative": _dumps({**VALID, "et": -5}),
    "timestamp-past-9999": _dumps({**VALID, "et": 10**20}),
    "timestamp-nan": _dumps({**VALID, "et": float("nan")}),
    "timestamp-infinity": _dumps({**VALID, "et": float("inf")}),
    "timestamp-bool": _dumps({**VALID, "et": True}),
    "missing-fields": _dumps({"f": "add"}),
    "huge-int-argument": b'{"f":"add","a":[' + b"9" * 5000 + b'],"k":{},"et":1}',
    "deeply-nested": b'{"f":"add","a":' + b"[" * 100_000 + b"]" * 100_000 + b',"k":{},"et":1}',
    "too-many-arguments": _dumps({**VALID, "a": [1, 2, 3]}),
    "unknown-keyword": _dumps({**VALID, "a": [1], "k": {"c": 3}}),
    "missing-argument": _dumps({**VALID, "a": []}),
    "a-hash-not-a-string": {"f": "add"},
    "no-payload": None,
}


@pytest.mark.parametrize("case", list(BAD_PAYLOADS))
async def test_a_bad_stored_job_fails_once_and_the_worker_goes_on(
    app: Any, raw: Any, case: str
) -> None:
    await _plant(raw, app.queue.name, "bad", BAD_PAYLOADS[case])
    good = await app.add.enqueue(20, 22)
    async with background_worker(app.queue) as worker:

        async def stored() -> bool:  # (without a job key, result() would not wait for it)
            return bool(await raw.exists(f"{app.queue.name}:result:bad"))

        await wait_for(stored, HANG, "the bad job's outcome")
        with pytest.raises(JobFailed) as info:
            await app.queue.job("bad").result(timeout=HANG)
        assert await good.result(timeout=HANG) == 42  # the worker carried on
        after = await app.add.enqueue(1, 1)
        assert await after.result(timeout=HANG) == 2
        assert not worker.done()
    assert info.value.error_type == "InvalidJob", info.value
    assert "bad" in info.value.message
    assert info.value.tries == 1  # failed at once: no retry can fix a bad payload
    assert await raw.zscore(f"{app.queue.name}:queue", "bad") is None  # not redelivered


async def test_a_queue_member_that_is_not_utf8_is_failed_and_removed(app: Any, raw: Any) -> None:
    member = b"\xff\x00not-utf8"
    await _plant(raw, app.queue.name, member, _dumps(VALID))
    good = await app.add.enqueue(1, 2)
    async with background_worker(app.queue) as worker:
        assert await good.result(timeout=HANG) == 3
        assert not worker.done()
    assert await raw.zscore(f"{app.queue.name}:queue", member) is None
    record = json.loads(await raw.get(f"{app.queue.name}:result:".encode() + member))
    assert record["s"] == "failed" and record["e"] == "InvalidJob"
    assert "not UTF-8" in record["m"]


async def test_failed_jobs_keep_their_traceback(app: Any, caplog: Any) -> None:
    caplog.set_level("ERROR", logger="forktex_core.queue")
    job = await app.doomed.enqueue("kaput")
    async with background_worker(app.queue):
        with pytest.raises(JobFailed) as info:
            await job.result(timeout=HANG)
    tb = info.value.traceback
    assert tb.startswith("Traceback (most recent call last):")
    assert "raise RuntimeError(reason)" in tb and tb.rstrip().endswith("RuntimeError: kaput")
    assert "queue_app.py" in tb
    assert "raise RuntimeError(reason)" in caplog.text  # logged too


async def test_failure_hook_gets_the_traceback(forktex_redis: Any, queue_name: str) -> None:
    queue = Queue(forktex_redis.url, queue_name)
    seen: list[str] = []

    @queue.on_failure
    async def hook(failed: Any) -> None:
        seen.append(failed.traceback)

    @queue.task(retries=0)
    async def boom() -> None:
        raise KeyError("missing")

    try:
        job = await boom.enqueue()
        async with background_worker(queue):
            with pytest.raises(JobFailed):
                await job.result(timeout=HANG)
    finally:
        await queue.close()
    assert len(seen) == 1 and "raise KeyError" in seen[0] and "KeyError: 'missing'" in seen[0]


async def test_a_result_that_grows_past_the_limit_in_its_record_fails_the_job_once(
    forktex_redis: Any, queue_name: str
) -> None:
    queue = Queue(forktex_redis.url, queue_name)
    runs: list[int] = []

    @queue.task(retries=2)
    async def almost_too_big() -> str:
        runs.append(1)
        return "x" * (16 * 1024 * 1024 - 2)  # fits alone (with its quotes), not in the record

    try:
        job = await almost_too_big.enqueue()
        after = None
        async with background_worker(queue) as worker:
            with pytest.raises(JobFailed, match="at most 16777216") as info:
                await job.result(timeout=HANG)
            after = await almost_too_big.enqueue(_job_id="second")
            with pytest.raises(JobFailed):
                await after.result(timeout=HANG)
            assert not worker.done()
    finally:
        await queue.close()
    assert info.value.error_type == "SerializationError" and info.value.tries == 1
    assert len(runs) == 2  # once per job: not re-run


@pytest.mark.parametrize(
    "stored",
    [b"\xff", b"not json", b"[]", b'{"s":"finished","t":1}', b'{"s":"failed","t":"x"}',
     b'{"s":"failed","t":1,"m":5}', b'{"t":1}', b"NaN"],
)  # fmt: skip
async def test_a_corrupt_stored_result_is_an_invalid_job_error(
    app: Any, raw: Any, stored: bytes
) -> None:
    await raw.set(f"{app.queue.name}:result:corrupt", stored)
    job = app.queue.job("corrupt")
    with pytest.raises(InvalidJob, match="the stored result of job 'corrupt'"):
        await job.status()
    with pytest.raises(InvalidJob, match="the stored result of job 'corrupt'"):
        await job.result(timeout=1)


def test_infinite_keep_result_is_refused_up_front() -> None:
    with pytest.raises(InvalidArgument, match="keep_result"):
        Queue("redis://localhost:6379/0", "q", keep_result=float("inf"))
    queue = Queue("redis://localhost:6379/0", "q")
    with pytest.raises(InvalidArgument, match="keep_result"):
        queue.keep_result = float("inf")
    assert queue.keep_result == 3600
    for decorator in (
        queue.task(keep_result=float("inf")),
        queue.cron("* * * * *", keep_result=float("inf")),
    ):
        with pytest.raises(InvalidArgument, match="keep_result"):

            @decorator
            async def f() -> None: ...


async def test_a_retry_due_after_more_than_a_day_keeps_its_payload(app: Any, raw: Any) -> None:
    defer = 90_000  # 25 h: past the day a payload is kept beyond its run time
    job = await app.defers_long.enqueue(defer)
    async with background_worker(app.queue):

        async def deferred() -> bool:
            return await job.status() is JobStatus.deferred

        await wait_for(deferred, HANG, "the retry to be scheduled")
    key = f"{app.queue.name}:job:{job.job_id}"
    assert await raw.pttl(key) > defer * 1000  # the payload outlives the retry's due time
    assert await raw.pttl(f"{app.queue.name}:retry:{job.job_id}") > defer * 1000
    await raw.zadd(f"{app.queue.name}:queue", {job.job_id: 0}, xx=True)  # as if 25 h passed
    async with background_worker(app.queue):
        assert await job.result(timeout=HANG) == 2


# -- generated garbage, a real worker process --------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_not_list = _json.filter(lambda v: not isinstance(v, list))
_not_dict = _json.filter(lambda v: not isinstance(v, dict))
_bad_time = st.one_of(
    st.text(max_size=5), st.booleans(), st.none(), st.lists(st.integers(), max_size=2),
    st.integers(max_value=-1), st.integers(min_value=253_402_300_800_000),
    st.floats(max_value=-1e-9), st.sampled_from([float("inf"), float("-inf"), float("nan")]),
)  # fmt: skip
_bad_field = {
    "f": st.one_of(_json.filter(lambda v: not isinstance(v, str)), st.text(min_size=201)),
    "a": _not_list,
    "k": _not_dict,
    "et": _bad_time,
}


@st.composite
def _broken_payload(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "fields", "arity", "truncated", "shape"]))
    if kind == "bytes":
        data = draw(st.binary(max_size=64))
        try:
            parsed = json.loads(data)
            assume(not (isinstance(parsed, dict) and {"f", "a", "k", "et"} <= parsed.keys()))
        except (ValueError, RecursionError):
            pass
        return data
    if kind == "shape":
        return _dumps(draw(_not_dict))
    job: dict[str, Any] = dict(VALID)
    if kind == "fields":
        for name in draw(st.sets(st.sampled_from(sorted(_bad_field)), min_size=1)):
            job[name] = draw(_bad_field[name])
        for name in draw(st.sets(st.sampled_from(sorted(_bad_field)))):
            job.pop(name, None)  # and some missing
    elif kind == "arity":  # add(a, b=0): too many positionals, or an unknown keyword
        job["a"] = draw(st.lists(_json, min_size=3, max_size=5))
        job["k"] = draw(st.dictionaries(st.sampled_from(["c", "x"]), _json, max_size=1))
    full = _dumps(job)
    if kind == "truncated":
        return full[: draw(st.integers(0, len(full) - 1))]
    return full


_member = st.one_of(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=30).map(str.encode),
    st.binary(min_size=1, max_size=30),
)


@settings(
    deadline=None,
    database=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(member=_member, payload=_broken_payload())
def test_generated_garbage_fails_the_job_and_never_the_worker(
    forktex_redis: Any, queue_name: str, workers: Workers, member: bytes, payload: bytes
) -> None:
    client = redis.Redis.from_url(forktex_redis.url)
    try:
        if not workers.procs:
            workers.start()
        proc = workers.procs[0]
        prefix = queue_name.encode()
        client.delete(prefix + b":result:" + member)
        client.set(prefix + b":job:" + member, payload, px=3_600_000)
        client.zadd(f"{queue_name}:queue", {member: 0})
        deadline = time.monotonic() + HANG
        while (stored := client.get(prefix + b":result:" + member)) is None:
            assert proc.poll() is None, workers.log(0)[-3000:]
            assert time.monotonic() < deadline, f"no outcome for {member!r} within {HANG} s"
            time.sleep(0.02)
        record = json.loads(stored)
        assert record["s"] == "failed" and record["e"] == "InvalidJob", record
        assert client.zscore(f"{queue_name}:queue", member) is None  # not redelivered
        assert proc.poll() is None
    finally:
        client.close()
