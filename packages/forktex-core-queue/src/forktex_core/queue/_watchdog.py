# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A watchdog thread that notices when a worker's event loop stops running.

A task that calls blocking code (``time.sleep``, a synchronous HTTP client, a CPU-bound
loop) stops the whole event loop: no lease is renewed and no timeout fires, so once the
lease lapses another worker runs the job again. The loop cannot report its own stall while
it lasts, so a thread watches a timestamp the loop refreshes and, past the threshold, names
the job whose task holds the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("forktex_core.queue")


@dataclass(frozen=True)
class Culprit:
    """The job a task belongs to, and after how long a stall of it deserves a warning."""

    job_id: str
    task: str
    threshold: float
    why: str


class LoopWatchdog:
    """Warn (from its own thread) when the loop has not run for ``threshold`` seconds.

    ``identify(task)`` maps the task holding the loop to a :class:`Culprit` (or ``None``
    when it is not a job, then ``default_threshold`` applies). One warning per stall.

    Example::

        watchdog = LoopWatchdog(identify, default_threshold=15.0, min_threshold=2.5)
        watchdog.start(asyncio.get_running_loop())
        ...
        watchdog.stop()
    """

    def __init__(
        self,
        identify: Callable[[asyncio.Task[object] | None], Culprit | None],
        *,
        default_threshold: float,
        min_threshold: float,
    ) -> None:
        self._identify = identify
        self._default = default_threshold
        self._min = min_threshold
        self._interval = min(1.0, max(0.02, min_threshold / 5))
        self._beat = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start watching ``loop`` (call from the loop's thread)."""
        self._loop = loop
        self._tick()
        self._thread = threading.Thread(
            target=self._watch, name="forktex-queue-loop-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (call from the loop's thread)."""
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
        if self._thread is not None:
            self._thread.join(timeout=1)

    def _tick(self) -> None:
        self._beat = time.monotonic()
        if not self._stop.is_set() and self._loop is not None:
            self._handle = self._loop.call_later(self._interval, self._tick)

    def _watch(self) -> None:
        warned_for = -1.0
        while not self._stop.wait(self._interval):
            beat = self._beat
            stalled = time.monotonic() - beat
            if stalled < self._min or beat == warned_for or self._loop is None:
                continue
            task: asyncio.Task[object] | None = None
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                task = asyncio.current_task(self._loop)
            try:
                culprit = self._identify(task)
            except RuntimeError:  # the job table changed under us: the loop is running again
                continue
            threshold = self._default if culprit is None else culprit.threshold
            if stalled < threshold:
                continue
            warned_for = beat
            if culprit is None:
                log.warning(
                    "the worker's event loop has been blocked for %.1f s (not inside a job); "
                    "leases are not renewed meanwhile",
                    stalled,
                )
            else:
                log.warning(
                    "job %s (task %r) has blocked the event loop for %.1f s, over half its %s: "
                    "its lease is not renewed and its timeout cannot fire meanwhile, so "
                    "another worker may run it again. Run blocking code with "
                    "`await asyncio.to_thread(...)`",
                    culprit.job_id,
                    culprit.task,
                    stalled,
                    culprit.why,
                )
