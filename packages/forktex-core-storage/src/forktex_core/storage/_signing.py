# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""HMAC-SHA256 signed, expiring URLs, kept apart by purpose.

Every signed URL is minted for exactly one *purpose* (a callback to the service, a file read,
a file write, a file upload form). The purpose is part of the signed string **and** selects the
MAC key, so a URL minted for one purpose never verifies for another, even when two purposes
share a host, a path and a secret.

* Key: ``HMAC-SHA256(secret, "forktex-signed-url-v2 key\\n" + purpose)`` — one key per purpose,
  derived from the host's secret (at least 32 bytes).
* Signed string (UTF-8), one field per line::

      forktex-signed-url-v2
      <purpose>
      <path>      the full URL path (base URL path + signed path), percent-decoded, then
                  re-encoded canonically (everything but unreserved characters and '/')
      <query>     every parameter but ftx-expires/ftx-signature, decoded, sorted, re-encoded
                  with every reserved character percent-encoded
      <expires>   unix time in ASCII digits

  Every field is percent-encoded, so no field can contain a newline: distinct URLs give
  distinct strings. Scheme and host are not signed (the URL survives a proxy).

Verification fails closed: anything that is not exactly a URL this module could have minted —
an unparsable URL, undecodable percent-escapes, a repeated parameter, a missing or non-ASCII or
over-long expiry, a signature that is not 64 lowercase hex digits — is :class:`SignatureInvalid`,
never another exception.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote_to_bytes, urlencode, urlsplit

from ._errors import InvalidArgument, SignatureExpired, SignatureInvalid, show
from ._types import check_ttl
from ._urls import parse_base_url

Purpose = Literal["callback", "file-read", "file-write", "file-post"]
PURPOSES: tuple[Purpose, ...] = ("callback", "file-read", "file-write", "file-post")

VERSION = "forktex-signed-url-v2"
EXPIRES_PARAM = "ftx-expires"
SIGNATURE_PARAM = "ftx-signature"
MIN_SECRET_BYTES = 32

_EXPIRES_RE = re.compile(r"[1-9][0-9]{0,11}")  # ASCII digits only, no leading zero
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
_MAX_PARAMS = 256


def check_secret(secret: object) -> bytes:
    """The signing secret as bytes; at least 32 bytes, else :class:`InvalidArgument`."""
    if isinstance(secret, str):
        try:
            secret = secret.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgument("callback secret is a str that is not valid UTF-8") from None
    if not isinstance(secret, bytes):
        raise InvalidArgument(f"callback secret must be bytes or str, got {type(secret).__name__}")
    if len(secret) < MIN_SECRET_BYTES:
        raise InvalidArgument(
            f"callback secret is {len(secret)} bytes; use at least {MIN_SECRET_BYTES} random "
            "bytes (e.g. secrets.token_bytes(32))"
        )
    return secret


def derive_key(secret: bytes, purpose: Purpose) -> bytes:
    """The MAC key of one purpose (see the module docstring)."""
    return hmac.new(secret, f"{VERSION} key\n{purpose}".encode(), hashlib.sha256).digest()


def canonical(purpose: Purpose, path: str, params: Mapping[str, str], expires: int) -> bytes:
    """The signed string for a *decoded* ``path`` and ``params`` (see the module docstring)."""
    query = urlencode(sorted(params.items()), quote_via=quote)
    return f"{VERSION}\n{purpose}\n{quote(path, safe='/')}\n{query}\n{expires}".encode()


def _decode_path(raw: str) -> str:
    return unquote_to_bytes(raw).decode("utf-8")


@dataclass(frozen=True)
class Verified:
    """A verified URL: its path relative to the base URL (decoded), parameters and expiry."""

    path: str
    params: Mapping[str, str]
    expires_at: int


class UrlSigner:
    """Mint and verify signed URLs of one purpose under ``base_url``.

    Example::

        signer = UrlSigner(secret, "https://api.example.com", "callback")
        url = signer.url("/hooks/done", {"key": "a.pdf"}, ttl_seconds=60)
        signer.verify(url).params["key"]  # 'a.pdf'
    """

    def __init__(
        self,
        secret: bytes | str,
        base_url: str,
        purpose: Purpose,
        *,
        clock: Callable[[], float],
        name: str = "base_url",
    ) -> None:
        if purpose not in PURPOSES:
            raise InvalidArgument(f"purpose={show(purpose)}: allowed {PURPOSES}")
        self.purpose = purpose
        self.base_url = parse_base_url(base_url, name=name)
        self._key = derive_key(check_secret(secret), purpose)
        try:
            self._base_path = _decode_path(urlsplit(self.base_url).path)
        except UnicodeDecodeError:
            raise InvalidArgument(
                f"{name}: its path has percent-escapes that are not UTF-8"
            ) from None
        self._clock = clock

    def __repr__(self) -> str:
        return f"UrlSigner({self.purpose!r}, base_url={self.base_url!r}, secret=<hidden>)"

    def _mac(self, path: str, params: Mapping[str, str], expires: int) -> str:
        message = canonical(self.purpose, path, params, expires)
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, path: str, params: Mapping[str, str], ttl_seconds: int) -> str:
        """A URL for ``base_url + path`` (``path`` decoded, starting with ``/``) carrying
        ``params``, valid for ``ttl_seconds``."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise InvalidArgument(f"signed path must be a str starting with '/', got {show(path)}")
        _check_text("signed path", path)
        if not isinstance(params, Mapping):
            raise InvalidArgument(
                f"params must be a mapping of str to str, got {type(params).__name__}"
            )
        checked: dict[str, str] = {}
        for k, v in params.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise InvalidArgument(
                    f"params must map str to str, got {show(k)}: {type(v).__name__}"
                )
            if k in (EXPIRES_PARAM, SIGNATURE_PARAM):
                raise InvalidArgument(f"param name {show(k)} is reserved")
            _check_text(f"param {show(k)}", k + v)
            checked[k] = v
        if len(checked) > _MAX_PARAMS - 2:
            raise InvalidArgument(f"at most {_MAX_PARAMS - 2} params can be signed")
        expires = int(self._clock()) + check_ttl(ttl_seconds)
        full = self._base_path + path
        query = urlencode(
            [
                *sorted(checked.items()),
                (EXPIRES_PARAM, str(expires)),
                (SIGNATURE_PARAM, self._mac(full, checked, expires)),
            ],
            quote_via=quote,
        )
        return f"{self.base_url}{quote(path, safe='/')}?{query}"

    def verify(self, url: str) -> Verified:
        """Check a URL minted by :meth:`url` for this purpose; raise :class:`SignatureInvalid`
        (anything malformed, tampered, another purpose or secret) or :class:`SignatureExpired`.
        Comparison is constant-time."""
        if not isinstance(url, str):
            raise InvalidArgument(f"url must be a str, got {type(url).__name__}")
        path, params, expires, signature = _parse(url)
        expected = self._mac(path, params, expires)
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
            raise SignatureInvalid(
                "URL signature does not match (tampered, another secret, or minted for "
                "another purpose)"
            )
        if int(self._clock()) >= expires:
            raise SignatureExpired(f"signed URL expired at unix time {expires}")
        base = self._base_path
        if not path.startswith(base) or not path[len(base) :].startswith("/"):
            raise SignatureInvalid("signed URL is not under this signer's base URL")
        return Verified(path[len(base) :], params, expires)


def _check_text(what: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{what} is not valid UTF-8 (lone surrogate)") from None


def _parse(url: str) -> tuple[str, dict[str, str], int, str]:
    """Split a signed URL into decoded path, parameters, expiry and signature; every malformed
    form is :class:`SignatureInvalid`."""
    try:
        url.encode("utf-8")
        parts = urlsplit(url)
        path = _decode_path(parts.path)
        pairs = (
            parse_qsl(
                parts.query,
                keep_blank_values=True,
                strict_parsing=True,
                errors="strict",
                max_num_fields=_MAX_PARAMS,
            )
            if parts.query
            else []
        )
    except (ValueError, UnicodeError):
        raise SignatureInvalid("signed URL is malformed (bad URL syntax or encoding)") from None
    params: dict[str, str] = {}
    for k, v in pairs:
        if k in params:
            raise SignatureInvalid(f"signed URL repeats the query parameter {show(k, 40)}")
        params[k] = v
    signature = params.pop(SIGNATURE_PARAM, None)
    expires = params.pop(EXPIRES_PARAM, None)
    if signature is None or expires is None:
        raise SignatureInvalid(f"URL is not signed (no {EXPIRES_PARAM} or {SIGNATURE_PARAM})")
    if not _EXPIRES_RE.fullmatch(expires):
        raise SignatureInvalid(f"signed URL has a malformed {EXPIRES_PARAM} (not a unix time)")
    if not _SIGNATURE_RE.fullmatch(signature):
        raise SignatureInvalid(f"signed URL has a malformed {SIGNATURE_PARAM}")
    return path, params, int(expires), signature
