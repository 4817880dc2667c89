# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What a task learns about its job: :class:`JobContext` while it runs (``current_job()``),
:class:`FailedJob` in ``on_failure`` hooks once it has failed for good."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._errors import InvalidArgument


@dataclass(frozen=True)
class JobContext:
    """What a running task can learn about its own job (see :func:`current_job`).

    Example::

        @queue.task(retries=3)
        async def sync_account(account_id: str) -> None:
            job = current_job()
            log.info("try %d of %d for job %s", job.try_number, job.max_tries, job.job_id)
    """

    job_id: str
    task: str
    queue: str
    try_number: int
    max_tries: int
    enqueued_at: datetime


@dataclass(frozen=True)
class FailedJob:
    """Passed to ``on_failure`` hooks once a job has failed for good.

    ``error`` is the exception itself (``None`` for a job that could not be decoded),
    ``traceback`` its formatted traceback, as stored with the job's result.

    Example::

        @queue.on_failure
        async def alert(failed: FailedJob) -> None:
            await pager.send(f"{failed.task} {failed.job_id}: {failed.error_type}")
    """

    job_id: str
    task: str
    queue: str
    args: list[Any]
    kwargs: dict[str, Any]
    tries: int
    error_type: str
    message: str
    error: BaseException | None = field(default=None, compare=False)
    traceback: str = field(default="", compare=False)


CURRENT_JOB: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "forktex_queue_job", default=None
)
"""The context of the job the running task belongs to; set by the worker around each try."""


def current_job() -> JobContext:
    """The :class:`JobContext` of the job this task is running for.

    Raises :class:`InvalidArgument` outside a job (e.g. when the task function is called
    directly rather than by a worker).

    Example::

        @queue.task()
        async def report() -> None:
            print(current_job().job_id)
    """
    ctx = CURRENT_JOB.get()
    if ctx is None:
        raise InvalidArgument(
            "current_job() is only available inside a task run by a worker, "
            "not when the function is called directly"
        )
    return ctx
