# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Value types of the public API: credentials, access modes, object info, signed POST forms."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ._errors import InvalidArgument, show
from ._urls import mask_url

MIN_TTL_SECONDS = 1
MAX_TTL_SECONDS = 7 * 24 * 3600
"""SigV4 presigned URLs are valid for at most 7 days."""


@dataclass(frozen=True)
class Credentials:
    """An access key pair. Neither key appears in ``repr()``/``str()``: the secret key and
    session token are hidden, the access key shows only its last 4 characters (as the AWS CLI
    does) when it is at least 16 characters long and not the secret itself, else it is hidden
    too.

    Example::

        >>> Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG")
        Credentials(access_key='****************MPLE', secret_key=<hidden>)
        >>> Credentials("minioadmin", "minioadmin")
        Credentials(access_key=<hidden>, secret_key=<hidden>)
    """

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.access_key, str) or not self.access_key:
            raise InvalidArgument(
                "Credentials.access_key must be a non-empty str, got "
                f"{type(self.access_key).__name__}"
            )
        if not isinstance(self.secret_key, str) or not self.secret_key:
            raise InvalidArgument(
                "Credentials.secret_key must be a non-empty str "
                f"(got a {type(self.secret_key).__name__}; value not shown)"
            )
        if self.session_token is not None and not isinstance(self.session_token, str):
            raise InvalidArgument("Credentials.session_token must be a str or None")

    def __repr__(self) -> str:
        token = ", session_token=<hidden>" if self.session_token else ""
        key = self.access_key
        long_enough = len(key) >= 16 and key != self.secret_key
        shown = repr("*" * (len(key) - 4) + key[-4:]) if long_enough else "<hidden>"
        return f"Credentials(access_key={shown}, secret_key=<hidden>{token})"

    __str__ = __repr__


class PublicAccess(enum.Enum):
    """What a signed URL lets its holder do: ``read`` (GET) or ``write`` (PUT upload).

    Example::

        url = await storage.signed_url("uploads/a.png", access=PublicAccess.write)
        PublicAccess.write.method  # 'PUT'
    """

    read = "read"
    write = "write"

    @property
    def method(self) -> str:
        """The HTTP method the URL is signed for."""
        return "GET" if self is PublicAccess.read else "PUT"


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of a stored object (from ``stat``, ``list``, ``put`` and ``copy``).

    ``stat``, ``copy`` and ``list(..., with_content_type=True)`` fill every field. A plain
    ``list`` gives what S3's ListObjects gives — key, size, ETag, modification time — with
    ``content_type=None`` and empty ``metadata`` (on every backend); ``put`` has no
    ``last_modified``.

    Example::

        info = await storage.stat("invoices/2026-04/INV-123.pdf")
        info.size, info.content_type  # (48213, 'application/pdf')
    """

    key: str
    size: int | None
    etag: str | None
    content_type: str | None = None
    last_modified: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SignedPost:
    """A browser upload form from :meth:`StorageClient.signed_post`.

    POST ``multipart/form-data`` to ``url`` with every entry of ``fields`` first and the file
    last, under the form field name ``file``. The policy pins key, content type, maximum size
    and expiry; the server rejects anything else.

    Example::

        post = await storage.signed_post("uploads/a.png", content_type="image/png")
        form = {**post.fields, "file": png_bytes}  # POST to post.url, the file last
    """

    url: str
    fields: Mapping[str, str]
    key: str
    expires_at: datetime

    def __repr__(self) -> str:
        return (
            f"SignedPost(url={mask_url(self.url)!r}, key={self.key!r}, "
            f"expires_at={self.expires_at!r})"
        )


def check_ttl(ttl_seconds: object) -> int:
    """Validate a signed-URL lifetime: an int between 1 s and 7 days."""
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
        raise InvalidArgument(
            f"ttl_seconds must be an int number of seconds, got {type(ttl_seconds).__name__}: "
            f"{show(ttl_seconds)}"
        )
    if not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
        raise InvalidArgument(
            f"ttl_seconds={show(ttl_seconds)} is out of range; allowed: {MIN_TTL_SECONDS} to "
            f"{MAX_TTL_SECONDS} (7 days)"
        )
    return ttl_seconds


def check_access(access: object) -> PublicAccess:
    """Validate a :class:`PublicAccess` value."""
    if not isinstance(access, PublicAccess):
        raise InvalidArgument(
            f"access must be PublicAccess.read or PublicAccess.write, got {show(access)}"
        )
    return access
