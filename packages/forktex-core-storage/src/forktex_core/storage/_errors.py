# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Exceptions of ``forktex_core.storage``: everything derives from :class:`StorageError`.

Backend (miniopy-async / aiohttp / filesystem) exceptions never leak out of the public API; they
are mapped here and kept as ``__cause__`` for debugging. Messages name the bucket and key and
what to do, never a credential or a signature.
"""

from __future__ import annotations


def show(value: object, limit: int = 80) -> str:
    """``repr(value)`` for an error message: at most ``limit`` characters, and never raising
    (an int past Python's digit limit or an object whose ``repr`` fails is described instead).

    Example::

        >>> show("x" * 100, limit=10)
        "'xxxxxx..."
        >>> show(10**5000)
        '<int of 16610 bits>'
    """
    try:
        text = repr(value)
    except Exception:
        if isinstance(value, int):
            return f"<int of {value.bit_length()} bits>"
        return f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StorageError(Exception):
    """Base class of every error raised by ``forktex_core.storage``.

    Example::

        try:
            await storage.get("invoices/2026-04/INV-123.pdf")
        except ObjectNotFound:
            ...
        except StorageError:
            ...  # any other storage failure
    """


class InvalidArgument(StorageError, ValueError, TypeError):
    """A bad argument (wrong type, out-of-range TTL, malformed endpoint, ...).

    Also a ``ValueError`` and a ``TypeError``, so generic handlers keep working.

    Example::

        await storage.signed_url("a.pdf", ttl_seconds=0)  # raises InvalidArgument (1 s to 7 days)
    """


class InvalidKey(InvalidArgument):
    """An object key (or key part / prefix) that is not allowed; see :func:`validate_key`.

    Example::

        await storage.get("../etc/passwd")  # raises InvalidKey (a '..' segment)
    """


class ObjectNotFound(StorageError, LookupError):
    """The object does not exist in the bucket; ``bucket`` and ``key`` name it.

    Example::

        try:
            body = await storage.get("invoices/2026-04/INV-123.pdf")
        except ObjectNotFound:
            body = None
    """

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__(f"object {key!r} does not exist in bucket {bucket!r}")
        self.bucket = bucket
        self.key = key


class BucketNotFound(StorageError, LookupError):
    """The bucket does not exist (call ``await storage.ensure_bucket()`` first).

    Example::

        try:
            await storage.put("a.txt", b"hi")
        except BucketNotFound:
            await storage.ensure_bucket()
            await storage.put("a.txt", b"hi")
    """

    def __init__(self, bucket: str) -> None:
        super().__init__(
            f"bucket {bucket!r} does not exist; create it with 'await storage.ensure_bucket()' "
            "or fix the bucket name"
        )
        self.bucket = bucket


class AccessDenied(StorageError, PermissionError):
    """The server refused the request (wrong credentials, policy, or a non-public key).

    Also a ``PermissionError``. Raised by every operation, e.g.
    ``except AccessDenied: log.error("check the storage credentials")``.
    """


class StorageUnavailable(StorageError, ConnectionError):
    """The storage service could not be used: unreachable, silent past a timeout, the
    connection lost, a server error (HTTP 5xx, ``SlowDown``), or a local disk error on the
    filesystem backend.

    ``endpoint`` is the ``host:port`` that failed (``None`` for the filesystem backend).
    Nothing was half-written: a failed ``put`` leaves the key as it was.

    Example::

        try:
            await storage.get("invoices/2026-04/INV-123.pdf")
        except StorageUnavailable as exc:
            log.warning("storage down: %s", exc)  # names host:port and what failed
    """

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class StorageServiceError(StorageError):
    """The storage service refused a request with an error that has no more specific type
    here (e.g. ``InvalidRequest``, ``EntityTooLarge``, ``PreconditionFailed``), or sent a
    response that cannot be read. ``code`` is the service's error code (``None`` when the
    response carried none), ``status`` the HTTP status, ``key`` the object concerned.

    Example::

        try:
            await storage.put(key, body)
        except StorageServiceError as exc:
            log.error("S3 refused %s: %s (HTTP %s)", exc.key, exc.code, exc.status)
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        bucket: str,
        key: str | None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.bucket = bucket
        self.key = key
        self.status = status


class SignatureInvalid(StorageError):
    """A signed (callback) URL was tampered with, signed with another secret, or is malformed.

    Example::

        try:
            callback = storage.verify_callback(str(request.url))
        except SignatureInvalid:  # SignatureExpired included
            return Response(status_code=403)
    """


class SignatureExpired(SignatureInvalid):
    """A signed (callback) URL was valid but its expiry time has passed.

    Example::

        try:
            callback = storage.verify_callback(str(request.url))
        except SignatureExpired:
            return Response(status_code=410)  # ask the sender for a fresh URL
    """
