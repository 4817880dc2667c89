# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""How the queue meets Redis faults: every Redis operation under one deadline, every failure
turned into a :class:`QueueUnavailable` that says what went wrong where, and the retry with
backoff that lets a worker ride out an outage.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    InvalidResponse,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._errors import QueueUnavailable

T = TypeVar("T")

log = logging.getLogger("forktex_core.queue")

_MAX_DETAIL = 300
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0


class Deadline:
    """Runs Redis operations of one queue under ``timeout`` seconds each and reports any
    failure as :class:`QueueUnavailable` naming ``where`` (``host:port/db``).

    ``hide`` are strings (the password, the user name) that must never appear in a message,
    even if Redis or redis-py were to echo them.

    Example::

        deadline = Deadline("emails", "cache:6379/0", 5.0, hide=["s3cret"])
        await deadline.run("enqueueing", redis.ping())
    """

    def __init__(self, queue: str, where: str, timeout: float, hide: Iterable[str] = ()) -> None:
        self.queue = queue
        self.where = where
        self.timeout = timeout
        self._hide = [h for h in hide if h]

    async def run(self, doing: str, operation: Awaitable[T]) -> T:
        """Await ``operation`` (a redis-py call); ``doing`` names it in the error."""
        try:
            async with asyncio.timeout(self.timeout):
                return await operation
        except TimeoutError:
            raise self.error(doing, None) from None
        except (RedisError, OSError) as exc:
            raise self.error(doing, exc) from None

    def error(self, doing: str, exc: BaseException | None) -> QueueUnavailable:
        """The :class:`QueueUnavailable` for ``exc`` (``None``: the deadline passed)."""
        at = f"queue {self.queue!r}: Redis at {self.where}"
        if exc is None or isinstance(exc, RedisTimeoutError | TimeoutError):
            what = (
                f"did not answer within {self.timeout:g} s while {doing} (command_timeout; "
                "the server is overloaded, paused or unreachable)"
            )
        elif isinstance(exc, AuthenticationError | AuthorizationError):
            what = f"refused the credentials while {doing} ({self._detail(exc)})"
        elif isinstance(exc, InvalidResponse):
            what = (
                f"did not answer in the Redis protocol while {doing} ({self._detail(exc)}); "
                "is that address a Redis server?"
            )
        elif isinstance(exc, ResponseError) and "DB index is out of range" in str(exc):
            db = self.where.rpartition("/")[2]
            what = (
                f"has no database {db} (DB index is out of range); use a database number "
                "the server has (see its 'databases' setting)"
            )
        elif isinstance(exc, ResponseError):
            what = f"answered with an error while {doing}: {self._detail(exc)}"
        elif isinstance(exc, RedisConnectionError | OSError):
            what = (
                f"could not be reached while {doing} ({self._detail(exc)}); check that it is "
                "running and reachable"
            )
        else:
            what = f"failed while {doing} ({self._detail(exc)})"
        return QueueUnavailable(f"{at} {what}")

    def _detail(self, exc: BaseException) -> str:
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        for secret in self._hide:
            text = text.replace(secret, "***")
        return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failures: doubling from 0.1 s up to 5 s,
    plus up to 10 % jitter so that many workers do not reconnect in lockstep."""
    base = min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** min(failures - 1, 16))
    return base * (1 + random.random() * 0.1)


async def persist(
    operation: Callable[[], Awaitable[T]], *, patience: float, doing: str, where: str
) -> T:
    """Run ``operation`` until it succeeds; on :class:`QueueUnavailable` wait (see
    :func:`backoff`) and try again, for up to ``patience`` seconds after the first failure,
    then raise a :class:`QueueUnavailable` saying how long Redis was unusable.

    Example::

        await persist(lambda: backend.finish(...), patience=300, doing="storing a result",
                      where="cache:6379/0")
    """
    first: float | None = None
    failures = 0
    while True:
        try:
            value = await operation()
        except QueueUnavailable as exc:
            now = time.monotonic()
            if first is None:
                first = now
                if patience > 0:
                    log.warning(
                        "%s; retrying %s with backoff for up to %g s (max_outage)",
                        exc,
                        doing,
                        patience,
                    )
            failures += 1
            left = first + patience - now
            if left <= 0:
                if patience <= 0:
                    raise
                raise QueueUnavailable(
                    f"Redis at {where} has been unusable for {now - first:.1f} s while {doing} "
                    f"(max_outage is {patience:g} s); last error: {exc}"
                ) from None
            await asyncio.sleep(min(backoff(failures), left))
            continue
        if first is not None:
            log.info(
                "Redis at %s usable again after %.1f s; %s resumed",
                where,
                time.monotonic() - first,
                doing,
            )
        return value
