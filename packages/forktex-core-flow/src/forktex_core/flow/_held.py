# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
""" "Is this run still my execution's?" — asked before a step starts, answered in batches.

Every step start must be preceded by a proof that the run is still this execution's (so that
no step starts after ``flow.cancel()`` returned, even if the cancel notification was lost):
a fenced checkpoint that succeeded since the event loop last polled for I/O (see
:meth:`._checkpoint.Checkpoints.check_held`), else a read of the run's row. A worker driving
many runs asks that question many times a second; :class:`HeldChecks` answers on a
connection of its own, one indexed query at a time: the questions asked while a query is in
flight are answered together by the next one (like a group commit). Each answer is still
read after its question was asked, and the cost per step drops as the load grows.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import asyncpg

from ._db import TRANSIENT

if TYPE_CHECKING:
    from ._store import Store

_Asked = dict[tuple[uuid.UUID, uuid.UUID], list["asyncio.Future[bool]"]]


class HeldChecks:
    """Batches the lease checks of one worker on a connection of their own.

    Example::

        checks = HeldChecks(store)
        if not await checks.held(run_id, execution):
            ...  # cancelled, reaped or settled: start nothing
        await checks.close()
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._conn: asyncpg.Connection | None = None
        self._asked: _Asked = {}
        self._runner: asyncio.Task[None] | None = None

    async def held(self, run_id: uuid.UUID, execution: uuid.UUID) -> bool:
        """True when ``execution`` still holds ``run_id`` (status ``running``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._asked.setdefault((run_id, execution), []).append(future)
        if self._runner is None:
            self._runner = loop.create_task(self._answer_all())
        return await future

    async def close(self) -> None:
        """Close the connection (pending questions fail with a connection error)."""
        if self._runner is not None:
            self._runner.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def _answer_all(self) -> None:
        try:
            await asyncio.sleep(0)  # let the other runs of this turn ask too
            while self._asked:
                asked, self._asked = self._asked, {}
                try:
                    await self._answer(asked)
                except BaseException as exc:
                    _fail(asked, exc)
                    if not isinstance(exc, Exception):
                        raise
        except BaseException as exc:
            _fail(self._asked, exc)
            self._asked = {}
            raise
        finally:
            self._runner = None

    async def _answer(self, asked: _Asked) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._store.dedicated()
        try:
            held = await self._store.held(self._conn, list(asked))
        except TRANSIENT:
            conn, self._conn = self._conn, None
            conn.terminate()
            raise
        for (run_id, _), futures in asked.items():
            for future in futures:
                if not future.done():
                    future.set_result(run_id in held)


def _fail(asked: _Asked, exc: BaseException) -> None:
    """Each asker sees the failure (and may retry); cancellation cancels them."""
    for futures in asked.values():
        for future in futures:
            if future.done():
                continue
            if isinstance(exc, Exception):
                future.set_exception(exc)
            else:
                future.cancel()
