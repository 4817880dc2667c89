# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The backend interface :class:`StorageClient` talks to (S3 today; GCS/Azure can follow)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from ._body import BodyReader
from ._types import ObjectInfo, PublicAccess, SignedPost


@runtime_checkable
class StorageBackend(Protocol):
    """What a storage backend implements. Keys, prefixes, TTLs and content types arrive
    already validated by :class:`StorageClient`; backends raise only
    :class:`StorageError` subclasses (``ObjectNotFound``, ``BucketNotFound``,
    ``StorageUnavailable`` naming what could not be reached, ...) and never wait forever.

    Implement this to add a backend (GCS, Azure Blob) and pass it as
    ``StorageClient(backend=...)``; consumer code does not change.

    Example::

        class AzureBackend:  # implements every method below
            ...

        storage = StorageClient(backend=AzureBackend(container="invoices"))
        assert isinstance(storage.backend, StorageBackend)
    """

    @property
    def bucket(self) -> str:
        """The bucket (container) this backend stores objects in."""
        ...

    async def ensure_bucket(self) -> bool:
        """Create the bucket if missing; True when it was created."""
        ...

    async def put(
        self, key: str, body: BodyReader, content_type: str, metadata: Mapping[str, str]
    ) -> ObjectInfo:
        """Store ``body`` under ``key`` (replacing it atomically)."""
        ...

    async def read(self, key: str) -> bytes:
        """The whole object in one read; raises ``ObjectNotFound``."""
        ...

    def stream(self, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        """The object's bytes; raises ``ObjectNotFound`` before yielding if missing."""
        ...

    async def stat(self, key: str) -> ObjectInfo:
        """Metadata of ``key``; raises ``ObjectNotFound``."""
        ...

    async def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Delete many keys (missing ones are ignored)."""
        ...

    def list(self, prefix: str, page_size: int) -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order, fetched page by page:
        key, size, ETag and modification time, ``content_type=None`` and no metadata (what
        S3's ListObjects gives; :class:`StorageClient` adds them on request via ``stat``)."""
        ...

    async def copy(self, source: str, destination: str) -> ObjectInfo:
        """Server-side copy inside the bucket."""
        ...

    async def signed_url(self, key: str, access: PublicAccess, ttl_seconds: int) -> str:
        """A URL for the public host that allows ``access`` to ``key`` for ``ttl_seconds``."""
        ...

    async def signed_post(
        self, key: str, ttl_seconds: int, content_type: str | None, max_bytes: int | None
    ) -> SignedPost:
        """A browser POST upload form pinned to key/content type/size."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
