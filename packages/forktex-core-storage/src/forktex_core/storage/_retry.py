# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Bounded retries of retry-safe requests, with jittered exponential backoff.

Only failures that came fast are retried (see :func:`_s3faults.is_transient`): a timeout is
reported at once, so retries never stretch the wait for a silent server.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

_BASE_DELAY = 0.1
_MAX_DELAY = 2.0


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): half of an
    exponentially growing step (0.1 s, 0.2 s, 0.4 s ... at most 2 s) plus up to as much
    again at random, so clients that failed together do not retry together.

    Example::

        >>> 0.05 <= backoff(1) <= 0.1
        True
    """
    step = min(_MAX_DELAY, _BASE_DELAY * 2.0 ** (attempt - 1))
    return step / 2 + random.uniform(0, step / 2)


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    transient: Callable[[BaseException], bool],
) -> T:
    """``await call()``, again after a pause while it fails with a ``transient`` exception,
    at most ``attempts`` times in all; the last exception propagates.

    Example::

        stat = await retrying(lambda: client.stat_object(bucket, key),
                              attempts=3, transient=is_transient)
    """
    attempt = 1
    while True:
        try:
            return await call()
        except Exception as exc:
            if attempt >= attempts or not transient(exc):
                raise
        await asyncio.sleep(backoff(attempt))
        attempt += 1
