# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``flow_console``: the Starlette app, its routes and its guard."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from forktex_core.flow import Flow

from ._actions import ACTIONS, act
from ._api import counts, run_state
from ._auth import Authenticate, Guard
from ._errors import ConsoleError
from ._jobs import jobs_page
from ._queues import queues_page
from ._redact import Redactor, redact_secrets
from ._runs import run_graph, run_page, runs_page
from ._schedules import SCHEDULE_ACTIONS, act_on_schedule, schedules_page
from ._settings import CountsCache, QueueLike, Settings
from ._workers import workers_page

STATIC = Path(__file__).resolve().parent / "static"

Endpoint = Callable[[Settings, Request], Awaitable[Response]]


def _bind(settings: Settings, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        return await endpoint(settings, request)

    return handle


def flow_console(
    flow: Flow,
    authenticate: Authenticate | None = None,
    *,
    allow_anonymous: bool = False,
    queue: QueueLike | None = None,
    redact: Redactor = redact_secrets,
    title: str = "forktex flow",
    page_size: int = 50,
    exact_counts_below: int = 100_000,
    counts_ttl: float = 2.0,
    trusted_origins: Iterable[str] = (),
    failed_jobs_scan: int = 10_000,
) -> ASGIApp:
    """The operator console of ``flow`` as an ASGI app, to mount under any path.

    ``authenticate(request)`` (sync or async) is the host's login: it returns a principal
    (any object) or ``None`` to refuse, may raise Starlette's ``HTTPException`` or return a
    ``Response`` (a redirect to a login page, say). Every route goes through it. There is
    no default: without it the console refuses to be built, unless ``allow_anonymous=True``
    says explicitly that anyone who can reach it may use it (local use only).

    Actions (signal, cancel, retry, fork of a run; pause, resume, trigger of a schedule) call
    the same ``Flow`` methods as the host's code, so its ``FlowHooks`` authorisers decide;
    they can read :func:`current_principal`. POSTs
    need the console's own form (CSRF token and Origin); behind a proxy that changes the
    host name, list the public origin in ``trusted_origins``.

    ``redact`` is applied to every value shown (default :data:`redact_secrets`);
    ``queue`` (a ``forktex_core.queue.Queue``) adds the jobs page. Counts of finished
    runs are estimates above ``exact_counts_below`` runs and are shared by every viewer for
    ``counts_ttl`` seconds.

    Example::

        from fastapi import FastAPI
        from forktex_core.console import flow_console

        app = FastAPI()
        app.mount("/ops", flow_console(flow, authenticate=require_staff))
    """
    if not isinstance(flow, Flow):
        raise ConsoleError(f"flow_console needs a forktex_core.flow.Flow, got {flow!r}")
    if authenticate is None and not allow_anonymous:
        raise ConsoleError(
            "flow_console needs authenticate=: a function of the request returning the "
            "signed-in principal (None refuses). For local use without a login, pass "
            "allow_anonymous=True explicitly."
        )
    if authenticate is not None and allow_anonymous:
        raise ConsoleError("pass either authenticate= or allow_anonymous=True, not both")
    if authenticate is not None and not callable(authenticate):
        raise ConsoleError(
            f"authenticate must be callable (request -> principal), got {authenticate!r}"
        )
    if not callable(redact):
        raise ConsoleError(f"redact must be callable (value -> value shown), got {redact!r}")
    for value, name, low, high in (
        (page_size, "page_size", 1, 1000),
        (exact_counts_below, "exact_counts_below", 0, 10**12),
        (failed_jobs_scan, "failed_jobs_scan", 0, 10_000_000),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConsoleError(f"{name} must be an int from {low} to {high}, got {value!r}")
    if (
        isinstance(counts_ttl, bool)
        or not isinstance(counts_ttl, int | float)
        or not (0 <= counts_ttl <= 3600)
    ):
        raise ConsoleError(f"counts_ttl must be seconds from 0 to 3600, got {counts_ttl!r}")
    origins = tuple(trusted_origins)
    for origin in origins:
        if not isinstance(origin, str) or not origin.startswith(("http://", "https://")):
            raise ConsoleError(
                f"trusted_origins takes origins like 'https://ops.example.com', got {origin!r}"
            )
    needed = ("health", "job", "name", "job_counts", "failed_jobs")
    if queue is not None and not all(hasattr(queue, a) for a in needed):
        raise ConsoleError(f"queue must be a forktex_core.queue.Queue, got {queue!r}")
    settings = Settings(
        flow=flow,
        redact=redact,
        queue=queue,
        title=title,
        page_size=page_size,
        exact_counts_below=exact_counts_below,
        trusted_origins=origins,
        failed_jobs_scan=failed_jobs_scan,
        counts=CountsCache(float(counts_ttl)),
    )
    routes = [
        Route("/", _bind(settings, runs_page), name="runs"),
        Route("/runs/{run_id}", _bind(settings, run_page), name="run"),
        Route("/runs/{run_id}/graph.svg", _bind(settings, run_graph), name="run_graph"),
        Route("/queues", _bind(settings, queues_page), name="queues"),
        Route("/schedules", _bind(settings, schedules_page), name="schedules"),
        Route("/workers", _bind(settings, workers_page), name="workers"),
        Route("/jobs", _bind(settings, jobs_page), name="jobs"),
        Route("/api/counts", _bind(settings, counts), name="counts"),
        Route("/api/runs/{run_id}/state", _bind(settings, run_state), name="run_state"),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    for name in ACTIONS:
        action = functools.partial(act, name=name)
        routes.append(
            Route(f"/runs/{{run_id}}/{name}", _bind(settings, action), methods=["POST"], name=name)
        )
    for name in SCHEDULE_ACTIONS:
        action = functools.partial(act_on_schedule, action=name)
        routes.append(
            Route(
                f"/schedules/{name}",
                _bind(settings, action),
                methods=["POST"],
                name=f"schedule_{name}",
            )
        )
    app = Starlette(routes=routes)
    return Guard(app, authenticate, app.router)
