# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
""":class:`FlowClient`: runs, queues and schedules for processes that never import workflow
code.

An API service starts runs by workflow name (and optionally version), sends signals, reads
results, lists runs and queues, creates and controls schedules; workers elsewhere run the
code. It is :class:`Flow`'s run, view and schedule calls over a registry that stays empty,
so a start by name never raises ``UnknownWorkflow``: a run of a workflow no live worker
serves shows ``RunInfo.waiting_for_worker`` until one does.
"""

from __future__ import annotations

from ._flow_runs import RunCalls
from ._flow_schedules import ScheduleCalls
from ._flow_views import ViewCalls
from ._registry import Registry
from ._serde import Serializer
from ._settings import Settings
from ._store import Store


class FlowClient(RunCalls, ViewCalls, ScheduleCalls):
    """Start, signal, wait for, list and control runs (and schedules) without the workflow
    code.

    A start by name without ``version`` uses the newest version a worker announces (else
    the newest one started, else 1); the workflow's default queue is only known where it is
    registered (name the queue with ``start(queue=...)``); its timeout is the one of the
    worker that first picks the run up.

    Example::

        client = FlowClient(database_url="postgresql+asyncpg://user:pass@host/db")
        run_id = await client.start("cloud.deploy", input={"name": "web"}, queue="deploys")
        print((await client.get_run(run_id)).waiting_for_worker)
        await client.close()
    """

    def __init__(self, database_url: str, *, serializer: Serializer | None = None) -> None:
        self._settings = Settings(database_url, serializer=serializer)
        self._registry = Registry()
        self._store = Store(self._settings)

    def __repr__(self) -> str:
        return f"FlowClient({self._store.masked_url!r})"

    async def connect(self) -> None:
        """Create or migrate the schema and open the connection pool now (optional).

        Example::

            await client.connect()
        """
        await self._store.connect()

    async def close(self) -> None:
        """Close every connection. Idempotent.

        Example::

            await client.close()
        """
        await self._store.close()

    async def __aenter__(self) -> FlowClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
