# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Endpoint parsing: ``s3://``, ``https://``, ``http://`` and ``file://`` forms."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ._errors import InvalidArgument

_FORMS = (
    "'s3://host[:port]' (TLS), 'https://host[:port]', 'http://host[:port]' (no TLS, "
    "development only) or 'file:///absolute/dir' (local filesystem backend)"
)


@dataclass(frozen=True)
class Endpoint:
    """A parsed endpoint: ``scheme`` is ``https``, ``http`` or ``file``."""

    scheme: str
    host: str  # host[:port] for http(s); empty for file
    path: str  # directory for file; empty for http(s)

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


def _safe(text: str) -> str:
    """The endpoint for an error message with any userinfo removed."""
    if "@" in text:
        scheme, sep, rest = text.partition("://")
        return (
            f"{scheme}{sep}***@{rest.rpartition('@')[2]}"
            if sep
            else "***@" + text.rpartition("@")[2]
        )
    return text


def parse_endpoint(value: object, *, name: str = "endpoint", allow_file: bool = True) -> Endpoint:
    """Parse an endpoint string; see the module docstring for the accepted forms.

    Example::

        >>> parse_endpoint("s3://s3.eu-central-1.amazonaws.com")
        Endpoint(scheme='https', host='s3.eu-central-1.amazonaws.com', path='')
        >>> parse_endpoint("http://localhost:9000")
        Endpoint(scheme='http', host='localhost:9000', path='')
    """
    if not isinstance(value, str) or not value:
        raise InvalidArgument(
            f"{name} must be a non-empty str: {_FORMS}; got {type(value).__name__}"
        )
    if "@" in value.partition("://")[2].split("?")[0]:
        raise InvalidArgument(
            f"{name}={_safe(value)!r} embeds credentials; pass credentials=Credentials(...) instead"
        )
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidArgument(f"{name}={_safe(value)!r} is not a valid URL; use {_FORMS}") from None
    if "@" in parts.netloc:
        raise InvalidArgument(
            f"{name}={_safe(value)!r} embeds credentials; pass credentials=Credentials(...) instead"
        )
    try:
        port = parts.port
    except ValueError:
        # the parser's message would echo the netloc; keep it out of the error
        raise InvalidArgument(
            f"{name}={_safe(value)!r} is not a valid URL (the port must be 1-65535); use {_FORMS}"
        ) from None
    scheme = parts.scheme.lower()
    if scheme == "file" and allow_file:
        if parts.netloc or not parts.path.startswith("/"):
            raise InvalidArgument(f"{name}={_safe(value)!r}: use 'file:///absolute/dir'")
        return Endpoint("file", "", parts.path)
    if scheme not in ("s3", "https", "http"):
        forms = _FORMS if allow_file else _FORMS.rpartition(" or 'file")[0]
        raise InvalidArgument(f"{name}={_safe(value)!r} has an unsupported scheme; use {forms}")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(
            f"{name}={_safe(value)!r} embeds credentials; pass credentials=Credentials(...) instead"
        )
    if not parts.hostname:
        raise InvalidArgument(f"{name}={_safe(value)!r} has no host; use {_FORMS}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidArgument(
            f"{name}={_safe(value)!r} must not have a path, query or fragment; "
            "the bucket is passed as bucket=..."
        )
    host = parts.hostname if port is None else f"{parts.hostname}:{port}"
    if ":" in parts.hostname:  # IPv6 literal
        host = f"[{parts.hostname}]" + ("" if port is None else f":{port}")
    return Endpoint("http" if scheme == "http" else "https", host, "")


def parse_base_url(value: object, *, name: str) -> str:
    """A public base URL (``https://cdn.example.com/assets``) without a trailing slash."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(
            f"{name} must be a non-empty 'https://host[/path]' str, got {value!r}"
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"{name}={_safe(value)!r} must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise InvalidArgument(
            f"{name}={_safe(value)!r} must not have credentials, query or fragment"
        )
    return value.rstrip("/")
