# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The two JSON endpoints the page script polls: run counts and one run's state."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from forktex_core.flow import RunNotFound

from ._runs import state_key
from ._settings import Settings


async def counts(settings: Settings, request: Request) -> Response:
    """``GET /api/counts``: runs by status (cached for all viewers; see ``counts_ttl``)."""
    value = await settings.counts.get(settings.flow, settings.exact_counts_below)
    return JSONResponse(
        {"counts": {s.value: n for s, n in value.by_status.items()}, "exact": value.exact}
    )


async def run_state(settings: Settings, request: Request) -> Response:
    """``GET /api/runs/{run_id}/state``: what the run page compares to know it is stale."""
    try:
        rid = uuid.UUID(str(request.path_params["run_id"]))
    except ValueError:
        return JSONResponse({"error": "not a run id"}, status_code=400)
    try:
        run = await settings.flow.get_run(rid)
        steps = await settings.flow.history(rid)
    except RunNotFound:
        return JSONResponse({"error": f"no run {rid}"}, status_code=404)
    return JSONResponse(
        {
            "state": state_key(run, steps),
            "status": run.status.value,
            "finished": run.status.finished,
        }
    )
