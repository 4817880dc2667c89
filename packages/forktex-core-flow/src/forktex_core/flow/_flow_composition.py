# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The composition half of the :class:`Flow` facade: reading run events, forking runs and
listing a run's children (each a short call into :mod:`._run_events`, :mod:`._fork` and
the store's children)."""

from __future__ import annotations

import uuid
from typing import Any

from ._defs import positive_int, run_id_value
from ._errors import RunNotFound
from ._fork import fork_run
from ._records import RunInfo, run_info
from ._registry import Registry
from ._run_events import get_event
from ._settings import Settings
from ._store import Store


class CompositionCalls:
    """Events published by runs, forks of runs, and the children of runs."""

    _registry: Registry
    _settings: Settings
    _store: Store

    async def get_event(
        self,
        run_id: uuid.UUID | str,
        key: str,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        """The latest value a run published with ``ctx.set_event(key, value)``.

        Waits until the key is set (woken by NOTIFY, no polling), for at most ``timeout``
        seconds (``0``: look once; ``None``: until set or the run finishes). Raises
        :class:`EventNotSet` after the timeout or when the run finished without setting
        it, :class:`RunNotFound` for an unknown run.

        Example::

            progress = await flow.get_event(run_id, "progress", timeout=30)
        """
        rid = run_id_value(run_id)
        return await get_event(self._store, self._settings.serializer, rid, key, timeout)

    async def fork(
        self,
        run_id: uuid.UUID | str,
        from_step: int,
        version: int | None = None,
    ) -> uuid.UUID:
        """A new run that replays the finished run's recorded results before position
        ``from_step`` and executes from there; its id.

        ``version`` runs the fork on another registered version of the workflow (the bug
        fix); by default the original's. The fork's metadata is the original's plus
        ``forked_from`` and ``forked_from_step``. Raises :class:`RunNotFound`, and
        :class:`InvalidArgument` for a run not finished yet or a ``from_step`` outside
        ``0 .. positions recorded``. ``FlowHooks.authorize_fork(run, from_step, version)``
        may refuse it (nothing is written).

        Example::

            new_run = await flow.fork(failed_run, from_step=3, version=2)
        """
        rid = run_id_value(run_id)
        hooks = self._registry.hooks
        if hooks.has("authorize_fork"):
            position = positive_int(from_step, "from_step", 0)
            row = await self._store.run(rid)
            if row is None:
                raise RunNotFound(rid)
            original = run_info(row, self._settings.serializer.loads)
            await hooks.authorize("authorize_fork", original, position, version)
        return await fork_run(self._store, self._registry, rid, from_step, version)

    async def children(self, run_id: uuid.UUID | str) -> list[RunInfo]:
        """The child workflows run ``run_id`` started (``ctx.start_child``), oldest first.

        Each child's ``parent_id`` is ``run_id``. Raises :class:`RunNotFound` for an
        unknown run.

        Example::

            for child in await flow.children(order_run):
                print(child.id, child.workflow, child.status)
        """
        rid = run_id_value(run_id)
        rows = await self._store.children.of(rid)
        if not rows and await self._store.run(rid) is None:
            raise RunNotFound(rid)
        loads = self._settings.serializer.loads
        return [run_info(row, loads) for row in rows]
