# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The S3 backend (AWS S3, MinIO and other S3-compatible servers) on top of miniopy-async.

Two miniopy clients are kept: one for the internal endpoint the service talks to, and a
network-less *signer* for the public endpoint, so presigned URLs are SigV4-signed for the host
the browser actually sends (the Host header is part of the signature).

Under faults: every request runs in a session with connect and read timeouts (``_http``);
requests whose repetition cannot change the outcome are retried when they fail fast
(``_retry``); multipart uploads are aborted when they fail; downloads resume where they broke
off; every exception becomes a storage error (``_s3faults``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlunsplit

import aiohttp
from miniopy_async.api import Minio
from miniopy_async.commonconfig import CopySource
from miniopy_async.datatypes import Part, PostPolicy
from miniopy_async.deleteobjects import DeleteObject
from miniopy_async.helpers import BaseURL

from ._body import BodyReader
from ._errors import (
    AccessDenied,
    BucketNotFound,
    InvalidArgument,
    StorageError,
    StorageServiceError,
)
from ._http import Timeouts, open_session
from ._retry import backoff, retrying
from ._s3faults import Context, is_transient, to_storage_error
from ._types import Credentials, ObjectInfo, PublicAccess, SignedPost
from ._urls import Endpoint

T = TypeVar("T")

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
"""S3 allows at most 10 000 parts per multipart upload."""
_META_PREFIX = "x-amz-meta-"
_log = logging.getLogger("forktex_core.storage")


def _object_info(key: str, obj: Any) -> ObjectInfo:
    meta: dict[str, str] = {}
    headers = getattr(obj, "metadata", None) or {}
    for name, value in dict(headers).items():
        if str(name).lower().startswith(_META_PREFIX):
            meta[str(name)[len(_META_PREFIX) :].lower()] = str(value)
    etag = obj.etag.strip('"') if getattr(obj, "etag", None) else None
    return ObjectInfo(
        key=key,
        size=obj.size,
        etag=etag,
        content_type=getattr(obj, "content_type", None),
        last_modified=getattr(obj, "last_modified", None),
        metadata=meta,
    )


def _multipart_etag(parts: Sequence[Part]) -> str:
    """The ETag S3 gives the object a multipart upload of these parts completes into."""
    digests = b"".join(bytes.fromhex(part.etag.strip('"')) for part in parts)
    return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"


class S3Backend:
    """:class:`StorageBackend` for S3-compatible servers (see :class:`StorageClient`).

    ``connect_timeout``, ``read_timeout`` and ``max_attempts`` are those of
    :class:`StorageClient`; ``None`` takes the default. :class:`StorageClient` builds it for
    an ``s3://``, ``https://`` or ``http://`` endpoint.

    Example::

        storage = StorageClient(endpoint="http://localhost:9000", bucket="dev",
                                credentials=Credentials("minio", "minio-secret"))
        assert isinstance(storage.backend, S3Backend)
    """

    def __init__(
        self,
        *,
        endpoint: Endpoint,
        credentials: Credentials | None,
        bucket: str,
        region: str,
        public_endpoint: Endpoint,
        part_size: int,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> None:
        self._bucket = bucket
        self._region = region
        self._endpoint = endpoint
        self._part_size = part_size
        self._timeouts = Timeouts.of(connect_timeout, read_timeout, max_attempts)
        self._ctx = Context(endpoint.address, bucket, self._timeouts)
        access = credentials.access_key if credentials else None
        secret = credentials.secret_key if credentials else None
        token = credentials.session_token if credentials else None
        self._credentials = credentials
        self._client = Minio(
            endpoint.host, access, secret, token, secure=endpoint.secure, region=region
        )
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._aborts: set[asyncio.Task[None]] = set()
        # Never opens a connection: region is fixed, so presigning needs no bucket lookup.
        self._signer = Minio(
            public_endpoint.host,
            access,
            secret,
            token,
            secure=public_endpoint.secure,
            region=region,
        )
        # Where browsers POST upload forms: built the way the signer builds its own URLs
        # (virtual-host style on AWS, path style elsewhere), for the public endpoint.
        self._public_url = BaseURL(public_endpoint.url, region)

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def timeouts(self) -> Timeouts:
        """The connect/read timeouts and retry attempts in force."""
        return self._timeouts

    def __repr__(self) -> str:
        return f"S3Backend(endpoint={self._endpoint.url!r}, bucket={self._bucket!r})"

    def _minio(self) -> Minio:
        """The miniopy client, on a session of the running event loop."""
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._session_loop is not loop:
            # A session belongs to the loop it was made in; a client used from another loop
            # (one asyncio.run per job, one loop per test) gets a session of its own there.
            self._session = open_session(self._timeouts)
            self._session_loop = loop
            self._client.set_session(self._session)
        return self._client

    async def _request(
        self,
        action: str,
        key: str | None,
        call: Callable[[], Awaitable[T]],
        *,
        retry: bool = True,
    ) -> T:
        """``await call()``, retried when retry-safe, every failure a storage error."""
        try:
            return await retrying(
                call,
                attempts=self._timeouts.max_attempts if retry else 1,
                transient=is_transient,
            )
        except Exception as exc:
            error = to_storage_error(exc, self._ctx, action, key)
            if error is exc:
                raise
            raise error from exc

    async def ensure_bucket(self) -> bool:
        client = self._minio()
        if await self._request("bucket check", None, lambda: client.bucket_exists(self._bucket)):
            return False
        try:
            await self._request(
                "bucket creation", None, lambda: client.make_bucket(self._bucket, self._region)
            )
        except StorageServiceError as exc:
            if exc.code == "BucketAlreadyOwnedByYou":
                return False
            if exc.code == "BucketAlreadyExists":
                raise AccessDenied(
                    f"bucket {self._bucket!r} already exists and belongs to someone else; "
                    "choose another bucket name"
                ) from exc
            raise
        return True

    async def put(
        self, key: str, body: BodyReader, content_type: str, metadata: Mapping[str, str]
    ) -> ObjectInfo:
        headers = {"Content-Type": content_type}
        headers.update({f"{_META_PREFIX}{k}": v for k, v in metadata.items()})
        part_size = self._part_size
        if body.length is not None and body.length > part_size * MAX_PARTS:
            part_size = -(-body.length // MAX_PARTS)  # the smallest size that fits
        first = await body.read(part_size)
        if len(first) < part_size or not await body.peek(1):
            client = self._minio()
            # One PUT of bytes in memory: S3 stores all of it or nothing, and sending it
            # again stores the same object, so it is retried.
            result = await self._request(
                "upload",
                key,
                lambda: client._put_object(  # third-party private: miniopy
                    self._bucket, key, first, dict(headers)
                ),
            )
            etag, size = (result.etag or "").strip('"') or None, len(first)
        else:
            etag, size = await self._put_multipart(key, first, body, part_size, headers)
        return ObjectInfo(
            key=key, size=size, etag=etag, content_type=content_type, metadata=dict(metadata)
        )

    async def _put_multipart(
        self, key: str, first: bytes, body: BodyReader, part_size: int, headers: dict[str, str]
    ) -> tuple[str, int]:
        """Upload part by part (one part in memory); on any failure the upload is aborted,
        so nothing of it is ever visible under ``key``."""
        client = self._minio()
        # Not retried: a repeated CreateMultipartUpload would leave an upload nobody knows.
        upload_id: str = await self._request(
            "upload",
            key,
            lambda: client._create_multipart_upload(  # third-party private: miniopy
                self._bucket, key, dict(headers)
            ),
            retry=False,
        )
        parts: list[Part] = []
        size = 0
        try:
            data = first
            while data:
                number = len(parts) + 1
                if number > MAX_PARTS:
                    raise InvalidArgument(
                        f"the body of {key!r} is longer than {MAX_PARTS} parts of "
                        f"part_size={part_size}; pass a larger part_size"
                    )
                etag: str = await self._request(
                    f"upload (part {number})",
                    key,
                    lambda data=data, number=number: client._upload_part(  # type: ignore[misc]  # third-party private: miniopy
                        self._bucket, key, data, None, upload_id, number
                    ),
                )
                parts.append(Part(number, etag))
                size += len(data)
                data = await body.read(part_size)
            return await self._complete(client, key, upload_id, parts), size
        except Exception as exc:
            abort = self._abort_in_background(key, upload_id)
            # The server answered fast a moment ago: wait for the abort, so that an error
            # from put() means no upload is left behind. After a timeout it is left to
            # finish in the background (aclose() waits for it): the caller hears at once.
            if not isinstance(exc.__cause__ or exc, asyncio.TimeoutError):
                await asyncio.shield(abort)
            raise
        except BaseException:  # cancelled: abort without delaying the cancellation
            self._abort_in_background(key, upload_id)
            raise

    async def _complete(self, client: Minio, key: str, upload_id: str, parts: list[Part]) -> str:
        """CompleteMultipartUpload, made safe to repeat: before sending it again after a
        fast failure, the object's ETag tells whether the lost reply was a success."""
        expected = _multipart_etag(parts)
        attempt = 1
        while True:
            try:
                result = await client._complete_multipart_upload(  # third-party private: miniopy
                    self._bucket, key, upload_id, parts
                )
                return result.etag or expected
            except Exception as exc:
                if attempt >= self._timeouts.max_attempts or not is_transient(exc):
                    raise to_storage_error(exc, self._ctx, "upload", key) from exc
            await asyncio.sleep(backoff(attempt))
            attempt += 1
            try:
                if (await self.stat(key)).etag == expected:
                    return expected
            except StorageError:
                pass  # not there, or no answer: sending the completion again tells

    def _abort_in_background(self, key: str, upload_id: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._abort(key, upload_id))
        self._aborts.add(task)
        task.add_done_callback(self._aborts.discard)
        return task

    async def _abort(self, key: str, upload_id: str) -> None:
        client = self._minio()
        try:
            await self._request(
                "abort of the upload",
                key,
                lambda: client._abort_multipart_upload(  # third-party private: miniopy
                    self._bucket, key, upload_id
                ),
            )
        except StorageServiceError as exc:
            if exc.code != "NoSuchUpload":  # already gone: completed or aborted
                _log.warning("%s; its parts stay on the server until it is aborted", exc)
        except StorageError as exc:
            _log.warning(
                "%s; the server keeps the parts of the unfinished upload until a lifecycle "
                "rule removes them (nothing is visible under the key)",
                exc,
            )

    async def read(self, key: str) -> bytes:
        client = self._minio()

        async def get() -> bytes:
            response = await client.get_object(self._bucket, key)
            try:
                return bytes(await response.read())
            finally:
                response.close()

        return await self._request("download", key, get)

    async def stream(self, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        # A connection lost mid-body resumes at the next byte, pinned to the ETag of the
        # first response, so a stream never splices two versions of an object together.
        client = self._minio()
        offset = 0
        length: int | None = None
        etag: str | None = None
        attempt = 1
        while True:
            headers = {"If-Match": etag} if etag else None
            try:
                response = await retrying(
                    lambda offset=offset, headers=headers: client.get_object(  # type: ignore[misc]
                        self._bucket, key, offset=offset, request_headers=headers
                    ),
                    attempts=self._timeouts.max_attempts - attempt + 1,
                    transient=is_transient,
                )
            except Exception as exc:
                raise self._stream_error(exc, key, etag) from exc
            try:
                if etag is None:
                    etag = response.headers.get("ETag")
                    length = response.content_length
                chunks = response.content.iter_chunked(chunk_size)
                while True:
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        return
                    except Exception as exc:
                        if attempt >= self._timeouts.max_attempts or not is_transient(exc):
                            raise self._stream_error(exc, key, etag) from exc
                        break
                    offset += len(chunk)
                    attempt = 1  # bytes arrived: the connection was healthy again
                    yield chunk
            finally:
                response.close()
            if length is not None and offset >= length:
                return
            await asyncio.sleep(backoff(attempt))
            attempt += 1

    def _stream_error(self, exc: BaseException, key: str, etag: str | None) -> StorageError:
        error = to_storage_error(exc, self._ctx, "download", key)
        if isinstance(error, StorageServiceError) and error.code == "PreconditionFailed" and etag:
            return StorageServiceError(
                f"object {key!r} in bucket {self._bucket!r} was replaced while it was being "
                "streamed and the connection broke; read it again",
                code=error.code,
                bucket=self._bucket,
                key=key,
                status=error.status,
            )
        return error

    async def stat(self, key: str) -> ObjectInfo:
        client = self._minio()
        obj = await self._request("stat", key, lambda: client.stat_object(self._bucket, key))
        return _object_info(key, obj)

    async def delete(self, key: str) -> None:
        client = self._minio()
        await self._request("delete", key, lambda: client.remove_object(self._bucket, key))

    async def delete_many(self, keys: Sequence[str]) -> None:
        client = self._minio()
        failed: list[str] = []
        for start in range(0, len(keys), 1000):
            batch = [DeleteObject(k) for k in keys[start : start + 1000]]

            async def remove(batch: list[DeleteObject] = batch) -> list[Any]:
                return list(await client.remove_objects(self._bucket, batch))

            for err in await self._request("bulk delete", None, remove):
                if err.code == "NoSuchBucket":
                    raise BucketNotFound(self._bucket)
                if err.code != "NoSuchKey":
                    failed.append(f"{err.name!r} ({err.code})")
        if failed:
            raise StorageError(
                f"could not delete {len(failed)} object(s) from bucket {self._bucket!r}: "
                + ", ".join(failed[:10])
            )

    async def list(self, prefix: str, page_size: int) -> AsyncIterator[ObjectInfo]:
        # A page that fails fast is asked for again, starting after the last key yielded.
        client = self._minio()
        last: str | None = None
        attempt = 1
        while True:
            # The public list_objects() has no page size; _list_objects is its pager.
            pages = client._list_objects(  # third-party private: miniopy (the pager)
                self._bucket,
                prefix=prefix,
                max_keys=page_size,
                encoding_type="url",
                start_after=last,
            )
            try:
                while True:
                    try:
                        obj = await anext(pages)
                    except StopAsyncIteration:
                        return
                    except Exception as exc:
                        if attempt >= self._timeouts.max_attempts or not is_transient(exc):
                            error = to_storage_error(exc, self._ctx, "listing", None)
                            raise error from exc
                        break
                    attempt = 1
                    if obj.object_name is None or obj.is_dir:
                        continue
                    last = obj.object_name
                    info = _object_info(obj.object_name, obj)
                    # ListObjectsV2 returns no content type (miniopy fills in none).
                    yield ObjectInfo(
                        key=info.key,
                        size=info.size,
                        etag=info.etag,
                        last_modified=info.last_modified,
                    )
            finally:
                await pages.aclose()
            await asyncio.sleep(backoff(attempt))
            attempt += 1

    async def copy(self, source: str, destination: str) -> ObjectInfo:
        client = self._minio()
        await self._request(
            "copy",
            source,
            lambda: client.copy_object(self._bucket, destination, CopySource(self._bucket, source)),
        )
        return await self.stat(destination)

    async def signed_url(self, key: str, access: PublicAccess, ttl_seconds: int) -> str:
        if self._credentials is None:
            raise InvalidArgument("signed URLs need credentials=Credentials(...)")
        try:
            return await self._signer.get_presigned_url(
                access.method, self._bucket, key, expires=timedelta(seconds=ttl_seconds)
            )
        except Exception as exc:
            raise to_storage_error(exc, self._ctx, "signing", key) from exc

    async def signed_post(
        self, key: str, ttl_seconds: int, content_type: str | None, max_bytes: int | None
    ) -> SignedPost:
        if self._credentials is None:
            raise InvalidArgument("signed uploads need credentials=Credentials(...)")
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ttl_seconds)
        policy = PostPolicy(self._bucket, expires_at)
        policy.add_equals_condition("key", key)
        if content_type is not None:
            policy.add_equals_condition("Content-Type", content_type)
        if max_bytes is not None:
            policy.add_content_length_range_condition(0, max_bytes)
        try:
            form = await self._signer.presigned_post_policy(policy)
        except Exception as exc:
            raise to_storage_error(exc, self._ctx, "signing", key) from exc
        url = urlunsplit(self._public_url.build("POST", self._region, bucket_name=self._bucket))
        fields = {"key": key, **({"Content-Type": content_type} if content_type else {})}
        fields.update({k: str(v) for k, v in form.items()})
        return SignedPost(url=url, fields=fields, key=key, expires_at=expires_at)

    async def aclose(self) -> None:
        """Wait for multipart aborts still running, then close the connections."""
        while self._aborts:
            await asyncio.gather(*self._aborts, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None and self._session_loop is asyncio.get_running_loop():
            await session.close()
