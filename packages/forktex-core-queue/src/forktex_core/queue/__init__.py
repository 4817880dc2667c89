# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Lightweight background jobs on Redis (arq-backed) for fire-and-forget work.

Example::

    from forktex_core.queue import Queue

    queue = Queue(redis_url="redis://localhost:6379/0", name="emails")

    @queue.task(retries=3, timeout=30)
    async def send_email(to: str) -> None: ...

    job = await send_email.enqueue("ada@example.com", _job_id="welcome:ada")
    await job.result(timeout=30)

Run workers with ``forktex-queue worker app.jobs:queue`` or ``await queue.run_worker()``.
Delivery is at-least-once: make tasks idempotent, and use ``forktex_core.flow`` for work that
must survive crashes step by step.
"""

from ._cli import load_queue
from ._context import FailedJob, JobContext, current_job
from ._cron import CronSchedule
from ._errors import (
    DuplicateTask,
    InvalidArgument,
    InvalidCron,
    InvalidEntrypoint,
    InvalidJob,
    JobAborted,
    JobFailed,
    JobNotFound,
    QueueError,
    QueueUnavailable,
    ResultTimeout,
    Retry,
    SerializationError,
    TaskTimeout,
)
from ._finished import FinishedJob, JobCounts
from ._job import Job, JobStatus
from ._queue import Queue, QueueHealth, WorkerHealth
from ._task import Task

__all__ = [
    "CronSchedule",
    "DuplicateTask",
    "FailedJob",
    "FinishedJob",
    "InvalidArgument",
    "InvalidCron",
    "InvalidEntrypoint",
    "InvalidJob",
    "Job",
    "JobAborted",
    "JobContext",
    "JobCounts",
    "JobFailed",
    "JobNotFound",
    "JobStatus",
    "Queue",
    "QueueError",
    "QueueHealth",
    "QueueUnavailable",
    "ResultTimeout",
    "Retry",
    "SerializationError",
    "Task",
    "TaskTimeout",
    "WorkerHealth",
    "current_job",
    "load_queue",
]
