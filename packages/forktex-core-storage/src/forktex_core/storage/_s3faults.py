# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What an exception raised while talking to S3 means: the storage error the caller gets,
and whether repeating the request can help.

Every exception is mapped — S3 error replies of any code, HTTP-level failures, timeouts,
refused and reset connections, DNS failures and responses that cannot be parsed — so no
aiohttp or miniopy exception reaches the caller; the original is kept as ``__cause__``.
"""

from __future__ import annotations

import asyncio
import errno as errno_module
from dataclasses import dataclass

import aiohttp
from miniopy_async.error import InvalidResponseError, MinioException, S3Error, ServerError

from ._errors import (
    AccessDenied,
    BucketNotFound,
    ObjectNotFound,
    StorageError,
    StorageServiceError,
    StorageUnavailable,
)
from ._http import Timeouts, WriteStalled

_DENIED = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AllAccessDisabled",
        "AccountProblem",
        "ExpiredToken",
        "InvalidToken",
        "InvalidSecurity",
        "TokenRefreshRequired",
    }
)
#: Error codes that say "the service is busy or broken right now": worth another attempt.
_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "XMinioServerNotInitialized",
        "XMinioStorageFull",
    }
)


@dataclass(frozen=True)
class Context:
    """Where a request went and what it was for, to name in the error."""

    endpoint: str  # host:port
    bucket: str
    timeouts: Timeouts

    def what(self, action: str, key: str | None) -> str:
        target = f"object {key!r}" if key is not None else "the bucket"
        return f"{action} of {target} in bucket {self.bucket!r}"


def is_transient(exc: BaseException) -> bool:
    """True when the request failed fast and may well succeed if sent again: a refused or
    reset connection, a server that closed it, an HTTP 5xx or a ``SlowDown`` reply.

    Timeouts are never transient: a server that stayed silent for the whole timeout is
    reported at once instead of being waited for again.
    """
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's ServerTimeoutError included
        return False
    if isinstance(exc, S3Error):
        return (exc.code or "") in _TRANSIENT_CODES
    if isinstance(exc, ServerError):
        return exc.status_code >= 500
    if isinstance(exc, InvalidResponseError):
        return _status(exc) >= 500
    if isinstance(exc, aiohttp.ClientConnectorDNSError | aiohttp.ClientSSLError):
        return False
    return isinstance(
        exc,
        aiohttp.ClientConnectorError
        | aiohttp.ServerDisconnectedError
        | aiohttp.ClientOSError
        | aiohttp.ClientPayloadError
        | ConnectionError,
    )


def _status(exc: InvalidResponseError) -> int:
    code = getattr(exc, "_code", 0)  # third-party private: miniopy (HTTP status)
    return code if isinstance(code, int) else 0


def to_storage_error(
    exc: BaseException, ctx: Context, action: str, key: str | None
) -> StorageError:
    """The storage error for ``exc`` raised by ``action`` (``"get"``, ``"put"``, ...) on
    ``key``; the caller raises it ``from exc``.

    Example::

        except Exception as exc:
            raise to_storage_error(exc, ctx, "get", key) from exc
    """
    if isinstance(exc, StorageError):
        return exc
    what = ctx.what(action, key)
    if isinstance(exc, S3Error):
        return _from_s3_error(exc, ctx, what, key)
    if isinstance(exc, ServerError):  # an error reply without a body (HEAD) or code
        if exc.status_code >= 500:
            return StorageUnavailable(
                f"S3 server {ctx.endpoint} failed the {what} with HTTP {exc.status_code}; "
                "retry later",
                endpoint=ctx.endpoint,
            )
        return StorageServiceError(
            f"S3 server {ctx.endpoint} refused the {what} with HTTP {exc.status_code}",
            code=None,
            bucket=ctx.bucket,
            key=key,
            status=exc.status_code,
        )
    if isinstance(exc, InvalidResponseError):
        status = _status(exc)
        if status >= 500:
            return StorageUnavailable(
                f"S3 server {ctx.endpoint} failed the {what} with HTTP {status} (not an S3 "
                "reply: a proxy or load balancer in front of it?); retry later",
                endpoint=ctx.endpoint,
            )
        return StorageServiceError(
            f"{ctx.endpoint} answered the {what} with HTTP {status} and a body that is not "
            "an S3 reply; is the endpoint an S3 server?",
            code=None,
            bucket=ctx.bucket,
            key=key,
            status=status or None,
        )
    if isinstance(exc, asyncio.TimeoutError):
        return StorageUnavailable(_timeout_message(exc, ctx, what), endpoint=ctx.endpoint)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        host = ctx.endpoint.rpartition(":")[0]
        return StorageUnavailable(
            f"cannot resolve the S3 host {host!r} ({ctx.endpoint}) for the {what}: check the "
            "endpoint's host name and DNS",
            endpoint=ctx.endpoint,
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        return StorageUnavailable(
            f"TLS with S3 server {ctx.endpoint} failed for the {what} "
            f"({type(exc).__name__}): check its certificate, or use http:// for a server "
            "without TLS",
            endpoint=ctx.endpoint,
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = _reason(exc.os_error)
        return StorageUnavailable(
            f"cannot connect to S3 server {ctx.endpoint} for the {what} ({reason}): check the "
            "endpoint and that the server is running",
            endpoint=ctx.endpoint,
        )
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError
        | aiohttp.ClientOSError
        | aiohttp.ClientPayloadError
        | ConnectionError,
    ):
        return StorageUnavailable(
            f"lost the connection to S3 server {ctx.endpoint} during the {what} "
            f"({_reason(exc)}); nothing was half-written, retry later",
            endpoint=ctx.endpoint,
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        return StorageUnavailable(
            f"{ctx.endpoint} sent an invalid HTTP reply to the {what} (HTTP {exc.status}): "
            "is the endpoint an S3 server?",
            endpoint=ctx.endpoint,
        )
    if isinstance(exc, aiohttp.ClientError | OSError):
        return StorageUnavailable(
            f"the {what} at S3 server {ctx.endpoint} failed ({type(exc).__name__})",
            endpoint=ctx.endpoint,
        )
    if isinstance(exc, MinioException):
        return StorageError(f"the S3 client failed the {what} ({type(exc).__name__})")
    # A reply the client could not parse (malformed XML, missing fields, ...).
    return StorageServiceError(
        f"S3 server {ctx.endpoint} sent a reply to the {what} that cannot be read "
        f"({type(exc).__name__}); is the endpoint an S3 server?",
        code=None,
        bucket=ctx.bucket,
        key=key,
    )


def _from_s3_error(exc: S3Error, ctx: Context, what: str, key: str | None) -> StorageError:
    code = exc.code or ""
    if code in ("NoSuchKey", "NoSuchObject") and key is not None:
        return ObjectNotFound(ctx.bucket, key)
    if code == "NoSuchBucket":
        return BucketNotFound(ctx.bucket)
    if code in _DENIED:
        return AccessDenied(
            f"access denied ({code}) for the {what}: check the credentials and the bucket policy"
        )
    status = _http_status(exc)
    if code in _TRANSIENT_CODES:
        return StorageUnavailable(
            f"S3 server {ctx.endpoint} refused the {what} with {code} (busy or failing); "
            "retry later",
            endpoint=ctx.endpoint,
        )
    detail = f": {exc.message}" if exc.message else ""
    return StorageServiceError(
        f"S3 server {ctx.endpoint} refused the {what} with {code or 'an error without a code'}"
        f"{f' (HTTP {status})' if status else ''}{detail}",
        code=code or None,
        bucket=ctx.bucket,
        key=key,
        status=status,
    )


def _http_status(exc: S3Error) -> int | None:
    try:
        status = exc.response.status
    except AttributeError:
        return None
    return status if isinstance(status, int) else None


def _timeout_message(exc: BaseException, ctx: Context, what: str) -> str:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return (
            f"S3 server {ctx.endpoint} did not accept a connection within "
            f"connect_timeout={ctx.timeouts.connect:g}s for the {what}: check the endpoint, "
            "the network, or raise connect_timeout"
        )
    if isinstance(exc, WriteStalled):
        return (
            f"S3 server {ctx.endpoint} stopped taking the {what}'s bytes for "
            f"read_timeout={ctx.timeouts.read:g}s: the server or the network is stuck; nothing "
            "was half-written"
        )
    return (
        f"S3 server {ctx.endpoint} did not answer the {what} within "
        f"read_timeout={ctx.timeouts.read:g}s: check that the server is healthy, or raise "
        "read_timeout"
    )


def _reason(exc: BaseException) -> str:
    """A short, secret-free reason: the errno name and text, else the exception type."""
    err = getattr(exc, "errno", None)
    if isinstance(err, int) and err in errno_module.errorcode:
        strerror = getattr(exc, "strerror", None)
        name = errno_module.errorcode[err]
        return f"{name}: {strerror}" if isinstance(strerror, str) and strerror else name
    return type(exc).__name__
