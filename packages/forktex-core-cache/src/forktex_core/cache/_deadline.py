# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Per-command deadlines with one shared timer.

redis-py 5 bounds a command only through ``socket_timeout``, which wraps every write in
``asyncio.wait_for`` (a new task per command on Python 3.11) and every read in a timer: on a
local Redis that adds as much as the GET itself. ``asyncio.timeout`` around each command
costs a heap push and a cancelled handle per call. Here every command in flight is one dict
entry (insertion order is deadline order, since all share one duration), and a single timer
handle, armed only while commands are in flight, fires at the oldest deadline: it cancels
the commands that are overdue, like ``asyncio.timeout`` does, and re-arms for the next one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final


class Watch:
    """One command in flight: its task, when it started, whether its deadline cancelled it."""

    __slots__ = ("expired", "start", "task")

    def __init__(self, task: asyncio.Task[object], start: float) -> None:
        self.task = task
        self.start = start
        self.expired = False


class Watchdog:
    """Cancels the task of any command that outlives ``seconds``.

    Usage (all synchronous, on the event loop thread)::

        watch = watchdog.arm()
        try:
            return await command
        except asyncio.CancelledError:
            if watchdog.expired(watch):
                raise TimeoutError from None   # our deadline, not someone else's cancel
            raise
        finally:
            watchdog.disarm(watch)
    """

    __slots__ = ("_handle", "_handle_loop", "_inflight", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds: Final = seconds
        self._inflight: dict[Watch, None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._handle_loop: asyncio.AbstractEventLoop | None = None

    def arm(self) -> Watch | None:
        """Start watching the current task; ``None`` outside a task (nothing to cancel)."""
        task = asyncio.current_task()
        if task is None:
            return None
        watch = Watch(task, time.monotonic())
        self._inflight[watch] = None
        if self._handle is None or self._handle_loop is not task.get_loop():
            self._schedule(task.get_loop(), watch.start + self.seconds)
        return watch

    def disarm(self, watch: Watch | None) -> None:
        """Stop watching (the command finished, one way or another)."""
        if watch is not None:
            self._inflight.pop(watch, None)

    @staticmethod
    def expired(watch: Watch | None) -> bool:
        """Whether the ``CancelledError`` being handled came from this watch's deadline alone
        (then the cancellation is withdrawn; a cancellation from elsewhere still propagates)."""
        return watch is not None and watch.expired and watch.task.uncancel() == 0

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
        overdue: list[Watch] = []
        for watch in self._inflight:  # oldest first
            due = watch.start + self.seconds
            if due > now:
                if loop is not None and not loop.is_closed():
                    self._schedule(loop, due)
                break
            overdue.append(watch)
        for watch in overdue:
            del self._inflight[watch]
            if not watch.task.done():
                watch.expired = True
                watch.task.cancel()
