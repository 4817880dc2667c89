# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The host's authentication in front of every route, and the principal it returned.

The console has no users of its own: the host passes ``authenticate(request)`` (sync or
async) returning a principal (any object: the host's user), or ``None`` to refuse. It may
also raise Starlette's ``HTTPException`` (its status and detail are sent) or return a
``Response`` (e.g. a redirect to the host's login page). A failing ``authenticate`` refuses
(500), it never lets the request through. While a request is handled,
:func:`current_principal` returns the principal, so ``FlowHooks`` authorisers (which run in
the request's task) can decide by it.
"""

from __future__ import annotations

import contextvars
import html
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("forktex_core.console")

Authenticate = Callable[[Request], Any | Awaitable[Any]]
"""``request -> principal`` (``None`` refuses), sync or async."""

_PRINCIPAL: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "forktex_console_principal", default=None
)

ANONYMOUS = "anonymous"
"""The principal of a console built with ``allow_anonymous=True``."""

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


def current_principal() -> Any:
    """The principal ``authenticate`` returned for the console request being handled
    (``None`` outside one).

    Example::

        class OpsHooks(FlowHooks):
            async def authorize_cancel(self, run):
                if "ops" not in getattr(current_principal(), "roles", ()):
                    raise HookDenied("only the ops role may cancel runs")
    """
    return _PRINCIPAL.get()


def _refusal(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Refused</title></head>"
        f"<body><h1>{status}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=headers)


class Guard:
    """ASGI middleware: authenticate every request, add the security headers to every
    response, and expose the principal to the request's task."""

    def __init__(self, app: ASGIApp, authenticate: Authenticate | None, router: Any) -> None:
        self.app = app
        self.authenticate = authenticate
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            await send({"type": "websocket.close", "code": 1008})
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        # links are built by the console's own router, under whatever path it is mounted
        scope = {**scope, "router": self.router}
        principal, refusal = await self._principal(Request(scope, receive))
        if refusal is not None:
            await refusal(scope, receive, send_secure)
            return
        token = _PRINCIPAL.set(principal)
        try:
            await self.app(scope, receive, send_secure)
        finally:
            _PRINCIPAL.reset(token)

    async def _principal(self, request: Request) -> tuple[Any, Response | None]:
        if self.authenticate is None:
            return ANONYMOUS, None
        try:
            principal = self.authenticate(request)
            if inspect.isawaitable(principal):
                principal = await principal
        except HTTPException as exc:
            return None, _refusal(exc.status_code, str(exc.detail), exc.headers)
        except Exception:
            log.exception("console: authenticate failed; the request is refused")
            return None, _refusal(500, "Authentication failed; the request was refused.")
        if isinstance(principal, Response):
            return None, principal
        if principal is None or principal is False:
            return None, _refusal(401, "Authentication required.")
        return principal, None
