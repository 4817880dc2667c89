# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Bad input for every public function, cron parsing, key isolation, secrets kept out."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from forktex_core.queue import (
    CronSchedule,
    DuplicateTask,
    InvalidArgument,
    InvalidCron,
    InvalidEntrypoint,
    Queue,
    QueueError,
    QueueUnavailable,
    Retry,
    SerializationError,
    load_queue,
)

T0 = datetime(2026, 1, 1, 12, 3, 7, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(
    ("url", "name", "match"),
    [
        ("http://x", "q", "redis_url"),
        (42, "q", "redis_url"),
        ("redis://localhost/0", "", "name"),
        ("redis://localhost/0", "has space", "name"),
        ("redis://localhost/0", "x" * 201, "name"),
        ("redis://localhost/0", 7, "name"),
    ],
)
def test_queue_rejects_bad_url_and_name(url, name, match) -> None:
    with pytest.raises(InvalidArgument, match=match):
        Queue(redis_url=url, name=name)


def test_queue_rejects_bad_options() -> None:
    with pytest.raises(InvalidArgument, match="keep_result"):
        Queue("redis://localhost/0", "q", keep_result=-1)
    with pytest.raises(InvalidArgument, match="timezone"):
        Queue("redis://localhost/0", "q", timezone="UTC")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "30"}, "timeout"),
        ({"backoff": -1}, "backoff"),
        ({"backoff_max": float("nan")}, "backoff_max"),
        ({"keep_result": -5}, "keep_result"),
        ({"on_failure": print}, "on_failure"),
        ({"name": "has space"}, "task name"),
        ({"name": 5}, "name"),
    ],
)
def test_task_rejects_bad_options(options, match) -> None:
    queue = Queue("redis://localhost/0", "q")
    with pytest.raises(InvalidArgument, match=match):

        @queue.task(**options)
        async def f() -> None: ...


def test_task_rejects_sync_functions_and_duplicates() -> None:
    queue = Queue("redis://localhost/0", "q")
    with pytest.raises(InvalidArgument, match="not an async function"):
        queue.task()(lambda: None)  # type: ignore[arg-type]

    @queue.task(name="send")
    async def a() -> None: ...

    with pytest.raises(DuplicateTask, match="'send'"):

        @queue.task(name="send")
        async def b() -> None: ...


async def test_enqueue_rejects_bad_arguments_naming_them(app) -> None:
    with pytest.raises(SerializationError, match=r"argument 'value'.*set is not JSON"):
        await app.echo.enqueue({1, 2})
    with pytest.raises(SerializationError, match=r"argument 'value'.*key 1 is a int"):
        await app.echo.enqueue({1: "x"})
    with pytest.raises(SerializationError, match=r"argument 'value'.*not finite"):
        await app.echo.enqueue([float("nan")])
    with pytest.raises(SerializationError, match=r"argument 'b'.*datetime"):
        await app.add.enqueue(1, b=datetime.now(UTC))
    with pytest.raises(SerializationError, match="do not match"):
        await app.add.enqueue(1, 2, 3)
    for bad in ("", "has space", "x" * 201, 5):
        with pytest.raises(InvalidArgument, match="job id"):
            await app.add.enqueue(1, _job_id=bad)
    with pytest.raises(InvalidArgument, match="_defer_by"):
        await app.add.enqueue(1, _defer_by=-1)
    with pytest.raises(InvalidArgument, match="not both"):
        await app.add.enqueue(1, _defer_by=1, _defer_until=datetime.now(UTC))
    with pytest.raises(InvalidArgument, match="timezone-aware"):
        await app.add.enqueue(1, _defer_until=datetime(2030, 1, 1))
    assert (await app.queue.health()).queued == 0  # nothing half-written


async def test_job_handle_rejects_bad_input(app) -> None:
    with pytest.raises(InvalidArgument, match="job id"):
        app.queue.job("")
    job = app.queue.job("x")
    with pytest.raises(InvalidArgument, match="timeout"):
        await job.result(timeout=-1)
    with pytest.raises(InvalidArgument, match="poll_interval"):
        await job.result(poll_interval=0)
    with pytest.raises(InvalidArgument, match="timeout"):
        await job.abort(timeout="soon")  # type: ignore[arg-type]


async def test_run_worker_rejects_bad_options(app) -> None:
    for options, match in [
        ({"concurrency": 0}, "concurrency"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"grace_period": -1}, "grace_period"),
        ({"lease": 0.5}, "lease"),
        ({"heartbeat": 0}, "heartbeat"),
    ]:
        with pytest.raises(InvalidArgument, match=match):
            await app.queue.run_worker(**options)
    with pytest.raises(InvalidArgument, match="has no tasks"):
        await Queue("redis://localhost/0", "empty").run_worker()


def test_on_failure_and_retry_reject_bad_input() -> None:
    queue = Queue("redis://localhost/0", "q")
    with pytest.raises(InvalidArgument, match="hook"):
        queue.on_failure(print)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="defer"):
        Retry(defer=-1)
    assert Retry(defer=2).defer == 2.0


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("*/5 * * *", "4 fields"),
        ("61 * * * *", "not a valid minute"),
        ("5-1 * * * *", "backwards"),
        ("*/0 * * * *", "bad step"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 * foo *", "month"),
        (5, "must be a string"),
    ],
)
def test_cron_rejects_bad_specs(spec, match) -> None:
    queue = Queue("redis://localhost/0", "q")
    with pytest.raises(InvalidCron, match=match):

        @queue.cron(spec)
        async def tick() -> None: ...

        tick.spec.cron.next_after(T0)  # type: ignore[union-attr]


def test_cron_rejects_bad_keywords_and_functions_with_arguments() -> None:
    queue = Queue("redis://localhost/0", "q")
    with pytest.raises(InvalidCron, match="minute"):
        queue.cron(minute=60)
    with pytest.raises(InvalidCron, match="weekday"):
        queue.cron(weekday="someday")
    with pytest.raises(InvalidCron, match="not both"):
        queue.cron("* * * * *", hour=3)
    with pytest.raises(InvalidArgument, match="without arguments"):

        @queue.cron("* * * * *")
        async def needs(x: int) -> None: ...


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("*/5 * * * *", datetime(2026, 1, 1, 12, 5, tzinfo=UTC)),
        ("*/2 * * * * *", datetime(2026, 1, 1, 12, 3, 8, tzinfo=UTC)),
        ("0 9 * * mon-fri", datetime(2026, 1, 2, 9, 0, tzinfo=UTC)),
        ("0 0 * * 0", datetime(2026, 1, 4, 0, 0, tzinfo=UTC)),  # Sunday
        ("0 0 * * 7", datetime(2026, 1, 4, 0, 0, tzinfo=UTC)),  # Sunday again
        ("0 0 13 * 5", datetime(2026, 1, 2, 0, 0, tzinfo=UTC)),  # 13th OR Friday (cron rule)
        ("30 2 1 jan *", datetime(2027, 1, 1, 2, 30, tzinfo=UTC)),
    ],
)
def test_crontab_next_fire_times(spec, expected) -> None:
    assert CronSchedule.parse(spec).next_after(T0) == expected


def test_arq_style_cron_fields() -> None:
    assert CronSchedule.from_fields(second={0, 30}).next_after(T0) == T0.replace(second=30)
    every_sunday = CronSchedule.from_fields(minute=0, hour=3, weekday="sun")
    assert every_sunday.next_after(T0) == datetime(2026, 1, 4, 3, 0, tzinfo=UTC)
    with pytest.raises(InvalidCron, match="timezone-aware"):
        every_sunday.next_after(datetime(2026, 1, 1))


def test_load_queue_rejects_bad_entrypoints(tmp_path) -> None:
    (tmp_path / "notq.py").write_text("thing = 42\n")
    for bad, match in [
        ("noseparator", "expected"),
        ("a:b:c", "expected"),
        (":q", "both sides"),
        ("no_such_module_xyz:q", "cannot import"),
        (f"{tmp_path}/missing.py:q", "no file"),
        (f"{tmp_path}/notq.py:absent", "no attribute"),
        (f"{tmp_path}/notq.py:thing", "expected a Queue"),
    ]:
        with pytest.raises(InvalidEntrypoint, match=match):
            load_queue(bad)


def test_load_queue_by_path_and_factory(tmp_path) -> None:
    (tmp_path / "jobs_mod.py").write_text(
        "from forktex_core.queue import Queue\n"
        "queue = Queue('redis://localhost/0', 'jobs')\n"
        "def make():\n    return queue\n"
    )
    assert load_queue(f"{tmp_path}/jobs_mod.py:queue").name == "jobs"
    assert load_queue(f"{tmp_path}/jobs_mod.py:make").name == "jobs"


async def test_unreachable_redis_and_no_password_leak() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    queue = Queue(f"redis://:hunter2secret@127.0.0.1:{port}/0", "q", socket_connect_timeout=1)

    @queue.task()
    async def f() -> None: ...

    assert "hunter2secret" not in repr(queue)
    with pytest.raises(QueueUnavailable) as info:
        await f.enqueue()
    assert f"127.0.0.1:{port}" in str(info.value) and "hunter2secret" not in str(info.value)
    with pytest.raises(QueueUnavailable):
        await queue.job("x").status()
    with pytest.raises(QueueUnavailable):
        await queue.health()
    await queue.close()
    with pytest.raises(InvalidArgument) as bad:
        Queue("http://:hunter2secret@host/0", "q")
    assert "hunter2secret" not in str(bad.value)


async def test_every_key_starts_with_the_queue_name(app, raw, forktex_redis) -> None:
    await app.add.enqueue(1, _job_id="k1")
    await app.doomed.enqueue("x")
    from queue_helpers import drain

    await drain(app.queue)
    await app.whoami.enqueue(_defer_by=60)
    await app.add.enqueue(2)
    await app.queue.job("k1").abort()
    ours = [k.decode() async for k in raw.scan_iter(match=f"*{app.queue.name}*")]
    assert ours and all(k.startswith(app.queue.name + ":") for k in ours)
    leaked = [k async for k in raw.scan_iter(match="arq:*")]
    assert leaked == []


def test_errors_share_one_root() -> None:
    for exc in (InvalidArgument, InvalidCron, DuplicateTask, SerializationError, QueueUnavailable,
                InvalidEntrypoint, Retry):  # fmt: skip
        assert issubclass(exc, QueueError)
