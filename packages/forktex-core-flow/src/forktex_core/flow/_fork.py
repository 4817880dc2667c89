# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Forking a finished run from a position: the operator's tool after a bug fix.

The fork is a new run of the same workflow and input that starts with the original's final
checkpoints before position ``from_step`` (replayed, not executed again) and executes from
there, on the original's version or on a newer registered one. Its metadata is the
original's plus ``forked_from`` (the original's id) and ``forked_from_step``; its trace is
the forking caller's (the original's stored trace context is not copied). Only finished
runs can be forked (a live run could still change the positions copied).
"""

from __future__ import annotations

import uuid

from . import _telemetry as tm
from ._defs import positive_int
from ._registry import Registry
from ._store import Store

FORKED_FROM = "forked_from"
FORKED_FROM_STEP = "forked_from_step"


async def fork_run(
    store: Store,
    registry: Registry,
    run_id: uuid.UUID,
    from_step: object,
    version: int | None,
) -> uuid.UUID:
    """Create the fork of ``run_id`` from position ``from_step``; its run id.

    ``version`` (when given) must be registered here for the run's workflow.

    Example::

        new_id = await fork_run(store, registry, run_id, 3, None)
    """
    position = positive_int(from_step, "from_step", 0)
    override: tuple[int, float | None] | None = None
    if version is not None:
        row = await store.run(run_id)
        if row is not None:
            wdef = registry.lookup(str(row["workflow"]), version)
            override = (wdef.version, wdef.timeout)
    new_id = uuid.uuid4()
    lineage: dict[str, object] = {FORKED_FROM: str(run_id), FORKED_FROM_STEP: position}
    # the fork continues the trace of whoever forks it, like a start, through its own span
    with tm.tracing.current(tm.fork_span(str(new_id))):
        await store.lineage.fork(run_id, new_id, position, override, tm.carried(lineage) or lineage)
    return new_id
