# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Protection of the console's actions against cross-site requests.

Two independent checks, both required for every POST:

* **Origin.** The ``Origin`` header (else the origin of ``Referer``) must be the console's
  own origin or one the host trusts (``trusted_origins``, for a proxy that rewrites the
  host). A request that names no origin at all is refused: browsers send ``Origin`` on
  every cross-site POST and on same-origin form posts.
* **Double submit.** Every page sets a random token in a cookie (``SameSite=Strict``,
  ``HttpOnly``) and writes the same token into its forms; a POST must carry both, equal.
  Another site can neither read the cookie nor make the browser send it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "forktex_console_csrf"
FIELD = "csrf"


def token_of(request: Request) -> tuple[str, bool]:
    """The request's token, and whether it is new (then :func:`remember` must set it)."""
    existing = request.cookies.get(COOKIE, "")
    if len(existing) == 43 and existing.replace("-", "").replace("_", "").isalnum():
        return existing, False
    return secrets.token_urlsafe(32), True


def remember(response: Response, request: Request, token: str) -> None:
    """Set the token cookie on ``response`` (scoped to the console's path)."""
    response.set_cookie(
        COOKIE,
        token,
        path=(request.scope.get("root_path") or "") + "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_refusal(request: Request, trusted: Iterable[str]) -> str | None:
    """Why this POST must be refused for where it comes from (None: from the console).

    Example::

        problem = origin_refusal(request, ["https://ops.example.com"])
    """
    own = f"{request.url.scheme}://{request.url.netloc}".lower()
    allowed = {own, *(o.lower().rstrip("/") for o in trusted)}
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        origin = None if referer is None else _origin(referer)
        if origin is None:
            return "cross-site request refused: it names no Origin (or Referer)"
    elif origin.lower() == "null" or origin.lower() not in allowed:
        return f"cross-site request refused: origin {origin[:100]!r} is not this console's"
    if origin.lower() not in allowed:
        return f"cross-site request refused: origin {origin[:100]!r} is not this console's"
    return None


def token_refusal(request: Request, submitted: str | None) -> str | None:
    """Why this POST must be refused for its token (None: the cookie's token came back).

    Example::

        problem = token_refusal(request, form.get("csrf"))
    """
    cookie = request.cookies.get(COOKIE)
    if not cookie or not submitted:
        return "cross-site request refused: the form's token is missing; reload the page"
    if not hmac.compare_digest(cookie.encode(), submitted.encode()):
        return "cross-site request refused: the form's token does not match; reload the page"
    return None
