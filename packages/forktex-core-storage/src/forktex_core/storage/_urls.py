# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Endpoint and base-URL parsing (``s3://``, ``https://``, ``http://``, ``file://``) and the
masking of URLs shown in errors, logs and reprs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus, urlsplit

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

    @property
    def address(self) -> str:
        """``host:port`` with the scheme's default port filled in (what errors name)."""
        if self.host.rpartition(":")[2].isdigit() and not self.host.endswith("]"):
            return self.host
        return f"{self.host}:{443 if self.secure else 80}"


#: Query/fragment parameter names containing one of these (case-insensitive) are masked.
_SENSITIVE_PARAMS = (
    "user",
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "sig",
    "credential",
    "session",
    "cookie",
)
_MAX_SHOWN = 200


def _mask_params(text: str) -> str:
    out = []
    for part in re.split(r"([&;])", text):
        name, eq, _value = part.partition("=")
        if eq and any(s in unquote_plus(name).lower() for s in _SENSITIVE_PARAMS):
            part = f"{name}=***"
        out.append(part)
    return "".join(out)


def mask_url(value: object) -> str:
    """``value`` as it may appear in an error, log line or repr: every credential-bearing part
    masked, at most 200 characters.

    Masked: the userinfo (everything before the last ``@``, since an unencoded password may
    itself hold ``/``, ``?``, ``#`` or ``@``) and the value of every query or fragment
    parameter whose name contains ``user``, ``pass``, ``pwd``, ``secret``, ``token``, ``key``,
    ``auth``, ``sig``, ``credential``, ``session`` or ``cookie``. A value that is not a
    ``str`` is shown by its type only.

    Example::

        >>> mask_url("https://user:pw@host:9000/b?X-Amz-Signature=abc&list-type=2")
        'https://***@host:9000/b?X-Amz-Signature=***&list-type=2'
    """
    if not isinstance(value, str):
        return f"<a {type(value).__name__}>"
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    head, qsep, query = rest.partition("?")
    if qsep:
        query, fsep, fragment = query.partition("#")
    else:
        head, fsep, fragment = head.partition("#")
    shown = scheme + sep + head + qsep + _mask_params(query) + fsep + _mask_params(fragment)
    return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 3] + "..."


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
            f"{name}={mask_url(value)!r} embeds credentials; "
            "pass credentials=Credentials(...) instead"
        )
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidArgument(
            f"{name}={mask_url(value)!r} is not a valid URL; use {_FORMS}"
        ) from None
    if "@" in parts.netloc:
        raise InvalidArgument(
            f"{name}={mask_url(value)!r} embeds credentials; "
            "pass credentials=Credentials(...) instead"
        )
    try:
        port = parts.port
    except ValueError:
        # the parser's message would echo the netloc; keep it out of the error
        raise InvalidArgument(
            f"{name}={mask_url(value)!r} is not a valid URL (the port must be 1-65535); "
            f"use {_FORMS}"
        ) from None
    scheme = parts.scheme.lower()
    if scheme == "file" and allow_file:
        if parts.netloc or not parts.path.startswith("/"):
            raise InvalidArgument(f"{name}={mask_url(value)!r}: use 'file:///absolute/dir'")
        return Endpoint("file", "", parts.path)
    if scheme not in ("s3", "https", "http"):
        forms = _FORMS if allow_file else _FORMS.rpartition(" or 'file")[0]
        raise InvalidArgument(f"{name}={mask_url(value)!r} has an unsupported scheme; use {forms}")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(
            f"{name}={mask_url(value)!r} embeds credentials; "
            "pass credentials=Credentials(...) instead"
        )
    if not parts.hostname:
        raise InvalidArgument(f"{name}={mask_url(value)!r} has no host; use {_FORMS}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidArgument(
            f"{name}={mask_url(value)!r} must not have a query, fragment or a path other "
            "than the bucket ('s3://host/bucket'); or pass the bucket as bucket=..."
        )
    host = parts.hostname if port is None else f"{parts.hostname}:{port}"
    if ":" in parts.hostname:  # IPv6 literal
        host = f"[{parts.hostname}]" + ("" if port is None else f":{port}")
    return Endpoint("http" if scheme == "http" else "https", host, "")


def split_bucket(value: object) -> tuple[object, str | None]:
    """An S3 endpoint written path-style with its bucket, ``"s3://host/bucket"``, split into
    the endpoint and the bucket; any other value comes back as it is, with ``None``.

    Example::

        >>> split_bucket("s3://s3.eu-central-1.amazonaws.com/invoices")
        ('s3://s3.eu-central-1.amazonaws.com', 'invoices')
        >>> split_bucket("file:///var/tmp/storage")
        ('file:///var/tmp/storage', None)
    """
    if not isinstance(value, str):
        return value, None
    try:
        parts = urlsplit(value)
    except ValueError:
        return value, None  # parse_endpoint names the problem
    if parts.scheme.lower() not in ("s3", "https", "http") or parts.query or parts.fragment:
        return value, None
    bucket = parts.path[1:].removesuffix("/")
    if not bucket or "/" in bucket:
        return value, None
    return parts._replace(path="").geturl(), unquote_plus(bucket)


def parse_base_url(value: object, *, name: str) -> str:
    """A public base URL (``https://cdn.example.com/assets``) without a trailing slash.

    Example::

        >>> parse_base_url("https://cdn.example.com/assets/", name="public_base_url")
        'https://cdn.example.com/assets'
    """
    if not isinstance(value, str) or not value:
        raise InvalidArgument(
            f"{name} must be a non-empty 'https://host[/path]' str, got {mask_url(value)!r}"
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InvalidArgument(
            f"{name}={mask_url(value)!r} is not a valid URL; use 'https://host[:port][/path]'"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"{name}={mask_url(value)!r} must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise InvalidArgument(
            f"{name}={mask_url(value)!r} must not have credentials, query or fragment"
        )
    if any(ord(c) < 0x21 or c == "\x7f" for c in value) or not value.isascii():
        raise InvalidArgument(
            f"{name}={mask_url(value)!r} must be ASCII without whitespace or control characters "
            "(percent-encode the path)"
        )
    return value.rstrip("/")
