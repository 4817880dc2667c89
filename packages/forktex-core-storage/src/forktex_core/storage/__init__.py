# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.storage — S3/MinIO object storage, signed URLs and signed callback URLs.

Example::

    from forktex_core.storage import Credentials, PublicAccess, StorageClient

    storage = StorageClient(
        endpoint="s3://s3.eu-central-1.amazonaws.com",
        credentials=Credentials(access_key, secret_key),
        bucket="network-prod",
        region="eu-central-1",
    )
    await storage.put("invoices/2026-04/INV-123.pdf", body, content_type="application/pdf")
    url = await storage.signed_url(
        "invoices/2026-04/INV-123.pdf", access=PublicAccess.read, ttl_seconds=600
    )
"""

from ._backend import StorageBackend
from ._body import Body
from ._callbacks import CallbackSigner, VerifiedCallback
from ._client import StorageClient
from ._content_type import sniff_content_type
from ._errors import (
    AccessDenied,
    BucketNotFound,
    InvalidArgument,
    InvalidKey,
    ObjectNotFound,
    SignatureExpired,
    SignatureInvalid,
    StorageError,
    StorageServiceError,
    StorageUnavailable,
)
from ._fs import FilesystemBackend, PostGrant
from ._keys import build_key, validate_key
from ._s3 import S3Backend
from ._types import (
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    Credentials,
    ObjectInfo,
    PublicAccess,
    SignedPost,
)

__all__ = [
    "MAX_TTL_SECONDS",
    "MIN_TTL_SECONDS",
    "AccessDenied",
    "Body",
    "BucketNotFound",
    "CallbackSigner",
    "Credentials",
    "FilesystemBackend",
    "InvalidArgument",
    "InvalidKey",
    "ObjectInfo",
    "ObjectNotFound",
    "PostGrant",
    "PublicAccess",
    "S3Backend",
    "SignatureExpired",
    "SignatureInvalid",
    "SignedPost",
    "StorageBackend",
    "StorageClient",
    "StorageError",
    "StorageServiceError",
    "StorageUnavailable",
    "VerifiedCallback",
    "build_key",
    "sniff_content_type",
    "validate_key",
]
