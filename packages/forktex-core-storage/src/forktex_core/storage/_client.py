# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``StorageClient``: the one object consumers use, whatever the backend."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from opentelemetry.trace import SpanKind

from . import _telemetry
from ._backend import StorageBackend
from ._body import Body, BodyReader
from ._callbacks import CallbackSigner, VerifiedCallback
from ._content_type import SNIFF_BYTES, sniff_content_type
from ._errors import AccessDenied, InvalidArgument, ObjectNotFound, show
from ._fs import FilesystemBackend
from ._http import Timeouts
from ._keys import validate_bucket, validate_key, validate_prefix
from ._s3 import MIN_PART_SIZE, S3Backend
from ._signing import check_secret
from ._types import (
    Credentials,
    ObjectInfo,
    PublicAccess,
    SignedPost,
    check_access,
    check_ttl,
)
from ._urls import Endpoint, parse_base_url, parse_endpoint, split_bucket

DEFAULT_PART_SIZE = 8 * 1024 * 1024
MAX_PAGE_SIZE = 1000
_STAT_BATCH = 16
_CONTENT_TYPE_RE = re.compile(
    r"[\w.+-]{1,127}/[\w.+-]{1,127}( {0,8}; {0,8}[\w.+-]{1,127}=[\w.+\"-]{1,127}){0,8}", re.ASCII
)
_META_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
MAX_METADATA_BYTES = 2048
"""S3 limits user metadata (names + values, UTF-8) to 2 KB."""


def _check_content_type(value: object) -> str:
    if not isinstance(value, str) or not _CONTENT_TYPE_RE.fullmatch(value):
        raise InvalidArgument(
            f"content_type={show(value)} is not a media type; use e.g. 'application/pdf' or "
            "'text/plain; charset=utf-8', or omit it to sniff from the key and body"
        )
    return value


def _check_positive_int(name: str, value: object, *, low: int = 1, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidArgument(f"{name}={show(value)} must be an int {bound}")
    return value


async def _stat_each(backend: StorageBackend, listed: list[ObjectInfo]) -> list[ObjectInfo]:
    """``stat`` of every listed object, concurrently; objects deleted meanwhile are left out."""

    async def one(info: ObjectInfo) -> ObjectInfo | None:
        try:
            return await backend.stat(info.key)
        except ObjectNotFound:
            return None

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(info)) for info in listed]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # a StorageError, with its own cause
    return [found for task in tasks if (found := task.result()) is not None]


class StorageClient:
    """Object storage for a service: one bucket, safe keys, sniffed content types, signed URLs.

    ``endpoint`` forms:

    * ``"s3://host[:port]"`` or ``"https://host[:port]"`` — S3/MinIO over TLS;
    * ``"http://host:port"`` — S3/MinIO without TLS (development, e.g. MinIO in compose);
    * ``"file:///absolute/dir"`` — the local filesystem backend (no server needed).

    The bucket is ``bucket=...``, or the endpoint's path for S3 written path-style:
    ``"s3://s3.eu-central-1.amazonaws.com/invoices"`` is ``bucket="invoices"``. A client
    without a bucket is refused.

    Public-link configuration (all optional, all from the host service's own config):

    * ``public_endpoint`` — the S3 host browsers use (``"https://files.example.com"``). Signed
      URLs are **signed for this host** (SigV4 signs the Host header), so they validate when
      that host forwards requests to the storage server with its Host header unchanged
      (MinIO behind a reverse proxy, or MinIO's ``MINIO_SERVER_URL``). Defaults to ``endpoint``.
    * ``public_base_url`` + ``public_prefixes`` — plain unsigned URLs
      (:meth:`public_url`) for keys under prefixes the consumer serves publicly, e.g. through a
      CDN: ``public_base_url="https://cdn.example.com"``, ``public_prefixes=("avatars/",)``.
      On the filesystem backend, ``public_base_url`` is also where signed file URLs point.
    * ``callback_secret`` + ``callback_base_url`` — HMAC-signed URLs for the service's own
      endpoints (:meth:`callback_url` / :meth:`verify_callback`).

    ``bucket`` is required with ``endpoint`` (with ``backend=``, the backend's bucket is used).

    Faults (S3 endpoints; the filesystem backend has no network):

    * ``connect_timeout`` (default 5 s) — opening a TCP/TLS connection;
    * ``read_timeout`` (default 8 s) — how long the server may stay silent: before its reply,
      between two chunks of a download, or while it takes none of an upload's bytes. A silent
      server is reported as :class:`StorageUnavailable` after this, never waited for longer;
    * ``max_attempts`` (default 3, 1 = no retry) — requests that are safe to repeat (reads,
      lists, deletes, single-request uploads, upload parts, copies) are sent again after a
      fast failure: refused or reset connection, HTTP 5xx, ``SlowDown``. Timeouts are never
      retried. A broken download stream resumes where it stopped.

    The library reads no environment variables and never logs or shows secrets.

    Example::

        storage = StorageClient(
            endpoint="http://localhost:9000",
            credentials=Credentials("minioadmin", "minioadmin"),
            bucket="network-dev",
        )
        await storage.ensure_bucket()
        await storage.put("invoices/2026-04/INV-123.pdf", pdf_bytes)
        url = await storage.signed_url("invoices/2026-04/INV-123.pdf",
                                       access=PublicAccess.read, ttl_seconds=600)
        await storage.aclose()
    """

    def __init__(
        self,
        endpoint: str | None = None,
        credentials: Credentials | None = None,
        *,
        bucket: str | None = None,
        region: str = "us-east-1",
        public_endpoint: str | None = None,
        public_base_url: str | None = None,
        public_prefixes: Iterable[str] = (),
        callback_secret: bytes | str | None = None,
        callback_base_url: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int | None = None,
        backend: StorageBackend | None = None,
    ) -> None:
        if credentials is not None and not isinstance(credentials, Credentials):
            raise InvalidArgument(
                "credentials must be forktex_core.storage.Credentials(access_key, secret_key), "
                f"got {type(credentials).__name__}"
            )
        if not isinstance(region, str) or not re.match(r"^[a-z0-9-]{1,32}$", region):
            raise InvalidArgument(f"region={show(region)} must look like 'us-east-1'")
        self._part_size = _check_positive_int(
            "part_size", part_size, low=MIN_PART_SIZE, high=5 * 1024**3
        )
        if isinstance(public_prefixes, (str, bytes)) or not isinstance(public_prefixes, Iterable):
            raise InvalidArgument(
                "public_prefixes must be an iterable of prefixes, e.g. ('avatars/',), "
                f"not a {type(public_prefixes).__name__}"
            )
        self._public_prefixes = tuple(validate_prefix(p) for p in public_prefixes)
        self._public_base_url = (
            parse_base_url(public_base_url, name="public_base_url")
            if public_base_url is not None
            else None
        )
        if callback_secret is not None:
            check_secret(callback_secret)
        self._callbacks: CallbackSigner | None = None
        if callback_secret is not None and callback_base_url is not None:
            self._callbacks = CallbackSigner(callback_secret, callback_base_url)
        elif callback_base_url is not None:
            raise InvalidArgument("callback_base_url needs callback_secret=... as well")

        self._public_endpoint: Endpoint | None = None
        if backend is not None:
            if endpoint is not None:
                raise InvalidArgument("pass either endpoint=... or backend=..., not both")
            if not isinstance(backend, StorageBackend):
                raise InvalidArgument(
                    f"backend must implement StorageBackend, got {type(backend).__name__}"
                )
            if bucket is not None and bucket != backend.bucket:
                raise InvalidArgument(
                    f"bucket={show(bucket)} differs from the backend's bucket "
                    f"{backend.bucket!r}; the backend decides the bucket, omit bucket="
                )
            if (connect_timeout, read_timeout, max_attempts) != (None, None, None):
                raise InvalidArgument(
                    "connect_timeout, read_timeout and max_attempts configure the S3 backend "
                    "StorageClient builds from endpoint=...; set them on the backend you pass"
                )
            self._backend = backend
            self._bucket = backend.bucket
            kind = (
                "s3"
                if isinstance(backend, S3Backend)
                else "filesystem"
                if isinstance(backend, FilesystemBackend)
                else type(backend).__qualname__
            )
            self._span_attributes = _telemetry.client_attributes(kind, self._bucket, None)
            return
        if endpoint is None:
            raise InvalidArgument(
                "StorageClient needs endpoint='s3://host', 'https://host', 'http://host:port' "
                "or 'file:///dir'"
            )
        endpoint_url, url_bucket = split_bucket(endpoint)
        if url_bucket is not None:
            if bucket is not None and bucket != url_bucket:
                raise InvalidArgument(
                    f"bucket={show(bucket)} differs from the bucket {url_bucket!r} in the "
                    "endpoint; name the bucket once"
                )
            bucket = url_bucket
        ep = parse_endpoint(endpoint_url)
        if ep.scheme == "file":
            if public_endpoint is not None:
                raise InvalidArgument("public_endpoint applies to S3 endpoints only")
            pub = None
        elif public_endpoint is not None:
            pub = parse_endpoint(public_endpoint, name="public_endpoint", allow_file=False)
        else:
            pub = ep
        if bucket is None:
            raise InvalidArgument(
                "StorageClient needs a bucket: bucket='network-prod', or path-style in the "
                "endpoint ('s3://host/network-prod'); one bucket per service and environment"
            )
        self._bucket = validate_bucket(bucket)
        # Checked for every endpoint, so that one configuration fits file:// and S3 alike.
        timeouts = Timeouts.of(connect_timeout, read_timeout, max_attempts)
        if pub is None:
            signs = callback_secret is not None and self._public_base_url is not None
            self._backend = FilesystemBackend(
                Path(ep.path),
                self._bucket,
                secret=callback_secret if signs else None,
                base_url=self._public_base_url if signs else None,
            )
            self._span_attributes = _telemetry.client_attributes("filesystem", self._bucket, None)
            return
        self._public_endpoint = pub
        self._span_attributes = _telemetry.client_attributes("s3", self._bucket, ep.address)
        self._backend = S3Backend(
            endpoint=ep,
            credentials=credentials,
            bucket=self._bucket,
            region=region,
            public_endpoint=pub,
            part_size=self._part_size,
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.read,
            max_attempts=timeouts.max_attempts,
        )

    def __repr__(self) -> str:
        return f"StorageClient(backend={self._backend!r})"

    @property
    def bucket(self) -> str:
        """The bucket this client stores objects in."""
        return self._bucket

    @property
    def backend(self) -> StorageBackend:
        """The backend in use (``S3Backend`` or ``FilesystemBackend``)."""
        return self._backend

    async def __aenter__(self) -> StorageClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close pooled connections. The client can still be used afterwards (it reconnects)."""
        await self._backend.aclose()

    # -- buckets -----------------------------------------------------------------------------

    async def ensure_bucket(self) -> bool:
        """Create the bucket if it does not exist; return True if it was created.

        Example::

            created = await storage.ensure_bucket()
        """
        with _telemetry.operation("storage.ensure_bucket", SpanKind.CLIENT, self._span_attributes):
            return await self._backend.ensure_bucket()

    # -- objects -----------------------------------------------------------------------------

    async def put(
        self,
        key: str,
        body: Body,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Store ``body`` under ``key``, replacing any existing object.

        ``body`` is ``bytes``, a file path (``pathlib.Path``) or an async iterable of
        ``bytes``. Bodies larger than ``part_size`` (and all streams) are uploaded with
        multipart upload, one part in memory at a time. Without ``content_type`` it is sniffed
        from the key's extension and the first bytes (see :func:`sniff_content_type`).
        ``metadata`` becomes S3 user metadata (lowercase names, ASCII values).

        Example::

            await storage.put("invoices/2026-04/INV-123.pdf", body, content_type="application/pdf")
            await storage.put("exports/big.csv", Path("/tmp/big.csv"))
        """
        validate_key(key)
        if content_type is not None:
            _check_content_type(content_type)
        meta = self._check_metadata(metadata)
        with _telemetry.operation("storage.put", SpanKind.CLIENT, self._span_attributes) as span:
            info = await self._put(key, BodyReader(body), content_type, meta)
            if info.size is not None and span.is_recording():
                span.set_attribute(_telemetry.SIZE, info.size)
            return info

    async def _put(
        self, key: str, reader: BodyReader, content_type: str | None, meta: dict[str, str]
    ) -> ObjectInfo:
        try:
            if content_type is None:
                head = await reader.peek(SNIFF_BYTES)
                complete = reader.length is not None and reader.length <= SNIFF_BYTES
                content_type = sniff_content_type(key, head, complete=complete)
            return await self._backend.put(key, reader, content_type, meta)
        finally:
            reader.close()

    @staticmethod
    def _check_metadata(metadata: object) -> dict[str, str]:
        if metadata is None:
            return {}
        if not isinstance(metadata, Mapping):
            raise InvalidArgument(f"metadata must be a mapping of str to str, got {show(metadata)}")
        out: dict[str, str] = {}
        for name, value in metadata.items():
            if not isinstance(name, str) or not _META_NAME_RE.match(name):
                raise InvalidArgument(
                    f"metadata name {show(name)} is not allowed; "
                    "use lowercase letters, digits and '-'"
                )
            if not isinstance(value, str) or not value.isascii() or not value.isprintable():
                raise InvalidArgument(
                    f"metadata value for {show(name)} must be a printable ASCII str, "
                    f"got {show(value)}"
                )
            out[name] = value
        size = sum(len(k) + len(v) for k, v in out.items())
        if size > MAX_METADATA_BYTES:
            raise InvalidArgument(
                f"metadata is {size} bytes (names + values); S3 allows at most {MAX_METADATA_BYTES}"
            )
        return out

    async def get(self, key: str) -> bytes:
        """The whole object as bytes (use :meth:`stream` for large objects).

        Example::

            pdf = await storage.get("invoices/2026-04/INV-123.pdf")
        """
        validate_key(key)
        with _telemetry.operation("storage.get", SpanKind.CLIENT, self._span_attributes) as span:
            data = await self._backend.read(key)
            if span.is_recording():
                span.set_attribute(_telemetry.SIZE, len(data))
            return data

    async def stream(self, key: str, *, chunk_size: int = 1 << 16) -> AsyncIterator[bytes]:
        """The object's bytes in chunks of at most ``chunk_size``; raises
        :class:`ObjectNotFound` on the first iteration if the key is missing.

        Example::

            async for chunk in storage.stream("exports/big.csv"):
                await response.write(chunk)
        """
        validate_key(key)
        _check_positive_int("chunk_size", chunk_size, high=64 * 1024 * 1024)
        span = _telemetry.detached("storage.stream", SpanKind.CLIENT, self._span_attributes)
        error: BaseException | None = None
        size = 0
        try:
            async for chunk in self._backend.stream(key, chunk_size):
                size += len(chunk)
                yield chunk
        except GeneratorExit:  # the caller stopped reading: not a failure
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            if span.is_recording():
                span.set_attribute(_telemetry.SIZE, size)
            _telemetry.finish(span, error)

    async def stat(self, key: str) -> ObjectInfo:
        """Size, ETag, content type, modification time and metadata; :class:`ObjectNotFound`."""
        validate_key(key)
        with _telemetry.operation("storage.stat", SpanKind.CLIENT, self._span_attributes):
            return await self._backend.stat(key)

    async def exists(self, key: str) -> bool:
        """True if ``key`` exists."""
        validate_key(key)
        with _telemetry.operation("storage.exists", SpanKind.CLIENT, self._span_attributes) as span:
            try:
                await self._backend.stat(key)
                found = True
            except ObjectNotFound:
                found = False
            if span.is_recording():
                span.set_attribute(_telemetry.FOUND, found)
            return found

    async def delete(self, key: str) -> None:
        """Delete ``key``. Deleting a missing key is not an error (S3 semantics)."""
        validate_key(key)
        with _telemetry.operation("storage.delete", SpanKind.CLIENT, self._span_attributes):
            await self._backend.delete(key)

    async def delete_many(self, keys: Iterable[str]) -> None:
        """Delete many keys in batches of 1000; keys are all validated before anything is deleted.

        Example::

            await storage.delete_many([o.key async for o in storage.list(prefix="tmp/")])
        """
        if isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
            raise InvalidArgument(f"keys must be an iterable of keys, not a {type(keys).__name__}")
        checked = [validate_key(k) for k in keys]
        if checked:
            span_kind = SpanKind.INTERNAL  # batches of 1000: several requests
            with _telemetry.operation(
                "storage.delete_many", span_kind, self._span_attributes
            ) as span:
                if span.is_recording():
                    span.set_attribute(_telemetry.KEYS, len(checked))
                await self._backend.delete_many(checked)

    async def list(
        self,
        prefix: str = "",
        *,
        page_size: int = MAX_PAGE_SIZE,
        with_content_type: bool = False,
    ) -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order, fetched ``page_size``
        (1-1000) at a time.

        Like S3's ListObjects, a listing gives ``key``, ``size``, ``etag`` and
        ``last_modified``; ``content_type`` is ``None`` and ``metadata`` empty, on every
        backend. ``with_content_type=True`` fills both, as :meth:`stat` does — one extra
        request per object on S3 (up to 16 at a time); an object deleted meanwhile is skipped.

        Example::

            async for obj in storage.list(prefix="invoices/2026-04/"):
                print(obj.key, obj.size)
            async for obj in storage.list(prefix="avatars/", with_content_type=True):
                print(obj.key, obj.content_type)
        """
        validate_prefix(prefix)
        _check_positive_int("page_size", page_size, high=MAX_PAGE_SIZE)
        if not isinstance(with_content_type, bool):
            raise InvalidArgument(
                f"with_content_type must be True or False, got {show(with_content_type)}"
            )
        span = _telemetry.detached("storage.list", SpanKind.INTERNAL, self._span_attributes)
        error: BaseException | None = None
        listed = 0
        try:
            async for info in self._list(prefix, page_size, with_content_type):
                listed += 1
                yield info
        except GeneratorExit:  # the caller stopped reading: not a failure
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            if span.is_recording():
                span.set_attribute(_telemetry.OBJECTS, listed)
            _telemetry.finish(span, error)

    async def _list(
        self, prefix: str, page_size: int, with_content_type: bool
    ) -> AsyncIterator[ObjectInfo]:
        listing = self._backend.list(prefix, page_size)
        if not with_content_type:
            async for info in listing:
                yield info
            return
        batch: list[ObjectInfo] = []
        async for info in listing:
            batch.append(info)
            if len(batch) == _STAT_BATCH:
                for detailed in await _stat_each(self._backend, batch):
                    yield detailed
                batch = []
        for detailed in await _stat_each(self._backend, batch):
            yield detailed

    async def copy(self, source: str, destination: str) -> ObjectInfo:
        """Server-side copy of ``source`` to ``destination`` in the same bucket."""
        validate_key(source)
        validate_key(destination)
        with _telemetry.operation("storage.copy", SpanKind.CLIENT, self._span_attributes):
            return await self._backend.copy(source, destination)

    # -- links -------------------------------------------------------------------------------

    async def signed_url(
        self, key: str, *, access: PublicAccess = PublicAccess.read, ttl_seconds: int = 600
    ) -> str:
        """A time-limited URL a browser can use without credentials.

        ``PublicAccess.read`` gives a GET URL, ``PublicAccess.write`` a PUT upload URL (use
        :meth:`signed_post` to also pin the content type and size). ``ttl_seconds`` must be
        1 s to 7 days. On S3 the URL is SigV4-signed for ``public_endpoint``.

        Example::

            url = await storage.signed_url("invoices/2026-04/INV-123.pdf",
                                           access=PublicAccess.read, ttl_seconds=600)
        """
        validate_key(key)
        check_access(access)
        check_ttl(ttl_seconds)
        with _telemetry.operation(
            "storage.signed_url", SpanKind.INTERNAL, self._span_attributes
        ) as span:
            if span.is_recording():
                span.set_attribute(_telemetry.ACCESS, access.value)
            return await self._backend.signed_url(key, access, ttl_seconds)

    async def signed_post(
        self,
        key: str,
        *,
        ttl_seconds: int = 600,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> SignedPost:
        """A browser upload form pinned to ``key``, and optionally to ``content_type`` and a
        maximum size ``max_bytes``.

        On S3 it is a presigned POST policy that S3 enforces. On the filesystem backend the
        URL is a signed ``file-post`` URL to your service, whose endpoint hands the upload to
        :meth:`receive_signed_post`, which enforces the same conditions.

        Example::

            form = await storage.signed_post("avatars/u1.png", content_type="image/png",
                                             max_bytes=2_000_000, ttl_seconds=300)
            # <form action=form.url method=post enctype=multipart/form-data> + form.fields
        """
        validate_key(key)
        check_ttl(ttl_seconds)
        if content_type is not None:
            _check_content_type(content_type)
        if max_bytes is not None:
            _check_positive_int("max_bytes", max_bytes, high=5 * 1024**4)
        with _telemetry.operation("storage.signed_post", SpanKind.INTERNAL, self._span_attributes):
            return await self._backend.signed_post(key, ttl_seconds, content_type, max_bytes)

    def is_public(self, key: str) -> bool:
        """True if ``key`` lies under one of the configured ``public_prefixes``."""
        validate_key(key)
        return any(key.startswith(p) for p in self._public_prefixes)

    def public_url(self, key: str) -> str:
        """The plain, unsigned URL of a key under a public prefix.

        Formed as ``public_base_url + "/" + key`` (e.g. a CDN in front of the bucket), or
        ``public_endpoint/bucket/key`` when no ``public_base_url`` is set. Raises
        :class:`AccessDenied` for keys outside ``public_prefixes`` — use :meth:`signed_url`.

        Example::

            storage.public_url("avatars/u1.png")  # 'https://cdn.example.com/avatars/u1.png'
        """
        if not self.is_public(key):
            raise AccessDenied(
                f"key {show(key)} is not under a public prefix {list(self._public_prefixes)!r}; "
                "use signed_url() or add its prefix to public_prefixes"
            )
        quoted = quote(key, safe="/")
        if self._public_base_url is not None:
            return f"{self._public_base_url}/{quoted}"
        if self._public_endpoint is None:
            raise InvalidArgument("public_url() on the filesystem backend needs public_base_url=")
        return f"{self._public_endpoint.url}/{self._bucket}/{quoted}"

    def _signing_fs(self, what: str) -> FilesystemBackend:
        backend = self._backend
        if not isinstance(backend, FilesystemBackend) or not backend.signs_urls:
            raise InvalidArgument(
                f"{what}() is for the filesystem backend with callback_secret and "
                "public_base_url; S3 checks its own signed URLs and upload forms"
            )
        return backend

    def verify_signed_url(self, url: str, *, access: PublicAccess = PublicAccess.read) -> str:
        """Filesystem backend: check a signed file URL and return its key.

        The service's file endpoint calls this before serving (``access=PublicAccess.read``,
        GET) or accepting bytes (``PublicAccess.write``, PUT). A URL minted for the other
        access mode, for an upload form or as a callback never verifies. Raises
        :class:`SignatureInvalid` (malformed, tampered, another purpose) /
        :class:`SignatureExpired`.

        Example::

            key = storage.verify_signed_url(str(request.url), access=PublicAccess.read)
            return StreamingResponse(storage.stream(key))
        """
        check_access(access)
        return self._signing_fs("verify_signed_url").verify_signed_url(url, access)

    async def receive_signed_post(
        self, url: str, fields: Mapping[str, str], body: Body
    ) -> ObjectInfo:
        """Filesystem backend: accept an upload made with a :meth:`signed_post` form and
        store it, enforcing what the form pins — like S3 does for its POST policy.

        ``url`` is the URL the form was posted to, ``fields`` the form's text fields, ``body``
        the file. The ``key`` field must name the signed key and, when the form pins a
        content type, the ``Content-Type`` field must equal it; a body over the signed
        ``max_bytes`` is refused without storing anything. Raises :class:`SignatureInvalid`
        / :class:`SignatureExpired` for the URL and :class:`AccessDenied` when the upload
        breaks the form's conditions.

        Example::

            form = await request.form()
            info = await storage.receive_signed_post(
                str(request.url),
                {k: v for k, v in form.items() if k != "file"},
                form["file"].file.read(),
            )
        """
        grant = self._signing_fs("receive_signed_post").verify_signed_post(url)
        if not isinstance(fields, Mapping):
            raise InvalidArgument(
                f"fields must be the form's text fields as a mapping, got {type(fields).__name__}"
            )
        by_name = {str(k).lower(): v for k, v in fields.items()}
        if by_name.get("key") != grant.key:
            raise AccessDenied(
                f"upload form field 'key' must be {grant.key!r}, the key the form was signed for"
            )
        sent_type = by_name.get("content-type")
        if grant.content_type is not None and sent_type != grant.content_type:
            raise AccessDenied(
                f"upload form field 'Content-Type' must be {grant.content_type!r}, the type the "
                "form was signed for"
            )
        content_type = grant.content_type
        if content_type is None and sent_type is not None:
            content_type = _check_content_type(sent_type)
        reader = BodyReader(body, max_bytes=grant.max_bytes)
        with _telemetry.operation(
            "storage.receive_signed_post", SpanKind.CLIENT, self._span_attributes
        ) as span:
            info = await self._put(grant.key, reader, content_type, {})
            if info.size is not None and span.is_recording():
                span.set_attribute(_telemetry.SIZE, info.size)
            return info

    def callback_url(
        self, path: str, params: Mapping[str, str] | None = None, ttl_seconds: int = 600
    ) -> str:
        """A short-lived HMAC-signed URL for one of the service's own endpoints.

        Example::

            url = storage.callback_url("/hooks/upload-finished", {"key": key}, ttl_seconds=900)
        """
        return self._need_callbacks().url(path, params, ttl_seconds)

    def verify_callback(self, url: str, *, path: str | None = None) -> VerifiedCallback:
        """Check a URL from :meth:`callback_url`: rejects tampering, expiry and another path."""
        return self._need_callbacks().verify(url, path=path)

    def _need_callbacks(self) -> CallbackSigner:
        if self._callbacks is None:
            raise InvalidArgument(
                "callback URLs need StorageClient(callback_secret=..., callback_base_url=...)"
            )
        return self._callbacks
