# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The exception hierarchy of ``forktex_core.queue``, rooted in :class:`QueueError`."""

from __future__ import annotations

MAX_SECONDS = 10 * 366 * 86_400
"""The longest duration any option accepts (10 years): Redis expiry times must stay finite."""


def show(value: object, limit: int = 80) -> str:
    """``repr(value)`` for an error message: at most ``limit`` characters, and never raising
    (an int past Python's digit limit or an object whose ``repr`` fails is described instead).

    Example::

        >>> show("x" * 100, limit=10)
        "'xxxxxx..."
        >>> show(10**5000)
        '<int of 16610 bits>'
    """
    try:
        text = repr(value)
    except Exception:
        if isinstance(value, int):
            return f"<int of {value.bit_length()} bits>"
        return f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class QueueError(Exception):
    """Base class of every error raised by ``forktex_core.queue``.

    Example::

        try:
            await send_email.enqueue("ada@example.com")
        except QueueError as exc:
            log.error("could not enqueue: %s", exc)
    """


class InvalidArgument(QueueError, ValueError):
    """A public function got a value it does not accept; the message names it and what is allowed.

    Example::

        Queue(redis_url="redis://localhost:6379/0", name="")  # name must be 1-200 characters
    """


class InvalidCron(InvalidArgument):
    """A cron schedule could not be parsed or names an impossible time.

    Example::

        @queue.cron("*/5 * * *")  # raises InvalidCron: 4 fields, expected 5 or 6
        async def tick() -> None: ...
    """


class DuplicateTask(QueueError, ValueError):
    """Two tasks (or cron jobs) of one queue were registered under the same name.

    Example::

        @queue.task(name="send")
        async def a() -> None: ...

        @queue.task(name="send")  # raises DuplicateTask
        async def b() -> None: ...
    """


class SerializationError(QueueError, TypeError):
    """An argument or result is not JSON-serialisable (the message names which one).

    Example::

        await send_email.enqueue({1, 2})  # raises SerializationError naming `to`: a set is not JSON
    """


class QueueUnavailable(QueueError, ConnectionError):
    """Redis could not be used: refused or unreachable, silent past ``command_timeout``, not
    speaking the Redis protocol, refusing the credentials or the database number, or
    answering with an error. The message names ``host:port/db`` (never the password) and
    what went wrong; a worker raises it once Redis has been unusable for ``max_outage``.

    Example::

        try:
            await send_email.enqueue("ada@example.com")
        except QueueUnavailable:
            ...  # retry later or degrade
    """


class JobNotFound(QueueError, LookupError):
    """There is no live job and no stored result under this id (never enqueued, or expired).

    Example::

        await queue.job("nope").result()  # raises JobNotFound
    """


class JobFailed(QueueError):
    """The job raised on its final try (or timed out); ``result()`` re-raises it as this error.

    ``error_type`` is the exception's class name, ``message`` its text, ``tries`` how many
    times the job ran and ``traceback`` the formatted traceback the worker recorded (empty
    for results stored before tracebacks were kept).

    Example::

        try:
            await job.result(timeout=30)
        except JobFailed as exc:
            print(exc.error_type, exc.message, exc.tries)
            print(exc.traceback)
    """

    def __init__(
        self, job_id: str, error_type: str, message: str, tries: int, traceback: str = ""
    ) -> None:
        super().__init__(f"job {job_id!r} failed after {tries} tries: {error_type}: {message}")
        self.job_id = job_id
        self.error_type = error_type
        self.message = message
        self.tries = tries
        self.traceback = traceback


class InvalidJob(QueueError):
    """What Redis holds for a job cannot be used as it is: a stored payload that is not a job
    (not UTF-8 JSON, ``args`` not a list, ``kwargs`` not a dict, a bad timestamp ...),
    arguments that do not fit the task's signature, or a stored result that is not a result
    record. A worker records it as the job's error (the job fails at once, without retries);
    ``status()`` and ``result()`` raise it for a corrupt result.

    Example::

        try:
            await job.result(timeout=30)
        except JobFailed as exc:
            if exc.error_type == "InvalidJob":
                ...  # the job could not even be started: see exc.message
    """


class JobAborted(QueueError):
    """The job was aborted with ``job.abort()`` before it finished.

    Example::

        await job.abort()
        await job.result()  # raises JobAborted
    """


class ResultTimeout(QueueError, TimeoutError):
    """``result(timeout=)`` or ``abort(timeout=)`` gave up waiting; the job itself goes on.

    Example::

        await job.result(timeout=0.1)  # raises ResultTimeout if the job is still running
    """


class TaskTimeout(QueueError, TimeoutError):
    """Recorded as a job's error when it ran past its task's ``timeout`` and was cancelled.

    Example::

        @queue.task(timeout=5)
        async def slow() -> None: ...  # cancelled after 5 s, retried, then fails: TaskTimeout
    """


class Retry(QueueError):
    """Raise inside a task to ask for another try (counts against ``retries``).

    ``defer`` overrides the backoff delay in seconds.

    Example::

        @queue.task(retries=5)
        async def poll_report(report_id: str) -> None:
            if not await ready(report_id):
                raise Retry(defer=10)
    """

    def __init__(self, defer: float | None = None) -> None:
        if defer is not None and (
            isinstance(defer, bool)
            or not isinstance(defer, int | float)
            or not 0 <= defer <= MAX_SECONDS  # also refuses nan and inf
        ):
            raise InvalidArgument(
                f"Retry(defer={show(defer)}): defer must be seconds from 0 to {MAX_SECONDS} "
                "(10 years), or None"
            )
        super().__init__(f"retry requested (defer={defer!r})")
        self.defer = None if defer is None else float(defer)


class InvalidEntrypoint(QueueError, ValueError):
    """The worker CLI could not load ``module:attribute`` (or ``path/to/file.py:attribute``).

    Example::

        forktex-queue worker app.jobs:queue   # app.jobs must define `queue = Queue(...)`
    """
