# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Short-lived HMAC-SHA256 signed URLs for the service's own endpoints (callbacks).

A callback URL is signed for the purpose ``callback`` (see ``_signing``): it covers the URL
path, every query parameter and the expiry time, so changing any of them, replaying the URL
against another path, using it after expiry, or presenting a signed *file* URL of the same
host as a callback is rejected. Scheme and host are deliberately not signed: the URL is formed
for the public host the browser uses (``base_url``), and the service behind a proxy sees its
own host.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ._errors import InvalidArgument, SignatureInvalid, show
from ._signing import UrlSigner


@dataclass(frozen=True)
class VerifiedCallback:
    """What :meth:`CallbackSigner.verify` returns for a valid URL.

    Example::

        cb = signer.verify(str(request.url))
        cb.path, cb.params["key"], cb.expires_at
    """

    path: str
    params: Mapping[str, str]
    expires_at: int


class CallbackSigner:
    """Mint and verify HMAC-signed, expiring URLs under ``base_url``.

    ``secret`` (at least 32 bytes) is passed in by the host service and never logged. The MAC
    key is derived from it for callbacks only, so the same secret may also sign the
    filesystem backend's file URLs without either verifying as the other.

    Example::

        signer = CallbackSigner(secret=settings.callback_secret,
                                base_url="https://api.example.com")
        url = signer.url("/uploads/finished", {"key": "invoices/a.pdf"}, ttl_seconds=900)
        # ... later, in the request handler:
        cb = signer.verify(str(request.url))   # raises SignatureInvalid / SignatureExpired
        assert cb.path == "/uploads/finished"
    """

    def __init__(
        self,
        secret: bytes | str,
        base_url: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._signer = UrlSigner(
            secret, base_url, "callback", clock=clock, name="callback base_url"
        )

    def __repr__(self) -> str:
        return f"CallbackSigner(base_url={self._signer.base_url!r}, secret=<hidden>)"

    def url(
        self, path: str, params: Mapping[str, str] | None = None, ttl_seconds: int = 600
    ) -> str:
        """A URL for ``base_url + path`` with ``params``, valid for ``ttl_seconds`` (1 s–7 d).

        ``path`` is the decoded path (it is percent-encoded here); ``verify`` returns it as
        given.

        Example::

            signer.url("/hooks/upload-finished", {"key": "a.pdf"}, ttl_seconds=900)
        """
        if not isinstance(path, str) or not path.startswith("/") or "?" in path or "#" in path:
            raise InvalidArgument(
                "callback path must be a str starting with '/' and without '?' or '#', "
                f"got {show(path)}"
            )
        if any(ord(c) < 0x21 or 0x7F <= ord(c) < 0xA0 for c in path):
            raise InvalidArgument(
                f"callback path {show(path)} contains whitespace or control characters"
            )
        return self._signer.url(path, {} if params is None else params, ttl_seconds)

    def verify(self, url: str, *, path: str | None = None) -> VerifiedCallback:
        """Check a URL minted by :meth:`url`; raise :class:`SignatureInvalid` (malformed,
        tampered, another secret, not a callback URL) or :class:`SignatureExpired`. Pass
        ``path`` to also require that exact callback path.

        Comparison is constant-time. The returned ``path`` is relative to ``base_url``.

        Example::

            cb = signer.verify(str(request.url), path="/hooks/upload-finished")
        """
        verified = self._signer.verify(url)
        if path is not None and verified.path != path:
            raise SignatureInvalid(
                f"signed URL is for path {show(verified.path)}, not {show(path)}"
            )
        return VerifiedCallback(verified.path, verified.params, verified.expires_at)
