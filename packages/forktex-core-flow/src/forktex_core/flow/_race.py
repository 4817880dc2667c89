# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``ctx.wait_first``: the durable ``asyncio.wait(FIRST_COMPLETED)`` over steps, sleeps and
signal waits.

Each awaitable took its position when it was created, and ``wait_first`` takes the next one
when called. On first execution the branches race as tasks: the first to finish (the first
in argument order when several finish together) wins, its index is recorded at
``wait_first``'s position, and the others are cancelled. A branch that would put the run
aside (a durable sleep, a signal wait) only *parks* inside the race (:func:`park`), so a
losing sleep never suspends the run; when every branch still racing is parked, the run is
suspended once, until the earliest wake-up or any of the signals. On replay the recorded
winner alone is awaited (replayed from its own position) and the losers are never run.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Coroutine
from typing import Any

from ._errors import InvalidArgument
from ._runtime import COMPLETED, LogEntry, Runtime

KIND = "wait_first"


class Race:
    """The branches of one ``wait_first`` that want the run put aside: (wake, signal)."""

    __slots__ = ("changed", "parked")

    def __init__(self) -> None:
        self.parked: dict[asyncio.Task[Any], tuple[float | None, str | None]] = {}
        self.changed = asyncio.Event()


RACE: contextvars.ContextVar[Race | None] = contextvars.ContextVar(
    "forktex_flow_race", default=None
)


async def park(rt: Runtime, wake_at: float | None, signal: str | None) -> Any:
    """Put the run aside until ``wake_at`` or ``signal`` — or, inside a ``wait_first``,
    only this branch (the race decides whether the run is suspended).

    Example::

        await park(rt, rt.clock() + 60, None)
    """
    race = RACE.get()
    task = asyncio.current_task()
    if race is None or task is None:
        return await rt.suspend(wake_at, signal)
    race.parked[task] = (wake_at, signal)
    race.changed.set()
    await asyncio.get_running_loop().create_future()  # until the race cancels this branch


def wait_first(rt: Runtime, awaitables: tuple[Any, ...]) -> Coroutine[Any, Any, tuple[int, Any]]:
    """``ctx.wait_first``: takes its position now; the coroutine races or replays.

    Example::

        index, value = await wait_first(rt, (fetch(ctx), ctx.sleep(30)))
    """
    if not awaitables or not all(asyncio.iscoroutine(a) for a in awaitables):
        for a in awaitables:
            if asyncio.iscoroutine(a):
                a.close()
        raise InvalidArgument(
            "wait_first takes one or more durable awaitables (a step call, ctx.sleep(...), "
            f"ctx.wait_for_signal(...)), got {awaitables!r:.200}"
        )
    seq, entry = rt.take_position(KIND, KIND)
    return _wait_first(rt, seq, entry, awaitables)


async def _wait_first(
    rt: Runtime, seq: int, entry: LogEntry | None, coros: tuple[Any, ...]
) -> tuple[int, Any]:
    if entry is not None and entry.status == COMPLETED and entry.output is not None:
        index = int(json.loads(entry.output))
        for i, coro in enumerate(coros):
            if i != index:
                coro.close()
        return index, await coros[index]
    race = Race()
    context = contextvars.copy_context()
    context.run(RACE.set, race)
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(coro, context=context) for coro in coros]
    try:
        while True:
            finished = [t for t in tasks if t.done()]
            if finished:
                break
            if len(race.parked) == len(tasks):
                # every branch waits durably: suspend the run once, for all of them
                await asyncio.gather(*(rt.suspend(w, s) for w, s in race.parked.values()))
            race.changed.clear()
            watcher = loop.create_task(race.changed.wait())
            try:
                await asyncio.wait([*tasks, watcher], return_when=asyncio.FIRST_COMPLETED)
            finally:
                watcher.cancel()
        winner = finished[0]
        index = tasks.index(winner)
        rt.begin(KIND)
        try:
            await rt.flush_pending()
            await rt.record_step(seq, KIND, KIND, COMPLETED, 1, str(index), None, 0.0)
        finally:
            rt.end()
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return index, winner.result()
