# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The console's actions on a run: send a signal, cancel, retry, fork.

Each goes through the same ``Flow`` call as the host's own code, so the same
``FlowHooks`` authorisers decide (they run in this request's task and can read
:func:`~forktex_core.console.current_principal`); a denial writes nothing and the page says
why. Every action is a POST that must pass the CSRF checks (:mod:`._csrf`) first. A fork
(a new run replaying the original's steps before a position) leads to the new run's page.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from forktex_core.flow import (
    Flow,
    FlowError,
    HookDenied,
    InvalidArgument,
    NotSerialisable,
    RunFinished,
    RunNotFound,
    RunNotRetryable,
    ScheduleNotFound,
    SignalError,
    UnknownWorkflow,
)

from . import _csrf as csrf
from ._layout import href
from ._runs import run_page
from ._settings import Settings

log = logging.getLogger("forktex_core.console")

MAX_FORM = 256 * 1024  # bytes of a form body (a signal payload is the only large field)


class Refused(Exception):
    """An action the console refuses before calling flow (bad input): a 4xx."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _whole(form: dict[str, str], name: str, what: str, *, required: bool) -> int | None:
    """A whole-number field of the form (``None`` when optional and blank)."""
    text = form.get(name, "").strip()
    if not text and not required:
        return None
    if not text.isdigit() or len(text) > 9:
        raise Refused(400, f"{name} must be {what}, got {text[:30]!r}")
    return int(text)


async def _signal(flow: Flow, run_id: uuid.UUID, form: dict[str, str]) -> None:
    name = form.get("name", "").strip()
    if not name:
        raise Refused(400, "the signal needs a name (e.g. advance)")
    text = form.get("payload", "").strip()
    payload: Any = None
    if text:
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise Refused(400, f"the payload is not JSON: {exc}") from None
    await flow.send_signal(run_id, name, payload)


async def _cancel(flow: Flow, run_id: uuid.UUID, form: dict[str, str]) -> None:
    await flow.cancel(run_id)


async def _retry(flow: Flow, run_id: uuid.UUID, form: dict[str, str]) -> None:
    await flow.retry(run_id)


async def _fork(flow: Flow, run_id: uuid.UUID, form: dict[str, str]) -> uuid.UUID:
    position = _whole(form, "from_step", "a step position (0, 1, 2, ...)", required=True)
    version = _whole(form, "version", "a version number or blank", required=False)
    assert position is not None
    return await flow.fork(run_id, from_step=position, version=version)


#: An action: ``None``, or the id of the run it created (the console then shows that run).
Action = Callable[[Flow, uuid.UUID, dict[str, str]], Awaitable[uuid.UUID | None]]

#: The actions by route name; each is ``POST /runs/{run_id}/<name>``.
ACTIONS: dict[str, Action] = {
    "signal": _signal,
    "cancel": _cancel,
    "retry": _retry,
    "fork": _fork,
}


async def read_form(request: Request) -> dict[str, str]:
    """The fields of an action's form body (at most :data:`MAX_FORM` bytes, UTF-8)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refused(415, "actions take a form (application/x-www-form-urlencoded)")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM):
        raise Refused(413, f"the form is larger than {MAX_FORM // 1024} KiB")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise Refused(413, f"the form is larger than {MAX_FORM // 1024} KiB")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise Refused(400, "the form is not UTF-8") from None
    return {k: v[-1] for k, v in fields.items()}


async def checked_form(settings: Settings, request: Request) -> dict[str, str]:
    """The form of an action POST once it passed both CSRF checks (:class:`Refused` if not):
    its origin first (before the body is read), then the token it carries."""
    problem = csrf.origin_refusal(request, settings.trusted_origins)
    if problem is not None:
        raise Refused(403, problem)
    form = await read_form(request)
    problem = csrf.token_refusal(request, form.get(csrf.FIELD))
    if problem is not None:
        raise Refused(403, problem)
    return form


def outcome(exc: BaseException) -> tuple[int, str] | None:
    """(status, message) for a failure flow reports; None for an unexpected one."""
    if isinstance(exc, HookDenied | PermissionError):
        return 403, f"denied: {exc}"
    if isinstance(exc, RunNotFound | ScheduleNotFound):
        return 404, str(exc)
    if isinstance(exc, RunFinished | RunNotRetryable):
        return 409, str(exc)
    if isinstance(exc, InvalidArgument | NotSerialisable | SignalError | UnknownWorkflow):
        return 400, str(exc)
    if isinstance(exc, FlowError):
        return 409, str(exc)
    return None


async def act(settings: Settings, request: Request, name: str) -> Response:
    """``POST /runs/{run_id}/{name}``: check the request, run the action, show the run."""
    try:
        run_id = uuid.UUID(str(request.path_params["run_id"]))
    except ValueError:
        return Response("not a run id", status_code=400, media_type="text/plain")
    try:
        form = await checked_form(settings, request)
        created = await ACTIONS[name](settings.flow, run_id, form)
    except Refused as exc:
        return await run_page(settings, request, problem=str(exc), status=exc.status)
    except Exception as exc:
        known = outcome(exc)
        if known is None:
            log.exception("console: %s of run %s failed", name, run_id)
            known = (500, f"the {name} failed ({type(exc).__name__}); see the server log")
        return await run_page(settings, request, problem=known[1], status=known[0])
    shown = run_id if created is None else created
    target = href(request, "run", run_id=str(shown)) + f"?done={name}"
    return RedirectResponse(target, status_code=303)
