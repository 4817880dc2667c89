# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``Task``: the ``@queue.task`` wrapper; calling it runs the function, ``enqueue`` puts a job
on the queue."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, Generic, ParamSpec, TypeVar

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from . import _serde, _telemetry
from ._cron import CRON_ID_PREFIX
from ._errors import MAX_SECONDS, InvalidArgument, show
from ._job import Job, JobQueue, check_job_id
from ._keys import EXPIRES_EXTRA_MS
from ._registry import TaskSpec, check_seconds

P = ParamSpec("P")
R = TypeVar("R")


def _until_ms(defer_until: object, now_ms: int) -> int:
    """``_defer_until`` as unix milliseconds: an aware datetime at most 10 years ahead."""
    if not isinstance(defer_until, datetime) or defer_until.tzinfo is None:
        raise InvalidArgument(
            f"_defer_until={show(defer_until)}: must be a timezone-aware datetime"
        )
    try:
        until = int(defer_until.timestamp() * 1000)
    except (OverflowError, ValueError):  # near year 1 / 9999 once the offset is applied
        until = -1
    if until < 0 or until - now_ms > MAX_SECONDS * 1000:
        raise InvalidArgument(
            f"_defer_until={show(defer_until)}: must lie between 1970 and 10 years from now"
        )
    return until


class Task(Generic[P, R]):
    """An async function registered on a queue by ``@queue.task(...)``.

    Calling it runs the function directly (same signature); ``enqueue`` runs it on a worker.

    Example::

        @queue.task(retries=3, timeout=30)
        async def send_email(to: str, subject: str) -> str: ...

        await send_email("ada@example.com", "hi")          # runs here, now
        job = await send_email.enqueue("ada@example.com", "hi", _defer_by=60)
    """

    def __init__(self, queue: JobQueue, spec: TaskSpec) -> None:
        self._queue = queue
        self.spec = spec
        self._span_name = f"queue.enqueue {spec.name}"
        self._span_attributes: dict[str, AttributeValue] | None = None  # on first enqueue
        functools.update_wrapper(self, spec.fn)

    @property
    def name(self) -> str:
        """The name jobs of this task are stored under (default: the function's qualname)."""
        return self.spec.name

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        return self.spec.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.spec.name!r} of queue {self._queue.name!r}>"

    async def enqueue(
        self,
        *args: Any,
        _job_id: str | None = None,
        _defer_by: float | timedelta | None = None,
        _defer_until: datetime | None = None,
        **kwargs: Any,
    ) -> Job[R]:
        """Put a job on the queue; returns its :class:`Job` handle.

        - ``_job_id``: makes enqueueing idempotent: while a job with this id is live (queued,
          deferred, running or waiting to retry) enqueueing it again returns the existing job
          (``job.created`` is False). Once it has finished the id can be enqueued again.
        - ``_defer_by`` (seconds or timedelta) / ``_defer_until`` (aware datetime): run later.

        Arguments must be plain JSON (the error names the one that is not).

        Example::

            await send_email.enqueue("ada@example.com", "hi", _job_id="welcome:ada")
            await send_email.enqueue("bob@example.com", "hi", _defer_by=timedelta(minutes=5))
        """
        spec = self.spec
        _serde.check_arguments(spec.name, spec.signature, args, kwargs)
        if _job_id is None:
            job_id = uuid.uuid4().hex
        else:
            job_id = check_job_id(_job_id)
            if job_id.startswith(CRON_ID_PREFIX):
                raise InvalidArgument(
                    f"job id {show(job_id)}: ids starting with {CRON_ID_PREFIX!r} are reserved "
                    "for cron ticks (cron:<task>:<tick>); choose another id"
                )
        now = int(time.time() * 1000)
        score = now
        if _defer_by is not None and _defer_until is not None:
            raise InvalidArgument("give _defer_by or _defer_until, not both")
        if _defer_by is not None:
            score += int(check_seconds("_defer_by", _defer_by) * 1000)
        elif _defer_until is not None:
            score = max(now, _until_ms(_defer_until, now))
        payload = _serde.dumps(
            {"f": spec.name, "a": args, "k": kwargs, "et": now},
            what=f"the arguments of task {spec.name!r}",
        )
        backend = self._queue.backend
        attributes = self._span_attributes
        if attributes is None:
            attributes = self._span_attributes = _telemetry.producer_attributes(
                self._queue.name, spec.name, backend.where
            )
        span = _telemetry.start(self._span_name, SpanKind.PRODUCER, attributes)
        with _telemetry.current(span):
            # The caller's trace context goes with the job (its worker span continues it):
            # the producer span's when it records, else whatever the caller had.
            carrier = _telemetry.capture()
            if carrier:
                payload = _serde.with_field(payload, "tc", carrier)
            if span.is_recording():
                span.set_attribute(_telemetry.MESSAGE_ID, job_id)
            created = await backend.enqueue(job_id, payload, score, score - now + EXPIRES_EXTRA_MS)
            if span.is_recording():
                span.set_attribute(_telemetry.CREATED, created)
        return Job(self._queue, job_id, created)
