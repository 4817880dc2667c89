# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The local-filesystem backend, for development and tests without an S3 server.

Layout: ``<root>/<bucket>/objects/<sha256(key)>``, one file per object holding its bytes and
its record (key, content type, size, ETag, metadata; see ``_fsfile``). Hashing the key keeps
arbitrary (long, deep, ``a`` *and* ``a/b``) keys representable and makes path traversal
impossible. A write goes to a temporary file, is flushed to disk and ``os.replace``-d into
place, so readers see the old object or the new one — bytes and record together — never half
of one. OS errors become storage errors naming the bucket and key (``AccessDenied`` for a
permission error, ``BucketNotFound``/``ObjectNotFound`` for missing files,
``StorageUnavailable`` for the rest: a full disk, a read-only mount, a file where a directory
should be); host paths are left out of messages and kept in the chained ``OSError``.

Signed URLs are HMAC URLs (``_signing``) under the consumer's ``public_base_url``, one
purpose each: ``file-read`` (GET), ``file-write`` (PUT) and ``file-post`` (an upload form
pinned to key, content type and size). The service's file endpoint checks them with
:meth:`StorageClient.verify_signed_url` / :meth:`StorageClient.receive_signed_post`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from ._body import BodyReader
from ._errors import (
    AccessDenied,
    BucketNotFound,
    InvalidArgument,
    InvalidKey,
    ObjectNotFound,
    SignatureInvalid,
    StorageError,
    StorageUnavailable,
)
from ._fsfile import ObjectWriter, read_record
from ._keys import validate_bucket, validate_key
from ._signing import Purpose, UrlSigner
from ._types import ObjectInfo, PublicAccess, SignedPost

_CONTENT_TYPE_PARAM = "content-type"
_MAX_BYTES_PARAM = "max-bytes"
_DIGITS = re.compile(r"[0-9]{1,20}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


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
    def _objects(self) -> Path:
        return self._root / self._bucket / "objects"

    def _file(self, key: str) -> Path:
        return self._objects / _digest(key)

    @contextlib.contextmanager
    def _disk(self, action: str, key: str | None) -> Iterator[None]:
        """Map OS errors of ``action`` on ``key`` to storage errors. Messages name the bucket
        and key, not host paths (they may reach the service's clients); the ``OSError`` with
        the path stays attached as ``__cause__`` for the operator."""
        try:
            yield
        except OSError as exc:
            raise self._disk_error(exc, action, key) from exc

    def _disk_error(self, exc: OSError, action: str, key: str | None) -> StorageError:
        target = f"object {key!r}" if key is not None else "the bucket"
        what = f"{action} {target} in bucket {self._bucket!r}"
        creating = key is None and action == "create"
        missing = isinstance(exc, FileNotFoundError | NotADirectoryError)
        if missing and not creating and self._bucket_missing():
            return BucketNotFound(self._bucket)
        if isinstance(exc, FileNotFoundError) and key is not None:
            return ObjectNotFound(self._bucket, key)
        reason = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        if isinstance(exc, PermissionError):
            return AccessDenied(
                f"filesystem backend: permission denied to {what} ({reason}); the service "
                "needs read and write access to its storage directory"
            )
        return StorageUnavailable(
            f"filesystem backend cannot {what}: {exc.strerror or type(exc).__name__} "
            f"({reason}); check the storage directory (free space, mount, permissions)"
        )

    def _bucket_missing(self) -> bool:
        try:
            return not self._objects.is_dir()
        except OSError:  # cannot tell (e.g. no permission): not known to be missing
            return False

    def _check_bucket(self) -> None:
        if not self._objects.is_dir():
            raise BucketNotFound(self._bucket)

    @staticmethod
    def _info(record: Mapping[str, Any], *, listed: bool = False) -> ObjectInfo:
        return ObjectInfo(
            key=record["key"],
            size=record["size"],
            etag=record["etag"],
            content_type=None if listed else record["content_type"],
            last_modified=datetime.fromisoformat(record["last_modified"]),
            metadata={} if listed else dict(record["metadata"]),
        )

    def _open(self, key: str) -> tuple[BinaryIO, dict[str, Any]]:
        """The object's file, positioned at its first byte, and its record."""
        self._check_bucket()
        fh = self._file(key).open("rb")
        try:
            record = read_record(fh, f"object {key!r} in bucket {self._bucket!r}")
            if record.get("key") != key:
                raise FileNotFoundError(errno.ENOENT, "another key's object")
        except BaseException:
            fh.close()
            raise
        return fh, record

    def _record(self, key: str) -> dict[str, Any]:
        fh, record = self._open(key)
        fh.close()
        return record

    async def ensure_bucket(self) -> bool:
        def make() -> bool:
            created = not self._objects.is_dir()
            self._objects.mkdir(parents=True, exist_ok=True)
            return created

        with self._disk("create", None):
            return await asyncio.to_thread(make)

    async def put(
        self, key: str, body: BodyReader, content_type: str, metadata: Mapping[str, str]
    ) -> ObjectInfo:
        with self._disk("store", key):
            self._check_bucket()
            writer = await asyncio.to_thread(ObjectWriter, self._file(key))
        try:
            md5 = hashlib.md5(usedforsecurity=False)
            size = 0
            # The body is read outside _disk: an error of the caller's own stream is theirs.
            async for chunk in body.chunks():
                md5.update(chunk)
                size += len(chunk)
                with self._disk("store", key):
                    await asyncio.to_thread(writer.write, chunk)
            record = {
                "key": key,
                "size": size,
                "etag": md5.hexdigest(),
                "content_type": content_type,
                "last_modified": datetime.now(UTC).isoformat(),
                "metadata": dict(metadata),
            }
            with self._disk("store", key):
                await asyncio.to_thread(writer.commit, record)
        except BaseException:
            writer.discard()
            raise
        return self._info(record)

    async def read(self, key: str) -> bytes:
        def read() -> bytes:
            fh, record = self._open(key)
            with fh:
                return fh.read(record["size"])

        with self._disk("read", key):
            return await asyncio.to_thread(read)

    async def stream(self, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        with self._disk("read", key):
            fh, record = await asyncio.to_thread(self._open, key)
        with fh:
            left: int = record["size"]
            while left > 0:
                with self._disk("read", key):
                    chunk = await asyncio.to_thread(fh.read, min(chunk_size, left))
                if not chunk:
                    raise StorageUnavailable(
                        f"filesystem backend: object {key!r} in bucket {self._bucket!r} ended "
                        "early while being read"
                    )
                left -= len(chunk)
                yield chunk

    async def stat(self, key: str) -> ObjectInfo:
        with self._disk("stat", key):
            return self._info(await asyncio.to_thread(self._record, key))

    async def delete(self, key: str) -> None:
        with self._disk("delete", key):
            self._check_bucket()
            await asyncio.to_thread(self._file(key).unlink, missing_ok=True)

    async def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            await self.delete(key)

    async def list(self, prefix: str, page_size: int) -> AsyncIterator[ObjectInfo]:
        def scan() -> list[dict[str, Any]]:
            self._check_bucket()
            records = []
            for path in self._objects.iterdir():
                if not _DIGEST.fullmatch(path.name):
                    continue  # a file still being written
                try:
                    with path.open("rb") as fh:
                        record = read_record(fh, f"an object in bucket {self._bucket!r}")
                except FileNotFoundError:  # deleted meanwhile
                    continue
                if record["key"].startswith(prefix):
                    records.append(record)
            records.sort(key=lambda r: r["key"].encode("utf-8"))
            return records

        with self._disk("list", None):
            records = await asyncio.to_thread(scan)
        for record in records:
            yield self._info(record, listed=True)

    async def copy(self, source: str, destination: str) -> ObjectInfo:
        def copy() -> dict[str, Any]:
            fh, record = self._open(source)
            with fh:
                writer = ObjectWriter(self._file(destination))
                try:
                    left: int = record["size"]
                    while left > 0:
                        chunk = fh.read(min(left, 1 << 20))
                        if not chunk:
                            raise FileNotFoundError(errno.ENOENT, "source ended early")
                        writer.write(chunk)
                        left -= len(chunk)
                    copied = {
                        **record,
                        "key": destination,
                        "last_modified": datetime.now(UTC).isoformat(),
                    }
                    writer.commit(copied)
                except BaseException:
                    writer.discard()
                    raise
            return copied

        with self._disk("copy", source):
            return self._info(await asyncio.to_thread(copy))

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
