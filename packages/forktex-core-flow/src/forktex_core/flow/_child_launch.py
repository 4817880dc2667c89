# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Child workflows, the execution's side: start the child of a position (fenced on the
parent's execution) and checkpoint it.

Two writes, the child's insert and then the parent's checkpoint: an execution killed between
them runs the position again, derives the same child id and finds the child already there
(the insert does nothing), so a parent never has two children for one position.
"""

from __future__ import annotations

import json

from ._checkpoint import Checkpoints
from ._children import KIND, child_run_id
from ._lease import LeaseLost
from ._registry import Registry
from ._runtime import COMPLETED, ChildRequest
from ._start import StartOptions, start_child_run
from ._store_children import ChildLink


async def launch(writes: Checkpoints, registry: Registry, seq: int, req: ChildRequest) -> str:
    """Start the child of position ``seq`` unless it exists; checkpoint it; the checkpoint.

    Example::

        text = await launch(driver.writes, worker.registry, 4, request("billing.charge", {}))
    """
    run = writes.run
    link = ChildLink(
        child_run_id(run.id, run.metadata, seq), run.id, run.execution, req.cancel_with_parent
    )
    options = StartOptions(queue=req.queue, priority=req.priority, partition_key=req.partition_key)
    await writes.flush_marks()
    child, wdef = await writes.call(
        f"start of child workflow {req.name!r}",
        lambda: start_child_run(
            writes.store,
            registry,
            writes.serializer,
            link,
            req.workflow,
            req.input,
            idempotency_key=req.idempotency_key,
            version=req.version,
            metadata=req.metadata,
            options=options,
        ),
    )
    if child is None:
        writes.lost = True
        raise LeaseLost()
    text = json.dumps({"id": str(child), "workflow": wdef.name, "version": wdef.version})
    await writes.record_step(seq, f"{KIND}:{req.name}", KIND, COMPLETED, 1, text, None, 0.0)
    return text
