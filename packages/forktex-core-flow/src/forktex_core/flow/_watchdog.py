# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""One timer for every statement of a busy pool, instead of one per statement.

asyncpg enforces ``command_timeout`` by arming and cancelling a loop timer around each
statement; on the worker's pool, which runs a checkpoint per step, that bookkeeping is a
measurable share of a step's cost. The worker's pool runs without it, and a
:class:`StatementWatchdog` looks at its connections a few times per timeout instead: a
connection busy with one statement for longer than ``command_timeout`` is marked overdue and
terminated, so the statement fails at once, reported like asyncpg's own timeout
(:class:`~._errors.FlowUnavailable` naming the server and ``command_timeout``). A statement
is stopped between ``timeout`` and ``timeout + period`` seconds after it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from typing import Protocol


class Watched(Protocol):
    """A connection the watchdog can judge: when its statement started, and how to stop it."""

    @property
    def busy_since(self) -> float | None:
        """``time.monotonic()`` when the statement in flight started (None: idle)."""

    def is_closed(self) -> bool:
        """Whether the connection is closed already."""

    def overdue(self, timeout: float) -> None:
        """Stop the statement in flight: it ran past ``timeout`` seconds."""


class StatementWatchdog:
    """Stops statements of its connections that run past ``timeout`` seconds.

    Example::

        watchdog = StatementWatchdog(30.0)
        watchdog.watch(conn)  # each connection of the pool, when it is opened
        watchdog.start()  # on the pool's event loop
        ...
        await watchdog.stop()
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.period = min(1.0, timeout / 4)
        self._connections: weakref.WeakSet[Watched] = weakref.WeakSet()
        self._task: asyncio.Task[None] | None = None

    def watch(self, conn: Watched) -> None:
        """Watch ``conn`` until it is closed or garbage."""
        self._connections.add(conn)

    def start(self) -> None:
        """Start looking, every :attr:`period` seconds, on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop looking. Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def sweep(self, now: float) -> int:
        """Stop every statement started more than :attr:`timeout` s before ``now``; how many."""
        stopped = 0
        for conn in list(self._connections):
            since = conn.busy_since
            if since is not None and now - since > self.timeout and not conn.is_closed():
                conn.overdue(self.timeout)
                stopped += 1
        return stopped

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            self.sweep(time.monotonic())
