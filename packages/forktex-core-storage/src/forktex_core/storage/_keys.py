# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Object key validation and the key-building helper.

Bucket/key layout convention (documented in the package README):

* one bucket per service and environment (``network-prod``, ``cloud-dev``), never per tenant;
* keys are ``<kind>/<partition>/<name>``: a plural noun for what is stored, a partition
  (month ``2026-04``, tenant id, ...), then the file name with its extension, e.g.
  ``invoices/2026-04/INV-123.pdf`` or ``avatars/<tenant-id>/<user-id>.png``;
* access policy follows the first segment, so public content lives under its own prefixes
  (``public/``, ``avatars/``) that the host marks public with ``public_prefixes=``.
"""

from __future__ import annotations

import re

from ._errors import InvalidArgument, InvalidKey, show

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_RE = re.compile(r"\d+\.\d+\.\d+\.\d+")

MAX_KEY_BYTES = 1024
"""S3 limits keys to 1024 bytes of UTF-8."""

_ALLOWED = (
    "non-blank UTF-8, at most 1024 bytes, '/'-separated, no leading '/', "
    "no '.' or '..' segments, no empty segments, no control characters or backslashes"
)


def _problem(key: str, *, prefix: bool) -> str | None:
    if key == "":
        return None if prefix else "it is empty"
    if key.isspace():
        # S3 clients refuse a name that is only whitespace; so do we, on every backend alike
        return "it is only whitespace"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"it is {len(key.encode('utf-8', 'surrogatepass'))} bytes long (max {MAX_KEY_BYTES})"
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8 (lone surrogate)"
    for ch in key:
        if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            return f"it contains the control character {ch!r}"
    if "\\" in key:
        return "it contains a backslash"
    if key.startswith("/"):
        return "it is absolute (starts with '/')"
    segments = key.split("/")
    if prefix and key.endswith("/"):
        segments = segments[:-1]
    for seg in segments:
        if seg in (".", ".."):
            return f"it contains a {seg!r} segment"
        if seg == "":
            return "it contains an empty segment ('//' or a trailing '/')"
    return None


def validate_key(key: object) -> str:
    """Return ``key`` if it is a safe object key, else raise :class:`InvalidKey`.

    Example::

        >>> validate_key("invoices/2026-04/INV-123.pdf")
        'invoices/2026-04/INV-123.pdf'
        >>> validate_key("../etc/passwd")
        Traceback (most recent call last):
        ...
        InvalidKey: invalid object key '../etc/passwd': it contains a '..' segment; ...
    """
    if not isinstance(key, str):
        raise InvalidKey(f"object key must be a str, got {type(key).__name__}: {show(key)}")
    problem = _problem(key, prefix=False)
    if problem:
        raise InvalidKey(f"invalid object key {show(key)}: {problem}; allowed: {_ALLOWED}")
    return key


def validate_prefix(prefix: object) -> str:
    """Like :func:`validate_key` but allows ``""`` (everything) and one trailing ``/``."""
    if not isinstance(prefix, str):
        raise InvalidKey(f"key prefix must be a str, got {type(prefix).__name__}: {show(prefix)}")
    problem = _problem(prefix, prefix=True)
    if problem:
        raise InvalidKey(f"invalid key prefix {show(prefix)}: {problem}; allowed: {_ALLOWED}")
    return prefix


def build_key(*parts: str) -> str:
    """Join key parts with ``/`` and validate the result; no part may itself contain ``/``.

    Example::

        >>> build_key("invoices", "2026-04", "INV-123.pdf")
        'invoices/2026-04/INV-123.pdf'
    """
    if not parts:
        raise InvalidKey("build_key() needs at least one part, e.g. build_key('invoices', 'a.pdf')")
    for part in parts:
        if not isinstance(part, str):
            raise InvalidKey(f"key part must be a str, got {type(part).__name__}: {show(part)}")
        if part == "" or "/" in part:
            raise InvalidKey(
                f"invalid key part {show(part)}: parts must be non-empty and contain no '/'"
            )
    return validate_key("/".join(parts))


def validate_bucket(bucket: object) -> str:
    """Return ``bucket`` if it is a valid S3 bucket name, else raise :class:`InvalidArgument`.

    Example::

        >>> validate_bucket("network-prod")
        'network-prod'
    """
    if (
        not isinstance(bucket, str)
        or not _BUCKET_RE.fullmatch(bucket)
        or ".." in bucket
        or _IP_RE.fullmatch(bucket)
    ):
        raise InvalidArgument(
            f"bucket={show(bucket)} is not a valid bucket name; allowed: 3-63 characters of "
            "lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, "
            "not an IP address"
        )
    return bucket
