# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Where S3 upload forms point: the same host and addressing style as the signed URLs.

A browser POSTs a ``signed_post`` form to ``form.url``; S3 accepts it only at the bucket's
address on the public endpoint — virtual-host style (``https://bucket.s3.<region>.amazonaws.com/``)
on AWS when the bucket name allows it, path style (``https://host/bucket``) everywhere else.
For every public endpoint shape and bucket name below, the form's URL is the prefix of the
presigned GET URL of the same key. Signing is offline: no request reaches the endpoint.
"""

from __future__ import annotations

import pytest

from forktex_core.storage import Credentials, StorageClient

PUBLIC_ENDPOINTS = [
    "https://s3.eu-west-1.amazonaws.com",
    "s3://s3.amazonaws.com",
    "https://s3.dualstack.eu-west-1.amazonaws.com",
    "https://files.example.com",
    "s3://files.example.com:8443",
    "http://localhost:9000",
    "http://[::1]:9000",
]
BUCKETS = ["uploads", "up.loads"]  # a dot rules out virtual-host style (TLS wildcard)
KEY = "avatars/u 1.png"


def _client(public_endpoint: str, bucket: str) -> StorageClient:
    return StorageClient(
        endpoint="http://127.0.0.1:9",  # never contacted: presigning needs no request
        public_endpoint=public_endpoint,
        bucket=bucket,
        region="eu-west-1",
        credentials=Credentials("AKIAEXAMPLEKEY", "example-secret-key"),
    )


@pytest.mark.parametrize("bucket", BUCKETS)
@pytest.mark.parametrize("public_endpoint", PUBLIC_ENDPOINTS)
async def test_post_url_matches_the_signed_url_address(public_endpoint: str, bucket: str) -> None:
    client = _client(public_endpoint, bucket)
    try:
        form = await client.signed_post(KEY, ttl_seconds=60)
        signed = await client.signed_url(KEY, ttl_seconds=60)
    finally:
        await client.aclose()
    assert signed.split("?")[0] == form.url.rstrip("/") + "/avatars/u%201.png"


@pytest.mark.parametrize(
    ("public_endpoint", "bucket", "url"),
    [
        (
            "https://s3.eu-west-1.amazonaws.com",
            "uploads",
            "https://uploads.s3.eu-west-1.amazonaws.com/",
        ),
        (
            "https://s3.eu-west-1.amazonaws.com",
            "up.loads",
            "https://s3.eu-west-1.amazonaws.com/up.loads",
        ),
        ("https://files.example.com", "uploads", "https://files.example.com/uploads"),
        ("http://localhost:9000", "uploads", "http://localhost:9000/uploads"),
        ("http://[::1]:9000", "uploads", "http://[::1]:9000/uploads"),
    ],
)
async def test_post_url_addressing_style(public_endpoint: str, bucket: str, url: str) -> None:
    client = _client(public_endpoint, bucket)
    try:
        form = await client.signed_post(KEY, ttl_seconds=60)
    finally:
        await client.aclose()
    assert form.url == url
