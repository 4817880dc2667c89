# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The local-filesystem backend, for development and tests without an S3 server.

Layout: ``<root>/<bucket>/objects/<sha256(key)>`` holds the bytes and ``.../meta/<sha256>.json``
the key, content type, size, ETag and metadata. Hashing the key keeps arbitrary (long, deep,
``a`` *and* ``a/b``) keys representable and makes path traversal impossible. Writes go to a
temporary file and are ``os.replace``-d into place, so readers never see half an object.

Signed URLs are HMAC URLs (``_signing``) under the consumer's ``public_base_url``, one
purpose each: ``file-read`` (GET), ``file-write`` (PUT) and ``file-post`` (an upload form
pinned to key, content type and size). The service's file endpoint checks them with
:meth:`StorageClient.verify_signed_url` / :meth:`StorageClient.receive_signed_post`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._body import BodyReader
from ._errors import (
    BucketNotFound,
    InvalidArgument,
    InvalidKey,
    ObjectNotFound,
    SignatureInvalid,
)
from ._keys import validate_bucket, validate_key
from ._signing import Purpose, UrlSigner
from ._types import ObjectInfo, PublicAccess, SignedPost

_CONTENT_TYPE_PARAM = "content-type"
_MAX_BYTES_PARAM = "max-bytes"
_DIGITS = re.compile(r"[0-9]{1,20}")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PostGrant:
    """What a verified filesystem upload form allows: one key, optionally one content type
    and a maximum size (from :meth:`FilesystemBackend.verify_signed_post`).

    Example::

        grant = backend.verify_signed_post(str(request.url))
        grant.key, grant.content_type, grant.max_bytes  # 'avatars/u1.png', 'image/png', 2000000
    """

    key: str
    content_type: str | None
    max_bytes: int | None
    expires_at: int


class FilesystemBackend:
    """:class:`StorageBackend` storing objects under a local directory.

    ``secret`` (>= 32 bytes) and ``base_url`` (the service endpoint that serves the files)
    enable signed URLs; give both or neither.

    Example::

        backend = FilesystemBackend(Path("/var/tmp/storage"), "dev",
                                    secret=settings.callback_secret,
                                    base_url="https://app.example.com/files")
        storage = StorageClient(backend=backend)
    """

    def __init__(
        self,
        root: Path,
        bucket: str,
        *,
        secret: bytes | str | None = None,
        base_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._root = Path(root)
        self._bucket = validate_bucket(bucket)
        self._signers: dict[Purpose, UrlSigner] = {}
        if (secret is None) != (base_url is None):
            raise InvalidArgument(
                "signed file URLs need both a secret (callback_secret=...) and a base URL "
                "(public_base_url=...), or neither"
            )
        if secret is not None and base_url is not None:
            for purpose in ("file-read", "file-write", "file-post"):
                self._signers[purpose] = UrlSigner(
                    secret, base_url, purpose, clock=clock, name="public_base_url"
                )

    @property
    def bucket(self) -> str:
        return self._bucket

    def __repr__(self) -> str:
        return f"FilesystemBackend(root={str(self._root)!r}, bucket={self._bucket!r})"

    @property
    def _dir(self) -> Path:
        return self._root / self._bucket

    def _check_bucket(self) -> None:
        if not (self._dir / "objects").is_dir():
            raise BucketNotFound(self._bucket)

    def _paths(self, key: str) -> tuple[Path, Path]:
        d = _digest(key)
        return self._dir / "objects" / d, self._dir / "meta" / f"{d}.json"

    def _read_meta(self, key: str) -> dict[str, Any]:
        self._check_bucket()
        _, meta = self._paths(key)
        try:
            data: dict[str, Any] = json.loads(meta.read_text("utf-8"))
        except FileNotFoundError:
            raise ObjectNotFound(self._bucket, key) from None
        return data

    @staticmethod
    def _info(meta: Mapping[str, Any]) -> ObjectInfo:
        return ObjectInfo(
            key=meta["key"],
            size=meta["size"],
            etag=meta["etag"],
            content_type=meta["content_type"],
            last_modified=datetime.fromisoformat(meta["last_modified"]),
            metadata=dict(meta["metadata"]),
        )

    async def ensure_bucket(self) -> bool:
        def make() -> bool:
            created = not (self._dir / "objects").is_dir()
            (self._dir / "objects").mkdir(parents=True, exist_ok=True)
            (self._dir / "meta").mkdir(parents=True, exist_ok=True)
            return created

        return await asyncio.to_thread(make)

    def _atomic_write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(
        self, key: str, body: BodyReader, content_type: str, metadata: Mapping[str, str]
    ) -> ObjectInfo:
        self._check_bucket()
        obj, meta = self._paths(key)
        fd, tmp = tempfile.mkstemp(dir=obj.parent, prefix=".tmp-")
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in body.chunks():
                    md5.update(chunk)
                    size += len(chunk)
                    await asyncio.to_thread(fh.write, chunk)
            os.replace(tmp, obj)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        record = {
            "key": key,
            "size": size,
            "etag": md5.hexdigest(),
            "content_type": content_type,
            "last_modified": datetime.now(UTC).isoformat(),
            "metadata": dict(metadata),
        }
        self._atomic_write(meta, json.dumps(record).encode())
        return self._info(record)

    async def read(self, key: str) -> bytes:
        self._read_meta(key)
        obj, _ = self._paths(key)
        try:
            return await asyncio.to_thread(obj.read_bytes)
        except FileNotFoundError:
            raise ObjectNotFound(self._bucket, key) from None

    async def stream(self, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        self._read_meta(key)
        obj, _ = self._paths(key)
        try:
            fh = obj.open("rb")
        except FileNotFoundError:
            raise ObjectNotFound(self._bucket, key) from None
        with fh:
            while chunk := await asyncio.to_thread(fh.read, chunk_size):
                yield chunk

    async def stat(self, key: str) -> ObjectInfo:
        return self._info(self._read_meta(key))

    async def delete(self, key: str) -> None:
        self._check_bucket()
        obj, meta = self._paths(key)
        meta.unlink(missing_ok=True)
        obj.unlink(missing_ok=True)

    async def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            await self.delete(key)

    async def list(self, prefix: str, page_size: int) -> AsyncIterator[ObjectInfo]:
        self._check_bucket()
        records = []
        for path in (self._dir / "meta").glob("*.json"):
            try:
                record = json.loads(path.read_text("utf-8"))
            except FileNotFoundError:  # deleted meanwhile
                continue
            if record["key"].startswith(prefix):
                records.append(record)
        records.sort(key=lambda r: r["key"].encode("utf-8"))
        for record in records:
            yield self._info(record)

    async def copy(self, source: str, destination: str) -> ObjectInfo:
        record = self._read_meta(source)
        src, _ = self._paths(source)
        dst, dst_meta = self._paths(destination)
        data = await asyncio.to_thread(src.read_bytes)
        self._atomic_write(dst, data)
        record = {
            **record,
            "key": destination,
            "last_modified": datetime.now(UTC).isoformat(),
        }
        self._atomic_write(dst_meta, json.dumps(record).encode())
        return self._info(record)

    def _need_signer(self, purpose: Purpose) -> UrlSigner:
        signer = self._signers.get(purpose)
        if signer is None:
            raise InvalidArgument(
                "signed URLs on the filesystem backend need callback_secret=... and "
                "public_base_url=... (the service endpoint that serves the files)"
            )
        return signer

    @property
    def signs_urls(self) -> bool:
        """True when signed URLs are configured (a secret and a base URL were given)."""
        return bool(self._signers)

    def _path(self, key: str) -> str:
        return f"/{self._bucket}/{key}"

    def _key_of(self, path: str) -> str:
        prefix = f"/{self._bucket}/"
        if not path.startswith(prefix):
            raise SignatureInvalid(f"signed URL is not for a key of bucket {self._bucket!r}")
        try:
            return validate_key(path[len(prefix) :])
        except InvalidKey:
            raise SignatureInvalid("signed URL names an invalid key") from None

    async def signed_url(self, key: str, access: PublicAccess, ttl_seconds: int) -> str:
        purpose: Purpose = "file-read" if access is PublicAccess.read else "file-write"
        return self._need_signer(purpose).url(self._path(key), {}, ttl_seconds)

    def verify_signed_url(self, url: str, access: PublicAccess) -> str:
        """The key a signed file URL grants ``access`` to; :class:`SignatureInvalid` (also
        for a URL of another access mode or purpose) or :class:`SignatureExpired`.

        Example::

            key = backend.verify_signed_url(str(request.url), PublicAccess.read)
        """
        purpose: Purpose = "file-read" if access is PublicAccess.read else "file-write"
        verified = self._need_signer(purpose).verify(url)
        if verified.params:
            raise SignatureInvalid("signed file URL carries unexpected parameters")
        return self._key_of(verified.path)

    async def signed_post(
        self, key: str, ttl_seconds: int, content_type: str | None, max_bytes: int | None
    ) -> SignedPost:
        params: dict[str, str] = {}
        if content_type is not None:
            params[_CONTENT_TYPE_PARAM] = content_type
        if max_bytes is not None:
            params[_MAX_BYTES_PARAM] = str(max_bytes)
        signer = self._need_signer("file-post")
        url = signer.url(self._path(key), params, ttl_seconds)
        grant = self.verify_signed_post(url)
        return SignedPost(
            url=url,
            fields={"key": key, **({"Content-Type": content_type} if content_type else {})},
            key=key,
            expires_at=datetime.fromtimestamp(grant.expires_at, UTC),
        )

    def verify_signed_post(self, url: str) -> PostGrant:
        """What a signed upload form URL allows; :class:`SignatureInvalid` /
        :class:`SignatureExpired` like :meth:`verify_signed_url`. Enforcing it on the upload
        is :meth:`StorageClient.receive_signed_post`'s job.

        Example::

            grant = backend.verify_signed_post(str(request.url))
        """
        verified = self._need_signer("file-post").verify(url)
        params = dict(verified.params)
        content_type = params.pop(_CONTENT_TYPE_PARAM, None)
        max_raw = params.pop(_MAX_BYTES_PARAM, None)
        if params or (max_raw is not None and not _DIGITS.fullmatch(max_raw)):
            raise SignatureInvalid("signed upload URL carries unexpected parameters")
        return PostGrant(
            key=self._key_of(verified.path),
            content_type=content_type,
            max_bytes=None if max_raw is None else int(max_raw),
            expires_at=verified.expires_at,
        )

    async def aclose(self) -> None:
        return None
