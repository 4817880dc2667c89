# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The frame of every page: header navigation, assets, the CSRF token, notices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from . import _csrf as csrf
from ._html import Safe, el, page
from ._settings import Settings

# The pages of the header, in order: (route name, label); jobs only with a queue.
NAV: tuple[tuple[str, str], ...] = (
    ("runs", "Runs"),
    ("queues", "Queues"),
    ("schedules", "Schedules"),
    ("workers", "Workers"),
    ("jobs", "Jobs"),
)


def href(request: Request, name: str, **params: Any) -> str:
    """The path of a console route (under whatever path the host mounted it)."""
    path = request.scope["router"].url_path_for(name, **params)
    return str(request.scope.get("root_path", "")) + str(path)


def token(request: Request) -> str:
    """This page's CSRF token (the cookie is set by :func:`respond`)."""
    known = getattr(request.state, "csrf", None)
    if known is not None:
        return str(known)
    value, new = csrf.token_of(request)
    request.state.csrf = value
    if new:
        request.state.new_csrf = value
    return value


def csrf_field(request: Request) -> Safe:
    """The hidden form field carrying the CSRF token."""
    return el("input", {"type": "hidden", "name": csrf.FIELD, "value": token(request)})


def notice(text: str | None, *, error: bool = False) -> Safe:
    """A banner (``role=alert`` for errors)."""
    if not text:
        return Safe("")
    attrs = {"class": "notice error" if error else "notice", "role": "alert" if error else "status"}
    return el("p", attrs, text)


def respond(
    request: Request,
    settings: Settings,
    *,
    current: str,
    heading: str,
    body: Any,
    status: int = 200,
    body_attrs: Mapping[str, object] | None = None,
) -> HTMLResponse:
    """A whole page as a response (sets the CSRF cookie when the token is new)."""
    token(request)
    nav = [
        (label, href(request, name), name == current)
        for name, label in NAV
        if name != "jobs" or settings.queue is not None
    ]
    text = page(
        title=settings.title,
        heading=heading,
        nav=nav,
        css=href(request, "static", path="console.css"),
        script=href(request, "static", path="console.js"),
        body=body,
        body_attrs=body_attrs,
    )
    response = HTMLResponse(text, status_code=status)
    new = getattr(request.state, "new_csrf", None)
    if new is not None:
        csrf.remember(response, request, new)
    return response
