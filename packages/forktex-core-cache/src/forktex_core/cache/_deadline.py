# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Per-command deadlines with one shared timer.

redis-py 5 bounds a command only through ``socket_timeout``, which wraps every write in
``asyncio.wait_for`` (a new task per command on Python 3.11) and every read in a timer: on a
local Redis a GET takes about a third longer. ``asyncio.timeout`` around each command costs
a timer handle pushed on the loop's heap and cancelled, per call. Here every command in
flight is one dict entry (insertion order is deadline order, since all share one duration),
and a single timer handle, armed only while commands are in flight, fires at the oldest
deadline: it cancels the commands that are overdue, like ``asyncio.timeout`` does, and
re-arms for the next one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

Task = asyncio.Task[Any]


class Watchdog:
    """Cancels the task of any command that outlives ``seconds``.

    One command per task at a time (a task awaits one thing at a time; commands are never
    nested). Usage, all on the event loop's thread::

        task = watchdog.arm()
        try:
            return await command
        except asyncio.CancelledError:
            if watchdog.expired(task):
                raise TimeoutError from None   # our deadline, not someone else's cancel
            raise
        finally:
            watchdog.disarm(task)
    """

    __slots__ = ("_expired", "_handle", "_handle_loop", "_inflight", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds: Final = seconds
        self._inflight: dict[Task, float] = {}  # task -> start; insertion order = start order
        self._expired: set[Task] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._handle_loop: asyncio.AbstractEventLoop | None = None

    def arm(self) -> Task | None:
        """Start watching the current task; ``None`` outside a task (nothing to cancel)."""
        task = asyncio.current_task()
        if task is not None:
            start = time.monotonic()
            self._inflight[task] = start
            if self._handle is None or self._handle_loop is not task.get_loop():
                self._schedule(task.get_loop(), start + self.seconds)
        return task

    def disarm(self, task: Task | None) -> None:
        """Stop watching (the command finished, one way or another)."""
        self._inflight.pop(task, None)  # type: ignore[arg-type]

    def expired(self, task: Task | None) -> bool:
        """Whether the ``CancelledError`` being handled came from this deadline alone (then
        the cancellation is withdrawn; a cancellation from elsewhere still propagates)."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0

    def _schedule(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        # The loop's clock may not be time.monotonic (e.g. uvloop): schedule by delay.
        self._handle = loop.call_later(max(0.0, when - time.monotonic()), self._fire)
        self._handle_loop = loop

    def _fire(self) -> None:
        loop = self._handle_loop
        self._handle = self._handle_loop = None
        now = time.monotonic()
        done: list[Task] = []
        for task, start in self._inflight.items():  # oldest first
            if task.get_loop() is not loop:
                done.append(task)  # left over from a loop that is gone: nothing to cancel
            elif start + self.seconds > now:
                if loop is not None and not loop.is_closed():
                    self._schedule(loop, start + self.seconds)
                break
            else:
                done.append(task)
                if not task.done():
                    self._expired.add(task)
                    task.cancel()
        for task in done:
            del self._inflight[task]
