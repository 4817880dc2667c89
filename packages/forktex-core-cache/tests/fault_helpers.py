# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Helpers for the fault tests: bounded awaits that turn a hang into a test failure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from forktex_core import cache
from forktex_core.cache import cached

T = TypeVar("T")

#: Short timeouts for fault tests: a silent server is reported after about a second.
FAST: dict[str, Any] = {"connect_timeout": 1.0, "command_timeout": 1.0}
#: A call still running this long after it started is hung (the timeouts here are 1 s).
HANG = 10.0


async def within(call: Awaitable[T], bound: float = HANG) -> T:
    """Await ``call``; fail the test if it has neither returned nor raised after ``bound``
    seconds. Its own exception (a TimeoutError included) propagates unchanged."""
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=bound)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        pytest.fail(f"hung: no answer and no error within {bound} s")
    return task.result()


async def eventually(check: Callable[[], Awaitable[bool]], bound: float = HANG) -> None:
    """Poll ``check`` until it returns True; fail after ``bound`` seconds."""
    deadline = time.monotonic() + bound
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {bound} s")
        await asyncio.sleep(0.05)


def cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warning lines forktex_core.cache logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "forktex_core.cache" and r.levelno == logging.WARNING
    ]


@cached(ttl=60, namespace="faults")
async def cached_identity(x: int) -> int:
    """A cached function for the tables below."""
    return x


#: Every public call that reports a Redis failure by raising (the ones that cannot degrade).
RAISING_CALLS: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
    ("get_json", lambda: cache.get_json("k")),
    ("set_json", lambda: cache.set_json("k", 1)),
    ("incr", lambda: cache.incr("n")),
    ("mget", lambda: cache.mget(["a", "b"])),
    ("delete", lambda: cache.delete("k")),
    ("delete_pattern", lambda: cache.delete_pattern("k*")),
    ("peek", lambda: cache.peek("login", "ip", limit=1, window_seconds=1)),
    ("rate_limit reset", lambda: cache.reset("login", "ip")),
    ("invalidate", lambda: cached_identity.invalidate(1)),
    ("invalidate_all", lambda: cached_identity.invalidate_all()),
]
RAISING_IDS = [name for name, _ in RAISING_CALLS]
