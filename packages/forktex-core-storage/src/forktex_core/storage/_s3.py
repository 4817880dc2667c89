# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The S3 backend (AWS S3, MinIO and other S3-compatible servers) on top of miniopy-async.

Two miniopy clients are kept: one for the internal endpoint the service talks to, and a
network-less *signer* for the public endpoint, so presigned URLs are SigV4-signed for the host
the browser actually sends (the Host header is part of the signature).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlunsplit

import aiohttp
from miniopy_async.api import Minio
from miniopy_async.commonconfig import CopySource
from miniopy_async.datatypes import PostPolicy
from miniopy_async.deleteobjects import DeleteObject
from miniopy_async.error import InvalidResponseError, MinioException, S3Error, ServerError

from ._body import BodyReader
from ._errors import (
    AccessDenied,
    BucketNotFound,
    InvalidArgument,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
)
from ._types import Credentials, ObjectInfo, PublicAccess, SignedPost
from ._urls import Endpoint

MIN_PART_SIZE = 5 * 1024 * 1024
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AllAccessDisabled",
    "AccountProblem",
    "ExpiredToken",
    "InvalidToken",
}
_META_PREFIX = "x-amz-meta-"


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


class S3Backend:
    """:class:`StorageBackend` for S3-compatible servers (see :class:`StorageClient`)."""

    def __init__(
        self,
        *,
        endpoint: Endpoint,
        credentials: Credentials | None,
        bucket: str,
        region: str,
        public_endpoint: Endpoint,
        part_size: int,
    ) -> None:
        self._bucket = bucket
        self._region = region
        self._endpoint = endpoint
        self._part_size = part_size
        access = credentials.access_key if credentials else None
        secret = credentials.secret_key if credentials else None
        token = credentials.session_token if credentials else None
        self._credentials = credentials
        self._client = Minio(
            endpoint.host, access, secret, token, secure=endpoint.secure, region=region
        )
        # Never opens a connection: region is fixed, so presigning needs no bucket lookup.
        self._signer = Minio(
            public_endpoint.host,
            access,
            secret,
            token,
            secure=public_endpoint.secure,
            region=region,
        )

    @property
    def bucket(self) -> str:
        return self._bucket

    def __repr__(self) -> str:
        return f"S3Backend(endpoint={self._endpoint.url!r}, bucket={self._bucket!r})"

    @contextmanager
    def _mapped(self, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except S3Error as exc:
            code = exc.code or ""
            if code in ("NoSuchKey", "NoSuchObject") and key is not None:
                raise ObjectNotFound(self._bucket, key) from exc
            if code == "NoSuchBucket":
                raise BucketNotFound(self._bucket) from exc
            if code in _DENIED:
                raise AccessDenied(
                    f"access denied ({code}) to {'object ' + repr(key) if key else 'bucket'} in "
                    f"bucket {self._bucket!r}: check the credentials and the bucket policy"
                ) from exc
            raise StorageError(
                f"S3 error {code or 'unknown'} for {'object ' + repr(key) if key else 'bucket'} "
                f"in bucket {self._bucket!r}: {exc.message}"
            ) from exc
        except (ServerError, InvalidResponseError) as exc:
            raise StorageUnavailable(
                f"S3 server at {self._endpoint.url} answered with an error "
                f"({type(exc).__name__}); retry later"
            ) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise StorageUnavailable(
                f"cannot reach the S3 server at {self._endpoint.url} ({type(exc).__name__}); "
                "check the endpoint and that the server is running"
            ) from exc
        except MinioException as exc:
            raise StorageError(f"S3 client error ({type(exc).__name__})") from exc

    async def ensure_bucket(self) -> bool:
        with self._mapped():
            if await self._client.bucket_exists(self._bucket):
                return False
            try:
                await self._client.make_bucket(self._bucket, self._region)
            except S3Error as exc:
                if exc.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    if exc.code == "BucketAlreadyExists":
                        raise AccessDenied(
                            f"bucket {self._bucket!r} already exists and belongs to someone else; "
                            "choose another bucket name"
                        ) from exc
                    return False
                raise
            return True

    async def put(
        self, key: str, body: BodyReader, content_type: str, metadata: Mapping[str, str]
    ) -> ObjectInfo:
        meta = {f"{_META_PREFIX}{k}": v for k, v in metadata.items()}
        with self._mapped(key):
            if body.length is None:
                # A stream that fits in one part (an empty one included) goes up in one request:
                # miniopy's multipart upload fails on a stream that ends before its first part.
                small = len(await body.peek(self._part_size + 1)) <= self._part_size
            else:
                small = body.length <= self._part_size
            if small:
                data = await body.read()
                result = await self._client.put_object(
                    self._bucket,
                    key,
                    io.BytesIO(data),
                    len(data),
                    content_type=content_type,
                    metadata=meta or None,  # type: ignore[arg-type]
                )
                size: int | None = len(data)
            else:
                # Sequential parts: miniopy's parallel mode reads ahead without bound.
                result = await self._client.put_object(
                    self._bucket,
                    key,
                    body,  # type: ignore[arg-type]  # async read() is supported
                    body.length if body.length is not None else -1,
                    content_type=content_type,
                    metadata=meta or None,  # type: ignore[arg-type]
                    part_size=self._part_size,
                    num_parallel_uploads=1,
                )
                size = body.length
        return ObjectInfo(
            key=key,
            size=size,
            etag=(result.etag or "").strip('"') or None,
            content_type=content_type,
            metadata=dict(metadata),
        )

    async def read(self, key: str) -> bytes:
        with self._mapped(key):
            response = await self._client.get_object(self._bucket, key)
            try:
                return bytes(await response.read())
            finally:
                response.close()

    async def stream(self, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        with self._mapped(key):
            response = await self._client.get_object(self._bucket, key)
        try:
            with self._mapped(key):
                async for chunk in response.content.iter_chunked(chunk_size):
                    yield chunk
        finally:
            response.close()

    async def stat(self, key: str) -> ObjectInfo:
        with self._mapped(key):
            obj = await self._client.stat_object(self._bucket, key)
        return _object_info(key, obj)

    async def delete(self, key: str) -> None:
        with self._mapped(key):
            await self._client.remove_object(self._bucket, key)

    async def delete_many(self, keys: Sequence[str]) -> None:
        failed: list[str] = []
        with self._mapped():
            for start in range(0, len(keys), 1000):
                batch = [DeleteObject(k) for k in keys[start : start + 1000]]
                errors = await self._client.remove_objects(self._bucket, batch)
                for err in errors:
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
        with self._mapped():
            # The public list_objects() has no page size; _list_objects is its pager.
            pages = self._client._list_objects(
                self._bucket, prefix=prefix, max_keys=page_size, encoding_type="url"
            )
            async for obj in pages:
                if obj.object_name is None or obj.is_dir:
                    continue
                yield _object_info(obj.object_name, obj)

    async def copy(self, source: str, destination: str) -> ObjectInfo:
        with self._mapped(source):
            await self._client.copy_object(
                self._bucket, destination, CopySource(self._bucket, source)
            )
        return await self.stat(destination)

    async def signed_url(self, key: str, access: PublicAccess, ttl_seconds: int) -> str:
        if self._credentials is None:
            raise InvalidArgument("signed URLs need credentials=Credentials(...)")
        with self._mapped(key):
            return await self._signer.get_presigned_url(
                access.method, self._bucket, key, expires=timedelta(seconds=ttl_seconds)
            )

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
        with self._mapped(key):
            form = await self._signer.presigned_post_policy(policy)
            url = urlunsplit(
                self._signer._base_url.build("POST", self._region, bucket_name=self._bucket)
            )
        fields = {"key": key, **({"Content-Type": content_type} if content_type else {})}
        fields.update({k: str(v) for k, v in form.items()})
        return SignedPost(url=url, fields=fields, key=key, expires_at=expires_at)

    async def aclose(self) -> None:
        await self._client.close_session()  # type: ignore[no-untyped-call]
