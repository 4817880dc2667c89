# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Short-lived HMAC-SHA256 signed URLs for the service's own endpoints (callbacks, local files).

The signature covers the URL path, every query parameter (sorted) and the expiry time, so
changing any of them, replaying the URL against another path, or using it after expiry is
rejected. The scheme and host are deliberately *not* signed: the URL is formed for the public
host the browser uses (``base_url``), and the service behind a proxy sees its own host.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from ._errors import InvalidArgument, SignatureExpired, SignatureInvalid
from ._types import check_ttl
from ._urls import parse_base_url

EXPIRES_PARAM = "ftx-expires"
SIGNATURE_PARAM = "ftx-signature"
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class VerifiedCallback:
    """What :meth:`CallbackSigner.verify` returns for a valid URL."""

    path: str
    params: Mapping[str, str]
    expires_at: int


def _canonical(path: str, params: Mapping[str, str], expires: int) -> bytes:
    query = urlencode(sorted(params.items()), quote_via=quote)
    return f"forktex-callback-v1\n{path}\n{query}\n{expires}".encode()


class CallbackSigner:
    """Mint and verify HMAC-signed, expiring URLs under ``base_url``.

    ``secret`` (at least 32 bytes) is passed in by the host service and never logged.

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
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if not isinstance(secret, bytes):
            raise InvalidArgument(
                f"callback secret must be bytes or str, got {type(secret).__name__}"
            )
        if len(secret) < MIN_SECRET_BYTES:
            raise InvalidArgument(
                f"callback secret is {len(secret)} bytes; use at least {MIN_SECRET_BYTES} random "
                "bytes (e.g. secrets.token_bytes(32))"
            )
        self._secret = secret
        self._base = parse_base_url(base_url, name="callback base_url")
        self._base_path = urlsplit(self._base).path
        self._clock = clock

    def __repr__(self) -> str:
        return f"CallbackSigner(base_url={self._base!r}, secret=<hidden>)"

    def _sign(self, path: str, params: Mapping[str, str], expires: int) -> str:
        return hmac.new(self._secret, _canonical(path, params, expires), hashlib.sha256).hexdigest()

    def url(
        self, path: str, params: Mapping[str, str] | None = None, ttl_seconds: int = 600
    ) -> str:
        """A URL for ``base_url + path`` with ``params``, valid for ``ttl_seconds`` (1 s–7 d)."""
        if not isinstance(path, str) or not path.startswith("/") or "?" in path or "#" in path:
            raise InvalidArgument(
                "callback path must be a str starting with '/' and without '?' or '#', "
                f"got {path!r}"
            )
        if any(ord(c) < 0x21 or c == "\x7f" for c in path):
            raise InvalidArgument(
                f"callback path {path!r} contains whitespace or control characters"
            )
        params = dict(params or {})
        for k, v in params.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise InvalidArgument(
                    f"callback params must map str to str, got {k!r}: {type(v).__name__}"
                )
            if k in (EXPIRES_PARAM, SIGNATURE_PARAM):
                raise InvalidArgument(f"callback param name {k!r} is reserved")
        ttl = check_ttl(ttl_seconds)
        expires = int(self._clock()) + ttl
        full_path = self._base_path + quote(path, safe="/-._~!$&'()*+,;=:@%")
        sig = self._sign(full_path, params, expires)
        query = urlencode(
            [*sorted(params.items()), (EXPIRES_PARAM, str(expires)), (SIGNATURE_PARAM, sig)],
            quote_via=quote,
        )
        return f"{self._base}{full_path[len(self._base_path) :]}?{query}"

    def verify(self, url: str, *, path: str | None = None) -> VerifiedCallback:
        """Check a URL minted by :meth:`url`; raise :class:`SignatureInvalid` or
        :class:`SignatureExpired`. Pass ``path`` to also require that exact callback path.

        Comparison is constant-time. The returned ``path`` is relative to ``base_url``.
        """
        if not isinstance(url, str):
            raise InvalidArgument(f"url must be a str, got {type(url).__name__}")
        parts = urlsplit(url)
        try:
            pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise SignatureInvalid("signed URL has a malformed query string") from None
        params: dict[str, str] = {}
        for k, v in pairs:
            if k in params:
                raise SignatureInvalid(f"signed URL repeats the query parameter {k!r}")
            params[k] = v
        sig = params.pop(SIGNATURE_PARAM, None)
        expires_raw = params.pop(EXPIRES_PARAM, None)
        if sig is None or expires_raw is None or not expires_raw.isdigit():
            raise SignatureInvalid("URL is not signed (missing or malformed signature/expiry)")
        expires = int(expires_raw)
        expected = self._sign(parts.path, params, expires)
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            raise SignatureInvalid("URL signature does not match (tampered or another secret)")
        if int(self._clock()) >= expires:
            raise SignatureExpired(f"signed URL expired at unix time {expires}")
        rel = parts.path
        if self._base_path and rel.startswith(self._base_path):
            rel = rel[len(self._base_path) :]
        rel = unquote(rel)
        if path is not None and rel != path:
            raise SignatureInvalid(f"signed URL is for path {rel!r}, not {path!r}")
        return VerifiedCallback(rel, params, expires)
