# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Starting a run: check the request, let the hooks see it, store it as ``pending``.

The insert also NOTIFYs the workers, so an idle one claims the run at once. An
``idempotency_key`` already used for the workflow returns the existing run instead.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import _telemetry as tm
from ._defs import storable_text
from ._errors import InvalidArgument
from ._hooks import StartRequest
from ._registry import Registry
from ._serde import Serializer, encode
from ._store import Store


async def start_run(
    store: Store,
    registry: Registry,
    serializer: Serializer,
    workflow: object,
    input: Any,
    *,
    idempotency_key: str | None,
    version: int | None,
    metadata: dict[str, Any] | None,
) -> uuid.UUID:
    """Persist a new run of ``workflow`` (a name or a decorated function); its id.

    Example::

        run_id = await start_run(store, registry, serializer, "cloud.deploy", {"name": "web"},
                                 idempotency_key=None, version=None, metadata=None)
    """
    wdef = registry.lookup(workflow, version)
    if idempotency_key is not None:
        storable_text(idempotency_key, "idempotency_key", max_length=1000)
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidArgument(f"metadata must be a dict or None, got {metadata!r}")
    hooks = registry.hooks
    if hooks.has("attach_metadata") or hooks.has("authorize_start"):
        request = StartRequest(
            wdef.name, wdef.version, input, idempotency_key, dict(metadata or {})
        )
        await hooks.start(request)
        metadata = request.metadata
    metadata = tm.carried(metadata)  # the caller's trace continues into the run
    text = encode(serializer, input, f"the input of workflow {wdef.name!r}")
    meta = encode(serializer, metadata or {}, "run metadata")
    return await store.insert_run(
        uuid.uuid4(), wdef.name, wdef.version, text, idempotency_key, wdef.timeout, meta
    )
